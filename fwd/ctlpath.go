package fwd

import (
	"github.com/fwdd/fwdd/fwd/pkt"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/trace"
)

// ctlPath is the control goroutine's own small pipeline: it transmits the
// frames the neighbour table builds (requests, answers, released held
// packets) and answers packets whose neighbour failed with ICMP. It is used
// only from the control goroutine, through the neighbour table's Stack
// callbacks.
type ctlPath struct {
	e  *Engine
	pl pipeline
}

// sendFrames transmits complete frames on port through txq.
func (c *ctlPath) sendFrames(port uint16, ms []*mbuf.Mbuf) {
	if o := c.e.dp.obs.Load(); o != nil && o.Trace != nil {
		for _, m := range ms {
			c.trace(o.Trace, m, port, "sent by the control plane: a packet it held until its neighbour resolved, or ARP/ND it built")
		}
	}
	for _, m := range ms {
		c.pl.tx.TransmitOne(port, m)
	}
	c.pl.tx.Flush()
}

// unreachable answers each packet with ICMP host / address unreachable
// (in the packet's FIB) and frees it. An entry's hold queue can hold more
// packets than one burst generates (net.neigh.hold up to 256): they are
// answered a burst at a time, each burst's answers sent before the next
// is made, so none is refused for want of room (drop_no_buffer).
func (c *ctlPath) unreachable(ms []*mbuf.Mbuf) {
	p := &c.pl
	v := p.d.view.Load()
	st := v.st
	o := c.e.dp.obs.Load()
	for len(ms) > 0 {
		n := min(len(ms), len(p.gen)-p.nGen) // each packet makes at most one answer
		for _, m := range ms[:n] {
			if o != nil && o.Trace != nil {
				c.trace(o.Trace, m, m.OutPort, "its neighbour did not answer (FAILED): the control plane answers ICMP unreachable and drops it")
			}
			if m.Flags&mbuf.FlagIPv4 != 0 {
				p.icmpError(m, st, pkt.HostUnreach, 0)
			} else {
				p.icmpError(m, st, pkt.AddrUnreach6, 0)
			}
			p.drop(m, DropNoNeighbour)
		}
		ms = ms[n:]
		fs := v.fibs.Load()
		ns := p.neigh.Load()
		p.routeGenerated(st, fs, ns)
		p.finish(st)
	}
}

// trace records a packet the control plane handles, if the armed trace
// wants it (matched on the port it arrived on).
func (c *ctlPath) trace(t *trace.Session, m *mbuf.Mbuf, port uint16, what string) {
	if !t.Match(m.Port, m.Data()) {
		return
	}
	if rec := t.Claim(c.pl.id, m.Data()); rec != nil {
		rec.Add(trace.Step{What: trace.Control, Name: what, Port: int(port)})
		t.Publish(rec)
	}
}
