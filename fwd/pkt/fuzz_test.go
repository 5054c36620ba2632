package pkt

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/gopacket/gopacket/layers"
)

func seedFrames(f *testing.F) [][]byte {
	ip := ipv4(layers.IPProtocolICMPv4)
	echo := serialize(f, eth(layers.EthernetTypeIPv4), ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)})
	return [][]byte{
		udp4(f, 0), udp4(f, 100), udp6(f, 0), udp6(f, 64), echo,
		with4Options(f, []byte{7, 7, 4, 0, 0, 0, 0, 148, 4, 0, 0, 1}),
		bigUDP4(f, 1500, nil),
		raw6(ProtoHopByHop, 1, []byte(ip6A), []byte(ip6B), cat(ext(ProtoRouting, 0), ext(ProtoFragment, 0), make([]byte, 16))),
		raw6(ProtoFragment, 64, []byte(ip6A), []byte(ip6B), cat([]byte{ProtoUDP, 0, 0, 1, 0, 0, 0, 1}, make([]byte, 16))),
		raw6(ProtoICMPv6, 255, []byte(ip6A), mustIP6("ff02::1:ff00:2"), []byte{135, 0, 0, 0, 0, 0, 0, 0}),
		raw6(ProtoICMPv6, 64, []byte(ip6A), []byte(ip6B), []byte{128, 0, 0x7f, 0xff, 0, 0, 0, 0}),
	}
}

// fuzzPool is one checked pool per fuzz worker process.
func fuzzPool(f *testing.F) (*mbuf.Pool, *mbuf.Cache) {
	p, err := mbuf.NewPool(mbuf.Config{Name: "fuzz", Count: 256, CacheSize: 32, Checked: true})
	if err != nil {
		f.Fatal(err)
	}
	c := p.NewCache()
	f.Cleanup(func() { c.Flush(); p.Close() })
	return p, c
}

// FuzzParse: arbitrary frames never panic; what Parse accepts has
// consistent metadata; every ICMP error built about it parses back; the
// packet functions never panic on it; no mbuf leaks.
func FuzzParse(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s, uint16(1280))
	}
	p, c := fuzzPool(f)
	f.Fuzz(func(t *testing.T, frame []byte, mtu uint16) { fuzzParseOne(t, p, c, frame, mtu) })
}

func fuzzParseOne(t *testing.T, p *mbuf.Pool, c *mbuf.Cache, frame []byte, mtu uint16) {
	inUse := p.Stats().InUse
	var one [2]*mbuf.Mbuf
	if c.Alloc(one[:]) != 2 {
		t.Fatal("alloc")
	}
	m, out := one[0], one[1]
	if len(frame) > m.Tailroom() {
		frame = frame[:m.Tailroom()]
	}
	copy(m.Append(len(frame)), frame)
	checkParse4Paths(t, c, frame)
	checkParse6Paths(t, c, frame)
	cl, r := Parse(m)
	if (cl == ClassDrop) != (r != OK) {
		t.Fatalf("class %v reason %v", cl, r)
	}
	d := m.Data()
	if cl != ClassDrop {
		if int(m.L3Off) > len(d) || int(m.L4Off) > len(d) {
			t.Fatalf("offsets %d %d beyond %d", m.L3Off, m.L4Off, len(d))
		}
		if m.L4Off != 0 && m.L4Off <= m.L3Off {
			t.Fatalf("L4Off %d <= L3Off %d", m.L4Off, m.L3Off)
		}
	}
	_ = FlowHash(m, 1)
	for k := Kind(0); k <= NumKinds; k++ {
		s := CheckError(m, k)
		var ok bool
		if k.IsV6() {
			ok = BuildError6(out, m, k, uint32(mtu), &ourAddr6)
		} else {
			ok = BuildError4(out, m, k, uint32(mtu), ourAddr4)
		}
		if !ok {
			continue
		}
		if cl != ClassIPv4 && cl != ClassIPv6 && cl != ClassND && cl != ClassHopByHop {
			t.Fatalf("built %v about a %v packet", k, cl)
		}
		ocl, or := Parse(out)
		want := ClassIPv4
		if k.IsV6() {
			want = ClassIPv6
		}
		// The quoted packet's source may be a martian destination;
		// the pipeline checks CheckError first, which refuses those.
		if ocl != want && s == Send {
			t.Fatalf("%v about %x: output parses as %v %v", k, frame, ocl, or)
		}
		if out.Len() > EthLen+MaxICMP6 {
			t.Fatalf("output of %d bytes", out.Len())
		}
	}
	switch cl {
	case ClassIPv4:
		if EchoReply4(m) {
			if _, r := Parse(m); r != OK && r.Category() != CatMartian {
				t.Fatalf("echo reply does not parse: %v", r)
			}
		}
		var frags [48]*mbuf.Mbuf
		n, fr := Fragment4(m, int(mtu), c, frags[:])
		if fr == FragOK {
			for _, fm := range frags[:n] {
				if fcl, fr := Parse(fm); fcl != ClassIPv4 || int(fm.Len())-int(fm.L3Off) > int(mtu) {
					t.Fatalf("fragment parses as %v %v, len %d, mtu %d", fcl, fr, fm.Len(), mtu)
				}
			}
			c.Free(frags[1:n])
		}
		DecTTL4(m)
	case ClassIPv6, ClassND, ClassHopByHop:
		EchoReply6(m)
		DecHopLimit6(m)
	}
	c.Free(one[:])
	c.Flush()
	if got := p.Stats().InUse; got != inUse {
		t.Fatalf("leaked %d mbufs", got-inUse)
	}
}

