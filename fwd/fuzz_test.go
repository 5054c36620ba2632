package fwd

import (
	"net/netip"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
)

// FuzzPipeline: arbitrary frames through the whole pipeline never panic and
// never leak an mbuf.
func FuzzPipeline(f *testing.F) {
	h := newHarness(f, true)
	for _, fr := range [][]byte{
		frame4(f, pktOpt{dst: remote4}),
		frame4(f, pktOpt{dst: remote4, ttl: 1}),
		frame4(f, pktOpt{dst: netip.MustParseAddr("198.18.9.9")}),
		frame4(f, pktOpt{dst: remote4, size: 1450, df: true}),
		frame4(f, pktOpt{dst: remote4, size: 1450}),
		frame4(f, pktOpt{dst: addrP0.Addr(), icmpEcho: true}),
		frame6(f, pktOpt{dst: remote6}),
		frame6(f, pktOpt{dst: remote6, ttl: 1}),
		frame6(f, pktOpt{dst: addrP06.Addr(), icmpEcho: true}),
		{},
	} {
		f.Add(fr, uint8(0))
	}
	h.p0.discard, h.p1.discard = true, true
	f.Fuzz(func(t *testing.T, frame []byte, port uint8) {
		h.t = t
		if len(frame) > 1792 {
			frame = frame[:1792]
		}
		ms := make([]*mbuf.Mbuf, 1)
		if h.w.cache.Alloc(ms) != 1 {
			t.Fatal("pool exhausted: an earlier input leaked")
		}
		copy(ms[0].Append(len(frame)), frame)
		h.w.pl.process(uint16(port%2), ms)
		h.w.pl.idle()
		// Packets handed to the neighbour table (misses, ARP, NDP) are
		// owned by the control plane: let it run, as the control
		// goroutine would.
		h.e.Neigh().Poll()
		h.w.pl.idle()
		if n := h.inUse(); n > h.held() {
			t.Fatalf("%d mbufs in use, %d held by the neighbour table: leak", n, h.held())
		}
	})
}

// held is the number of packets waiting in the neighbour table's hold
// queues.
func (h *harness) held() int {
	_, n := h.e.Neigh().Len()
	return n
}
