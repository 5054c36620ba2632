package fwd

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/fwdd/fwdd/fib"
)

// TestAdjacencyFollowsSnapshots: the worker's resolved next hops (adj.go)
// are those of the burst's snapshots. Between bursts the neighbour's MAC
// changes, the neighbour goes away, the egress port goes down and comes
// back with a smaller MTU, and the route moves to another gateway; every
// burst must see the change at once, as if nothing were cached.
func TestAdjacencyFollowsSnapshots(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := "ipv4"
		if v6 {
			name = "ipv6"
		}
		t.Run(name, func(t *testing.T) { testAdjacencyFollowsSnapshots(t, v6) })
	}
}

func testAdjacencyFollowsSnapshots(t *testing.T, v6 bool) {
	h := newHarness(t, true)
	nt := h.e.Neigh()
	gw, dst, gw2 := gw4, remote4, netip.MustParseAddr("198.18.2.10")
	build := frame4
	if v6 {
		gw, dst, gw2 = gw6, remote6, netip.MustParseAddr("2001:2:0:2::10")
		build = frame6
	}
	burst := func(size int) [][]byte {
		var in [][]byte
		for range 3 {
			in = append(in, build(t, pktOpt{dst: dst, size: size}))
		}
		return in
	}
	// sent checks that the burst of three left on p1 to mac.
	sent := func(step string, mac net.HardwareAddr) {
		t.Helper()
		_, out1 := h.inject(0, burst(100)...)
		if len(out1) != 3 {
			t.Fatalf("%s: p1 sent %d frames, want 3 (counters %v)", step, len(out1), h.e.Counters())
		}
		for _, f := range out1 {
			d := decode(t, f)
			if !bytes.Equal(d.eth.DstMAC, mac) || !bytes.Equal(d.eth.SrcMAC, macP1) {
				t.Fatalf("%s: MACs %s -> %s, want %s -> %s", step, d.eth.SrcMAC, d.eth.DstMAC, macP1, mac)
			}
		}
	}
	// counted checks that the burst of three was counted under reason.
	counted := func(step string, size int, reason Reason) {
		t.Helper()
		before := h.e.Counters()[reason.String()]
		if _, out1 := h.inject(0, burst(size)...); len(out1) != 0 {
			t.Fatalf("%s: p1 sent %d frames, want none", step, len(out1))
		}
		if got := h.e.Counters()[reason.String()] - before; got != 3 {
			t.Fatalf("%s: %s moved by %d, want 3 (counters %v)", step, reason, got, h.e.Counters())
		}
	}

	sent("start", macGW)
	sent("again (cached)", macGW)

	mac2 := [6]byte{0x02, 0, 0, 0, 0, 0x33}
	if err := nt.AddStatic(1, gw, mac2); err != nil {
		t.Fatal(err)
	}
	nt.Publish()
	sent("neighbour MAC changed", net.HardwareAddr(mac2[:]))

	if err := nt.Delete(1, gw); err != nil {
		t.Fatal(err)
	}
	nt.Publish()
	counted("neighbour deleted", 100, Punted) // held while control resolves it
	var mg [6]byte
	copy(mg[:], macGW)
	if err := nt.AddStatic(1, gw, mg); err != nil {
		t.Fatal(err)
	}
	nt.Publish()
	h.e.Neigh().Poll() // the held packets go out, or are dropped: not this test's business
	h.w.pl.idle()
	sent("neighbour back", macGW)

	down := *h.st
	down.Ports = append([]PortState(nil), h.st.Ports...)
	down.Ports[1].Up = false
	h.e.PublishState(&down)
	counted("port down", 100, DropPortDown)

	small := *h.st
	small.Ports = append([]PortState(nil), h.st.Ports...)
	small.Ports[1].MTU = 1280
	h.e.PublishState(&small)
	if v6 {
		counted("smaller MTU", 1300, DropTooBig)
	} else {
		// No DF: fragmented, two fragments per packet.
		_, out1 := h.inject(0, burst(1300)...)
		if len(out1) != 6 {
			t.Fatalf("smaller MTU: p1 sent %d frames, want 6 fragments", len(out1))
		}
	}
	h.e.PublishState(h.st)
	sent("MTU back", macGW)

	// The route moves to another gateway (a new FIB snapshot).
	id, err := h.fibs.AddNextHop(fib.NextHop{Kind: fib.KindGateway, Port: 1, Addr: gw2})
	if err != nil {
		t.Fatal(err)
	}
	mac3 := [6]byte{0x02, 0, 0, 0, 0, 0x44}
	if err := nt.AddStatic(1, gw2, mac3); err != nil {
		t.Fatal(err)
	}
	nt.Publish()
	pfx := netip.MustParsePrefix("198.19.0.0/16")
	if v6 {
		pfx = netip.MustParsePrefix("2001:2:1::/48")
	}
	if err := h.fibs.Apply([]fib.Change{{Op: fib.OpAdd, Prefix: pfx, NextHop: id}}); err != nil {
		t.Fatal(err)
	}
	sent("route moved", net.HardwareAddr(mac3[:]))
	if n := h.inUse(); n != 0 {
		t.Errorf("%d mbufs leaked", n)
	}
}

