package fwd

import (
	"net"
	"net/netip"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/gopacket/gopacket/layers"
)

// withLCP republishes the harness's state with lcp on for port 0.
func (h *harness) withLCP(on bool) {
	st := *h.st
	st.Ports = append([]PortState(nil), h.st.Ports...)
	st.Ports[0].LCP = on
	h.e.PublishState(&st)
}

func arpRequest(t *testing.T, target netip.Addr) []byte {
	eth := &layers.Ethernet{SrcMAC: macHost, DstMAC: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: macHost, SourceProtAddress: host4.AsSlice(),
		DstHwAddress: make([]byte, 6), DstProtAddress: target.AsSlice()}
	return serialize(t, eth, arp)
}

// TestPuntClassification: with lcp on, exactly the host-bound traffic goes
// to the kernel interface; transit and echo never do; without lcp nothing
// does.
func TestPuntClassification(t *testing.T) {
	mc := func(last byte) net.HardwareAddr { return net.HardwareAddr{0x01, 0, 0x5e, 0, 0, last} }
	mc6 := func(last byte) net.HardwareAddr { return net.HardwareAddr{0x33, 0x33, 0, 0, 0, last} }
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name   string
		frame  func(t *testing.T) []byte
		punt   bool // with lcp on
		out    int  // frames transmitted (both ports)
		copyOf bool // ARP/NDP: a copy is punted, the original goes to the neighbour table
	}{
		{"udp to our address", func(t *testing.T) []byte { return frame4(t, pktOpt{dst: addrP0.Addr()}) }, true, 0, false},
		{"udp to our IPv6 address", func(t *testing.T) []byte { return frame6(t, pktOpt{dst: addrP06.Addr()}) }, true, 0, false},
		{"echo to our address (answered)", func(t *testing.T) []byte { return frame4(t, pktOpt{dst: addrP0.Addr(), icmpEcho: true}) }, false, 1, false},
		{"echo6 to our address (answered)", func(t *testing.T) []byte { return frame6(t, pktOpt{dst: addrP06.Addr(), icmpEcho: true}) }, false, 1, false},
		{"OSPF AllSPFRouters 224.0.0.5", func(t *testing.T) []byte { return frame4(t, pktOpt{dst: a("224.0.0.5"), dstMAC: mc(5)}) }, true, 0, false},
		{"VRRP 224.0.0.18", func(t *testing.T) []byte { return frame4(t, pktOpt{dst: a("224.0.0.18"), dstMAC: mc(18)}) }, true, 0, false},
		{"multicast 239.1.1.1 (not link-local)", func(t *testing.T) []byte { return frame4(t, pktOpt{dst: a("239.1.1.1"), dstMAC: mc(1)}) }, false, 0, false},
		{"broadcast 255.255.255.255", func(t *testing.T) []byte { return frame4(t, pktOpt{dst: a("255.255.255.255"), dstMAC: bcast}) }, true, 0, false},
		{"subnet broadcast", func(t *testing.T) []byte { return frame4(t, pktOpt{dst: a("198.18.1.255"), dstMAC: bcast}) }, true, 0, false},
		{"another host's MAC", func(t *testing.T) []byte { return frame4(t, pktOpt{dst: addrP0.Addr(), dstMAC: macGW}) }, false, 0, false},
		{"OSPFv3 ff02::5", func(t *testing.T) []byte { return frame6(t, pktOpt{dst: a("ff02::5"), dstMAC: mc6(5)}) }, true, 0, false},
		{"all-nodes ff02::1", func(t *testing.T) []byte { return frame6(t, pktOpt{dst: a("ff02::1"), dstMAC: mc6(1)}) }, true, 0, false},
		{"site-local multicast ff05::2", func(t *testing.T) []byte { return frame6(t, pktOpt{dst: a("ff05::2"), dstMAC: mc6(2)}) }, false, 0, false},
		{"link-local unicast fe80::10", func(t *testing.T) []byte { return frame6(t, pktOpt{dst: a("fe80::10"), src: a("fe80::20")}) }, true, 0, false},
		{"link-local to another MAC", func(t *testing.T) []byte {
			return frame6(t, pktOpt{dst: a("fe80::10"), src: a("fe80::20"), dstMAC: macGW})
		}, false, 0, false},
		{"transit", func(t *testing.T) []byte { return frame4(t, pktOpt{dst: a("198.19.0.1")}) }, false, 1, false},
		{"transit6", func(t *testing.T) []byte { return frame6(t, pktOpt{dst: a("2001:2:1::1")}) }, false, 1, false},
		{"ARP request for us", func(t *testing.T) []byte { return arpRequest(t, addrP0.Addr()) }, true, 0, true}, // answered later by the control goroutine
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, on := range []bool{false, true} {
				h := newHarness(t, true)
				h.withLCP(on)
				before := h.e.Counters()["punted_lcp"]
				out0, out1 := h.inject(0, tc.frame(t))
				got := h.e.Counters()["punted_lcp"] - before
				want := uint64(0)
				if on && tc.punt {
					want = 1
				}
				if got != want {
					t.Errorf("lcp %v: punted_lcp %d, want %d (counters %v)", on, got, want, h.e.Counters())
				}
				if n := len(out0) + len(out1); n != tc.out {
					t.Errorf("lcp %v: %d frames out, want %d", on, n, tc.out)
				}
				if tc.copyOf && h.e.Counters()["punted"] == 0 {
					t.Errorf("lcp %v: the neighbour table did not get the original", on)
				}
				if on && want == 1 {
					if p := h.e.dp.lcp.Producer(0); p.Pending() != 0 {
						t.Errorf("%d frames left in the producer after the burst", p.Pending())
					}
				}
			}
		})
	}
}

// TestPuntZeroAllocs: punting allocates nothing, also when the ring is
// full and frames are dropped (and counted as punt_drop).
func TestPuntZeroAllocs(t *testing.T) {
	h := newHarness(t, false)
	h.withLCP(true)
	frames := [][]byte{
		frame4(t, pktOpt{dst: addrP0.Addr()}),
		frame4(t, pktOpt{dst: netip.MustParseAddr("224.0.0.5"), dstMAC: net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 5}}),
		frame6(t, pktOpt{dst: netip.MustParseAddr("ff02::5"), dstMAC: net.HardwareAddr{0x33, 0x33, 0, 0, 0, 5}}),
		arpRequest(t, addrP0.Addr()),
		frame4(t, pktOpt{dst: netip.MustParseAddr("198.19.0.1")}),
	}
	ms := make([]*mbuf.Mbuf, Burst)
	run := func() {
		n := h.w.cache.Alloc(ms)
		for i, m := range ms[:n] {
			f := frames[i%len(frames)]
			copy(m.Append(len(f)), f)
		}
		h.w.pl.process(0, ms[:n])
		h.w.pl.idle()
		h.p0.out, h.p1.out = h.p0.out[:0], h.p1.out[:0]
	}
	run()
	h.p0.discard, h.p1.discard = true, true
	if a := allocsPerRun(200, run); a != 0 {
		t.Fatalf("%v allocations per burst with punting, want 0", a)
	}
	// 201 bursts of ~26 punted frames overflow the 1024-frame ring: the
	// rest were dropped and counted, none leaked.
	if d := h.e.LCP().Stats(0).PuntDrop; d == 0 {
		t.Fatalf("no punt_drop after overflowing the ring")
	}
}
