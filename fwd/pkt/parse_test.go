package pkt

import (
	"encoding/binary"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// fix4 recomputes the IPv4 header checksum at offset o.
func fix4(f []byte, o int) []byte {
	h := f[o:min(o+int(f[o]&0xf)*4, len(f))]
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:12], refChecksum(h))
	return f
}

// set4 applies fn to the IPv4 header at 14 and fixes the checksum.
func set4(f []byte, fn func(h []byte)) []byte {
	fn(f[14:])
	return fix4(f, 14)
}

func addr4(f []byte, src, dst [4]byte) []byte {
	return set4(f, func(h []byte) {
		if src != [4]byte{} {
			copy(h[12:16], src[:])
		}
		if dst != [4]byte{} {
			copy(h[16:20], dst[:])
		}
	})
}

// with4Options builds a UDP frame whose IPv4 options are the raw bytes
// opts (a multiple of 4 long; they need not be well formed).
func with4Options(t testing.TB, opts []byte) []byte {
	ip := ipv4(layers.IPProtocolUDP)
	for range opts {
		ip.Options = append(ip.Options, layers.IPv4Option{OptionType: 1, OptionLength: 1})
	}
	u := &layers.UDP{SrcPort: 7, DstPort: 9}
	u.SetNetworkLayerForChecksum(ip)
	f := serialize(t, eth(layers.EthernetTypeIPv4), ip, u, gopacket.Payload(make([]byte, 40)))
	copy(f[14+20:], opts)
	return fix4(f, 14)
}

// raw6 builds Ethernet/IPv6 with a raw payload after the fixed header.
func raw6(nh uint8, hop uint8, src, dst []byte, payload []byte) []byte {
	f := make([]byte, 14+40+len(payload))
	copy(f[0:6], macB)
	copy(f[6:12], macA)
	binary.BigEndian.PutUint16(f[12:14], EtherTypeIPv6)
	ip := f[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(payload)))
	ip[6], ip[7] = nh, hop
	copy(ip[8:24], src)
	copy(ip[24:40], dst)
	copy(ip[40:], payload)
	return f
}

// ext is an IPv6 extension header of 8*(1+n) bytes.
func ext(next uint8, n int) []byte {
	h := make([]byte, 8*(1+n))
	h[0], h[1] = next, uint8(n)
	return h
}

func cat(bs ...[]byte) []byte {
	var o []byte
	for _, b := range bs {
		o = append(o, b...)
	}
	return o
}

func mustIP6(s string) []byte { return []byte(ipFrom(s)) }

