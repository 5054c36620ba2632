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
