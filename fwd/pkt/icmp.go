package pkt

import (
	"encoding/binary"

	"github.com/fwdd/fwdd/mbuf"
)

// Kind is an ICMP or ICMPv6 error message the pipeline can send.
type Kind uint8

const (
	_ Kind = iota
	// ICMPv4 (RFC 792, RFC 1191, RFC 1812 §4.3.2).
	NetUnreach      // 3/0: no route
	HostUnreach     // 3/1: reject route, neighbour unresolved
	ProtoUnreach    // 3/2
	PortUnreach     // 3/3
	FragNeeded      // 3/4: arg = next-hop MTU (RFC 1191)
	AdminProhibited // 3/13 (RFC 1812 §5.2.7.1): filtered
	TTLExceeded     // 11/0
	ParamProblem    // 12/0: arg = pointer to the bad octet

	// ICMPv6 (RFC 4443).
	NoRoute6          // 1/0
	AdminProhibited6  // 1/1
	AddrUnreach6      // 1/3
	PortUnreach6      // 1/4
	RejectRoute6      // 1/6: reject route to destination
	PacketTooBig6     // 2/0: arg = MTU
	HopLimitExceeded6 // 3/0
	ParamHeader6      // 4/0: arg = pointer
	ParamNextHeader6  // 4/1: arg = pointer
	ParamOption6      // 4/2: arg = pointer

	NumKinds
)

var kindNames = [NumKinds]string{"none", "net_unreach", "host_unreach", "proto_unreach", "port_unreach",
	"frag_needed", "admin_prohibited", "ttl_exceeded", "param_problem",
	"no_route6", "admin_prohibited6", "addr_unreach6", "port_unreach6", "reject_route6",
	"packet_too_big6", "hop_limit_exceeded6", "param_header6", "param_next_header6", "param_option6"}

func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return "unknown"
}

// IsV6 reports whether k is an ICMPv6 message.
func (k Kind) IsV6() bool { return k >= NoRoute6 && k < NumKinds }

// TypeCode returns the ICMP or ICMPv6 type and code of k (0, 0 if invalid).
func (k Kind) TypeCode() (typ, code uint8) {
	switch k {
	case NetUnreach, HostUnreach, ProtoUnreach, PortUnreach, FragNeeded:
		return 3, uint8(k - NetUnreach)
	case AdminProhibited:
		return 3, 13
	case TTLExceeded:
		return 11, 0
	case ParamProblem:
		return 12, 0
	case NoRoute6:
		return 1, 0
	case AdminProhibited6:
		return 1, 1
	case AddrUnreach6:
		return 1, 3
	case PortUnreach6:
		return 1, 4
	case RejectRoute6:
		return 1, 6
	case PacketTooBig6:
		return 2, 0
	case HopLimitExceeded6:
		return 3, 0
	case ParamHeader6, ParamNextHeader6, ParamOption6:
		return 4, uint8(k - ParamHeader6)
	}
	return 0, 0
}

// Suppress says why an ICMP error must not be sent (Send when it may).
type Suppress uint8

const (
	Send            Suppress = iota
	NotIP                    // no parsed IP header of the kind's family
	AboutICMPError           // the packet is itself an ICMP(v6) error (or an unknown ICMP type)
	L2Multicast              // sent to a link-layer broadcast or multicast address
	IPMulticast              // IP broadcast or multicast destination
	LaterFragment            // a non-first fragment
	SourceNotUnique          // source not a unique unicast address

	NumSuppress
)

var suppressNames = [NumSuppress]string{"send", "not_ip", "about_icmp_error", "l2_multicast",
	"ip_multicast", "later_fragment", "source_not_unique"}

func (s Suppress) String() string {
	if s < NumSuppress {
		return suppressNames[s]
	}
	return "unknown"
}

