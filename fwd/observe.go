package fwd

import (
	"net/netip"

	"github.com/fwdd/fwdd/capture"
	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/fwd/pkt"
	"github.com/fwdd/fwdd/lltable"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/trace"
)

// Observers are what the control plane armed to watch the dataplane: pcap
// captures (package capture) and a packet trace (package trace). The
// engine holds a pointer to them, nil when nothing is armed, which every
// worker loads once per received burst: that load and one predictable
// branch are all observation costs when nothing is armed. Observers are
// immutable once published (SetObservers).
type Observers struct {
	Captures []*capture.Session
	Trace    *trace.Session
}

// SetObservers publishes what the workers watch with (nil: nothing). After
// replacing or clearing observers, call Synchronize before freeing or
// reusing what the old ones held: workers may still be inside them.
// Control goroutine only.
func (e *Engine) SetObservers(o *Observers) {
	if o != nil && len(o.Captures) == 0 && o.Trace == nil {
		o = nil
	}
	e.dp.obs.Store(o)
	if o != nil && len(o.Captures) > 0 {
		e.dp.tx.SetTap(o)
	} else {
		e.dp.tx.SetTap(nil)
	}
}

// Observers returns what is armed (nil: nothing).
func (e *Engine) Observers() *Observers { return e.dp.obs.Load() }

// Tx is the transmit tap (txq.Tap): frames a worker is about to transmit
// on port, copied into the captures' rings.
func (o *Observers) Tx(worker int, port uint16, ms []*mbuf.Mbuf) {
	for _, c := range o.Captures {
		c.Tx(worker, port, ms)
	}
}

// receive runs a received burst through the pipeline: process, or observe
// when something is armed (one pointer load and one predictable branch per
// burst otherwise).
func (p *pipeline) receive(port uint16, queue int, ms []*mbuf.Mbuf) {
	if o := p.d.obs.Load(); o != nil {
		p.observe(o, port, queue, ms)
		return
	}
	p.process(port, ms)
}

// observe is process when something is armed: the burst is copied into
// the captures, and the packets the trace wants are run through the
// pipeline one at a time, recorded, between runs of the others (so the
// burst's order is kept).
func (p *pipeline) observe(o *Observers, port uint16, queue int, ms []*mbuf.Mbuf) {
	for _, c := range o.Captures {
		c.Rx(p.id, port, ms)
	}
	t := o.Trace
	if t == nil || t.Full() {
		p.process(port, ms)
		return
	}
	start := 0
	for i, m := range ms {
		if !t.Match(port, m.Data()) {
			continue
		}
		rec := t.Claim(p.id, m.Data())
		if rec == nil {
			break
		}
		if i > start {
			p.process(port, ms[start:i])
		}
		p.traceOne(rec, port, queue, ms[i:i+1])
		t.Publish(rec)
		start = i + 1
	}
	if start < len(ms) {
		p.process(port, ms[start:])
	}
}

// traceOne explains what the pipeline is about to do with one packet (a
// read-only walk of the same decisions, on the same snapshots), runs it
// through the pipeline alone, and records what really happened: the
// counters its burst of one moved (forwarded, punted, icmp_sent, the drop
// reason...).
func (p *pipeline) traceOne(rec *trace.Record, port uint16, queue int, one []*mbuf.Mbuf) {
	m := one[0]
	rec.Add(trace.Step{What: trace.Rx, Port: int(port), A: uint64(queue), B: uint64(p.id), C: uint64(m.Len())})
	var before [numReasons]uint64
	for r := range before {
		before[r] = p.ctr.v[r].Load()
	}
	p.explain(rec, port, m)
	p.process(port, one)
	for r := range before {
		if d := p.ctr.v[r].Load() - before[r]; d != 0 && Reason(r) != RxPackets {
			rec.Add(trace.Step{What: trace.Outcome, Name: Reason(r).String(), A: d})
		}
	}
}

