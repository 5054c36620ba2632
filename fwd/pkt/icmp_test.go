package pkt

import (
	"encoding/binary"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	ourAddr4 = uint32(198<<24 | 18<<16 | 255<<8 | 1)
	ourAddr6 = [16]byte{0x20, 0x01, 0, 2, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1}
)

func parsed(t testing.TB, c *mbuf.Cache, f []byte) *mbuf.Mbuf {
	t.Helper()
	m := load(t, c, f)
	if _, r := Parse(m); r != OK {
		t.Fatalf("Parse: %v", r)
	}
	return m
}

func alloc(t testing.TB, c *mbuf.Cache) *mbuf.Mbuf {
	var one [1]*mbuf.Mbuf
	if c.Alloc(one[:]) != 1 {
		t.Fatal("pool exhausted")
	}
	return one[0]
}

func TestKindTypeCode(t *testing.T) {
	want := map[Kind][2]uint8{NetUnreach: {3, 0}, HostUnreach: {3, 1}, ProtoUnreach: {3, 2}, PortUnreach: {3, 3},
		FragNeeded: {3, 4}, AdminProhibited: {3, 13}, TTLExceeded: {11, 0}, ParamProblem: {12, 0},
		NoRoute6: {1, 0}, AdminProhibited6: {1, 1}, AddrUnreach6: {1, 3}, PortUnreach6: {1, 4}, RejectRoute6: {1, 6},
		PacketTooBig6: {2, 0}, HopLimitExceeded6: {3, 0}, ParamHeader6: {4, 0}, ParamNextHeader6: {4, 1}, ParamOption6: {4, 2}}
	if len(want) != int(NumKinds)-1 {
		t.Fatalf("table covers %d kinds of %d", len(want), NumKinds-1)
	}
	for k, tc := range want {
		if ty, co := k.TypeCode(); ty != tc[0] || co != tc[1] {
			t.Errorf("%v: %d/%d want %d/%d", k, ty, co, tc[0], tc[1])
		}
		if k.IsV6() != (k >= NoRoute6) || k.String() == "unknown" {
			t.Errorf("%v: IsV6/String", k)
		}
	}
}

func TestBuildError4(t *testing.T) {
	_, c := testPool(t)
	ip4v := ipv4(layers.IPProtocolUDP)
	u4v := &layers.UDP{SrcPort: 1, DstPort: 2}
	u4v.SetNetworkLayerForChecksum(ip4v)
	inputs := map[string][]byte{
		"small": udp4(t, 10),
		"large": udp4(t, 1400),
		"vlan": serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeIPv4}, ip4v, u4v, gopacket.Payload(make([]byte, 600))),
		"options": with4Options(t, []byte{148, 4, 0, 0}),
	}
	for name, f := range inputs {
		for k := NetUnreach; k <= ParamProblem; k++ {
			in := parsed(t, c, f)
			orig := append([]byte(nil), in.Data()[in.L3Off:]...)
			out := alloc(t, c)
			arg := uint32(0)
			switch k {
			case FragNeeded:
				arg = 1400
			case ParamProblem:
				arg = 9
			}
			if !BuildError4(out, in, k, arg, ourAddr4) {
				t.Fatalf("%s %v: refused", name, k)
			}
			o := out.Data()
			if cl, r := Parse(out); cl != ClassIPv4 || r != OK {
				t.Fatalf("%s %v: output parses as %v %v", name, k, cl, r)
			}
			if out.L3Off != 14 || out.L4Off != 34 || out.L4Proto != 1 || out.Flags&mbuf.FlagIPv4 == 0 {
				t.Fatalf("%s %v: metadata %+v", name, k, out)
			}
			ipLen := len(o) - 14
			if ipLen > MaxICMP4 {
				t.Fatalf("%s %v: %d bytes > 576", name, k, ipLen)
			}
			if want := min(len(orig), MaxICMP4-28); ipLen != 28+want {
				t.Fatalf("%s %v: quoted %d bytes, want %d", name, k, ipLen-28, want)
			}
			pk := gopacket.NewPacket(o, layers.LayerTypeEthernet, gopacket.Default)
			ip, _ := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			ic, _ := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if ip == nil || ic == nil {
				t.Fatalf("%s %v: gopacket cannot decode: %v", name, k, pk.ErrorLayer())
			}
			ty, co := k.TypeCode()
			if ic.TypeCode != layers.CreateICMPv4TypeCode(ty, co) {
				t.Fatalf("%s %v: type %v", name, k, ic.TypeCode)
			}
			if ip.TTL != 64 || ip.Protocol != layers.IPProtocolICMPv4 || binary.BigEndian.Uint32(ip.SrcIP.To4()) != ourAddr4 ||
				!ip.DstIP.Equal(orig[12:16]) || ip.Flags != 0 || ip.FragOffset != 0 || ip.TOS != 0xc0 {
				t.Fatalf("%s %v: ip header %+v", name, k, ip)
			}
			if want := refIPv4Checksum(o[14:34]); ip.Checksum != want {
				t.Fatalf("%s %v: ip checksum %#x want %#x", name, k, ip.Checksum, want)
			}
			icb := append([]byte(nil), o[34:]...)
			icb[2], icb[3] = 0, 0
			if want := refChecksum(icb); ic.Checksum != want {
				t.Fatalf("%s %v: icmp checksum %#x want %#x", name, k, ic.Checksum, want)
			}
			switch k {
			case FragNeeded:
				if ic.Seq != 1400 || ic.Id != 0 {
					t.Fatalf("next-hop MTU: id %d seq %d", ic.Id, ic.Seq)
				}
			case ParamProblem:
				if o[34+4] != 9 {
					t.Fatalf("pointer %d", o[34+4])
				}
			default:
				if binary.BigEndian.Uint32(o[34+4:]) != 0 {
					t.Fatal("unused field not zero")
				}
			}
			if string(o[42:]) != string(orig[:len(o)-42]) {
				t.Fatalf("%s %v: quote differs", name, k)
			}
			free(c, in, out)
		}
	}
}