// CheckError says whether an ICMP error of kind k may be sent about m, a
// packet Parse accepted (RFC 1812 §4.3.2.7, RFC 4443 §2.4(e)). Never about:
// an ICMP error, a link-layer broadcast/multicast, an IP broadcast or
// multicast destination, a non-first fragment, or a source that is not a
// unique unicast address. As RFC 4443 §2.4(e.3) allows, Packet Too Big and
// Parameter Problem code 2 are sent about multicast destinations, and
// Packet Too Big about non-first fragments too (the source fragmented to
// its path MTU estimate and must learn it is wrong).
func CheckError(m *mbuf.Mbuf, k Kind) Suppress {
	d := m.Data()
	o := int(m.L3Off)
	if k.IsV6() {
		if m.Flags&mbuf.FlagIPv6 == 0 || o < EthLen || o+IPv6Len > len(d) {
			return NotIP
		}
		return check6(m, d, o, k)
	}
	if m.Flags&mbuf.FlagIPv4 == 0 || o < EthLen || o+IPv4Len > len(d) || k == 0 || k >= NumKinds {
		return NotIP
	}
	ip := d[o:]
	if m.L4Proto == ProtoICMP {
		if m.L4Off == 0 {
			return LaterFragment
		}
		if l4 := int(m.L4Off); l4 >= len(d) || !icmpQuery4(d[l4]) {
			return AboutICMPError
		}
	}
	if d[0]&1 != 0 {
		return L2Multicast
	}
	if ip[16] >= 224 {
		return IPMulticast
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
		return LaterFragment
	}
	if s := ip[12]; s == 0 || s == 127 || s >= 224 {
		return SourceNotUnique
	}
	return Send
}

// icmpQuery4 reports informational ICMP types; everything else (errors,
// redirects, unknown types) gets no error in return.
func icmpQuery4(t uint8) bool {
	switch t {
	case 0, 8, 9, 10, 13, 14, 15, 16, 17, 18:
		return true
	}
	return false
}

func check6(m *mbuf.Mbuf, d []byte, o int, k Kind) Suppress {
	ip := d[o:]
	exempt := k == PacketTooBig6 || k == ParamOption6
	if m.L4Off == 0 && m.Flags&FlagFragment != 0 {
		if k != PacketTooBig6 {
			return LaterFragment
		}
	} else if m.L4Proto == ProtoICMPv6 {
		// Types below 128 are errors; a missing type counts as one.
		if l4 := int(m.L4Off); l4 == 0 || l4 >= len(d) || d[l4] < 128 || d[l4] == 137 {
			return AboutICMPError
		}
	}
	if d[0]&1 != 0 && !exempt {
		return L2Multicast
	}
	if ip[24] == 0xff && !exempt {
		return IPMulticast
	}
	if ip[8] == 0xff || special6(ip[8:24]) != 0 {
		return SourceNotUnique
	}
	return Send
}

// Quote limits: the ICMPv4 datagram stays within 576 bytes (RFC 1812
// §4.3.2.3), the ICMPv6 packet within the IPv6 minimum MTU (RFC 4443 §2.4(c)).
const (
	MaxICMP4 = 576
	MaxICMP6 = 1280
)

// TTL / hop limit of generated packets.
const GenTTL = 64

// BuildError4 writes into out (a fresh mbuf from the caller's cache; its
// data is replaced) an Ethernet frame carrying an ICMPv4 error of kind k
// about in, an IPv4 packet Parse accepted: IP source src (the port's
// address, host order), destination in's source, TTL GenTTL, precedence
// internetwork control, and as much of in's IP packet as fits in 576 bytes.
// arg is the next-hop MTU for FragNeeded and the pointer for ParamProblem.
// The Ethernet header is a placeholder (zero MACs, EtherType IPv4) for the
// pipeline to rewrite; out's metadata is set as Parse would (no hash: call
// FlowHash). It does not apply CheckError. It returns false, leaving out's
// contents undefined, if in is not IPv4, k is not an ICMPv4 kind, or out has
// no room.
func BuildError4(out, in *mbuf.Mbuf, k Kind, arg uint32, src uint32) bool {
	if out == in || k == 0 || k.IsV6() || k >= NumKinds || in.Flags&mbuf.FlagIPv4 == 0 {
		return false
	}
	d := in.Data()
	o := int(in.L3Off)
	if o+IPv4Len > len(d) {
		return false
	}
	orig := d[o:]
	hdr := EthLen + IPv4Len + ICMPLen
	q := min(len(orig), MaxICMP4-IPv4Len-ICMPLen)
	if !out.SetLen(0) {
		return false
	}
	q = min(q, out.Tailroom()-hdr)
	if q < IPv4Len {
		return false
	}
	b := out.Append(hdr + q)
	if b == nil {
		return false
	}
	clear(b[:12])
	binary.BigEndian.PutUint16(b[12:14], EtherTypeIPv4)
	ip := b[EthLen : EthLen+IPv4Len]
	ip[0] = 0x45
	ip[1] = 0xc0 // precedence 6, internetwork control (RFC 1812 §4.3.2.5)
	binary.BigEndian.PutUint16(ip[2:4], uint16(IPv4Len+ICMPLen+q))
	copy(ip[4:6], orig[4:6]) // identification: the original's (never fragmented: <= 576)
	ip[6], ip[7] = 0, 0
	ip[8] = GenTTL
	ip[9] = ProtoICMP
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint32(ip[12:16], src)
	copy(ip[16:20], orig[12:16])
	binary.BigEndian.PutUint16(ip[10:12], ^sum20(ip))
	ic := b[EthLen+IPv4Len:]
	t, c := k.TypeCode()
	ic[0], ic[1], ic[2], ic[3] = t, c, 0, 0
	binary.BigEndian.PutUint32(ic[4:8], 0)
	switch k {
	case FragNeeded:
		binary.BigEndian.PutUint16(ic[6:8], uint16(min(arg, 0xffff)))
	case ParamProblem:
		ic[4] = uint8(min(arg, 0xff))
	}
	copy(ic[ICMPLen:], orig[:q])
	binary.BigEndian.PutUint16(ic[2:4], Checksum(ic))
	setMeta(out, EtherTypeIPv4, mbuf.FlagIPv4, IPv4Len, ProtoICMP)
	return true
}