// FuzzMetadata: arbitrary data with arbitrary (inconsistent) metadata never
// makes a function panic.
func FuzzMetadata(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s, uint16(14), uint16(34), uint16(mbuf.FlagIPv4), uint8(17), uint16(576))
		f.Add(s, uint16(14), uint16(0), uint16(mbuf.FlagIPv6|FlagFragment), uint8(58), uint16(1280))
	}
	_, c := fuzzPool(f)
	f.Fuzz(func(t *testing.T, frame []byte, l3, l4, flags uint16, proto uint8, mtu uint16) {
		var one [2]*mbuf.Mbuf
		if c.Alloc(one[:]) != 2 {
			t.Fatal("alloc")
		}
		defer c.Free(one[:])
		m, out := one[0], one[1]
		if len(frame) > m.Tailroom() {
			frame = frame[:m.Tailroom()]
		}
		copy(m.Append(len(frame)), frame)
		set := func() {
			m.L3Off, m.L4Off, m.Flags, m.L4Proto = l3, l4, mbuf.Flags(flags), proto
		}
		set()
		_ = FlowHash(m, 0)
		for k := Kind(0); k <= NumKinds; k++ {
			set()
			CheckError(m, k)
			BuildError4(out, m, k, uint32(mtu), ourAddr4)
			BuildError6(out, m, k, uint32(mtu), &ourAddr6)
		}
		set()
		EchoReply4(m)
		set()
		EchoReply6(m)
		set()
		DecTTL4(m)
		DecHopLimit6(m)
		set()
		var frags [48]*mbuf.Mbuf
		if n, r := Fragment4(m, int(mtu), c, frags[:]); r == FragOK {
			c.Free(frags[1:n])
		}
		if len(frame) >= 2 {
			UpdateChecksum(binary.BigEndian.Uint16(frame), l3, l4)
		}
		Checksum(frame)
	})
}

// TestRandomMutations runs FuzzParse's checks over seeded random mutations
// of valid frames on every `go test` (the fuzzer itself is run by hand).
func TestRandomMutations(t *testing.T) {
	p, c := testPool(t)
	seeds := [][]byte{udp4(t, 0), udp4(t, 100), udp6(t, 0), udp6(t, 64), bigUDP4(t, 1500, nil),
		with4Options(t, []byte{7, 7, 4, 0, 0, 0, 0, 148, 4, 0, 0, 1}),
		raw6(ProtoHopByHop, 1, []byte(ip6A), []byte(ip6B), cat(ext(ProtoRouting, 0), ext(ProtoFragment, 0), make([]byte, 16)))}
	r := rand.New(rand.NewPCG(1, 1))
	n := 50000
	if testing.Short() {
		n = 5000
	}
	for range n {
		s := append([]byte(nil), seeds[r.IntN(len(seeds))]...)
		for k := r.IntN(6); k > 0; k-- {
			s[r.IntN(len(s))] = byte(r.Uint32())
		}
		if r.IntN(4) == 0 {
			s = s[:r.IntN(len(s)+1)]
		}
		fuzzParseOne(t, p, c, s, uint16(r.IntN(2000)))
	}
}

