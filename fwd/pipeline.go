package fwd

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/fwd/pkt"
	"github.com/fwdd/fwdd/lcp"
	"github.com/fwdd/fwdd/lltable"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/txq"
)

// pipeline is a worker's per-burst state: scratch arrays allocated once,
// counters it alone writes, its transmit state and ICMP token bucket.
type pipeline struct {
	w     *Worker // nil for the control goroutine's pipeline
	d     *dataplane
	cache *mbuf.Cache
	// neigh is this worker's view of the neighbour table; it also carries
	// neighbour misses and ARP/ND frames to the control plane.
	neigh *lltable.Reader
	// tx sends through the transmit table (txq) as this worker.
	tx *txq.Sender
	// control: this is the control goroutine's pipeline (ICMP for packets
	// the neighbour table gave up on); a neighbour miss is dropped there.
	control bool
	// punt hands host-bound frames to the ports' kernel interfaces (lcp);
	// nil for the control goroutine's pipeline.
	punt *lcp.Producer
	one  [1]*mbuf.Mbuf

	rx [Burst]*mbuf.Mbuf

	// IPv4 and IPv6 packets to look up, with their destinations.
	v4   [Burst]*mbuf.Mbuf
	dst4 [Burst]uint32
	nh4  [Burst]uint32
	// Per packet of the family being forwarded (forward4Burst, then
	// forward6Burst): how far the first stages took it (stage*), its
	// egress port and its neighbour's MAC.
	stage   [Burst]uint8
	outPort [Burst]uint16
	nbMAC   [Burst][6]byte

	v6   [Burst]*mbuf.Mbuf
	dst6 [Burst][16]byte
	nh6  [Burst]uint32
	// hl6 is each IPv6 packet's hop limit as received, read where the
	// classification loop copies its destination (the header's line is
	// in cache there; after the burst's FIB lookups it often is not):
	// forward6Burst tests it and stores hl6-1 without loading the header
	// again.
	hl6 [Burst]uint8
	// sc6 is the IPv6 batch lookups' working memory (fib.Scratch6), kept
	// here so that a lookup does not zero ~3.6 KB of stack per call.
	sc6 fib.Scratch6
	// sc4 is the IPv4 batch lookups' (fib.Scratch4, ~2.2 KB).
	sc4 fib.Scratch4

	// Packets we generated (ICMP errors, echo replies), routed after the
	// burst without TTL decrement. Bounded: at most one per received packet.
	gen  [Burst]*mbuf.Mbuf
	nGen int

	drops  [2 * Burst]*mbuf.Mbuf
	nDrops int

	punted int

	bc  burstCounts
	ctr counters

	// Resolved next hops by next-hop id (adj.go).
	adjc4, adjc6 adjCache

	// The last IPv4 neighbour looked up in this burst: consecutive packets
	// usually share a gateway, and this saves the hash lookup. Valid
	// while nb4snap is the snapshot of the current burst.
	nb4snap *lltable.Snapshot
	nb4port uint16
	nb4ip   uint32
	nb4mac  [6]byte
	// The same for IPv6 (neighbour6).
	nb6snap *lltable.Snapshot
	nb6port uint16
	nb6ip   [16]byte
	nb6mac  [6]byte

	icmp     pkt.TokenBucket
	icmpRate [2]int // rate, burst the bucket was set with
	// frags receives the fragments of one datagram (fragment4), which are
	// sent before the next packet is looked at.
	frags    [64]*mbuf.Mbuf
	id       int // worker id (the control path: the number of workers)
	hashSeed uint64

	// traceHits are the rule hits explain counts on the side (observe.go),
	// so that a traced packet's rules are not counted twice. Last: cold.
	traceHits [MaxRules]uint32
}

func (p *pipeline) init(e *Engine, id int, cache *mbuf.Cache) error {
	p.id = id
	p.d = e.dp
	p.cache = cache
	p.hashSeed = e.hashSeed
	p.neigh = e.dp.neigh.NewReader(cache)
	s, err := e.dp.tx.NewSender(id, cache)
	if err != nil {
		return err
	}
	p.tx = s
	if id < len(e.pools) {
		p.punt = e.dp.lcp.Producer(id)
		p.punt.SetCache(cache)
	}
	return nil
}