// explain records the decisions process will take for m, without changing
// anything process depends on (it parses m, which process does again, and
// may compute m's flow hash, which process would compute the same).
func (p *pipeline) explain(rec *trace.Record, port uint16, m *mbuf.Mbuf) {
	v := p.d.view.Load()
	st := v.st
	fs := v.fibs.Load()
	ns := p.neigh.Load()
	in := st.port(port)
	m.Port = port
	cls, why := pkt.Parse(m)
	ps := trace.Step{What: trace.Parse, Name: cls.String()}
	if cls == pkt.ClassDrop {
		ps.Text = why.String()
	}
	rec.Add(ps)
	if m.Flags&mbuf.FlagVLAN != 0 && cls != pkt.ClassDrop {
		rec.Add(trace.Step{What: trace.Parse, Name: "vlan", Text: "tagged frame on an untagged port (drop_unknown_vlan)"})
		return
	}
	v6 := cls == pkt.ClassIPv6
	switch cls {
	case pkt.ClassIPv4, pkt.ClassIPv6:
	case pkt.ClassARP:
		rec.Add(trace.Step{What: trace.Punt, Name: "ARP: handed to the neighbour table (control plane)"})
		return
	case pkt.ClassND:
		rec.Add(trace.Step{What: trace.Punt, Name: "neighbour discovery: handed to the neighbour table (control plane)"})
		return
	default:
		if in.LCP && p.punt != nil {
			rec.Add(trace.Step{What: trace.Punt, Name: "not routed here; host-bound frames go to the port's kernel interface (lcp) (see the outcome)"})
		}
		return
	}
	if !isOurMAC(m, in) {
		if in.LCP && p.punt != nil {
			rec.Add(trace.Step{What: trace.Punt, Name: "not our MAC: if host-bound (multicast, broadcast), to the port's kernel interface (lcp) (see the outcome)"})
		}
		rec.Add(trace.Step{What: trace.NotOurMAC})
		return
	}
	if v6 && in.LCP && p.punt != nil && hostBound6(m, true) {
		rec.Add(trace.Step{What: trace.Punt, Name: "host-bound IPv6 (link-local, multicast or neighbour discovery): to the port's kernel interface (lcp)"})
		return
	}
	fibID := in.FIB
	rec.Add(trace.Step{What: trace.FIBPort, Port: int(port), A: uint64(fibID)})
	if rs := st.Rules; rs.Len() > 0 {
		m.FIB = fibID
		var k flowKey
		if v6 {
			fillKey6(&k, m)
		} else {
			fillKey4(&k, m)
		}
		hits := &p.traceHits
		f, drop := rs.match(&k, hits)
		for i := range rs.rules {
			r := &rs.rules[i]
			if hits[r.slot] == 0 {
				continue
			}
			hits[r.slot] = 0
			after := uint64(fibID)
			if r.action == ActSetFIB {
				after = uint64(r.setFIB)
			}
			rec.Add(trace.Step{What: trace.Rule, A: uint64(rs.src[i].ID), Name: r.action.String(), B: after})
			fibID = uint16(after)
		}
		if drop {
			return
		}
		fibID = uint16(f)
	}
	if int(fibID) >= fs.NumFIBs() {
		rec.Add(trace.Step{What: trace.Lookup, A: uint64(fibID), Name: "no such fib"})
		return
	}
	var dst netip.Addr
	var nhid uint32
	if v6 {
		a := dst6(m)
		dst = netip.AddrFrom16(a)
		nhid = fs.Lookup6(uint32(fibID), &a)
	} else {
		dst = netip.AddrFrom4([4]byte(m.Data()[int(m.L3Off)+16 : int(m.L3Off)+20]))
		nhid = fs.Lookup4(uint32(fibID), dst4(m))
	}
	nh := fs.NextHop(nhid)
	rec.Add(trace.Step{What: trace.Lookup, A: uint64(fibID), Addr: dst, B: uint64(nhid), Name: nh.Kind.String()})
	if nh.Kind == fib.KindECMP {
		p.hash(m)
		mid := fs.Select(nhid, m.Hash)
		idx := 0
		for i, x := range nh.Members {
			if x == mid {
				idx = i
			}
		}
		rec.Add(trace.Step{What: trace.ECMP, A: uint64(idx), B: uint64(len(nh.Members)), C: uint64(m.Hash)})
		nh = fs.NextHop(mid)
	}
	src := srcAddr(m, v6)
	switch nh.Kind {
	case fib.KindNone:
		p.explainICMP(rec, pick(v6, pkt.NoRoute6, pkt.NetUnreach), src, fibID, fs)
		return
	case fib.KindBlackhole:
		return
	case fib.KindReject:
		p.explainICMP(rec, pick(v6, pkt.RejectRoute6, pkt.HostUnreach), src, fibID, fs)
		return
	case fib.KindLocal:
		if (v6 && isEchoRequest6(m)) || (!v6 && isEchoRequest4(m)) {
			rec.Add(trace.Step{What: trace.Local, Name: "for us: echo request answered with an echo reply"})
			p.explainGen(rec, src, fibID, fs, v6)
		} else if in.LCP && p.punt != nil {
			rec.Add(trace.Step{What: trace.Local, Name: "for us: handed to the port's kernel interface (lcp)"})
		} else {
			rec.Add(trace.Step{What: trace.Local, Name: "for us: not handled by the dataplane (only echo requests are; no lcp interface)"})
		}
		return
	case fib.KindConnected, fib.KindGateway:
	default:
		return
	}
	hop := hopsLeft(m, v6)
	if hop <= 1 {
		rec.Add(trace.Step{What: trace.TTL, A: uint64(hop), B: 1})
		p.explainICMP(rec, pick(v6, pkt.HopLimitExceeded6, pkt.TTLExceeded), src, fibID, fs)
		return
	}
	rec.Add(trace.Step{What: trace.TTL, A: uint64(hop)})
	out := st.port(uint16(nh.Port))
	if nh.Kind == fib.KindGateway {
		rec.Add(trace.Step{What: trace.NextHop, Name: "gateway", Addr: nh.Addr, Port: int(nh.Port)})
	} else {
		rec.Add(trace.Step{What: trace.NextHop, Name: "connected", Port: int(nh.Port)})
	}
	up := out.Present && out.Up
	rec.Add(trace.Step{What: trace.Egress, Port: int(nh.Port), A: uint64(out.MTU), B: b2u(up)})
	if !up {
		return
	}
	if l := l3len(m); l > out.MTU {
		switch {
		case v6:
			rec.Add(trace.Step{What: trace.MTU, A: uint64(l), B: uint64(out.MTU), Name: "too big"})
			p.explainICMP(rec, pkt.PacketTooBig6, src, fibID, fs)
			return
		case dfSet(m):
			rec.Add(trace.Step{What: trace.MTU, A: uint64(l), B: uint64(out.MTU), Name: "too big, DF set"})
			p.explainICMP(rec, pkt.FragNeeded, src, fibID, fs)
			return
		default:
			rec.Add(trace.Step{What: trace.MTU, A: uint64(l), B: uint64(out.MTU), Name: "fragmented"})
		}
	}
	target := dst
	if nh.Kind == fib.KindGateway {
		target = nh.Addr
	}
	if !p.explainNeigh(rec, ns, uint16(nh.Port), target, v6) {
		return // held by the control plane, which sends it once resolved
	}
	q := 0
	if out.TxQueues > 1 {
		if p.id < out.TxQueues {
			q = p.id
		} else {
			p.hash(m)
			q = int(m.Hash % uint32(out.TxQueues))
		}
	}
	rec.Add(trace.Step{What: trace.TxQueue, Port: int(nh.Port), A: uint64(q)})
}

