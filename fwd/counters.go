package fwd

import (
	"sync/atomic"

	"github.com/fwdd/fwdd/fwd/pkt"
)

// Reason is why the pipeline dropped, punted or handled a packet: one
// counter per reason per worker.
type Reason uint8

const (
	RxPackets Reason = iota // packets received
	Forwarded               // handed to txq for another port
	LocalIn                 // delivered to us (echo answered, control traffic)
	Punted                  // handed to the control plane (ARP, NDP, neighbour misses)
	PuntedLCP               // handed to a port's kernel interface (lcp; ARP and NDP copies included)
	ICMPSent                // ICMP errors and echo replies generated

	// Drops, by reason (RFC 1812 5.2.2 and friends).
	DropParse         // refused by the parser: see the parse_* counters for why
	DropTTL           // TTL/hop limit expired (an ICMP error may have been sent)
	DropNoRoute       // no route (ICMP net unreachable may have been sent)
	DropBlackhole     // blackhole route
	DropReject        // reject route (ICMP unreachable may have been sent)
	DropRule          // classifier rule drop
	DropTooBig        // larger than the egress MTU (ICMP may have been sent)
	DropFragFailed    // could not fragment (no buffers, MTU too small)
	DropPuntFull      // the ring to the control plane was full
	DropNoBuffer      // mbuf pool exhausted while building a packet
	DropLocal         // for us but not handled (no local stack yet)
	DropPortDown      // egress port down or gone
	DropHopByHop      // IPv6 hop-by-hop options (not handled on the fast path)
	DropBroadcast     // link-layer broadcast/multicast or another host's MAC
	DropNoNeighbour   // a neighbour entry failed, or the control path had none
	DropUnknownVLAN   // 802.1Q tag whose VLAN id has no sub-interface on the port
	DropNoFIB         // the packet's FIB is not in the FIB set (a held packet outliving net.fibs)
	DropNotCollecting // received on a lagg member that is not collecting (LACP)

	// Not drops.
	Fragmented      // IPv4 fragments made
	ICMPRateLimited // ICMP errors suppressed by the rate limit

	numReasons
)