func TestParse(t *testing.T) {
	_, c := testPool(t)
	tcp6 := &layers.TCP{SrcPort: 443, DstPort: 5555}
	ip6t := ipv6(layers.IPProtocolTCP)
	tcp6.SetNetworkLayerForChecksum(ip6t)
	tcp4 := &layers.TCP{SrcPort: 80, DstPort: 1000}
	ip4t := ipv4(layers.IPProtocolTCP)
	tcp4.SetNetworkLayerForChecksum(ip4t)
	ip4v := ipv4(layers.IPProtocolUDP)
	u4v := &layers.UDP{SrcPort: 1, DstPort: 2}
	u4v.SetNetworkLayerForChecksum(ip4v)
	ip4q := ipv4(layers.IPProtocolICMPv4)
	icmpEcho := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6,
		ProtAddressSize: 4, Operation: 1, SourceHwAddress: macA, SourceProtAddress: ip4A,
		DstHwAddress: make([]byte, 6), DstProtAddress: ip4B}
	src6, dst6 := []byte(ip6A), []byte(ip6B)
	ns := []byte{135, 0, 0, 0, 0, 0, 0, 0}
	ns = append(ns, dst6...)

	for _, tc := range []struct {
		name   string
		frame  []byte
		class  Class
		reason Reason
		l3, l4 int // expected offsets (checked when class != drop); l4 -1: 0
		proto  uint8
		length int // expected data length after trimming (0: unchanged)
	}{
		{"udp4", udp4(t, 18), ClassIPv4, OK, 14, 34, 17, 0},
		{"tcp4", serialize(t, eth(layers.EthernetTypeIPv4), ip4t, tcp4), ClassIPv4, OK, 14, 34, 6, 0},
		{"padded ipv4 trimmed", append(udp4(t, 0), make([]byte, 18)...), ClassIPv4, OK, 14, 34, 17, 42},
		{"vlan udp4", serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Priority: 3, Type: layers.EthernetTypeIPv4}, ip4v, u4v), ClassIPv4, OK, 18, 38, 17, 0},
		{"qinq single tag", func() []byte {
			f := serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}, ip4v, u4v)
			binary.BigEndian.PutUint16(f[12:14], EtherTypeQinQ)
			return f
		}(), ClassDrop, QinQ, 0, 0, 0, 0},
		{"double tag", func() []byte {
			return serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 8, Type: layers.EthernetTypeIPv4}, ip4v, u4v)
		}(), ClassDrop, VLANStacked, 0, 0, 0, 0},
		{"qinq double tag", func() []byte {
			f := serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 8, Type: layers.EthernetTypeIPv4}, ip4v, u4v)
			binary.BigEndian.PutUint16(f[12:14], EtherTypeQinQ)
			return f
		}(), ClassDrop, QinQ, 0, 0, 0, 0},
		{"icmp echo", serialize(t, eth(layers.EthernetTypeIPv4), ip4q, icmpEcho, gopacket.Payload([]byte("ping"))), ClassIPv4, OK, 14, 34, 1, 0},
		{"arp", serialize(t, eth(layers.EthernetTypeARP), arp), ClassARP, OK, 14, -1, 0, 0},
		{"arp not ipv4", func() []byte {
			f := serialize(t, eth(layers.EthernetTypeARP), arp)
			f[14+2] = 0x86
			return f
		}(), ClassDrop, BadARP, 0, 0, 0, 0},
		{"arp short", serialize(t, eth(layers.EthernetTypeARP), arp)[:14+20], ClassDrop, TooShort, 0, 0, 0, 0},
		{"empty", nil, ClassDrop, TooShort, 0, 0, 0, 0},
		{"short ethernet", make([]byte, 13), ClassDrop, TooShort, 0, 0, 0, 0},
		{"short tag", func() []byte { f := udp4(t, 0)[:16]; f[12], f[13] = 0x81, 0; return f }(), ClassDrop, TooShort, 0, 0, 0, 0},
		{"lldp", serialize(t, eth(layers.EthernetTypeLinkLayerDiscovery), gopacket.Payload(make([]byte, 46))), ClassDrop, UnknownEtherType, 0, 0, 0, 0},
		{"ipv4 short", udp4(t, 0)[:14+19], ClassDrop, TooShort, 0, 0, 0, 0},
		{"ipv4 bad version", set4(udp4(t, 8), func(h []byte) { h[0] = 0x65 }), ClassDrop, BadVersion, 0, 0, 0, 0},
		{"ipv4 ihl 4", set4(udp4(t, 8), func(h []byte) { h[0] = 0x44 }), ClassDrop, BadIHL, 0, 0, 0, 0},
		{"ipv4 ihl beyond frame", set4(udp4(t, 0), func(h []byte) { h[0] = 0x4f }), ClassDrop, TooShort, 0, 0, 0, 0},
		{"ipv4 total < ihl", set4(udp4(t, 8), func(h []byte) { h[2], h[3] = 0, 19 }), ClassDrop, BadTotalLength, 0, 0, 0, 0},
		{"ipv4 total > frame", set4(udp4(t, 8), func(h []byte) { h[2], h[3] = 0, 200 }), ClassDrop, BadTotalLength, 0, 0, 0, 0},
		{"ipv4 bad checksum", func() []byte { f := udp4(t, 8); f[14+10] ^= 1; return f }(), ClassDrop, BadChecksum, 0, 0, 0, 0},
		{"ipv4 options bad checksum", func() []byte { f := with4Options(t, []byte{1, 1, 1, 0}); f[14+10] ^= 1; return f }(), ClassDrop, BadChecksum, 0, 0, 0, 0},
		{"ipv4 options ok", with4Options(t, []byte{7, 7, 4, 0, 0, 0, 0, 1}), ClassIPv4, OK, 14, 42, 17, 0},
		{"ipv4 router alert", with4Options(t, []byte{148, 4, 0, 0}), ClassIPv4, OK, 14, 38, 17, 0},
		{"ipv4 lsrr", with4Options(t, []byte{131, 7, 4, 1, 2, 3, 4, 0}), ClassDrop, SourceRoute, 0, 0, 0, 0},
		{"ipv4 ssrr", with4Options(t, []byte{1, 137, 7, 4, 1, 2, 3, 4}), ClassDrop, SourceRoute, 0, 0, 0, 0},
		{"ipv4 option overruns", with4Options(t, []byte{1, 1, 68, 9}), ClassDrop, BadOptions, 0, 0, 0, 0},
		{"ipv4 option length 1", with4Options(t, []byte{68, 1, 5, 0}), ClassDrop, BadOptions, 0, 0, 0, 0},
		{"ipv4 option type at end", with4Options(t, []byte{1, 1, 1, 68}), ClassDrop, BadOptions, 0, 0, 0, 0},
		{"ipv4 first fragment", set4(udp4(t, 16), func(h []byte) { h[6] = 0x20 }), ClassIPv4, OK, 14, 34, 17, 0},
		{"ipv4 later fragment", set4(udp4(t, 16), func(h []byte) { h[6], h[7] = 0, 3 }), ClassIPv4, OK, 14, -1, 17, 0},
		{"ipv4 fragment past 64k", set4(udp4(t, 16), func(h []byte) { h[6], h[7] = 0x1f, 0xff }), ClassDrop, BadFragment, 0, 0, 0, 0},
		{"src 0/8", addr4(udp4(t, 8), [4]byte{0, 1, 2, 3}, [4]byte{}), ClassDrop, SrcUnspecified, 0, 0, 0, 0},
		{"src 127/8", addr4(udp4(t, 8), [4]byte{127, 0, 0, 1}, [4]byte{}), ClassDrop, SrcLoopback, 0, 0, 0, 0},
		{"src multicast", addr4(udp4(t, 8), [4]byte{224, 0, 0, 5}, [4]byte{}), ClassDrop, SrcMulticast, 0, 0, 0, 0},
		{"src class E", addr4(udp4(t, 8), [4]byte{240, 0, 0, 1}, [4]byte{}), ClassDrop, SrcReserved, 0, 0, 0, 0},
		{"src broadcast", addr4(udp4(t, 8), [4]byte{255, 255, 255, 255}, [4]byte{}), ClassDrop, SrcReserved, 0, 0, 0, 0},
		{"dst 0/8", addr4(udp4(t, 8), [4]byte{}, [4]byte{0, 0, 0, 9}), ClassDrop, DstUnspecified, 0, 0, 0, 0},
		{"dst 127/8", addr4(udp4(t, 8), [4]byte{}, [4]byte{127, 1, 1, 1}), ClassDrop, DstLoopback, 0, 0, 0, 0},
		{"dst multicast", addr4(udp4(t, 8), [4]byte{}, [4]byte{239, 1, 1, 1}), ClassDrop, DstMulticast, 0, 0, 0, 0},
		{"dst class E", addr4(udp4(t, 8), [4]byte{}, [4]byte{250, 1, 1, 1}), ClassDrop, DstReserved, 0, 0, 0, 0},
		{"dst broadcast", addr4(udp4(t, 8), [4]byte{}, [4]byte{255, 255, 255, 255}), ClassDrop, DstBroadcast, 0, 0, 0, 0},
		{"dst 223.255", addr4(udp4(t, 8), [4]byte{}, [4]byte{223, 255, 255, 255}), ClassIPv4, OK, 14, 34, 17, 0},

		{"udp6", udp6(t, 10), ClassIPv6, OK, 14, 54, 17, 0},
		{"tcp6", serialize(t, eth(layers.EthernetTypeIPv6), ip6t, tcp6), ClassIPv6, OK, 14, 54, 6, 0},
		{"padded ipv6 trimmed", append(udp6(t, 0), make([]byte, 10)...), ClassIPv6, OK, 14, 54, 17, 62},
		{"ipv6 short", udp6(t, 0)[:14+39], ClassDrop, TooShort, 0, 0, 0, 0},
		{"ipv6 bad version", func() []byte { f := udp6(t, 0); f[14] = 0x40; return f }(), ClassDrop, BadVersion, 0, 0, 0, 0},
		{"ipv6 payload > frame", func() []byte { f := udp6(t, 0); f[14+5]++; return f }(), ClassDrop, BadPayloadLength, 0, 0, 0, 0},
		{"ipv6 no next header", raw6(ProtoNoNext, 64, src6, dst6, nil), ClassIPv6, OK, 14, 54, 59, 0},
		{"ipv6 routing+dstopts", raw6(ProtoRouting, 64, src6, dst6, cat(ext(ProtoDstOpts, 2), ext(ProtoUDP, 0), make([]byte, 8))), ClassIPv6, OK, 14, 54 + 24 + 8, 17, 0},
		{"ipv6 ah", raw6(ProtoAH, 64, src6, dst6, cat([]byte{ProtoTCP, 4, 0, 0}, make([]byte, 20), make([]byte, 20))), ClassIPv6, OK, 14, 54 + 24, 6, 0},
		{"ipv6 first fragment", raw6(ProtoFragment, 64, src6, dst6, cat([]byte{ProtoUDP, 0, 0, 1, 0, 0, 0, 1}, make([]byte, 16))), ClassIPv6, OK, 14, 62, 17, 0},
		{"ipv6 later fragment", raw6(ProtoDstOpts, 64, src6, dst6, cat(ext(ProtoFragment, 0), []byte{ProtoUDP, 0, 0, 0x10, 0, 0, 0, 1}, make([]byte, 16))), ClassIPv6, OK, 14, -1, 17, 0},
		{"ipv6 hop-by-hop", raw6(ProtoHopByHop, 1, src6, dst6, cat(ext(ProtoUDP, 0), make([]byte, 8))), ClassHopByHop, OK, 14, 62, 17, 0},
		{"mld with hop-by-hop from ::", raw6(ProtoHopByHop, 1, make([]byte, 16), mustIP6("ff02::16"), cat(ext(ProtoICMPv6, 0), []byte{143, 0, 0, 0, 0, 0, 0, 0})), ClassHopByHop, OK, 14, 62, 58, 0},
		{"ipv6 hop-by-hop not first", raw6(ProtoDstOpts, 64, src6, dst6, cat(ext(ProtoHopByHop, 0), ext(ProtoUDP, 0), make([]byte, 8))), ClassDrop, BadExtHeader, 0, 0, 0, 0},
		{"ipv6 ext truncated", raw6(ProtoRouting, 64, src6, dst6, ext(ProtoUDP, 1)[:8]), ClassDrop, BadExtHeader, 0, 0, 0, 0},
		{"ipv6 ext header cut", raw6(ProtoRouting, 64, src6, dst6, make([]byte, 4)), ClassDrop, BadExtHeader, 0, 0, 0, 0},
		{"ipv6 too many ext", raw6(ProtoDstOpts, 64, src6, dst6, cat(ext(60, 0), ext(60, 0), ext(60, 0), ext(60, 0), ext(60, 0), ext(60, 0), ext(60, 0), ext(60, 0), ext(17, 0))), ClassDrop, TooManyExtHeaders, 0, 0, 0, 0},
		{"nd ns", raw6(ProtoICMPv6, 255, src6, mustIP6("ff02::1:ff00:2"), ns), ClassND, OK, 14, 54, 58, 0},
		{"nd dad from ::", raw6(ProtoICMPv6, 255, make([]byte, 16), mustIP6("ff02::1:ff00:2"), ns), ClassND, OK, 14, 54, 58, 0},
		{"nd hop limit 64", raw6(ProtoICMPv6, 64, src6, dst6, ns), ClassDrop, BadNDHopLimit, 0, 0, 0, 0},
		{"src6 multicast", raw6(ProtoUDP, 64, mustIP6("ff02::1"), dst6, make([]byte, 8)), ClassDrop, SrcMulticast, 0, 0, 0, 0},
		{"src6 loopback", raw6(ProtoUDP, 64, mustIP6("::1"), dst6, make([]byte, 8)), ClassDrop, SrcLoopback, 0, 0, 0, 0},
		{"src6 unspecified", raw6(ProtoUDP, 64, make([]byte, 16), dst6, make([]byte, 8)), ClassDrop, SrcUnspecified, 0, 0, 0, 0},
		{"dst6 multicast", raw6(ProtoUDP, 64, src6, mustIP6("ff0e::1"), make([]byte, 8)), ClassDrop, DstMulticast, 0, 0, 0, 0},
		{"dst6 loopback", raw6(ProtoUDP, 64, src6, mustIP6("::1"), make([]byte, 8)), ClassDrop, DstLoopback, 0, 0, 0, 0},
		{"dst6 unspecified", raw6(ProtoUDP, 64, src6, make([]byte, 16), make([]byte, 8)), ClassDrop, DstUnspecified, 0, 0, 0, 0},
		{"dst6 v4-mapped ok", raw6(ProtoUDP, 64, src6, mustIP6("::ffff:198.18.0.1"), make([]byte, 8)), ClassIPv6, OK, 14, 54, 17, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, c, tc.frame)
			defer free(c, m)
			m.Flags |= mbuf.FlagIPv6 // stale flags must be reset
			cl, r := Parse(m)
			if cl != tc.class || r != tc.reason {
				t.Fatalf("Parse = %v, %v; want %v, %v", cl, r, tc.class, tc.reason)
			}
			if cl == ClassDrop {
				return
			}
			l4 := max(tc.l4, 0)
			if int(m.L3Off) != tc.l3 || int(m.L4Off) != l4 || (cl != ClassARP && m.L4Proto != tc.proto) {
				t.Errorf("L3Off %d L4Off %d L4Proto %d; want %d %d %d", m.L3Off, m.L4Off, m.L4Proto, tc.l3, l4, tc.proto)
			}
			if tc.length != 0 && m.Len() != tc.length {
				t.Errorf("length %d after trim, want %d", m.Len(), tc.length)
			}
			v4 := m.Flags&mbuf.FlagIPv4 != 0
			v6 := m.Flags&mbuf.FlagIPv6 != 0
			if (cl == ClassIPv4) != v4 || (cl == ClassIPv6 || cl == ClassND || cl == ClassHopByHop) != v6 {
				t.Errorf("flags %#x for class %v", m.Flags, cl)
			}
			if (tc.l3 == 18) != (m.Flags&mbuf.FlagVLAN != 0) {
				t.Errorf("FlagVLAN wrong: %#x", m.Flags)
			}
			if tc.l3 == 18 && m.VLANTCI&0xfff == 0 {
				t.Errorf("VLANTCI %#x", m.VLANTCI)
			}
		})
	}
}