// process handles one received burst from port.
func (p *pipeline) process(port uint16, ms []*mbuf.Mbuf) {
	v := p.d.view.Load()
	st := v.st
	fs := v.fibs.Load()
	nfib := fs.NumFIBs()
	hasRules := st.Rules.Len() > 0
	ns := p.neigh.Load()
	b := &p.bc
	b.v[RxPackets] += uint32(len(ms))
	// Stacked ports: a lagg member's burst is the lagg's; tagged frames
	// are their VLAN sub-interface's (per packet, below).
	im := p.d.in.Load()
	lower := &im.ports[port&(MaxPorts-1)]
	rxPort := port
	gated := false
	if lower.hasMaster {
		port = lower.master
		gated = lower.collecting != nil && !lower.collecting.Load()
		if lower.rx != nil {
			countRx(&lower.rx[p.id], ms)
		}
	}
	ip := &im.ports[port&(MaxPorts-1)]
	in := st.port(port)
	var sub *inSub
	var subN, subBytes uint64
	n4, n6 := 0, 0
	for _, m := range ms {
		m.Port = port
		cls, why := pkt.Parse(m)
		pin := in
		if gated && cls != pkt.ClassDrop {
			p.drop(m, DropNotCollecting)
			continue
		}
		if m.Flags&mbuf.FlagVLAN != 0 && cls != pkt.ClassDrop {
			// The frame is its VLAN sub-interface's, untagged from here
			// on; a tag with no sub-interface is never routed as if
			// untagged.
			var si uint8
			if ip.vlans != nil {
				si = ip.vlans[m.VLANTCI&0xfff]
			}
			if si == 0 {
				p.drop(m, DropUnknownVLAN)
				continue
			}
			s := &ip.subs[si-1]
			if s != sub {
				flushSubRx(sub, p.id, subN, subBytes)
				sub, subN, subBytes = s, 0, 0
			}
			subN++
			subBytes += uint64(m.Len())
			stripTag(m)
			m.Port = s.id
			pin = st.port(s.id)
		}
		switch cls {
		case pkt.ClassIPv4:
			if !isOurMAC(m, pin) {
				if pin.LCP && p.punt != nil && hostBound4(m) {
					p.puntLCP(m)
					continue
				}
				p.drop(m, DropBroadcast)
				continue
			}
			m.FIB = pin.FIB
			if hasRules && !p.classify(m, st.Rules, false) {
				continue
			}
			if int(m.FIB) >= nfib {
				p.drop(m, DropNoFIB)
				continue
			}
			p.v4[n4] = m
			p.dst4[n4] = dst4(m)
			n4++
		case pkt.ClassIPv6:
			if !isOurMAC(m, pin) {
				p.drop(m, DropBroadcast)
				continue
			}
			if pin.LCP && p.punt != nil && hostBound6(m, true) {
				p.puntLCP(m)
				continue
			}
			m.FIB = pin.FIB
			if hasRules && !p.classify(m, st.Rules, true) {
				continue
			}
			if int(m.FIB) >= nfib {
				p.drop(m, DropNoFIB)
				continue
			}
			p.v6[n6] = m
			take6(&p.dst6[n6], &p.hl6[n6], m)
			n6++
		case pkt.ClassARP, pkt.ClassND:
			if pin.LCP && p.punt != nil {
				p.puntCopy(m)
			}
			p.input(m)
		case pkt.ClassHopByHop:
			if pin.LCP && p.punt != nil && hostBound6(m, isOurMAC(m, pin)) {
				p.puntLCP(m)
				continue
			}
			p.drop(m, DropHopByHop)
		default:
			if why == pkt.UnknownEtherType && m.EtherType == pkt.EtherTypeSlow && lower.control != nil {
				// LACP and marker frames go to the lagg's protocol, on
				// the control goroutine; they are never forwarded.
				m.Port = rxPort
				if lower.control.Enqueue(m) {
					b.v[Punted]++
					p.punted++
				} else {
					p.drop(m, DropPuntFull)
				}
				continue
			}
			if pin.LCP && p.punt != nil && hostBoundDrop(m, why) {
				p.puntLCP(m)
				continue
			}
			p.parseDrop(m, why)
		}
	}
	flushSubRx(sub, p.id, subN, subBytes)
	if n4 > 0 {
		p.lookup4(fs, n4)
		p.forward4Burst(n4, st, fs, ns, im)
	}
	if n6 > 0 {
		p.lookup6(fs, n6)
		p.forward6Burst(n6, st, fs, ns, im)
	}
	p.routeGenerated(st, fs, ns)
	p.finish(st)
}

// lookup4 looks p.dst4[:n] up into p.nh4[:n]: one batch lookup per run of
// packets sharing a FIB (usually the whole burst is one run).
func (p *pipeline) lookup4(fs *fib.Snapshot, n int) {
	for i := 0; i < n; {
		f := p.v4[i].FIB
		j := i + 1
		for j < n && p.v4[j].FIB == f {
			j++
		}
		fs.Lookup4BatchScratch(&p.sc4, uint32(f), p.dst4[i:j], p.nh4[i:j])
		p.bc.countFIB(f, j-i)
		i = j
	}
}

// lookup6 is lookup4 for IPv6.
func (p *pipeline) lookup6(fs *fib.Snapshot, n int) {
	for i := 0; i < n; {
		f := p.v6[i].FIB
		j := i + 1
		for j < n && p.v6[j].FIB == f {
			j++
		}
		fs.Lookup6BatchScratch(&p.sc6, uint32(f), p.dst6[i:j], p.nh6[i:j])
		p.bc.countFIB(f, j-i)
		i = j
	}
}

// classify runs the rules for a packet; false means it was dropped.
func (p *pipeline) classify(m *mbuf.Mbuf, rules *Rules, v6 bool) bool {
	var k flowKey
	if v6 {
		fillKey6(&k, m)
	} else {
		fillKey4(&k, m)
	}
	fib, drop := rules.match(&k, &p.bc.hits)
	if drop {
		p.drop(m, DropRule)
		return false
	}
	m.FIB = uint16(fib)
	return true
}

