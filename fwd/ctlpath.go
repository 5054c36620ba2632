package fwd

import (
	"github.com/fwdd/fwdd/fwd/pkt"
	"github.com/fwdd/fwdd/mbuf"
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
	for _, m := range ms {
		c.pl.tx.TransmitOne(port, m)
	}
	c.pl.tx.Flush()
}

// unreachable answers each packet with ICMP host / address unreachable
// (in the packet's FIB) and frees it.
func (c *ctlPath) unreachable(ms []*mbuf.Mbuf) {
	p := &c.pl
	v := p.d.view.Load()
	st := v.st
	for _, m := range ms {
		if m.Flags&mbuf.FlagIPv4 != 0 {
			p.icmpError(m, st, pkt.HostUnreach, 0)
		} else {
			p.icmpError(m, st, pkt.AddrUnreach6, 0)
		}
		p.drop(m, DropNoNeighbour)
	}
	fs := v.fibs.Load()
	ns := p.neigh.Load()
	p.routeGenerated(st, fs, ns)
	p.finish(st)
}