// checkParse4Paths parses an untagged IPv4 frame whose header starts 0x45
// with parse4Plain and with parse4Any, each on its own copy, and fails when
// they differ in class, reason, metadata or the trimmed length.
func checkParse4Paths(t *testing.T, c *mbuf.Cache, frame []byte) {
	t.Helper()
	if len(frame) < EthLen+IPv4Len || frame[EthLen] != 0x45 {
		return
	}
	checkSameParse(t, c, frame, [2]string{"parse4Plain", "parse4Any"}, func(i int, m *mbuf.Mbuf) (Class, Reason) {
		if i == 0 {
			return parse4Plain(m, m.Data()[EthLen:], EthLen)
		}
		return parse4Any(m, m.Data()[EthLen:], EthLen)
	})
}

// checkSameParse parses frame with parse(0, m) and parse(1, m), each on
// its own copy, and fails when they differ in class, reason, flags,
// transport offset and protocol or the trimmed length.
func checkSameParse(t *testing.T, c *mbuf.Cache, frame []byte, names [2]string, parse func(i int, m *mbuf.Mbuf) (Class, Reason)) {
	t.Helper()
	var ms [2]*mbuf.Mbuf
	if c.Alloc(ms[:]) != 2 {
		t.Fatal("alloc")
	}
	defer c.Free(ms[:])
	type result struct {
		cl            Class
		r             Reason
		flags         mbuf.Flags
		l4off, length int
		proto         uint8
	}
	var res [2]result
	for i, m := range ms {
		if len(frame) > m.Tailroom() {
			frame = frame[:m.Tailroom()]
		}
		copy(m.Append(len(frame)), frame)
		cl, r := parse(i, m)
		res[i] = result{cl, r, m.Flags, int(m.L4Off), m.Len(), m.L4Proto}
	}
	if res[0] != res[1] {
		t.Fatalf("frame %x: %s %+v, %s %+v", frame, names[0], res[0], names[1], res[1])
	}
}

// TestParse4PlainMatchesAny: the plain-header fast path decides as the
// general parser on valid headers and on every single-byte and
// single-bit mutation of their IP headers (checksum fixed up or not).
func TestParse4PlainMatchesAny(t *testing.T) {
	p, err := mbuf.NewPool(mbuf.Config{Name: "t", Count: 64, CacheSize: 8, Checked: true})
	if err != nil {
		t.Fatal(err)
	}
	c := p.NewCache()
	t.Cleanup(func() { c.Flush(); p.Close() })
	ip := ipv4(layers.IPProtocolICMPv4)
	seeds := [][]byte{udp4(t, 0), udp4(t, 100), bigUDP4(t, 1500, nil),
		serialize(t, eth(layers.EthernetTypeIPv4), ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)})}
	r := rand.New(rand.NewPCG(5, 6))
	n := 0
	for _, s := range seeds {
		checkParse4Paths(t, c, s)
		for i := EthLen + 1; i < EthLen+IPv4Len; i++ {
			for range 64 {
				f := append([]byte(nil), s...)
				if r.IntN(2) == 0 {
					f[i] ^= 1 << r.IntN(8)
				} else {
					f[i] = byte(r.Uint32())
				}
				if r.IntN(4) == 0 { // near the largest fragment offsets
					fo := 0x1fff - r.IntN(16)
					binary.BigEndian.PutUint16(f[EthLen+6:], uint16(r.IntN(8)<<13|fo))
				}
				if r.IntN(2) == 0 { // a valid checksum, so later checks run
					binary.BigEndian.PutUint16(f[EthLen+10:], 0)
					binary.BigEndian.PutUint16(f[EthLen+10:], ^Fold(Sum(f[EthLen:EthLen+IPv4Len], 0)))
				}
				if r.IntN(4) == 0 { // padding after the packet, or a cut
					if r.IntN(2) == 0 {
						f = append(f, make([]byte, r.IntN(64))...)
					} else {
						f = f[:EthLen+IPv4Len+r.IntN(len(f)-EthLen-IPv4Len+1)]
					}
				}
				checkParse4Paths(t, c, f)
				n++
			}
		}
	}
	t.Logf("%d frames", n)
}

