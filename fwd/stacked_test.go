package fwd

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/pmd/lagg"
	"github.com/fwdd/fwdd/pmd/vlan"
	"github.com/gopacket/gopacket/layers"
)

var (
	addrV100 = netip.MustParsePrefix("198.18.100.1/24")
	hostV100 = netip.MustParseAddr("198.18.100.2")
	macV100  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x64}
)

// withVLAN adds p0.100 (port 2: vlan 100 on p0, 198.18.100.1/24, static
// neighbour 198.18.100.2) to the harness.
func (h *harness) withVLAN() *vlan.Port {
	t := h.t
	ports := map[string]uint16{"p0": 0, "p1": 1}
	byName := []pmd.Port{h.p0, h.p1}
	v, err := vlan.Open(pmd.Config{Name: "p0.100", ID: 2, Driver: "vlan", Args: pmd.Args{"parent": "p0", "vid": "100"},
		Pools: h.e.Pools(), Shared: h.e.Shared(),
		Lookup: func(n string) (pmd.Port, uint16, bool) {
			id, ok := ports[n]
			if !ok {
				return nil, 0, false
			}
			return byName[id], id, true
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.e.AttachPort(2, v); err != nil {
		t.Fatal(err)
	}
	c2, err := h.fibs.AddNextHop(fib.NextHop{Kind: fib.KindConnected, Port: 2})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := h.fibs.AddNextHop(fib.NextHop{Kind: fib.KindLocal, Addr: addrV100.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.fibs.Apply([]fib.Change{
		{Op: fib.OpAdd, Prefix: addrV100.Masked(), NextHop: c2, Connected: true},
		{Op: fib.OpAdd, Prefix: netip.PrefixFrom(addrV100.Addr(), 32), NextHop: l2, Connected: true},
	}); err != nil {
		t.Fatal(err)
	}
	nt := h.e.Neigh()
	var m0, mh [6]byte
	copy(m0[:], macP0)
	copy(mh[:], macV100)
	if err := nt.SetPort(2, m0, []netip.Prefix{addrV100}); err != nil {
		t.Fatal(err)
	}
	if err := nt.AddStatic(2, hostV100, mh); err != nil {
		t.Fatal(err)
	}
	nt.Publish()
	h.w.pl.idle()
	h.p0.out, h.p1.out = nil, nil
	st := *h.st
	st.Ports = append(append([]PortState(nil), st.Ports...), NewPortState(macP0, 1500, 0, true, []netip.Prefix{addrV100}))
	h.st = &st
	h.e.PublishState(h.st)
	return v
}

// TestVLANSubInterface: frames tagged 100 on p0 are p0.100's (routed from
// its subnet, answered from its address), leave p0.100 tagged, untagged
// frames stay p0's, and an unknown tag is dropped and counted.
func TestVLANSubInterface(t *testing.T) {
	h := newHarness(t, true)
	v := h.withVLAN()

	// Tagged 100 in, routed out of p1 untagged.
	in := tagged(frame4(t, pktOpt{dst: remote4, src: hostV100, size: 60}), 0x8100, 100)
	out0, out1 := h.inject(0, in)
	if len(out0) != 0 || len(out1) != 1 {
		t.Fatalf("got %d frames on p0, %d on p1; want 0, 1", len(out0), len(out1))
	}
	if d := decode(t, out1[0]); d.eth.EthernetType != layers.EthernetTypeIPv4 || d.ip4.TTL != 63 || !bytes.Equal(d.eth.DstMAC, macGW) {
		t.Fatalf("forwarded frame: %v", d.pkt)
	}
	// Untagged from p1 to the VLAN's host: out of p0 tagged 100.
	out0, out1 = h.inject(1, frame4(t, pktOpt{dst: hostV100, src: gw4, dstMAC: macP1, size: 60}))
	if len(out0) != 1 || len(out1) != 0 {
		t.Fatalf("got %d frames on p0, %d on p1; want 1, 0", len(out0), len(out1))
	}
	f := out0[0]
	if binary.BigEndian.Uint16(f[12:14]) != 0x8100 || binary.BigEndian.Uint16(f[14:16]) != 100 {
		t.Fatalf("not tagged 100: % x", f[:18])
	}
	if d := decode(t, untag(f)); d.ip4 == nil || d.ip4.TTL != 63 || !bytes.Equal(d.eth.DstMAC, macV100) || !bytes.Equal(d.eth.SrcMAC, macP0) {
		t.Fatalf("frame to the VLAN: %v", d.pkt)
	}
	// Echo to the VLAN address: answered on the VLAN, tagged.
	out0, _ = h.inject(0, tagged(frame4(t, pktOpt{dst: addrV100.Addr(), src: hostV100, icmpEcho: true}), 0x8100, 100))
	if len(out0) != 1 || binary.BigEndian.Uint16(out0[0][14:16]) != 100 {
		t.Fatalf("echo reply: %d frames", len(out0))
	}
	// The same echo untagged is p0's: not for p0's address, not answered
	// from the VLAN (routed to the VLAN subnet instead, tagged).
	out0, _ = h.inject(0, frame4(t, pktOpt{dst: addrV100.Addr(), icmpEcho: true}))
	if len(out0) != 1 || binary.BigEndian.Uint16(out0[0][12:14]) == 0x8100 {
		t.Fatalf("untagged echo from p0: %d frames", len(out0))
	}
	// Tag 200: no sub-interface.
	h.inject(0, tagged(frame4(t, pktOpt{dst: remote4}), 0x8100, 200))
	if c := h.e.Counters(); c["drop_unknown_vlan"] != 1 {
		t.Errorf("drop_unknown_vlan = %d, want 1", c["drop_unknown_vlan"])
	}
	var rx, tx uint64
	for _, s := range v.Stats() {
		rx += s.RxPackets
		tx += s.TxPackets
	}
	if rx != 2 || tx != 3 {
		t.Errorf("p0.100 counted rx %d tx %d, want 2 and 3", rx, tx)
	}
	if n := h.inUse(); n != 0 {
		t.Errorf("%d mbufs leaked", n)
	}
}

// TestVLANARP: a tagged ARP request for the VLAN's address reaches the
// neighbour table as p0.100's and is answered tagged.
func TestVLANARP(t *testing.T) {
	h := newHarness(t, true)
	h.withVLAN()
	req := tagged(serialize(t, &layers.Ethernet{SrcMAC: macV100, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: macV100, SourceProtAddress: hostV100.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: addrV100.Addr().AsSlice()}), 0x8100, 100)
	h.inject(0, req)
	h.e.Neigh().Poll()
	h.w.pl.idle()
	out := h.p0.out
	if len(out) != 1 {
		t.Fatalf("%d frames on p0, want the ARP reply", len(out))
	}
	f := out[0]
	if binary.BigEndian.Uint16(f[12:14]) != 0x8100 || binary.BigEndian.Uint16(f[14:16]) != 100 || binary.BigEndian.Uint16(f[16:18]) != 0x0806 {
		t.Fatalf("reply not an ARP tagged 100: % x", f[:18])
	}
}

// TestVLANZeroAllocs: tagged bursts through a sub-interface, both ways,
// allocate nothing.
func TestVLANZeroAllocs(t *testing.T) {
	h := newHarness(t, false)
	h.withVLAN()
	frames := [][]byte{
		tagged(frame4(t, pktOpt{dst: remote4, src: hostV100, size: 18}), 0x8100, 100),
		tagged(frame4(t, pktOpt{dst: remote4, size: 18}), 0x8100, 300),
	}
	back := frame4(t, pktOpt{dst: hostV100, src: gw4, dstMAC: macP1, size: 18})
	ms := make([]*mbuf.Mbuf, Burst)
	run := func() {
		n := h.w.cache.Alloc(ms)
		for i, m := range ms[:n] {
			f := frames[i%len(frames)]
			copy(m.Append(len(f)), f)
		}
		h.w.pl.process(0, ms[:n])
		n = h.w.cache.Alloc(ms)
		for _, m := range ms[:n] {
			copy(m.Append(len(back)), back)
		}
		h.w.pl.process(1, ms[:n])
		h.w.pl.idle()
	}
	h.p0.discard, h.p1.discard = true, true
	run()
	if a := allocsPerRun(200, run); a != 0 {
		t.Fatalf("%v allocations per burst, want 0", a)
	}
}

// untag removes the 802.1Q tag of f.
func untag(f []byte) []byte {
	return append(append([]byte(nil), f[:12]...), f[16:]...)
}

// withLagg makes p0 the only member of lagg0 (port 2, addresses of p0
// moved to it: 198.18.1.1/24 is routed to port 2).
func (h *harness) withLagg(proto string) *lagg.Port {
	t := h.t
	l, err := lagg.Open(pmd.Config{Name: "lagg0", ID: 2, Driver: "lagg", Args: pmd.Args{"laggport": "p0", "proto": proto},
		Pools: h.e.Pools(), Shared: h.e.Shared(),
		Lookup: func(n string) (pmd.Port, uint16, bool) {
			if n == "p0" {
				return h.p0, 0, true
			}
			return nil, 0, false
		}})
	if err != nil {
		t.Fatal(err)
	}
	l.Service(nil)
	if err := h.e.AttachPort(2, l); err != nil {
		t.Fatal(err)
	}
	c2, err := h.fibs.AddNextHop(fib.NextHop{Kind: fib.KindConnected, Port: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.fibs.Apply([]fib.Change{{Op: fib.OpAdd, Prefix: addrP0.Masked(), NextHop: c2, Connected: true}}); err != nil {
		t.Fatal(err)
	}
	nt := h.e.Neigh()
	var m0, mh [6]byte
	copy(m0[:], macP0)
	copy(mh[:], macHost)
	if err := nt.SetPort(2, m0, []netip.Prefix{addrP0}); err != nil {
		t.Fatal(err)
	}
	if err := nt.AddStatic(2, host4, mh); err != nil {
		t.Fatal(err)
	}
	nt.Publish()
	h.w.pl.idle()
	h.p0.out, h.p1.out = nil, nil
	st := *h.st
	st.Ports = append(append([]PortState(nil), st.Ports...), NewPortState(macP0, 1500, 0, true, []netip.Prefix{addrP0}))
	h.st = &st
	h.e.PublishState(h.st)
	return l
}

// TestLaggMember: a member's frames are the lagg's (routed, counted as
// received by it); transmit to the lagg's subnet leaves through the member;
// slow-protocol frames go to the lagg, never forwarded.
func TestLaggMember(t *testing.T) {
	h := newHarness(t, true)
	l := h.withLagg("failover")
	_, out1 := h.inject(0, frame4(t, pktOpt{dst: remote4, size: 60}))
	if len(out1) != 1 {
		t.Fatalf("member frame not routed: %d out", len(out1))
	}
	out0, _ := h.inject(1, frame4(t, pktOpt{dst: host4, src: gw4, dstMAC: macP1, size: 60}))
	if len(out0) != 1 {
		t.Fatalf("frame to the lagg's subnet not sent on the member: %d", len(out0))
	}
	lacpdu := make([]byte, 124)
	copy(lacpdu, []byte{0x01, 0x80, 0xc2, 0, 0, 2})
	lacpdu[12], lacpdu[13], lacpdu[14] = 0x88, 0x09, 1
	out0, out1 = h.inject(0, lacpdu)
	if len(out0)+len(out1) != 0 || h.e.Counters()["punted"] == 0 {
		t.Fatalf("LACPDU forwarded or not punted: %d out, counters %v", len(out0)+len(out1), h.e.Counters())
	}
	l.Service(nil) // takes the frame from the ring and frees it
	if n := h.inUse(); n != 0 {
		t.Errorf("%d mbufs leaked", n)
	}
}

// TestLaggZeroAllocs: bursts in through a member and out through the lagg
// allocate nothing.
func TestLaggZeroAllocs(t *testing.T) {
	h := newHarness(t, false)
	h.withLagg("loadbalance")
	in := frame4(t, pktOpt{dst: remote4, size: 18})
	back := frame4(t, pktOpt{dst: host4, src: gw4, dstMAC: macP1, size: 18})
	ms := make([]*mbuf.Mbuf, Burst)
	run := func() {
		n := h.w.cache.Alloc(ms)
		for _, m := range ms[:n] {
			copy(m.Append(len(in)), in)
		}
		h.w.pl.process(0, ms[:n])
		n = h.w.cache.Alloc(ms)
		for _, m := range ms[:n] {
			copy(m.Append(len(back)), back)
		}
		h.w.pl.process(1, ms[:n])
		h.w.pl.idle()
	}
	h.p0.discard, h.p1.discard = true, true
	run()
	if a := allocsPerRun(200, run); a != 0 {
		t.Fatalf("%v allocations per burst, want 0", a)
	}
}

// laggify replaces port id's capture port by a loadbalance lagg (same id,
// MAC and addresses) of two discarding capture ports, members m0 and m1
// attached as ports a and b.
func (h *harness) laggify(id, a, b uint16) {
	h.laggWith(id, a, b, "l2,l3,l4", true)
}

// laggWith is laggify with the lagg's hash layers, and capture ports that
// record what they send unless discard. It returns the lagg and its
// members in laggport order.
func (h *harness) laggWith(id, a, b uint16, hash string, discard bool) (*lagg.Port, [2]*capPort) {
	t := h.t
	old := h.e.DetachPort(id).(*capPort)
	mems := map[string]uint16{"m0": a, "m1": b}
	ports := map[string]pmd.Port{}
	var caps [2]*capPort
	for i, n := range []string{"m0", "m1"} {
		c := &capPort{info: old.info, pools: h.e.Pools(), discard: discard}
		if discard {
			c.cache = h.w.cache
		}
		c.info.Name = n
		if err := h.e.AttachPort(mems[n], c); err != nil {
			t.Fatal(err)
		}
		ports[n], caps[i] = c, c
	}
	l, err := lagg.Open(pmd.Config{Name: old.info.Name, ID: id, Driver: "lagg", Args: pmd.Args{"laggport": "m0 m1", "proto": "loadbalance", "hash": hash},
		Pools: h.e.Pools(), Shared: pmd.NewShared(),
		Lookup: func(n string) (pmd.Port, uint16, bool) { p, ok := ports[n]; return p, mems[n], ok }})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.e.AttachPort(id, l); err != nil {
		t.Fatal(err)
	}
	st := *h.st
	st.Ports = append([]PortState(nil), st.Ports...)
	for len(st.Ports) <= int(max(a, b)) {
		st.Ports = append(st.Ports, PortState{})
	}
	st.Ports[a] = NewPortState(old.info.MAC, 1500, 0, true, nil)
	st.Ports[b] = st.Ports[a]
	h.st = &st
	h.e.PublishState(h.st)
	return l, caps
}