// TestAdjacencyCollision: next hops whose ids share a cache slot, used in
// the same burst, each get their own neighbour.
func TestAdjacencyCollision(t *testing.T) {
	h := newHarness(t, true)
	nt := h.e.Neigh()
	var ids []uint32
	for {
		gw := netip.AddrFrom4([4]byte{198, 18, 2, byte(20 + len(ids))})
		id, err := h.fibs.AddNextHop(fib.NextHop{Kind: fib.KindGateway, Port: 1, Addr: gw})
		if err != nil {
			t.Fatal(err)
		}
		if err := nt.AddStatic(1, gw, [6]byte{0x02, 0, 0, 0, 0x55, byte(len(ids))}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if len(ids) > adjSize && ids[len(ids)-1]%adjSize == ids[0]%adjSize {
			break
		}
	}
	nt.Publish()
	first, last := ids[0], ids[len(ids)-1]
	a := netip.MustParsePrefix("198.19.10.0/24")
	b := netip.MustParsePrefix("198.19.11.0/24")
	if err := h.fibs.Apply([]fib.Change{{Op: fib.OpAdd, Prefix: a, NextHop: first}, {Op: fib.OpAdd, Prefix: b, NextHop: last}}); err != nil {
		t.Fatal(err)
	}
	var in [][]byte
	for i := range 6 {
		d := netip.MustParseAddr("198.19.10.1")
		if i%2 == 1 {
			d = netip.MustParseAddr("198.19.11.1")
		}
		in = append(in, frame4(t, pktOpt{dst: d, sport: uint16(100 + i)}))
	}
	_, out1 := h.inject(0, in...)
	if len(out1) != 6 {
		t.Fatalf("p1 sent %d frames, want 6", len(out1))
	}
	for i, f := range out1 {
		want := byte(0)
		if i%2 == 1 {
			want = byte(len(ids) - 1)
		}
		if d := decode(t, f); d.eth.DstMAC[4] != 0x55 || d.eth.DstMAC[5] != want {
			t.Errorf("frame %d to %s, want 02:00:00:00:55:%02x", i, d.eth.DstMAC, want)
		}
	}
}

// TestConnectedNeighbours: packets of one burst to several hosts on a
// connected IPv4 or IPv6 subnet, interleaved, each leave with their own
// host's MAC (the pipeline remembers the last neighbour of a burst: the
// memo must tell them apart, and a host without a neighbour entry, handed
// to the control plane, must not disturb it); the next burst sees a
// changed MAC at once.
func TestConnectedNeighbours(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := "ipv4"
		if v6 {
			name = "ipv6"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, true)
			nt := h.e.Neigh()
			a, b, c, src := host4, netip.MustParseAddr("198.18.1.3"), netip.MustParseAddr("198.18.1.4"), gw4
			build := frame4
			if v6 {
				a, b, c, src = host6, netip.MustParseAddr("2001:2:0:1::3"), netip.MustParseAddr("2001:2:0:1::4"), gw6
				build = frame6
			}
			macB := [6]byte{0x02, 0, 0, 0, 0, 0x44}
			if err := nt.AddStatic(0, b, macB); err != nil {
				t.Fatal(err)
			}
			nt.Publish()
			order := []netip.Addr{a, a, b, a, c, b, b, a, c, a}
			burst := func() ([][]byte, []net.HardwareAddr) {
				var in [][]byte
				var want []net.HardwareAddr
				for i, d := range order {
					in = append(in, build(t, pktOpt{src: src, dst: d, dstMAC: macP1, size: 10 + i}))
					switch d {
					case a:
						want = append(want, macHost)
					case b:
						want = append(want, net.HardwareAddr(macB[:]))
					}
				}
				return in, want
			}
			check := func(step string) {
				t.Helper()
				punted := h.e.Counters()["punted"]
				in, want := burst()
				out0, _ := h.inject(1, in...)
				if len(out0) != len(want) {
					t.Fatalf("%s: p0 sent %d frames, want %d (counters %v)", step, len(out0), len(want), h.e.Counters())
				}
				for i, f := range out0 {
					if !bytes.Equal(f[0:6], want[i]) || !bytes.Equal(f[6:12], macP0) {
						t.Errorf("%s: frame %d: MACs % x -> % x, want -> %s", step, i, f[6:12], f[0:6], want[i])
					}
				}
				if got := h.e.Counters()["punted"] - punted; got != 2 {
					t.Errorf("%s: %d packets handed to the control plane, want the 2 to the host without a neighbour", step, got)
				}
			}
			check("first burst")
			macB = [6]byte{0x02, 0, 0, 0, 0, 0x55}
			if err := nt.AddStatic(0, b, macB); err != nil {
				t.Fatal(err)
			}
			nt.Publish()
			check("MAC changed")
		})
	}
}