func TestBuildError6(t *testing.T) {
	_, c := testPool(t)
	inputs := map[string][]byte{
		"small": udp6(t, 10),
		"large": udp6(t, 1450),
		"ext":   raw6(ProtoRouting, 64, []byte(ip6A), []byte(ip6B), cat(ext(ProtoUDP, 1), make([]byte, 100))),
	}
	for name, f := range inputs {
		for k := NoRoute6; k < NumKinds; k++ {
			in := parsed(t, c, f)
			orig := append([]byte(nil), in.Data()[in.L3Off:]...)
			out := alloc(t, c)
			arg := uint32(0)
			switch k {
			case PacketTooBig6:
				arg = 1280
			case ParamHeader6, ParamNextHeader6, ParamOption6:
				arg = 42
			}
			if !BuildError6(out, in, k, arg, &ourAddr6) {
				t.Fatalf("%s %v: refused", name, k)
			}
			o := out.Data()
			if cl, r := Parse(out); cl != ClassIPv6 || r != OK {
				t.Fatalf("%s %v: output parses as %v %v", name, k, cl, r)
			}
			if out.L3Off != 14 || out.L4Off != 54 || out.L4Proto != 58 || out.Flags&mbuf.FlagIPv6 == 0 {
				t.Fatalf("%s %v: metadata", name, k)
			}
			if len(o)-14 > MaxICMP6 {
				t.Fatalf("%s %v: %d bytes > 1280", name, k, len(o)-14)
			}
			if want := min(len(orig), MaxICMP6-48); len(o)-14-48 != want {
				t.Fatalf("%s %v: quoted %d want %d", name, k, len(o)-62, want)
			}
			pk := gopacket.NewPacket(o, layers.LayerTypeEthernet, gopacket.Default)
			ip, _ := pk.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			ic, _ := pk.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
			if ip == nil || ic == nil {
				t.Fatalf("%s %v: gopacket cannot decode: %v", name, k, pk.ErrorLayer())
			}
			ty, co := k.TypeCode()
			if ic.TypeCode != layers.CreateICMPv6TypeCode(ty, co) {
				t.Fatalf("%s %v: type %v", name, k, ic.TypeCode)
			}
			if ip.HopLimit != 64 || ip.NextHeader != layers.IPProtocolICMPv6 || !ip.SrcIP.Equal(ourAddr6[:]) ||
				!ip.DstIP.Equal(orig[8:24]) || int(ip.Length) != len(o)-54 {
				t.Fatalf("%s %v: ip header %+v", name, k, ip)
			}
			if want := refICMPv6Checksum(o[14:54], o[54:]); ic.Checksum != want {
				t.Fatalf("%s %v: checksum %#x want %#x", name, k, ic.Checksum, want)
			}
			if got := binary.BigEndian.Uint32(o[58:62]); got != arg {
				t.Fatalf("%s %v: field %d want %d", name, k, got, arg)
			}
			if string(o[62:]) != string(orig[:len(o)-62]) {
				t.Fatalf("%s %v: quote differs", name, k)
			}
			free(c, in, out)
		}
	}
}

