package gen

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// naiveChecksum is the RFC 1071 reference: one's-complement sum of the
// big-endian words of every part, folded and complemented.
func naiveChecksum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint64
	for i := 0; i < len(all); i += 2 {
		s += uint64(binary.BigEndian.Uint16(all[i:]))
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// checkFrame verifies the headers and checksums of a built frame against
// the naive reference and returns its stamp.
func checkFrame(t *testing.T, f []byte, v6 bool) Stamp {
	t.Helper()
	var udp, pseudo []byte
	if v6 {
		if binary.BigEndian.Uint16(f[12:]) != 0x86DD {
			t.Fatalf("ethertype %x", f[12:14])
		}
		ip := f[14:54]
		if int(binary.BigEndian.Uint16(ip[4:])) != len(f)-54 {
			t.Fatalf("ipv6 payload length %d, frame %d", binary.BigEndian.Uint16(ip[4:]), len(f))
		}
		udp = f[54:]
		pseudo = append(append([]byte{}, ip[8:40]...), 0, 0, byte(len(udp)>>8), byte(len(udp)), 0, 0, 0, 17)
	} else {
		ip := f[14:34]
		if c := naiveChecksum(ip); c != 0 {
			t.Fatalf("ipv4 header checksum does not verify (residue %#x)", c)
		}
		if int(binary.BigEndian.Uint16(ip[2:])) != len(f)-14 {
			t.Fatalf("ipv4 total length %d, frame %d", binary.BigEndian.Uint16(ip[2:]), len(f))
		}
		udp = f[34:]
		pseudo = append(append([]byte{}, ip[12:20]...), 0, 17, byte(len(udp)>>8), byte(len(udp)))
	}
	if int(binary.BigEndian.Uint16(udp[4:])) != len(udp) {
		t.Fatalf("udp length %d, want %d", binary.BigEndian.Uint16(udp[4:]), len(udp))
	}
	if c := naiveChecksum(pseudo, udp); c != 0 && !(c == 0xffff && binary.BigEndian.Uint16(udp[6:]) == 0xffff) {
		t.Fatalf("udp checksum does not verify (residue %#x)", c)
	}
	st, ok := ParseStamp(f)
	if !ok {
		t.Fatal("ParseStamp: no stamp")
	}
	return st
}

func testSpec(v6 bool, sizes []int, flows int) Spec {
	s := Spec{IPv6: v6, SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
		SrcPort: 1024, DstPort: 9, Flows: flows, SrcAddrs: 3, DstAddrs: 5, Sizes: sizes}
	if v6 {
		s.SrcIP, s.DstIP = netip.MustParseAddr("2001:2::2"), netip.MustParseAddr("2001:2:0:8000::1")
	} else {
		s.SrcIP, s.DstIP = netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.19.128.1")
	}
	return s
}

func TestBuildChecksumsAndStamp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v6    bool
		sizes []int
		flows int
	}{
		{"v4-64", false, []int{64}, 1},
		{"v4-1518-flows", false, []int{1518}, 100},
		{"v4-odd", false, []int{65}, 7},
		{"v4-imix", false, IMIX(), 64},
		{"v6-84", true, []int{84}, 1},
		{"v6-odd-flows", true, []int{513}, 1000},
		{"v6-1518", true, []int{1518}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewBuilder(testSpec(tc.v6, tc.sizes, tc.flows))
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, b.MaxLen())
			for seq := uint64(0); seq < 300; seq++ {
				ts := seq*1_000_003 + 0xdead_beef_0000
				n := b.Build(buf, 7, seq, ts)
				if want := tc.sizes[seq%uint64(len(tc.sizes))] - FCSLen; n != want {
					t.Fatalf("seq %d: len %d, want %d", seq, n, want)
				}
				st := checkFrame(t, buf[:n], tc.v6)
				if st.Stream != 7 || st.Seq != seq || st.TS != ts {
					t.Fatalf("stamp %+v, want stream 7 seq %d ts %d", st, seq, ts)
				}
				flow := seq % uint64(tc.flows)
				l4 := 34
				if tc.v6 {
					l4 = 54
				}
				if p := binary.BigEndian.Uint16(buf[l4:]); p != 1024+uint16(flow) {
					t.Fatalf("seq %d: source port %d, want %d", seq, p, 1024+flow)
				}
			}
		})
	}
}

func TestSpecErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Spec)
	}{
		{"too small v4", func(s *Spec) { s.Sizes = []int{63} }},
		{"too small v6", func(s *Spec) {
			s.IPv6 = true
			s.SrcIP, s.DstIP = netip.MustParseAddr("2001:2::1"), netip.MustParseAddr("2001:2::2")
			s.Sizes = []int{64}
		}},
		{"too big", func(s *Spec) { s.Sizes = []int{1519} }},
		{"family mismatch", func(s *Spec) { s.DstIP = netip.MustParseAddr("2001:2::1") }},
		{"no address", func(s *Spec) { s.SrcIP = netip.Addr{} }},
	} {
		s := testSpec(false, []int{64}, 1)
		tc.mod(&s)
		if _, err := NewBuilder(s); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestBuildNoAlloc(t *testing.T) {
	b, err := NewBuilder(testSpec(false, IMIX(), 64))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, b.MaxLen())
	var seq uint64
	if a := testing.AllocsPerRun(1000, func() { b.Build(buf, 0, seq, seq); seq++ }); a != 0 {
		t.Fatalf("Build allocates %.1f per packet", a)
	}
	var tr SeqTracker
	var h Histogram
	if a := testing.AllocsPerRun(1000, func() { tr.Observe(seq); h.Record(seq); seq += 3 }); a != 0 {
		t.Fatalf("sink accounting allocates %.1f per packet", a)
	}
}

func FuzzParseStamp(f *testing.F) {
	b, _ := NewBuilder(testSpec(false, []int{64}, 1))
	buf := make([]byte, b.MaxLen())
	f.Add(buf[:b.Build(buf, 1, 2, 3)])
	b6, _ := NewBuilder(testSpec(true, []int{90}, 1))
	buf6 := make([]byte, b6.MaxLen())
	f.Add(buf6[:b6.Build(buf6, 1, 2, 3)])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, ok := ParseStamp(data)
		if !ok && st != (Stamp{}) {
			t.Fatal("stamp returned with ok=false")
		}
	})
}

func BenchmarkBuild64(b *testing.B) {
	bl, _ := NewBuilder(testSpec(false, []int{64}, 64))
	buf := make([]byte, bl.MaxLen())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		bl.Build(buf, 0, uint64(i), uint64(i))
	}
}

// BenchmarkCopy64 is Build's baseline: only the template copy.
func BenchmarkCopy64(b *testing.B) {
	bl, _ := NewBuilder(testSpec(false, []int{64}, 64))
	buf := make([]byte, bl.MaxLen())
	for i := 0; i < b.N; i++ {
		copy(buf, bl.tmpl[0].frame)
	}
}