// How far the first stages of forward4Burst and forward6Burst took a
// packet.
const (
	stageSlow        = iota // not the common case: forward4/6 handle it whole
	stageReady              // TTL decremented, rewritten: send it
	stageNeighbour          // TTL decremented, connected: look up the destination's MAC
	stageNoNeighbour        // TTL decremented, no neighbour: hand it to control
)

// forward4Burst takes the looked-up IPv4 packets p.v4[:n] (next-hop ids
// in p.nh4) to their next hops in stages over the burst: (1) the next
// hop's adjacency (adj.go: kind, port, MTU, neighbour, resolved once per
// next hop and snapshot), and for the common case (a gateway or connected
// next hop on a port that is up, TTL left, within the MTU) the TTL
// decrement, and for a gateway with a known neighbour the rewrite; (2) the
// neighbours of packets to connected next hops; (3) in the packets' order,
// one txq.Transmit per run of packets for a port, or forward4 for every
// packet that is not the common case (local, no route, TTL expired, too
// big...), so that a flow's packets leave in the order they came.
func (p *pipeline) forward4Burst(n int, st *State, fs *fib.Snapshot, ns *lltable.Snapshot, im *inMap) {
	p.adjc4.valid(st, fs, ns, im)
	conn := false
	for i, m := range p.v4[:n] {
		id := p.nh4[i]
		p.stage[i] = stageSlow
		if id == 0 {
			p.bc.countMiss(m.FIB)
			continue // forward4: no route
		}
		a := &p.adjc4.ent[id%adjSize]
		if a.key != id+1 {
			a = p.fillAdj(id, false)
		}
		if a.kind == adjECMP {
			p.hash(m)
			mid := fs.Select(id, m.Hash)
			if a = &p.adjc4.ent[mid%adjSize]; a.key != mid+1 {
				a = p.fillAdj(mid, false)
			}
		}
		if a.kind < adjReady || l3len(m) > int(a.mtu) || p.decTTL4(m, a) { // adjTxHash: and the lagg's hash
			continue // forward4 drops it, answers it or fragments it
		}
		p.outPort[i] = a.port
		if a.bits&(adjTxHash|adjHashTx) == adjHashTx {
			p.hash(m) // txq spreads foreign queues by flow hash
		}
		switch a.kind {
		case adjReady:
			dropTag(m)
			setEth(m, a.eth0, a.eth1)
			p.stage[i] = stageReady
		case adjConnected:
			p.stage[i] = stageNeighbour
			conn = true
		default:
			p.stage[i] = stageNoNeighbour
		}
	}
	if conn {
		for i, m := range p.v4[:n] {
			if p.stage[i] != stageNeighbour {
				continue
			}
			port, target := p.outPort[i], p.dst4[i]
			var mac [6]byte
			if p.nb4snap == ns && p.nb4port == port && p.nb4ip == target {
				mac = p.nb4mac
			} else {
				var ok bool
				if mac, ok = p.neigh.Lookup4(ns, port, target); !ok {
					p.stage[i] = stageNoNeighbour
					continue
				}
				p.nb4snap, p.nb4port, p.nb4ip, p.nb4mac = ns, port, target, mac
			}
			dropTag(m)
			eth0, eth1 := ethWords(mac, st.port(port).MAC)
			setEth(m, eth0, eth1)
			p.stage[i] = stageReady
		}
	}
	// p.v4[run:i] are ready packets for runPort (run < 0: none).
	run, runPort := -1, uint16(0)
	for i, m := range p.v4[:n] {
		if p.stage[i] == stageReady {
			port := p.outPort[i]
			if run >= 0 && port != runPort {
				p.transmitRun(runPort, p.v4[run:i])
				run = -1
			}
			if run < 0 {
				run, runPort = i, port
			}
			continue
		}
		if run >= 0 {
			p.transmitRun(runPort, p.v4[run:i])
			run = -1
		}
		if p.stage[i] == stageNoNeighbour {
			nh := p.nextHop(m, fs, p.nh4[i])
			target := p.dst4[i]
			if nh.Kind == fib.KindGateway {
				target = addr4(nh.Addr)
			}
			p.miss(m, p.outPort[i], p.nh4[i], target, nil)
		} else {
			p.forward4(m, p.nh4[i], st, fs, ns, true)
		}
	}
	if run >= 0 {
		p.transmitRun(runPort, p.v4[run:n])
	}
}

// transmitRun hands ms, rewritten packets for port, to txq and counts them
// forwarded.
func (p *pipeline) transmitRun(port uint16, ms []*mbuf.Mbuf) {
	p.bc.v[Forwarded] += uint32(len(ms))
	p.tx.Transmit(port, ms)
}