func TestBuildErrorRefuses(t *testing.T) {
	_, c := testPool(t)
	in4 := parsed(t, c, udp4(t, 100))
	in6 := parsed(t, c, udp6(t, 100))
	out := alloc(t, c)
	defer free(c, in4, in6, out)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"same mbuf", BuildError4(in4, in4, NetUnreach, 0, ourAddr4)},
		{"v6 kind for v4", BuildError4(out, in4, NoRoute6, 0, ourAddr4)},
		{"v4 kind for v6", BuildError6(out, in6, NetUnreach, 0, &ourAddr6)},
		{"v4 builder on v6", BuildError4(out, in6, NetUnreach, 0, ourAddr4)},
		{"v6 builder on v4", BuildError6(out, in4, NoRoute6, 0, &ourAddr6)},
		{"kind 0", BuildError4(out, in4, 0, 0, ourAddr4)},
		{"kind out of range", BuildError4(out, in4, 200, 0, ourAddr4)},
		{"same mbuf 6", BuildError6(in6, in6, NoRoute6, 0, &ourAddr6)},
	} {
		if tc.ok {
			t.Errorf("%s: built", tc.name)
		}
	}
	// No tailroom: the buffer cannot hold headers and a quoted header.
	out.SetData(out.Headroom()+out.Tailroom()-60, 0)
	if BuildError4(out, in4, NetUnreach, 0, ourAddr4) || BuildError6(out, in6, NoRoute6, 0, &ourAddr6) {
		t.Error("built without room")
	}
	// Little tailroom: the quote shrinks.
	out.SetData(out.Headroom()+out.Tailroom()-100, 0)
	if !BuildError4(out, in4, NetUnreach, 0, ourAddr4) || out.Len() != 100 {
		t.Errorf("short quote: len %d", out.Len())
	}
	// Broken metadata.
	in4.L3Off = 500
	if BuildError4(out, in4, NetUnreach, 0, ourAddr4) {
		t.Error("built from a bogus L3Off")
	}
}

