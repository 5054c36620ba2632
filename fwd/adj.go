package fwd

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/fwd/pkt"
	"github.com/fwdd/fwdd/lltable"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd/flowhash"
)

// adjSize is the number of entries of a worker's adjacency caches (one for
// IPv4, one for IPv6), direct-mapped by next-hop id. A router has few next
// hops next to its prefixes; ids that collide only cost a refill.
const adjSize = 64

// adj is a worker's resolved next hop (an adjacency, in VPP's and
// FreeBSD's nhop words): what forwarding a packet to a gateway or connected
// next hop needs once the FIB gave its next-hop id, derived from one State,
// one FIB snapshot and one neighbour snapshot. The cache holds it while the
// burst's snapshots are those (adjCache.valid); any new snapshot empties
// it, so an entry never outlives what it was derived from.
//
// For a gateway with a neighbour, eth0 and eth1 are the rewritten
// Ethernet header's first 12 bytes (destination and source MAC) in memory
// order: the rewrite is two stores. If the port spreads by a flow hash
// (pmd.TxHasher, a lagg), adjTxHash is set, hx is that hash's lane a after
// the rewritten header (flowhash.Hash.Eth; lane b starts at the constant
// flowhash.LaneB), adjHL3 and adjHL4 say its other layers (adjHLSome: not
// both): the packet's own fields finish it (decTTL4, txHash6). An entry
// is 32 bytes, half a cache line (TestAdjSize): none straddles two lines,
// and the lagg's lane is read from the line the entry is in.
type adj struct {
	key  uint32 // next-hop id + 1; 0: empty
	port uint16 // egress port (adjReady, adjConnected, adjNoNeighbour)
	kind uint8
	bits uint8 // adjHashTx, adjTxHash, adjHL3, adjHL4, adjHLSome
	mtu  int32 // the egress port's MTU
	eth1 uint32
	eth0 uint64
	hx   uint64 // the port's flow hash, lane a after the Ethernet header (adjTxHash)
}

// adj bits.
const (
	adjHashTx = 1 << iota // the worker sends on a foreign TX queue of the port: hash the flow
	adjTxHash             // the port asks for its flow hash (pmd.TxHasher): compute it
	adjHL3                // that hash covers layer 3
	adjHL4                // and layer 4
	adjHLSome             // not both: decTTL4's general path
)

// adj kinds.
const (
	adjSlow        = iota // anything but the common case: forward4/6 decide
	adjECMP               // a group: the flow hash picks a member
	adjReady              // gateway, port up, neighbour known: rewrite and send
	adjConnected          // connected, port up: the neighbour is the destination
	adjNoNeighbour        // gateway, port up, no neighbour: hand to control
)

// adjCache is one family's cache and the snapshots its entries come from.
// The snapshot pointers keep those snapshots alive while the cache refers
// to them; forget drops them when the worker goes to sleep.
type adjCache struct {
	st  *State
	fs  *fib.Snapshot
	ns  *lltable.Snapshot
	im  *inMap
	ent [adjSize]adj
}

// valid makes the cache the burst's: entries derived from other snapshots
// (the ports' map included: a port's flow hash) are dropped.
func (c *adjCache) valid(st *State, fs *fib.Snapshot, ns *lltable.Snapshot, im *inMap) {
	if c.st != st || c.fs != fs || c.ns != ns || c.im != im {
		c.ent = [adjSize]adj{}
		c.st, c.fs, c.ns, c.im = st, fs, ns, im
	}
}

// forget empties the cache and lets go of its snapshots.
func (c *adjCache) forget() { *c = adjCache{} }

// forget lets go of the snapshots the worker's caches refer to: called
// when the worker goes to sleep, so that an idle worker keeps no old FIB
// alive.
func (p *pipeline) forget() {
	p.adjc4.forget()
	p.adjc6.forget()
}

// fillAdj resolves next hop id into its slot of the family's cache (on a
// miss: the slot's key is not id+1), from the cache's snapshots: the same
// decisions forward4/6 take for one packet (next hop kind, port present
// and up, neighbour lookup through the worker's Reader, which reports the
// use of a stale entry once per neighbour snapshot as a lookup per packet
// would).
func (p *pipeline) fillAdj(id uint32, v6 bool) *adj {
	c := &p.adjc4
	if v6 {
		c = &p.adjc6
	}
	a := &c.ent[id%adjSize]
	*a = adj{key: id + 1, kind: adjSlow}
	nh := c.fs.NextHop(id)
	switch nh.Kind {
	case fib.KindECMP:
		a.kind = adjECMP
		return a
	case fib.KindGateway, fib.KindConnected:
	default:
		return a
	}
	port := uint16(nh.Port)
	out := c.st.port(port)
	if !out.Present || !out.Up {
		return a
	}
	a.port = port
	a.mtu = int32(min(out.MTU, math.MaxInt32))
	if out.TxQueues > 1 && p.id >= out.TxQueues {
		a.bits |= adjHashTx
	}
	if nh.Kind == fib.KindConnected {
		a.kind = adjConnected
		return a
	}
	var mac [6]byte
	var ok bool
	if v6 {
		t := nh.Addr.As16()
		mac, ok = p.neigh.Lookup6(c.ns, port, &t)
	} else {
		mac, ok = p.neigh.Lookup4(c.ns, port, addr4(nh.Addr))
	}
	if !ok {
		a.kind = adjNoNeighbour
		return a
	}
	a.kind = adjReady
	a.eth0, a.eth1 = ethWords(mac, out.MAC)
	if h := c.im.txHash[port&(MaxPorts-1)]; h != nil {
		a.bits |= adjTxHash
		_, l3, l4 := h.Layers()
		if l3 {
			a.bits |= adjHL3
		}
		if l4 {
			a.bits |= adjHL4
		}
		if !l3 || !l4 {
			a.bits |= adjHLSome
		}
		a.hx = h.Eth(a.eth0, a.eth1)
	}
	return a
}