// forward6Burst is forward4Burst for IPv6 (p.v6[:n], next hops in p.nh6;
// p.dst6[i] holds the destination).
func (p *pipeline) forward6Burst(n int, st *State, fs *fib.Snapshot, ns *lltable.Snapshot, im *inMap) {
	p.adjc6.valid(st, fs, ns, im)
	conn := false
	for i, m := range p.v6[:n] {
		id := p.nh6[i]
		p.stage[i] = stageSlow
		if id == 0 {
			p.bc.countMiss(m.FIB)
			continue // forward6: no route
		}
		a := &p.adjc6.ent[id%adjSize]
		if a.key != id+1 {
			a = p.fillAdj(id, true)
		}
		if a.kind == adjECMP {
			p.hash(m)
			mid := fs.Select(id, m.Hash)
			if a = &p.adjc6.ent[mid%adjSize]; a.key != mid+1 {
				a = p.fillAdj(mid, true)
			}
		}
		hl := p.hl6[i]
		if hl <= 1 || a.kind < adjReady || l3len(m) > int(a.mtu) {
			continue // forward6 drops it or answers it (hop limit 0 or 1: RFC 8200 §3)
		}
		p.outPort[i] = a.port
		if a.bits&(adjTxHash|adjHashTx) == adjHashTx {
			p.hash(m) // txq spreads foreign queues by flow hash
		} // adjTxHash: after the rewrite (below), the port's hash covers the new header
		if a.kind == adjReady {
			dropTag(m)
			rewrite6(m, a.eth0, a.eth1, hl-1)
			if a.bits&adjTxHash != 0 {
				txHash6(m, a) // the lagg's member choice, and txq's queue
			}
			p.stage[i] = stageReady
			continue
		}
		setHopLimit6(m, hl-1)
		if a.kind == adjConnected {
			p.stage[i] = stageNeighbour
			conn = true
		} else {
			p.stage[i] = stageNoNeighbour
		}
	}
	if conn {
		for i, m := range p.v6[:n] {
			if p.stage[i] != stageNeighbour {
				continue
			}
			port := p.outPort[i]
			mac, ok := p.neighbour6(ns, port, &p.dst6[i])
			if !ok {
				p.stage[i] = stageNoNeighbour
				continue
			}
			dropTag(m)
			eth0, eth1 := ethWords(mac, st.port(port).MAC)
			setEth(m, eth0, eth1)
			p.stage[i] = stageReady
		}
	}
	// p.v6[run:i] are ready packets for runPort (run < 0: none).
	run, runPort := -1, uint16(0)
	for i, m := range p.v6[:n] {
		if p.stage[i] == stageReady {
			port := p.outPort[i]
			if run >= 0 && port != runPort {
				p.transmitRun(runPort, p.v6[run:i])
				run = -1
			}
			if run < 0 {
				run, runPort = i, port
			}
			continue
		}
		if run >= 0 {
			p.transmitRun(runPort, p.v6[run:i])
			run = -1
		}
		if p.stage[i] == stageNoNeighbour {
			if nh := p.nextHop(m, fs, p.nh6[i]); nh.Kind == fib.KindGateway {
				p.dst6[i] = nh.Addr.As16()
			}
			p.miss(m, p.outPort[i], p.nh6[i], 0, &p.dst6[i])
		} else {
			p.forward6(m, p.nh6[i], st, fs, ns, true)
		}
	}
	if run >= 0 {
		p.transmitRun(runPort, p.v6[run:n])
	}
}

// forward4 takes a looked-up IPv4 packet to its next hop. decTTL is false
// for packets we generated.
func (p *pipeline) forward4(m *mbuf.Mbuf, nhid uint32, st *State, fs *fib.Snapshot, ns *lltable.Snapshot, decTTL bool) {
	nh := p.nextHop(m, fs, nhid)
	if p.terminal(m, nh.Kind, st, decTTL, false) {
		return
	}
	if decTTL && hopsLeft(m, false) <= 1 {
		p.icmpError(m, st, pkt.TTLExceeded, 0)
		p.drop(m, DropTTL)
		return
	}
	port := uint16(nh.Port)
	out := p.egress(m, port, st)
	if out == nil {
		return
	}
	tooBig := l3len(m) > out.MTU
	if tooBig && dfSet(m) {
		// Checked before the TTL is decremented, so the error quotes the
		// datagram as it arrived (as Linux does).
		p.icmpError(m, st, pkt.FragNeeded, out.MTU)
		p.drop(m, DropTooBig)
		return
	}
	if decTTL {
		pkt.DecTTL4(m) // cannot expire: hopsLeft was > 1
	}
	target := dst4(m)
	if nh.Kind == fib.KindGateway {
		target = addr4(nh.Addr)
	}
	if tooBig {
		p.fragment4(m, out, port, nhid, target, ns)
		return
	}
	p.resolve4(m, port, nhid, target, out, ns)
}

// hopsLeft is the TTL (IPv4) or hop limit (IPv6) of the parsed packet m.
func hopsLeft(m *mbuf.Mbuf, v6 bool) uint8 {
	d := m.Data()
	if v6 {
		return d[int(m.L3Off)+7]
	}
	return d[int(m.L3Off)+8]
}