// TestParseAgainstGopacket decodes random valid frames with gopacket and
// checks Parse agrees on the offsets, protocol and addresses.
func TestParseAgainstGopacket(t *testing.T) {
	_, c := testPool(t)
	var (
		e   layers.Ethernet
		d1q layers.Dot1Q
		i4  layers.IPv4
		i6  layers.IPv6
		u   layers.UDP
		tc  layers.TCP
		pl  gopacket.Payload
	)
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &e, &d1q, &i4, &i6, &u, &tc, &pl)
	p.IgnoreUnsupported = true
	var decoded []gopacket.LayerType
	for i := range 2000 {
		n := i % 300
		var f []byte
		vlan := i%3 == 0
		var ls []gopacket.SerializableLayer
		if vlan {
			ls = append(ls, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q})
		}
		if i%2 == 0 {
			ip := ipv4(layers.IPProtocolUDP)
			ip.TTL = uint8(i)
			ip.SrcIP = []byte{198, 18, byte(i), byte(i >> 8)}
			ul := &layers.UDP{SrcPort: layers.UDPPort(i), DstPort: 53}
			ul.SetNetworkLayerForChecksum(ip)
			if vlan {
				ls = append(ls, &layers.Dot1Q{VLANIdentifier: uint16(i), Type: layers.EthernetTypeIPv4})
			} else {
				ls = append(ls, eth(layers.EthernetTypeIPv4))
			}
			ls = append(ls, ip, ul, gopacket.Payload(make([]byte, n)))
		} else {
			ip := ipv6(layers.IPProtocolTCP)
			ip.SrcIP = append([]byte(nil), ip6A...)
			ip.SrcIP[15] = byte(i)
			tl := &layers.TCP{SrcPort: layers.TCPPort(i), DstPort: 443, Window: 1000}
			tl.SetNetworkLayerForChecksum(ip)
			if vlan {
				ls = append(ls, &layers.Dot1Q{VLANIdentifier: uint16(i), Type: layers.EthernetTypeIPv6})
			} else {
				ls = append(ls, eth(layers.EthernetTypeIPv6))
			}
			ls = append(ls, ip, tl, gopacket.Payload(make([]byte, n)))
		}
		f = serialize(t, ls...)
		if err := p.DecodeLayers(f, &decoded); err != nil {
			t.Fatalf("gopacket: %v", err)
		}
		m := load(t, c, f)
		cl, r := Parse(m)
		if r != OK {
			t.Fatalf("frame %d: %v", i, r)
		}
		var wantL3 int = 14
		if vlan {
			wantL3 = 18
			if m.VLANTCI != d1q.VLANIdentifier {
				t.Fatalf("tci %d want %d", m.VLANTCI, d1q.VLANIdentifier)
			}
		}
		d := m.Data()
		switch cl {
		case ClassIPv4:
			if int(m.L4Off) != wantL3+int(i4.IHL)*4 || m.L4Proto != uint8(i4.Protocol) || !i4.SrcIP.Equal(d[m.L3Off+12:m.L3Off+16]) {
				t.Fatalf("ipv4 metadata mismatch")
			}
			if binary.BigEndian.Uint16(d[m.L4Off:]) != uint16(u.SrcPort) {
				t.Fatal("udp port mismatch")
			}
		case ClassIPv6:
			if int(m.L4Off) != wantL3+40 || m.L4Proto != uint8(i6.NextHeader) || !i6.SrcIP.Equal(d[m.L3Off+8:m.L3Off+24]) {
				t.Fatalf("ipv6 metadata mismatch")
			}
			if binary.BigEndian.Uint16(d[m.L4Off:]) != uint16(tc.SrcPort) {
				t.Fatal("tcp port mismatch")
			}
		default:
			t.Fatalf("class %v", cl)
		}
		if int(m.L3Off) != wantL3 {
			t.Fatalf("L3Off %d want %d", m.L3Off, wantL3)
		}
		free(c, m)
	}
}

func TestReasonStrings(t *testing.T) {
	seen := map[string]bool{}
	for r := OK; r < NumReasons; r++ {
		s := r.String()
		if s == "" || s == "unknown" || seen[s] {
			t.Errorf("reason %d: name %q", r, s)
		}
		seen[s] = true
	}
	if Reason(200).String() != "unknown" || Class(200).String() != "unknown" {
		t.Error("out of range names")
	}
	cats := map[Reason]Category{OK: CatNone, TooShort: CatParse, BadARP: CatParse, UnknownEtherType: CatNotIP,
		BadChecksum: CatBadHeader, BadNDHopLimit: CatBadHeader, SrcUnspecified: CatMartian, DstBroadcast: CatMartian}
	for r, want := range cats {
		if r.Category() != want {
			t.Errorf("%v category %d want %d", r, r.Category(), want)
		}
	}
	if FlagFragment&(mbuf.FlagVLAN|mbuf.FlagIPv4|mbuf.FlagIPv6|mbuf.FlagCopied|mbuf.FlagHashValid) != 0 || FlagFragment >= mbuf.FlagUser {
		t.Error("FlagFragment collides with mbuf's flags")
	}
}