// decTTL4 is pkt.DecTTL4 of m, an IPv4 packet to the ready adjacency a,
// and, if a's port asks for a flow hash (adjTxHash: pmd.TxHasher, a lagg)
// and the packet stays alive, that hash: m.Hash is set to it and marked
// so (mbuf.FlagTxHash; it is also the hash txq spreads foreign queues by).
// One call per packet for both, and the same call for every port: a
// second call in forward4Burst's loop cost the lagg its spills, a branch
// around this one cost plain ports theirs.
//
// The value is flowhash.Hash.Frame of the frame as sent
// (TestLaggTxHash): the hash's Ethernet part is the adjacency's lane
// (the rewritten header; dropTag and setEth follow and change nothing
// else it reads), the rest from the header the TTL decrement touches and
// the parser's offsets (FlagFragment is Frame's fragment test; a packet
// without it has its transport header at L4Off, options or not). The
// hash is taken before the decrement (it reads neither TTL nor checksum):
// its header loads then come before the decrement's store and none waits
// to be checked against it (lagg -0.25-0.5 ns a packet, measured), and
// plain ports branch off first, to the same instructions as before.
func (p *pipeline) decTTL4(m *mbuf.Mbuf, a *adj) (expired bool) {
	d := m.Data()
	o := int(m.L3Off)
	if o+pkt.IPv4Len > len(d) {
		return true
	}
	ip := (*[pkt.IPv4Len]byte)(d[o:])
	if a.bits&adjTxHash == 0 {
		if pkt.DecTTL4Header(ip) {
			return true
		}
		return false
	}
	// The hash first: its loads before the decrement's store.
	f := m.Flags
	l4 := int(m.L4Off)
	var h uint32
	if a.bits&adjHLSome == 0 && f&pkt.FlagFragment == 0 && flowhash.HasPorts(m.L4Proto) && l4+4 <= len(d) {
		// The usual: all layers, ports (not a fragment: the parser set
		// L4Off). flowhash's AddIPv4, AddPorts and Mix written out (no
		// inline marks); they must stay the same (TestLaggTxHash).
		x := a.hx ^ bits.RotateLeft64(binary.LittleEndian.Uint64(ip[12:20]), 17)
		y := uint64(flowhash.LaneB) ^ uint64(binary.LittleEndian.Uint32(d[l4:l4+4]))<<12
		hi, lo := bits.Mul64(x, y)
		h = uint32(hi ^ lo)
	} else {
		// The rest: a layer left out, a fragment, a protocol without
		// ports.
		x, y := a.hx, uint64(flowhash.LaneB)
		if a.bits&adjHL3 != 0 {
			x = flowhash.AddIPv4(x, binary.LittleEndian.Uint64(ip[12:20]))
		}
		if a.bits&adjHL4 != 0 && f&pkt.FlagFragment == 0 && flowhash.HasPorts(m.L4Proto) {
			if l4 != 0 && l4+4 <= len(d) {
				y = flowhash.AddPorts(y, binary.LittleEndian.Uint32(d[l4:l4+4]))
			}
		}
		h = flowhash.Mix(x, y)
	}
	if pkt.DecTTL4Header(ip) {
		return true
	}
	m.Hash = h
	m.Flags = f | mbuf.FlagHashValid | mbuf.FlagTxHash
	return false
}

// txHash6 sets m's hash to the flow hash a's port asks for (pmd.TxHasher)
// and marks it so (mbuf.FlagTxHash; it is also the hash txq spreads foreign
// queues by). m is a rewritten, untagged IPv6 packet: the value is
// flowhash.Hash.Frame of its frame (TestLaggTxHash) — like Frame, the
// fixed header's next header and the word after it (extension headers
// are not walked).
func txHash6(m *mbuf.Mbuf, a *adj) {
	d := m.Data()
	o := int(m.L3Off)
	ip := d[o : o+40]
	x, y := a.hx, uint64(flowhash.LaneB)
	if a.bits&adjHL3 != 0 {
		x, y = flowhash.AddIPv6(x, y, ip)
	}
	if l4 := o + 40; a.bits&adjHL4 != 0 && flowhash.HasPorts(ip[6]) && l4+4 <= len(d) {
		y = flowhash.AddPorts(y, binary.LittleEndian.Uint32(d[l4:l4+4]))
	}
	m.Hash = flowhash.Mix(x, y)
	m.Flags |= mbuf.FlagHashValid | mbuf.FlagTxHash
}

// ethWords returns the Ethernet destination and source MACs as the two
// words setEth stores.
func ethWords(dst, src [6]byte) (uint64, uint32) {
	var h [12]byte
	copy(h[0:6], dst[:])
	copy(h[6:12], src[:])
	return binary.LittleEndian.Uint64(h[0:8]), binary.LittleEndian.Uint32(h[8:12])
}

// setEth writes the Ethernet addresses of m (untagged, at least 14 bytes:
// a parsed IP packet) from ethWords' two words, counting nothing.
func setEth(m *mbuf.Mbuf, eth0 uint64, eth1 uint32) {
	d := m.Data()
	binary.LittleEndian.PutUint64(d[0:8], eth0)
	binary.LittleEndian.PutUint32(d[8:12], eth1)
}