// resolve4 sends m to IPv4 neighbour target on port: it looks up target's
// MAC (consecutive packets usually share it: the last one is remembered for
// the burst) and sends, or on a miss hands m to the control plane.
func (p *pipeline) resolve4(m *mbuf.Mbuf, port uint16, nhid, target uint32, out *PortState, ns *lltable.Snapshot) {
	var mac [6]byte
	if p.nb4snap == ns && p.nb4port == port && p.nb4ip == target {
		mac = p.nb4mac
	} else {
		var ok bool
		if mac, ok = p.neigh.Lookup4(ns, port, target); !ok {
			p.miss(m, port, nhid, target, nil)
			return
		}
		p.nb4snap, p.nb4port, p.nb4ip, p.nb4mac = ns, port, target, mac
	}
	p.send(m, port, out, mac)
}

// forward6 is forward4 for IPv6.
func (p *pipeline) forward6(m *mbuf.Mbuf, nhid uint32, st *State, fs *fib.Snapshot, ns *lltable.Snapshot, decTTL bool) {
	nh := p.nextHop(m, fs, nhid)
	if p.terminal(m, nh.Kind, st, decTTL, true) {
		return
	}
	if decTTL && hopsLeft(m, true) <= 1 {
		p.icmpError(m, st, pkt.HopLimitExceeded6, 0)
		p.drop(m, DropTTL)
		return
	}
	port := uint16(nh.Port)
	out := p.egress(m, port, st)
	if out == nil {
		return
	}
	if l3len(m) > out.MTU {
		// Before the decrement: the error quotes the packet as it arrived.
		p.icmpError(m, st, pkt.PacketTooBig6, out.MTU)
		p.drop(m, DropTooBig)
		return
	}
	if decTTL {
		pkt.DecHopLimit6(m) // cannot expire: hopsLeft was > 1
	}
	var target [16]byte
	if nh.Kind == fib.KindGateway {
		target = nh.Addr.As16()
	} else {
		target = dst6(m)
	}
	mac, ok := p.neighbour6(ns, port, &target)
	if !ok {
		p.miss(m, port, nhid, 0, &target)
		return
	}
	p.send(m, port, out, mac)
}

// neighbour6 looks up the MAC of IPv6 neighbour target on port through the
// worker's Reader; consecutive packets usually share a neighbour, so the
// last one found is remembered for the burst, as resolve4 does for IPv4.
func (p *pipeline) neighbour6(ns *lltable.Snapshot, port uint16, target *[16]byte) ([6]byte, bool) {
	if p.nb6snap == ns && p.nb6port == port && p.nb6ip == *target {
		return p.nb6mac, true
	}
	mac, ok := p.neigh.Lookup6(ns, port, target)
	if ok {
		p.nb6snap, p.nb6port, p.nb6ip, p.nb6mac = ns, port, *target, mac
	}
	return mac, ok
}

// nextHop returns the FIB next hop id for m; an ECMP group is reduced to
// the member m's flow hash picks.
func (p *pipeline) nextHop(m *mbuf.Mbuf, fs *fib.Snapshot, id uint32) *fib.NextHop {
	nh := fs.NextHop(id)
	if nh.Kind == fib.KindECMP {
		p.hash(m)
		nh = fs.NextHop(fs.Select(id, m.Hash))
	}
	return nh
}

// hash computes m's flow hash once, when something needs it: an ECMP group,
// or a transmit queue of a port this worker does not own (txq picks the
// queue by hash). Most packets need neither, and skip the cost.
func (p *pipeline) hash(m *mbuf.Mbuf) {
	if m.Flags&mbuf.FlagHashValid == 0 {
		m.Hash = pkt.FlowHash(m, p.hashSeed)
		m.Flags |= mbuf.FlagHashValid
	}
}

// terminal handles the next hops that end a packet's trip here (no route,
// blackhole, reject, one of our addresses) and reports whether it did; for
// gateway and connected next hops it does nothing and returns false.
func (p *pipeline) terminal(m *mbuf.Mbuf, kind fib.Kind, st *State, decTTL, v6 bool) bool {
	switch kind {
	case fib.KindConnected, fib.KindGateway:
		return false
	case fib.KindNone:
		p.icmpError(m, st, pick(v6, pkt.NoRoute6, pkt.NetUnreach), 0)
		p.drop(m, DropNoRoute)
	case fib.KindBlackhole:
		p.drop(m, DropBlackhole)
	case fib.KindReject:
		p.icmpError(m, st, pick(v6, pkt.RejectRoute6, pkt.HostUnreach), 0)
		p.drop(m, DropReject)
	case fib.KindLocal:
		switch {
		case !decTTL:
			p.drop(m, DropLocal) // something we generated for ourselves
		case v6:
			p.local6(m, st)
		default:
			p.local4(m, st)
		}
	default:
		p.drop(m, DropNoRoute)
	}
	return true
}

func pick(v6 bool, k6, k4 pkt.Kind) pkt.Kind {
	if v6 {
		return k6
	}
	return k4
}