func TestCheckError(t *testing.T) {
	_, c := testPool(t)
	icmp4 := func(typ uint8) []byte {
		ip := ipv4(layers.IPProtocolICMPv4)
		return serialize(t, eth(layers.EthernetTypeIPv4), ip, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0)}, gopacket.Payload(make([]byte, 28)))
	}
	icmp6 := func(typ uint8, dst []byte) []byte {
		b := make([]byte, 16)
		b[0] = typ
		return raw6(ProtoICMPv6, 64, []byte(ip6A), dst, b)
	}
	l2bcast := func(f []byte) []byte { copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); return f }
	later4 := set4(udp4(t, 16), func(h []byte) { h[7] = 2 })
	first4 := set4(udp4(t, 16), func(h []byte) { h[6] = 0x20 })
	later6 := raw6(ProtoFragment, 64, []byte(ip6A), []byte(ip6B), cat([]byte{ProtoUDP, 0, 0, 0x10, 0, 0, 0, 1}, make([]byte, 16)))
	later6icmp := raw6(ProtoFragment, 64, []byte(ip6A), []byte(ip6B), cat([]byte{ProtoICMPv6, 0, 0, 0x10, 0, 0, 0, 1}, make([]byte, 16)))
	for _, tc := range []struct {
		name  string
		frame []byte
		skip  bool // skip Parse (frames Parse refuses, e.g. multicast), set metadata by hand
		kind  Kind
		want  Suppress
	}{
		{"udp4", udp4(t, 8), false, NetUnreach, Send},
		{"echo request", icmp4(8), false, TTLExceeded, Send},
		{"echo reply", icmp4(0), false, TTLExceeded, Send},
		{"timestamp", icmp4(13), false, NetUnreach, Send},
		{"about unreachable", icmp4(3), false, TTLExceeded, AboutICMPError},
		{"about time exceeded", icmp4(11), false, NetUnreach, AboutICMPError},
		{"about param problem", icmp4(12), false, NetUnreach, AboutICMPError},
		{"about redirect", icmp4(5), false, NetUnreach, AboutICMPError},
		{"about source quench", icmp4(4), false, NetUnreach, AboutICMPError},
		{"about unknown type", icmp4(42), false, NetUnreach, AboutICMPError},
		{"l2 broadcast", l2bcast(udp4(t, 8)), false, NetUnreach, L2Multicast},
		{"l2 multicast", func() []byte { f := udp4(t, 8); f[0] = 0x01; return f }(), false, NetUnreach, L2Multicast},
		{"ip multicast", addr4(udp4(t, 8), [4]byte{}, [4]byte{224, 0, 0, 1}), true, NetUnreach, IPMulticast},
		{"ip broadcast", addr4(udp4(t, 8), [4]byte{}, [4]byte{255, 255, 255, 255}), true, NetUnreach, IPMulticast},
		{"later fragment", later4, false, NetUnreach, LaterFragment},
		{"later icmp fragment", set4(icmp4(8), func(h []byte) { h[7] = 2 }), false, NetUnreach, LaterFragment},
		{"first fragment", first4, false, FragNeeded, Send},
		{"src 0/8", addr4(udp4(t, 8), [4]byte{0, 0, 0, 7}, [4]byte{}), true, NetUnreach, SourceNotUnique},
		{"src loopback", addr4(udp4(t, 8), [4]byte{127, 0, 0, 1}, [4]byte{}), true, NetUnreach, SourceNotUnique},
		{"src multicast", addr4(udp4(t, 8), [4]byte{230, 0, 0, 1}, [4]byte{}), true, NetUnreach, SourceNotUnique},
		{"src broadcast", addr4(udp4(t, 8), [4]byte{255, 255, 255, 255}, [4]byte{}), true, NetUnreach, SourceNotUnique},
		{"v4 kind on v6", udp6(t, 8), false, NetUnreach, NotIP},
		{"v6 kind on v4", udp4(t, 8), false, NoRoute6, NotIP},

		{"udp6", udp6(t, 8), false, NoRoute6, Send},
		{"echo6", icmp6(128, []byte(ip6B)), false, HopLimitExceeded6, Send},
		{"about icmp6 error", icmp6(1, []byte(ip6B)), false, NoRoute6, AboutICMPError},
		{"about packet too big", icmp6(2, []byte(ip6B)), false, PacketTooBig6, AboutICMPError},
		{"about redirect6", icmp6(137, []byte(ip6B)), true, NoRoute6, AboutICMPError},
		{"l2 multicast6", func() []byte { f := udp6(t, 8); f[0] = 0x33; return f }(), false, NoRoute6, L2Multicast},
		{"l2 multicast6 ptb", func() []byte { f := udp6(t, 8); f[0] = 0x33; return f }(), false, PacketTooBig6, Send},
		{"multicast6", raw6(ProtoUDP, 64, []byte(ip6A), mustIP6("ff0e::1"), make([]byte, 8)), true, HopLimitExceeded6, IPMulticast},
		{"multicast6 ptb", raw6(ProtoUDP, 64, []byte(ip6A), mustIP6("ff0e::1"), make([]byte, 8)), true, PacketTooBig6, Send},
		{"multicast6 param option", raw6(ProtoUDP, 64, []byte(ip6A), mustIP6("ff0e::1"), make([]byte, 8)), true, ParamOption6, Send},
		{"multicast6 param header", raw6(ProtoUDP, 64, []byte(ip6A), mustIP6("ff0e::1"), make([]byte, 8)), true, ParamHeader6, IPMulticast},
		{"later fragment6", later6, false, NoRoute6, LaterFragment},
		{"later fragment6 ptb", later6, false, PacketTooBig6, Send},
		{"later icmp6 fragment", later6icmp, false, HopLimitExceeded6, LaterFragment},
		{"src6 ::", raw6(ProtoUDP, 64, make([]byte, 16), []byte(ip6B), make([]byte, 8)), true, NoRoute6, SourceNotUnique},
		{"src6 ::1", raw6(ProtoUDP, 64, mustIP6("::1"), []byte(ip6B), make([]byte, 8)), true, NoRoute6, SourceNotUnique},
		{"src6 multicast", raw6(ProtoUDP, 64, mustIP6("ff02::2"), []byte(ip6B), make([]byte, 8)), true, PacketTooBig6, SourceNotUnique},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, c, tc.frame)
			defer free(c, m)
			if tc.skip {
				m.L3Off = 14
				if m.Data()[14]>>4 == 4 {
					m.Flags = mbuf.FlagIPv4
					m.L4Off = 34
					m.L4Proto = m.Data()[14+9]
				} else {
					m.Flags = mbuf.FlagIPv6
					m.L4Off = 54
					m.L4Proto = m.Data()[14+6]
				}
			} else if _, r := Parse(m); r != OK {
				t.Fatalf("Parse: %v", r)
			}
			if got := CheckError(m, tc.kind); got != tc.want {
				t.Fatalf("CheckError(%v) = %v, want %v", tc.kind, got, tc.want)
			}
		})
	}
	// Not parsed at all.
	m := load(t, c, udp4(t, 8))
	defer free(c, m)
	if CheckError(m, NetUnreach) != NotIP {
		t.Error("unparsed mbuf")
	}
	for s := Send; s < NumSuppress; s++ {
		if s.String() == "unknown" {
			t.Errorf("suppress %d has no name", s)
		}
	}
}