// explainNeigh records the neighbour lookup for target on port and
// reports whether it found the MAC.
func (p *pipeline) explainNeigh(rec *trace.Record, ns *lltable.Snapshot, port uint16, target netip.Addr, v6 bool) bool {
	var mac [6]byte
	var ok bool
	if v6 {
		a := target.As16()
		mac, ok = ns.Lookup6(port, &a)
	} else {
		mac, ok = ns.Lookup4(port, addr4(target))
	}
	s := trace.Step{What: trace.Neigh, Port: int(port), Addr: target, Name: "miss"}
	if ok {
		s.Name, s.MAC = "found", mac
	}
	rec.Add(s)
	return ok
}

// explainICMP records an ICMP error about to be generated and its route.
func (p *pipeline) explainICMP(rec *trace.Record, k pkt.Kind, to netip.Addr, fibID uint16, fs *fib.Snapshot) {
	rec.Add(trace.Step{What: trace.ICMP, Name: k.String(), Addr: to})
	p.explainGen(rec, to, fibID, fs, to.Is6())
}

// explainGen records the route of a packet we generate to dst (in the FIB
// of the packet it answers).
func (p *pipeline) explainGen(rec *trace.Record, dst netip.Addr, fibID uint16, fs *fib.Snapshot, v6 bool) {
	var id uint32
	if v6 {
		a := dst.As16()
		id = fs.Lookup6(uint32(fibID), &a)
	} else {
		id = fs.Lookup4(uint32(fibID), addr4(dst))
	}
	nh := fs.NextHop(id)
	rec.Add(trace.Step{What: trace.GenRoute, Addr: dst, B: uint64(id), Name: nh.Kind.String(), Port: int(nh.Port)})
}

func srcAddr(m *mbuf.Mbuf, v6 bool) netip.Addr {
	d := m.Data()
	o := int(m.L3Off)
	if v6 {
		return netip.AddrFrom16([16]byte(d[o+8 : o+24]))
	}
	return netip.AddrFrom4([4]byte(d[o+12 : o+16]))
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