// egress returns the state of the next hop's port, or nil (m dropped) when
// it is down or gone.
func (p *pipeline) egress(m *mbuf.Mbuf, port uint16, st *State) *PortState {
	out := st.port(port)
	if !out.Present || !out.Up {
		p.drop(m, DropPortDown)
		return nil
	}
	return out
}

// fragment4 sends an IPv4 packet without DF that is larger than the
// egress MTU as fragments (forward4 answered one with DF with an ICMP
// "fragmentation needed", RFC 1191). The datagram goes out whole or not at
// all: every fragment is resolved and sent right here, in order (they
// share m's next hop), and when m cannot be fragmented (no buffers, more
// fragments than p.frags holds, MTU too small) it is dropped and counted
// (drop_frag_failed). Fragments are counted in fragments_made, never as
// ICMP.
func (p *pipeline) fragment4(m *mbuf.Mbuf, out *PortState, port uint16, nhid, target uint32, ns *lltable.Snapshot) {
	n, res := pkt.Fragment4(m, out.MTU, p.cache, p.frags[:])
	if res != pkt.FragOK {
		p.drop(m, DropFragFailed)
		return
	}
	p.bc.v[Fragmented] += uint32(n)
	for i, f := range p.frags[:n] {
		p.frags[i] = nil
		p.resolve4(f, port, nhid, target, out, ns)
	}
}

// send rewrites the link-layer header and hands m to txq.
func (p *pipeline) send(m *mbuf.Mbuf, port uint16, out *PortState, mac [6]byte) {
	if p.rewrite(m, out, mac) {
		p.tx.TransmitOne(port, m)
	}
}

// rewrite sets m's link-layer header for the neighbour mac on port out and
// counts m forwarded; false means m was dropped.
func (p *pipeline) rewrite(m *mbuf.Mbuf, out *PortState, mac [6]byte) bool {
	dropTag(m)
	d := m.Data()
	if len(d) < 14 {
		p.drop(m, DropParse)
		return false
	}
	if out.TxQueues > 1 && p.id >= out.TxQueues {
		p.hash(m) // txq spreads foreign queues by flow hash
	}
	copy(d[0:6], mac[:])
	copy(d[6:12], out.MAC[:])
	p.bc.v[Forwarded]++
	return true
}

// dropTag drops m's 802.1Q tag, if it has one: egress ports are untagged.
// The 12 address bytes are rewritten after it, so only the front moves.
func dropTag(m *mbuf.Mbuf) {
	if m.Flags&mbuf.FlagVLAN == 0 {
		return
	}
	m.Adj(4)
	m.L3Off -= 4
	if m.L4Off != 0 { // 0: no transport header (non-first fragment)
		m.L4Off -= 4
	}
	m.Flags &^= mbuf.FlagVLAN
}

// local4 handles an IPv4 packet for one of our addresses.
func (p *pipeline) local4(m *mbuf.Mbuf, st *State) {
	if isEchoRequest4(m) && pkt.EchoReply4(m) {
		p.bc.v[LocalIn]++
		p.generated(m)
		return
	}
	if st.port(m.Port).LCP && p.punt != nil {
		p.puntLCP(m)
		return
	}
	p.drop(m, DropLocal)
}

// local6 handles an IPv6 packet for one of our addresses.
func (p *pipeline) local6(m *mbuf.Mbuf, st *State) {
	if isEchoRequest6(m) && pkt.EchoReply6(m) {
		p.bc.v[LocalIn]++
		p.generated(m)
		return
	}
	if st.port(m.Port).LCP && p.punt != nil {
		p.puntLCP(m)
		return
	}
	p.drop(m, DropLocal)
}

// generated queues a packet we built (or turned around) for routing at the
// end of the burst.
func (p *pipeline) generated(m *mbuf.Mbuf) {
	if p.nGen == len(p.gen) {
		p.drop(m, DropNoBuffer)
		return
	}
	p.gen[p.nGen] = m
	p.nGen++
}

// routeGenerated looks up and sends the packets we generated this burst.
// They keep the FIB of the packet they answer.
func (p *pipeline) routeGenerated(st *State, fs *fib.Snapshot, ns *lltable.Snapshot) {
	for i := 0; i < p.nGen; i++ {
		m := p.gen[i]
		p.gen[i] = nil
		if int(m.FIB) >= fs.NumFIBs() {
			// Answers a packet held across a change of net.fibs.
			p.drop(m, DropNoFIB)
			continue
		}
		p.bc.v[ICMPSent]++
		if m.Flags&mbuf.FlagIPv4 != 0 {
			nh := fs.Lookup4(uint32(m.FIB), dst4(m))
			p.forward4(m, nh, st, fs, ns, false)
		} else {
			dst := dst6(m)
			nh := fs.Lookup6(uint32(m.FIB), &dst)
			p.forward6(m, nh, st, fs, ns, false)
		}
	}
	p.nGen = 0
}