var reasonNames = [numReasons]string{
	RxPackets: "rx", Forwarded: "forwarded", LocalIn: "local_in", Punted: "punted", PuntedLCP: "punted_lcp", ICMPSent: "icmp_sent",
	DropParse: "drop_parse", DropTTL: "drop_ttl_expired", DropNoRoute: "drop_no_route", DropBlackhole: "drop_blackhole",
	DropReject: "drop_reject", DropRule: "drop_rule", DropTooBig: "drop_too_big", DropFragFailed: "drop_frag_failed",
	DropPuntFull: "drop_control_ring_full", DropNoBuffer: "drop_no_buffer", DropLocal: "drop_local_unhandled",
	DropPortDown: "drop_port_down", DropHopByHop: "drop_hop_by_hop", DropBroadcast: "drop_not_our_mac",
	DropNoNeighbour: "drop_no_neighbour", DropUnknownVLAN: "drop_unknown_vlan", DropNoFIB: "drop_fib_missing",
	DropNotCollecting: "drop_lagg_not_collecting",
	Fragmented:        "fragments_made", ICMPRateLimited: "icmp_rate_limited",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// IsDrop reports whether the reason counts dropped packets.
func (r Reason) IsDrop() bool { return r >= DropParse && r < Fragmented }

// Reasons returns every reason, in order.
func Reasons() []Reason {
	out := make([]Reason, numReasons)
	for i := range out {
		out[i] = Reason(i)
	}
	return out
}

// counters are a worker's live counters: written only by the worker, once
// per burst, read by anyone. The worker accumulates a burst in plain local
// fields (burstCounts) and adds them here at the end of the burst.
type counters struct {
	v     [numReasons]atomic.Uint64
	parse [pkt.NumReasons]atomic.Uint64
	hits  [MaxRules]atomic.Uint64
	// Per FIB: lookups of received packets, and those that found no
	// route.
	fibLookups [MaxFIBs]atomic.Uint64
	fibMisses  [MaxFIBs]atomic.Uint64
	_          [64]byte
}

// burstCounts are a worker's per-burst counts, plain fields, flushed into
// counters once per burst.
type burstCounts struct {
	v     [numReasons]uint32
	parse [pkt.NumReasons]uint32
	hits  [MaxRules]uint32
	// Per-FIB counts of this burst, and the FIBs they touched (at most
	// one per packet).
	fibN, fibMiss [MaxFIBs]uint32
	fibs          [Burst]uint16
	nfibs         int
}

// countFIB counts n lookups in FIB f.
func (b *burstCounts) countFIB(f uint16, n int) {
	if int(f) >= MaxFIBs {
		return
	}
	if b.fibN[f] == 0 && b.fibMiss[f] == 0 && b.nfibs < len(b.fibs) {
		b.fibs[b.nfibs] = f
		b.nfibs++
	}
	b.fibN[f] += uint32(n)
}

// countMiss counts a lookup in FIB f that found no route (after countFIB).
func (b *burstCounts) countMiss(f uint16) {
	if int(f) < MaxFIBs {
		b.fibMiss[f]++
	}
}

// flush adds the burst's counts to the live counters. rules is the rule set
// the burst was classified with: only its slots can have hits.
func (c *counters) flush(b *burstCounts, rules *Rules) {
	// Parse drops are counted under DropParse and by parser reason
	// (parseDrop): without the first there are none of the second.
	parseDrops := b.v[DropParse] != 0
	for i := range b.v {
		if n := b.v[i]; n != 0 {
			c.v[i].Store(c.v[i].Load() + uint64(n))
			b.v[i] = 0
		}
	}
	if parseDrops {
		for i := range b.parse {
			if n := b.parse[i]; n != 0 {
				c.parse[i].Store(c.parse[i].Load() + uint64(n))
				b.parse[i] = 0
			}
		}
	}
	for _, f := range b.fibs[:b.nfibs] {
		if n := b.fibN[f]; n != 0 {
			c.fibLookups[f].Store(c.fibLookups[f].Load() + uint64(n))
			b.fibN[f] = 0
		}
		if n := b.fibMiss[f]; n != 0 {
			c.fibMisses[f].Store(c.fibMisses[f].Load() + uint64(n))
			b.fibMiss[f] = 0
		}
	}
	b.nfibs = 0
	if rules == nil {
		return
	}
	for i := range rules.rules {
		slot := rules.rules[i].slot
		if n := b.hits[slot]; n != 0 {
			c.hits[slot].Store(c.hits[slot].Load() + uint64(n))
			b.hits[slot] = 0
		}
	}
}

// Counters is a snapshot of an engine's counters summed over its workers.
type Counters map[string]uint64

// Counters sums the counters of the workers and of the control path by
// reason name. Parse drops also appear by parser reason ("parse_bad_checksum").
func (e *Engine) Counters() Counters {
	out := Counters{}
	for _, c := range e.CountersByWorker() {
		for k, v := range c {
			out[k] += v
		}
	}
	return out
}

// CountersByWorker returns each worker's counters by reason; the last
// entry is the control path's.
func (e *Engine) CountersByWorker() []Counters {
	var out []Counters
	add := func(ctr *counters) {
		c := Counters{}
		for r := Reason(0); r < numReasons; r++ {
			c[r.String()] = ctr.v[r].Load()
		}
		for r := pkt.Reason(1); r < pkt.NumReasons; r++ {
			if v := ctr.parse[r].Load(); v != 0 {
				c["parse_"+r.String()] = v
			}
		}
		out = append(out, c)
	}
	for _, w := range e.workers {
		add(&w.pl.ctr)
	}
	add(&e.ctl.pl.ctr)
	return out
}

// MaxFIBs is the number of FIBs whose lookups the workers count (net.fibs
// goes up to 4096).
const MaxFIBs = 4096

// FIBLookups returns the lookups of received packets in FIB f and those
// that found no route, summed over workers.
func (e *Engine) FIBLookups(f int) (lookups, misses uint64) {
	if f < 0 || f >= MaxFIBs {
		return 0, 0
	}
	for _, w := range e.workers {
		lookups += w.pl.ctr.fibLookups[f].Load()
		misses += w.pl.ctr.fibMisses[f].Load()
	}
	return lookups, misses
}

// RuleHits returns the hits of counter slot, summed over workers.
func (e *Engine) RuleHits(slot uint16) uint64 {
	var n uint64
	for _, w := range e.workers {
		n += w.pl.ctr.hits[slot].Load()
	}
	return n
}
