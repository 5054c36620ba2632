package pkt

import (
	"encoding/binary"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

const burst = 32

// frames64 returns burst 64-byte-class frames of different flows: IPv4/UDP
// 60 bytes (64 on the wire with the FCS), IPv6/UDP 64 bytes.
func frames64(tb testing.TB, v6 bool) [][]byte {
	fs := make([][]byte, burst)
	for i := range fs {
		var f []byte
		if v6 {
			f = udp6(tb, 2)
			binary.BigEndian.PutUint16(f[14+40:], uint16(1000+i))
			f[14+8+15] = byte(i)
		} else {
			f = udp4(tb, 18)
			binary.BigEndian.PutUint16(f[14+20:], uint16(1000+i))
			f[14+15] = byte(i)
			fix4(f, 14)
		}
		fs[i] = f
	}
	return fs
}

func loadBurst(tb testing.TB, c *mbuf.Cache, fs [][]byte) []*mbuf.Mbuf {
	ms := make([]*mbuf.Mbuf, len(fs))
	for i, f := range fs {
		ms[i] = load(tb, c, f)
	}
	return ms
}

// benchPkt: Parse + FlowHash + TTL/hop-limit decrement per packet. The TTL
// word and checksum are put back after each packet (one 4-byte store) so
// every iteration does the same work.
func benchPkt(b *testing.B, v6 bool) {
	_, c := testPool(b)
	ms := loadBurst(b, c, frames64(b, v6))
	b.ReportAllocs()
	b.ResetTimer()
	var sink uint32
	if v6 {
		for i := 0; i < b.N; i++ {
			m := ms[i&(burst-1)]
			if cl, _ := Parse(m); cl != ClassIPv6 {
				b.Fatal("parse")
			}
			m.Hash = FlowHash(m, 1)
			if DecHopLimit6(m) {
				b.Fatal("expired")
			}
			m.Data()[14+7] = 64
			sink += m.Hash
		}
	} else {
		for i := 0; i < b.N; i++ {
			m := ms[i&(burst-1)]
			if cl, _ := Parse(m); cl != ClassIPv4 {
				b.Fatal("parse")
			}
			m.Hash = FlowHash(m, 1)
			d := m.Data()
			save := binary.LittleEndian.Uint32(d[14+8:])
			if DecTTL4(m) {
				b.Fatal("expired")
			}
			binary.LittleEndian.PutUint32(d[14+8:], save)
			sink += m.Hash
		}
	}
	_ = sink
}

func BenchmarkParseHashTTL4(b *testing.B) { benchPkt(b, false) }
func BenchmarkParseHashTTL6(b *testing.B) { benchPkt(b, true) }

// benchGopacket is the baseline: gopacket's DecodingLayerParser over the
// same frames (Ethernet, IPv4/IPv6, UDP; it validates no checksum and no
// address, and hashes and decrements nothing).
func benchGopacket(b *testing.B, v6 bool) {
	fs := frames64(b, v6)
	var (
		e  layers.Ethernet
		i4 layers.IPv4
		i6 layers.IPv6
		u  layers.UDP
		pl gopacket.Payload
	)
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &e, &i4, &i6, &u, &pl)
	p.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.DecodeLayers(fs[i&(burst-1)], &decoded); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGopacketDecode4(b *testing.B) { benchGopacket(b, false) }
func BenchmarkGopacketDecode6(b *testing.B) { benchGopacket(b, true) }

// Checksum of a 1500-byte packet, against the naive 16-bit reference.
func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	for i := range buf {
		buf[i] = byte(i)
	}
	b.SetBytes(1500)
	for i := 0; i < b.N; i++ {
		Checksum(buf)
	}
}

func BenchmarkChecksum1500Naive(b *testing.B) {
	buf := make([]byte, 1500)
	for i := range buf {
		buf[i] = byte(i)
	}
	b.SetBytes(1500)
	for i := 0; i < b.N; i++ {
		refChecksum(buf)
	}
}

// ICMP error generation (time exceeded about a 64-byte IPv4 packet).
func BenchmarkBuildError4(b *testing.B) {
	_, c := testPool(b)
	in := load(b, c, frames64(b, false)[0])
	Parse(in)
	out := alloc(b, c)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !BuildError4(out, in, TTLExceeded, 0, ourAddr4) {
			b.Fatal("build")
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	_, c := testPool(t)
	m4 := parsed(t, c, udp4(t, 18))
	m6 := parsed(t, c, udp6(t, 2))
	ip := ipv4(layers.IPProtocolICMPv4)
	echo := serialize(t, eth(layers.EthernetTypeIPv4), ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, gopacket.Payload(make([]byte, 32)))
	e4 := parsed(t, c, echo)
	ip6 := ipv6(layers.IPProtocolICMPv6)
	ic6 := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
	ic6.SetNetworkLayerForChecksum(ip6)
	echo6 := serialize(t, eth(layers.EthernetTypeIPv6), ip6, ic6, &layers.ICMPv6Echo{Identifier: 1}, gopacket.Payload(make([]byte, 32)))
	e6 := parsed(t, c, echo6)
	big := parsed(t, c, bigUDP4(t, 1500, nil))
	bigSave := append([]byte(nil), big.Data()...)
	out := alloc(t, c)
	defer free(c, m4, m6, e4, e6, out, big)
	var frags [8]*mbuf.Mbuf
	var tb TokenBucket
	tb.Set(100, 10, 0)
	now := int64(0)
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"Parse4", func() { Parse(m4) }},
		{"Parse6", func() { Parse(m6) }},
		{"FlowHash", func() { FlowHash(m4, 1); FlowHash(m6, 1) }},
		{"DecTTL4", func() { m4.Data()[14+8] = 64; DecTTL4(m4) }},
		{"DecHopLimit6", func() { m6.Data()[14+7] = 64; DecHopLimit6(m6) }},
		{"EchoReply4", func() { copy(e4.Data(), echo); Parse(e4); EchoReply4(e4) }},
		{"EchoReply6", func() { copy(e6.Data(), echo6); Parse(e6); EchoReply6(e6) }},
		{"CheckError", func() { CheckError(m4, TTLExceeded); CheckError(m6, HopLimitExceeded6) }},
		{"BuildError4", func() { BuildError4(out, m4, FragNeeded, 1400, ourAddr4) }},
		{"BuildError6", func() { BuildError6(out, m6, PacketTooBig6, 1280, &ourAddr6) }},
		{"Fragment4", func() {
			big.SetLen(len(bigSave))
			copy(big.Data(), bigSave)
			if n, r := Fragment4(big, 576, c, frags[:]); r == FragOK {
				c.Free(frags[1:n])
			}
		}},
		{"TokenBucket", func() { now += 1e6; tb.Allow(now) }},
	} {
		if a := testing.AllocsPerRun(1000, tc.fn); a != 0 {
			t.Errorf("%s: %v allocs per run", tc.name, a)
		}
	}
}