// icmpAllowed applies the per-worker token bucket (FreeBSD icmplim).
func (p *pipeline) icmpAllowed(st *State) bool {
	if st.ICMPRate <= 0 {
		return true
	}
	now := time.Now().UnixNano()
	if p.icmpRate != [2]int{st.ICMPRate, st.ICMPBurst} {
		p.icmp.Set(st.ICMPRate, max(st.ICMPBurst, 1), now)
		p.icmpRate = [2]int{st.ICMPRate, st.ICMPBurst}
	}
	if !p.icmp.Allow(now) {
		p.bc.v[ICMPRateLimited]++
		return false
	}
	return true
}

// icmpError queues an ICMP error of kind about m (which the caller then
// drops), from the address of the port m arrived on; mtu is the next-hop
// MTU for pkt.FragNeeded and pkt.PacketTooBig6. Nothing is sent when the
// port has no address of m's family, the RFCs forbid an error about m
// (pkt.CheckError) or the rate limit says no.
func (p *pipeline) icmpError(m *mbuf.Mbuf, st *State, kind pkt.Kind, mtu int) {
	in := st.port(m.Port)
	v4 := m.Flags&mbuf.FlagIPv4 != 0
	if (v4 && !in.HasAddr4) || (!v4 && !in.HasAddr6) || pkt.CheckError(m, kind) != pkt.Send {
		return
	}
	if !p.icmpAllowed(st) {
		return
	}
	var one [1]*mbuf.Mbuf
	if p.cache.Alloc(one[:]) == 0 {
		p.bc.v[DropNoBuffer]++
		return
	}
	out := one[0]
	var ok bool
	if v4 {
		ok = pkt.BuildError4(out, m, kind, uint32(mtu), in.Addr4)
	} else {
		ok = pkt.BuildError6(out, m, kind, uint32(mtu), &in.Addr6)
	}
	if !ok {
		p.cache.Free(one[:])
		return
	}
	out.FIB = m.FIB
	out.Port = m.Port
	p.generated(out)
}

// input hands an ARP or neighbour discovery frame to the control plane.
func (p *pipeline) input(m *mbuf.Mbuf) {
	if p.control {
		p.drop(m, DropPuntFull)
		return
	}
	if p.neigh.Input(m) {
		p.bc.v[Punted]++
		p.punted++
	} else {
		p.bc.v[DropPuntFull]++
	}
}

// miss hands a packet whose next hop has no neighbour entry to the control
// plane, which holds it while it resolves target (an IPv4 address in t4, or
// t6 for IPv6).
func (p *pipeline) miss(m *mbuf.Mbuf, port uint16, nhid uint32, t4 uint32, t6 *[16]byte) {
	m.OutPort = port
	m.NextHop = nhid
	if p.control {
		p.drop(m, DropNoNeighbour)
		return
	}
	var ok bool
	if t6 == nil {
		ok = p.neigh.Miss4(m, port, t4)
	} else {
		ok = p.neigh.Miss6(m, port, t6)
	}
	if ok {
		p.bc.v[Punted]++
		p.punted++
	} else {
		p.bc.v[DropPuntFull]++
	}
}

func (p *pipeline) parseDrop(m *mbuf.Mbuf, why pkt.Reason) {
	p.bc.parse[why]++
	p.drop(m, DropParse)
}

func (p *pipeline) drop(m *mbuf.Mbuf, why Reason) {
	p.bc.v[why]++
	if p.nDrops == len(p.drops) {
		p.cache.Free(p.drops[:p.nDrops])
		p.nDrops = 0
	}
	p.drops[p.nDrops] = m
	p.nDrops++
}

// finish ends a burst: transmit, free drops, publish counters, wake the
// control plane if something was punted.
func (p *pipeline) finish(st *State) {
	p.tx.Flush()
	if p.punt != nil {
		p.punt.Flush()
	}
	if p.nDrops > 0 {
		freeMixed(p.d.e, p.cache, p.drops[:p.nDrops])
		clear(p.drops[:p.nDrops])
		p.nDrops = 0
	}
	p.ctr.flush(&p.bc, st.Rules)
	p.nb4snap, p.nb6snap = nil, nil
	if p.punted > 0 {
		p.punted = 0
		p.d.e.Wake()
	}
}

// freeMixed frees mbufs that may come from several pools: the worker's own
// go to its cache, others back to their pool.
func freeMixed(e *Engine, c *mbuf.Cache, ms []*mbuf.Mbuf) {
	own := c.Pool().ID()
	start := 0
	for i, m := range ms {
		if m.PoolID() != own {
			if i > start {
				c.Free(ms[start:i])
			}
			e.pools[m.PoolID()].Free(ms[i : i+1])
			start = i + 1
		}
	}
	if start < len(ms) {
		c.Free(ms[start:])
	}
}

// idle runs every poll iteration, traffic or not.
func (p *pipeline) idle() { p.tx.Drain() }

// shutdown releases what the worker holds when it stops.
func (p *pipeline) shutdown() {
	p.tx.Close()
	p.cache.Flush()
}

// Helpers on parsed packets (metadata set by classify).

func dst4(m *mbuf.Mbuf) uint32 {
	d := m.Data()
	o := int(m.L3Off)
	return binary.BigEndian.Uint32(d[o+16 : o+20])
}

