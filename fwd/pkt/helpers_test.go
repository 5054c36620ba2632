package pkt

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// testPool returns a checked pool and a cache, both cleaned up.
func testPool(t testing.TB) (*mbuf.Pool, *mbuf.Cache) {
	t.Helper()
	p, err := mbuf.NewPool(mbuf.Config{Name: "pkt-test", Count: 512, CacheSize: 64, Checked: true})
	if err != nil {
		t.Fatal(err)
	}
	c := p.NewCache()
	t.Cleanup(func() { c.Flush(); p.Close() })
	return p, c
}

// load copies frame into a fresh mbuf.
func load(t testing.TB, c *mbuf.Cache, frame []byte) *mbuf.Mbuf {
	t.Helper()
	var one [1]*mbuf.Mbuf
	if c.Alloc(one[:]) != 1 {
		t.Fatal("pool exhausted")
	}
	m := one[0]
	b := m.Append(len(frame))
	if b == nil {
		t.Fatalf("frame of %d bytes does not fit", len(frame))
	}
	copy(b, frame)
	return m
}

func free(c *mbuf.Cache, ms ...*mbuf.Mbuf) { c.Free(ms) }

// serialize builds a frame with gopacket (lengths and checksums computed).
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	ip4A = net.IP{198, 18, 0, 1}
	ip4B = net.IP{198, 19, 0, 2}
	ip6A = net.ParseIP("2001:2::1")
	ip6B = net.ParseIP("2001:2:0:1::2")
)

func eth(et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}
}

func ipv4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: ip4A, DstIP: ip4B, Id: 0x1234}
}

func ipv6(nh layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: nh, SrcIP: ip6A, DstIP: ip6B}
}

// udp4 is an Ethernet/IPv4/UDP frame with n bytes of payload.
func udp4(t testing.TB, n int) []byte {
	ip := ipv4(layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: 1234, DstPort: 53}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth(layers.EthernetTypeIPv4), ip, u, gopacket.Payload(make([]byte, n)))
}

func udp6(t testing.TB, n int) []byte {
	ip := ipv6(layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: 1234, DstPort: 53}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth(layers.EthernetTypeIPv6), ip, u, gopacket.Payload(make([]byte, n)))
}

// refSum is the naive RFC 1071 checksum: 16-bit words, 32-bit sum, fold.
func refChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// refIPv4Checksum recomputes an IPv4 header checksum from scratch.
func refIPv4Checksum(h []byte) uint16 {
	c := append([]byte(nil), h...)
	c[10], c[11] = 0, 0
	return refChecksum(c)
}

// refICMPv6Checksum recomputes an ICMPv6 checksum with its pseudo-header.
func refICMPv6Checksum(ip6 []byte, icmp []byte) uint16 {
	ph := make([]byte, 0, 40+len(icmp))
	ph = append(ph, ip6[8:40]...)
	ph = binary.BigEndian.AppendUint32(ph, uint32(len(icmp)))
	ph = append(ph, 0, 0, 0, 58)
	c := append([]byte(nil), icmp...)
	c[2], c[3] = 0, 0
	return refChecksum(append(ph, c...))
}

func ipFrom(s string) net.IP { return net.ParseIP(s).To16() }