// BuildError6 is BuildError4 for ICMPv6 (RFC 4443): kind k, source src,
// hop limit GenTTL, traffic class 0, as much of in as keeps the packet
// within 1280 bytes, checksum over the pseudo-header. arg is the MTU for
// PacketTooBig6 and the pointer for the Param*6 kinds.
func BuildError6(out, in *mbuf.Mbuf, k Kind, arg uint32, src *[16]byte) bool {
	if out == in || !k.IsV6() || in.Flags&mbuf.FlagIPv6 == 0 {
		return false
	}
	d := in.Data()
	o := int(in.L3Off)
	if o+IPv6Len > len(d) {
		return false
	}
	orig := d[o:]
	hdr := EthLen + IPv6Len + ICMPLen
	q := min(len(orig), MaxICMP6-IPv6Len-ICMPLen)
	if !out.SetLen(0) {
		return false
	}
	q = min(q, out.Tailroom()-hdr)
	if q < IPv6Len {
		return false
	}
	b := out.Append(hdr + q)
	if b == nil {
		return false
	}
	clear(b[:12])
	binary.BigEndian.PutUint16(b[12:14], EtherTypeIPv6)
	ip := b[EthLen : EthLen+IPv6Len]
	binary.BigEndian.PutUint32(ip[0:4], 0x60000000)
	n := ICMPLen + q
	binary.BigEndian.PutUint16(ip[4:6], uint16(n))
	ip[6] = ProtoICMPv6
	ip[7] = GenTTL
	copy(ip[8:24], src[:])
	copy(ip[24:40], orig[8:24])
	ic := b[EthLen+IPv6Len:]
	t, c := k.TypeCode()
	ic[0], ic[1], ic[2], ic[3] = t, c, 0, 0
	switch k {
	case PacketTooBig6, ParamHeader6, ParamNextHeader6, ParamOption6:
		binary.BigEndian.PutUint32(ic[4:8], arg)
	default:
		binary.BigEndian.PutUint32(ic[4:8], 0)
	}
	copy(ic[ICMPLen:], orig[:q])
	binary.BigEndian.PutUint16(ic[2:4], ^Fold(Sum(ic, pseudoSum6(ip, n, ProtoICMPv6))))
	setMeta(out, EtherTypeIPv6, mbuf.FlagIPv6, IPv6Len, ProtoICMPv6)
	return true
}

// setMeta gives a generated frame the metadata Parse would.
func setMeta(m *mbuf.Mbuf, et uint16, fl mbuf.Flags, l3len int, proto uint8) {
	m.EtherType = et
	m.VLANTCI = 0
	m.Flags = m.Flags&^(parseFlags|mbuf.FlagHashValid|mbuf.FlagTxHash) | fl
	m.L3Off = EthLen
	m.L4Off = uint16(EthLen + l3len)
	m.L4Proto = proto
	m.Hash = 0
}