func TestEchoReply4(t *testing.T) {
	_, c := testPool(t)
	ip := ipv4(layers.IPProtocolICMPv4)
	ip.TTL = 3
	f := serialize(t, eth(layers.EthernetTypeIPv4), ip,
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 77, Seq: 9}, gopacket.Payload([]byte("0123456789abcdefXYZ")))
	m := parsed(t, c, f)
	defer free(c, m)
	m.Flags |= mbuf.FlagHashValid
	if !EchoReply4(m) {
		t.Fatal("refused")
	}
	d := m.Data()
	pk := gopacket.NewPacket(d, layers.LayerTypeEthernet, gopacket.Default)
	rip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	ric := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !rip.SrcIP.Equal(ip4B) || !rip.DstIP.Equal(ip4A) || rip.TTL != 64 || ric.TypeCode.Type() != 0 || ric.Id != 77 || ric.Seq != 9 {
		t.Fatalf("reply %+v %+v", rip, ric)
	}
	if rip.Checksum != refIPv4Checksum(d[14:34]) {
		t.Fatal("ip checksum")
	}
	icb := append([]byte(nil), d[34:]...)
	icb[2], icb[3] = 0, 0
	if ric.Checksum != refChecksum(icb) {
		t.Fatal("icmp checksum")
	}
	if m.Flags&mbuf.FlagHashValid != 0 {
		t.Fatal("hash still marked valid")
	}
	// A reply is not a request; a bad checksum is not answered.
	if EchoReply4(m) {
		t.Fatal("answered a reply")
	}
	bad := parsed(t, c, f)
	defer free(c, bad)
	bad.Data()[34+8] ^= 1
	before := string(bad.Data())
	if EchoReply4(bad) || string(bad.Data()) != before {
		t.Fatal("answered a request with a bad checksum, or changed it")
	}
	frag := parsed(t, c, set4(append([]byte(nil), f...), func(h []byte) { h[6] = 0x20 }))
	defer free(c, frag)
	if EchoReply4(frag) {
		t.Fatal("answered a fragment")
	}
	udp := parsed(t, c, udp4(t, 8))
	defer free(c, udp)
	if EchoReply4(udp) {
		t.Fatal("answered udp")
	}
}

func TestEchoReply6(t *testing.T) {
	_, c := testPool(t)
	ip := ipv6(layers.IPProtocolICMPv6)
	ip.HopLimit = 2
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
	ic.SetNetworkLayerForChecksum(ip)
	f := serialize(t, eth(layers.EthernetTypeIPv6), ip, ic, &layers.ICMPv6Echo{Identifier: 5, SeqNumber: 6}, gopacket.Payload([]byte("hello")))
	m := parsed(t, c, f)
	defer free(c, m)
	if !EchoReply6(m) {
		t.Fatal("refused")
	}
	d := m.Data()
	pk := gopacket.NewPacket(d, layers.LayerTypeEthernet, gopacket.Default)
	rip := pk.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	ric := pk.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if !rip.SrcIP.Equal(ip6B) || !rip.DstIP.Equal(ip6A) || rip.HopLimit != 64 || ric.TypeCode.Type() != 129 {
		t.Fatalf("reply %+v %+v", rip, ric)
	}
	if ric.Checksum != refICMPv6Checksum(d[14:54], d[54:]) {
		t.Fatal("icmpv6 checksum")
	}
	if EchoReply6(m) {
		t.Fatal("answered a reply")
	}
	bad := parsed(t, c, f)
	defer free(c, bad)
	bad.Data()[60] ^= 1
	if EchoReply6(bad) {
		t.Fatal("answered a bad checksum")
	}
	withExt := parsed(t, c, raw6(ProtoDstOpts, 64, []byte(ip6A), []byte(ip6B), cat(ext(ProtoICMPv6, 0), []byte{128, 0, 0, 0, 0, 0, 0, 0})))
	defer free(c, withExt)
	if EchoReply6(withExt) {
		t.Fatal("answered with extension headers")
	}
}