func dst6(m *mbuf.Mbuf) [16]byte {
	d := m.Data()
	o := int(m.L3Off)
	return [16]byte(d[o+24 : o+40])
}

// take6 copies the destination and the hop limit of m, a parsed IPv6
// packet (its fixed header lies within its data: pkt.Parse checked it), to
// *dst and *hl.
func take6(dst *[16]byte, hl *uint8, m *mbuf.Mbuf) {
	d := m.Data()
	ip := (*[pkt.IPv6Len]byte)(d[int(m.L3Off):])
	*dst = [16]byte(ip[24:40])
	*hl = ip[7]
}

// setHopLimit6 stores hl as the hop limit of m, a parsed IPv6 packet.
func setHopLimit6(m *mbuf.Mbuf, hl uint8) {
	d := m.Data()
	d[int(m.L3Off)+7] = hl
}

// rewrite6 is setEth and setHopLimit6 of m, an untagged parsed IPv6
// packet, with one look at its data.
func rewrite6(m *mbuf.Mbuf, eth0 uint64, eth1 uint32, hl uint8) {
	d := m.Data()
	d[int(m.L3Off)+7] = hl
	binary.LittleEndian.PutUint64(d[0:8], eth0)
	binary.LittleEndian.PutUint32(d[8:12], eth1)
}

// addr4 is an IPv4 address in host order, as dst4 returns it.
func addr4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// l3len is the IP packet's length (header and payload).
func l3len(m *mbuf.Mbuf) int { return m.Len() - int(m.L3Off) }

func dfSet(m *mbuf.Mbuf) bool {
	d := m.Data()
	return d[int(m.L3Off)+6]&0x40 != 0
}

// isOurMAC reports whether the frame's destination is the port's MAC. Other
// unicast, broadcast and multicast frames carrying IP are not routed (RFC
// 1812 5.3.4); ARP and ND reach the control plane before this check.
func isOurMAC(m *mbuf.Mbuf, in *PortState) bool {
	d := m.Data()
	return binary.BigEndian.Uint32(d[0:4]) == binary.BigEndian.Uint32(in.MAC[0:4]) &&
		binary.BigEndian.Uint16(d[4:6]) == binary.BigEndian.Uint16(in.MAC[4:6])
}

func isEchoRequest4(m *mbuf.Mbuf) bool {
	if m.L4Proto != 1 {
		return false
	}
	d := m.Data()
	o := int(m.L4Off)
	return o+8 <= len(d) && d[o] == 8 && d[o+1] == 0
}

func isEchoRequest6(m *mbuf.Mbuf) bool {
	if m.L4Proto != 58 {
		return false
	}
	d := m.Data()
	o := int(m.L4Off)
	return o+8 <= len(d) && d[o] == 128 && d[o+1] == 0
}

// fillKey4 extracts the rule-matching key of an IPv4 packet.
func fillKey4(k *flowKey, m *mbuf.Mbuf) {
	d := m.Data()
	o := int(m.L3Off)
	k.inPort = int32(m.Port)
	k.fib = int32(m.FIB)
	k.proto = m.L4Proto
	k.src4 = binary.BigEndian.Uint32(d[o+12 : o+16])
	k.dst4 = binary.BigEndian.Uint32(d[o+16 : o+20])
	fillPorts(k, m, d)
}

func fillKey6(k *flowKey, m *mbuf.Mbuf) {
	d := m.Data()
	o := int(m.L3Off)
	k.inPort = int32(m.Port)
	k.fib = int32(m.FIB)
	k.proto = m.L4Proto
	k.v6 = true
	k.src6[0] = binary.BigEndian.Uint64(d[o+8 : o+16])
	k.src6[1] = binary.BigEndian.Uint64(d[o+16 : o+24])
	k.dst6[0] = binary.BigEndian.Uint64(d[o+24 : o+32])
	k.dst6[1] = binary.BigEndian.Uint64(d[o+32 : o+40])
	fillPorts(k, m, d)
}

func fillPorts(k *flowKey, m *mbuf.Mbuf, d []byte) {
	switch m.L4Proto {
	case 6, 17, 132:
		o := int(m.L4Off)
		if o > 0 && o+4 <= len(d) {
			k.sport = binary.BigEndian.Uint16(d[o : o+2])
			k.dport = binary.BigEndian.Uint16(d[o+2 : o+4])
		}
	}
}

// countRx counts a burst on a stacked port's receive counters.
func countRx(c *pmd.QueueCounters, ms []*mbuf.Mbuf) {
	var n uint64
	for _, m := range ms {
		n += uint64(m.Len())
	}
	c.RxPackets.Add(uint64(len(ms)))
	c.RxBytes.Add(n)
}

// flushSubRx adds a run of frames to a VLAN sub-interface's counters.
func flushSubRx(s *inSub, worker int, n, bytes uint64) {
	if s == nil || n == 0 || s.rx == nil || worker >= len(s.rx) {
		return
	}
	s.rx[worker].RxPackets.Add(n)
	s.rx[worker].RxBytes.Add(bytes)
}