// checkParse6Paths parses an untagged or tagged IPv6 frame with Parse
// (whose IPv6 branch takes plain packets itself) and with parse6 alone,
// after the same Ethernet handling, each on its own copy, and fails when
// they differ in class, reason, flags, transport offset and protocol or
// the trimmed length.
func checkParse6Paths(t *testing.T, c *mbuf.Cache, frame []byte) {
	t.Helper()
	off := EthLen
	if len(frame) >= EthLen+VLANLen && binary.BigEndian.Uint16(frame[12:14]) == EtherTypeVLAN {
		off += VLANLen
	}
	if len(frame) < off || binary.BigEndian.Uint16(frame[off-2:off]) != EtherTypeIPv6 {
		return
	}
	checkSameParse(t, c, frame, [2]string{"Parse", "parse6"}, func(i int, m *mbuf.Mbuf) (Class, Reason) {
		m.Flags |= mbuf.FlagIPv4 | FlagFragment // stale flags: both must reset them
		if i == 0 {
			return Parse(m)
		}
		m.Flags &^= parseFlags
		if off != EthLen {
			m.Flags |= mbuf.FlagVLAN
		}
		return parse6(m, m.Data(), off)
	})
}

// TestParse6PlainMatchesGeneral: Parse's own IPv6 path (plain packets)
// decides as parse6 on valid packets and on random single-byte and
// single-bit mutations of their headers, cuts and padding, tagged and
// not.
func TestParse6PlainMatchesGeneral(t *testing.T) {
	p, err := mbuf.NewPool(mbuf.Config{Name: "t", Count: 64, CacheSize: 8, Checked: true})
	if err != nil {
		t.Fatal(err)
	}
	c := p.NewCache()
	t.Cleanup(func() { c.Flush(); p.Close() })
	src, dst := mustIP6("2001:2::1"), mustIP6("2001:2:0:1::2")
	echo := []byte{128, 0, 0, 0, 0, 1, 0, 1}
	ns := append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, dst...)
	seeds := [][]byte{udp6(t, 0), udp6(t, 100), append(udp6(t, 0), 0, 0),
		raw6(ProtoTCP, 64, src, dst, make([]byte, 20)),
		raw6(ProtoNoNext, 1, src, dst, nil),
		raw6(ProtoESP, 2, src, dst, make([]byte, 16)),
		raw6(ProtoICMPv6, 64, src, dst, echo),
		raw6(ProtoICMPv6, 255, src, mustIP6("ff02::1:ff00:2"), ns),
		raw6(ProtoRouting, 64, src, dst, cat(ext(ProtoUDP, 0), make([]byte, 8))),
		raw6(ProtoHopByHop, 64, src, dst, cat(ext(ProtoUDP, 0), make([]byte, 8))),
		raw6(ProtoUDP, 64, mustIP6("::1"), dst, make([]byte, 8)),
		raw6(ProtoUDP, 64, src, make([]byte, 16), make([]byte, 8)),
	}
	// The same frames with an 802.1Q tag.
	for _, s := range seeds[:len(seeds):len(seeds)] {
		f := cat(s[:12], []byte{0x81, 0x00, 0x00, 0x07}, s[12:])
		seeds = append(seeds, f)
	}
	// Bytes that matter most, so mutations land on the decisions more often.
	special := []byte{0, 1, 0xff, 0x60, 0x6f, ProtoHopByHop, ProtoRouting, ProtoFragment, ProtoAH, ProtoDstOpts, ProtoICMPv6, ProtoUDP, ProtoTCP, 63, 64, 255}
	r := rand.New(rand.NewPCG(7, 8))
	n := 0
	for _, s := range seeds {
		checkParse6Paths(t, c, s)
		off := EthLen
		if binary.BigEndian.Uint16(s[12:14]) == EtherTypeVLAN {
			off += VLANLen
		}
		end := min(len(s), off+IPv6Len+8)
		for i := off; i < end; i++ {
			for range 48 {
				f := append([]byte(nil), s...)
				switch r.IntN(3) {
				case 0:
					f[i] ^= 1 << r.IntN(8)
				case 1:
					f[i] = byte(r.Uint32())
				default:
					f[i] = special[r.IntN(len(special))]
				}
				if r.IntN(4) == 0 { // padding after the packet, or a cut
					if r.IntN(2) == 0 {
						f = append(f, make([]byte, r.IntN(64))...)
					} else {
						f = f[:r.IntN(len(f)+1)]
					}
				}
				checkParse6Paths(t, c, f)
				n++
			}
		}
	}
	t.Logf("%d frames", n)
}
