package fwd

import (
	"net/netip"
	"testing"

	"github.com/fwdd/fwdd/fwd/pkt"
	"github.com/fwdd/fwdd/mbuf"
)

// The neighbour table hands the control path every packet a FAILED entry
// held (net.neigh.hold up to 256), more than one burst of generated
// answers: each is answered with ICMP unreachable, none refused for want
// of room (it was drop_no_buffer beyond 32).
func TestControlUnreachableManyHeld(t *testing.T) {
	h := newHarness(t, true)
	const n = 90
	ms := make([]*mbuf.Mbuf, n)
	if h.e.ctl.pl.cache.Alloc(ms) != n {
		t.Fatal("pool exhausted")
	}
	for i, m := range ms {
		f := frame4(t, pktOpt{dst: netip.MustParseAddr("198.18.2.77"), sport: uint16(1000 + i)})
		if i%2 == 1 {
			f = frame6(t, pktOpt{dst: netip.MustParseAddr("2001:2:0:2::77"), sport: uint16(1000 + i)})
		}
		copy(m.Append(len(f)), f)
		if cls, _ := pkt.Parse(m); cls != pkt.ClassIPv4 && cls != pkt.ClassIPv6 {
			t.Fatalf("test frame %d parses as %v", i, cls)
		}
		m.Port, m.FIB = 0, 0
	}
	h.p0.out = nil
	h.e.ctl.unreachable(ms)
	h.w.pl.idle()
	c := h.e.Counters()
	if c["drop_no_buffer"] != 0 || c["icmp_sent"] != n || c["drop_no_neighbour"] != n {
		t.Errorf("drop_no_buffer %d (want 0), icmp_sent %d drop_no_neighbour %d (want %d)", c["drop_no_buffer"], c["icmp_sent"], c["drop_no_neighbour"], n)
	}
	if len(h.p0.out) != n {
		t.Errorf("%d ICMP errors sent back on p0, want %d", len(h.p0.out), n)
	}
	if k := h.inUse(); k != 0 {
		t.Errorf("%d mbufs leaked", k)
	}
}
