package pkt

import (
	"encoding/binary"
	"math/bits"

	"github.com/fwdd/fwdd/mbuf"
)

// EtherTypes.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeIPv6 = 0x86DD
	EtherTypeVLAN = 0x8100 // 802.1Q C-tag
	EtherTypeQinQ = 0x88A8 // 802.1ad S-tag (refused: QinQ)
	EtherTypeSlow = 0x8809 // slow protocols: LACP, marker (IEEE 802.3 annex 57A)
)

// IP protocol numbers / IPv6 next headers.
const (
	ProtoHopByHop = 0
	ProtoICMP     = 1
	ProtoTCP      = 6
	ProtoUDP      = 17
	ProtoRouting  = 43
	ProtoFragment = 44
	ProtoESP      = 50
	ProtoAH       = 51
	ProtoICMPv6   = 58
	ProtoNoNext   = 59
	ProtoDstOpts  = 60
	ProtoSCTP     = 132
	ProtoUDPLite  = 136
	ProtoDCCP     = 33
)

// Header sizes.
const (
	EthLen  = 14
	VLANLen = 4
	IPv4Len = 20 // without options
	IPv6Len = 40
	ICMPLen = 8 // ICMP and ICMPv6 header (type, code, checksum, 4 bytes)
)

// MaxExtHeaders bounds the IPv6 extension header walk (RFC 8200 sets no
// limit; RFC 7045 lets routers drop chains they cannot parse).
const MaxExtHeaders = 8

// FlagFragment marks an IP fragment (IPv4 MF or offset != 0, or an IPv6
// Fragment header). A non-first fragment also has L4Off == 0: it carries
// no transport header. It is a parser flag of mbuf's low byte.
const FlagFragment mbuf.Flags = 1 << 5

// parseFlags are the flags Parse owns and resets (and FlagTxHash: the
// hash of a frame as it was sent does not survive its receipt).
const parseFlags = mbuf.FlagVLAN | mbuf.FlagIPv4 | mbuf.FlagIPv6 | FlagFragment | mbuf.FlagTxHash

// Parse classifies the frame in m's data and validates its IP header
// (RFC 1812 §5.2.2 for IPv4, RFC 8200 for IPv6). It sets m.EtherType (after
// the tag), m.VLANTCI and FlagVLAN, m.L3Off, m.L4Off (0 when there is no
// transport header: non-first fragments, ARP), m.L4Proto, FlagIPv4 /
// FlagIPv6 and FlagFragment, and trims link-layer padding after the IP
// packet. It never panics and never allocates; on ClassDrop the metadata is
// partial and the Reason says why.
//
// IPv4 options are accepted and forwarded unchanged, except source routes
// (dropped, SourceRoute). For IPv6 the extension headers are walked
// (Hop-by-Hop, Routing, Fragment, Destination Options, AH; at most
// MaxExtHeaders) to find the transport header.
func Parse(m *mbuf.Mbuf) (Class, Reason) {
	d := m.Data()
	m.Flags &^= parseFlags
	m.L3Off, m.L4Off, m.L4Proto, m.VLANTCI, m.EtherType = 0, 0, 0, 0, 0
	if len(d) < EthLen {
		return ClassDrop, TooShort
	}
	et := binary.BigEndian.Uint16(d[12:14])
	off := EthLen
	if et == EtherTypeQinQ {
		return ClassDrop, QinQ
	}
	if et == EtherTypeVLAN {
		if len(d) < EthLen+VLANLen {
			return ClassDrop, TooShort
		}
		m.VLANTCI = binary.BigEndian.Uint16(d[14:16])
		m.Flags |= mbuf.FlagVLAN
		et = binary.BigEndian.Uint16(d[16:18])
		off = EthLen + VLANLen
		if et == EtherTypeVLAN || et == EtherTypeQinQ {
			return ClassDrop, VLANStacked
		}
	}
	m.EtherType = et
	m.L3Off = uint16(off)
	switch et {
	case EtherTypeIPv4:
		if len(d) >= off+IPv4Len && d[off] == 0x45 {
			return parse4Plain(m, d[off:], off) // most packets: one call less
		}
		return parse4(m, d, off)
	case EtherTypeIPv6:
		if len(d) < off+IPv6Len {
			return ClassDrop, TooShort
		}
		// Most packets: version 6, the transport header (not ICMPv6)
		// right after the fixed header. parse6's checks in parse6's
		// order, without its extension-header walk and one call less (a
		// test holds the two to the same results).
		ip := (*[IPv6Len]byte)(d[off:])
		w0 := binary.BigEndian.Uint64(ip[0:8]) // version, class, flow, payload length, next header, hop limit
		if w0>>60 != 6 || !plainNext6(byte(w0>>8)) {
			return parse6(m, d, off)
		}
		if end := off + IPv6Len + int(uint16(w0>>16)); end > len(d) {
			return ClassDrop, BadPayloadLength
		} else if end < len(d) {
			m.Trim(len(d) - end)
		}
		m.L4Proto = byte(w0 >> 8)
		m.L4Off = uint16(off + IPv6Len)
		if ip[8] == 0xff {
			return ClassDrop, SrcMulticast
		}
		if binary.BigEndian.Uint64(ip[8:16]) == 0 || binary.BigEndian.Uint64(ip[24:32]) == 0 || ip[24] == 0xff {
			if r := martian6(ip[8:24], ip[24:40]); r != OK {
				return ClassDrop, r
			}
		}
		m.Flags |= mbuf.FlagIPv6
		return ClassIPv6, OK
	case EtherTypeARP:
		return parseARP(d[off:])
	}
	return ClassDrop, UnknownEtherType
}

func parseARP(a []byte) (Class, Reason) {
	if len(a) < 28 {
		return ClassDrop, TooShort
	}
	// htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4.
	if binary.BigEndian.Uint32(a[0:4]) != 0x00010800 || binary.BigEndian.Uint16(a[4:6]) != 0x0604 {
		return ClassDrop, BadARP
	}
	return ClassARP, OK
}

func parse4(m *mbuf.Mbuf, d []byte, off int) (Class, Reason) {
	if len(d) < off+IPv4Len {
		return ClassDrop, TooShort
	}
	ip := d[off:]
	if ip[0] == 0x45 {
		return parse4Plain(m, ip, off)
	}
	return parse4Any(m, ip, off)
}

// parse4Any is parse4 for any header (options, bad version or IHL); ip is
// the packet from its IP header on, at least 20 bytes. For a plain header
// it decides exactly as parse4Plain (a test holds them to it).
func parse4Any(m *mbuf.Mbuf, ip []byte, off int) (Class, Reason) {
	vihl := ip[0]
	if vihl>>4 != 4 {
		return ClassDrop, BadVersion
	}
	hlen := int(vihl&0x0f) << 2
	if hlen < IPv4Len {
		return ClassDrop, BadIHL
	}
	if hlen > len(ip) {
		return ClassDrop, TooShort
	}
	tot := int(binary.BigEndian.Uint16(ip[2:4]))
	if tot < hlen || tot > len(ip) {
		return ClassDrop, BadTotalLength
	}
	if hlen == IPv4Len {
		if sum20(ip) != 0xffff {
			return ClassDrop, BadChecksum
		}
	} else {
		if Fold(Sum(ip[:hlen], 0)) != 0xffff {
			return ClassDrop, BadChecksum
		}
		if r := checkOptions4(ip[IPv4Len:hlen]); r != OK {
			return ClassDrop, r
		}
	}
	src := binary.BigEndian.Uint32(ip[12:16])
	dst := binary.BigEndian.Uint32(ip[16:20])
	if a, b := src>>24, dst>>24; a == 0 || a == 127 || a >= 224 || b == 0 || b == 127 || b >= 224 {
		if r := martian4(src, dst); r != OK {
			return ClassDrop, r
		}
	}
	frag := binary.BigEndian.Uint16(ip[6:8])
	fo := int(frag&0x1fff) << 3
	if frag&0x3fff != 0 {
		m.Flags |= FlagFragment
		if fo+tot-hlen > 0xffff {
			return ClassDrop, BadFragment
		}
	}
	if tot < len(ip) {
		m.Trim(len(ip) - tot)
	}
	m.Flags |= mbuf.FlagIPv4
	m.L4Proto = ip[9]
	if fo == 0 {
		m.L4Off = uint16(off + hlen)
	}
	return ClassIPv4, OK
}

// parse4Plain is parse4 for the usual header: version 4, 20 bytes, no
// options (ip[0] == 0x45, len(ip) >= 20), with the same checks in the same
// order. The header is read as five 32-bit words in memory order: the
// ones'-complement sum does not depend on byte order (RFC 1071 §2(B)), and
// a folded sum of 0xffff reads the same either way.
func parse4Plain(m *mbuf.Mbuf, ip []byte, off int) (Class, Reason) {
	_ = ip[IPv4Len-1]
	w0 := binary.LittleEndian.Uint64(ip[0:8])   // version/IHL, TOS, total length, id, flags/offset
	w1 := binary.LittleEndian.Uint64(ip[8:16])  // TTL, protocol, checksum, source
	w2 := binary.LittleEndian.Uint32(ip[16:20]) // destination
	tot := int(bits.ReverseBytes16(uint16(w0 >> 16)))
	if tot < IPv4Len || tot > len(ip) {
		return ClassDrop, BadTotalLength
	}
	if Fold(w0>>32+w0&0xffffffff+w1>>32+w1&0xffffffff+uint64(w2)) != 0xffff {
		return ClassDrop, BadChecksum
	}
	if a, b := byte(w1>>32), byte(w2); a == 0 || a == 127 || a >= 224 || b == 0 || b == 127 || b >= 224 {
		if r := martian4(bits.ReverseBytes32(uint32(w1>>32)), bits.ReverseBytes32(w2)); r != OK {
			return ClassDrop, r
		}
	}
	frag := bits.ReverseBytes16(uint16(w0 >> 48))
	fo := int(frag&0x1fff) << 3
	if frag&0x3fff != 0 {
		m.Flags |= FlagFragment
		if fo+tot-IPv4Len > 0xffff {
			return ClassDrop, BadFragment
		}
	}
	if tot < len(ip) {
		m.Trim(len(ip) - tot)
	}
	m.Flags |= mbuf.FlagIPv4
	m.L4Proto = byte(w1 >> 8)
	if fo == 0 {
		m.L4Off = uint16(off + IPv4Len)
	}
	return ClassIPv4, OK
}

// sum20 is the folded ones'-complement sum of a 20-byte IPv4 header.
func sum20(ip []byte) uint16 {
	_ = ip[19]
	// Three loads; the 64-bit sum of two 64-bit words can carry, the
	// 32-bit halves summed separately cannot.
	a := binary.BigEndian.Uint64(ip[0:8])
	b := binary.BigEndian.Uint64(ip[8:16])
	s := a>>32 + a&0xffffffff + b>>32 + b&0xffffffff + uint64(binary.BigEndian.Uint32(ip[16:20]))
	return Fold(s)
}

// martian4 checks source and destination (RFC 1812 §5.3.7, §4.2.2.11).
func martian4(src, dst uint32) Reason {
	switch a := src >> 24; {
	case a == 0:
		return SrcUnspecified
	case a == 127:
		return SrcLoopback
	case a >= 240:
		return SrcReserved
	case a >= 224:
		return SrcMulticast
	}
	switch b := dst >> 24; {
	case b == 0:
		return DstUnspecified
	case b == 127:
		return DstLoopback
	case dst == 0xffffffff:
		return DstBroadcast
	case b >= 240:
		return DstReserved
	case b >= 224:
		return DstMulticast
	}
	return OK
}

// IPv4 option types with special handling.
const (
	optEOL  = 0
	optNOP  = 1
	optLSRR = 131
	optSSRR = 137
)

// checkOptions4 walks the option list (at most 40 bytes): every option must
// fit; source routes are refused.
func checkOptions4(o []byte) Reason {
	for i := 0; i < len(o); {
		switch t := o[i]; t {
		case optEOL:
			return OK
		case optNOP:
			i++
		default:
			if i+1 >= len(o) {
				return BadOptions
			}
			l := int(o[i+1])
			if l < 2 || i+l > len(o) {
				return BadOptions
			}
			if t == optLSRR || t == optSSRR {
				return SourceRoute
			}
			i += l
		}
	}
	return OK
}

func parse6(m *mbuf.Mbuf, d []byte, off int) (Class, Reason) {
	if len(d) < off+IPv6Len {
		return ClassDrop, TooShort
	}
	ip := d[off:]
	if ip[0]>>4 != 6 {
		return ClassDrop, BadVersion
	}
	end := IPv6Len + int(binary.BigEndian.Uint16(ip[4:6]))
	if end > len(ip) {
		return ClassDrop, BadPayloadLength
	}
	if end < len(ip) {
		m.Trim(len(ip) - end)
		ip = ip[:end]
	}
	nh := ip[6]
	l4 := IPv6Len
	hbh := nh == ProtoHopByHop
	for i := 0; ; i++ {
		switch nh {
		case ProtoHopByHop, ProtoRouting, ProtoDstOpts, ProtoAH, ProtoFragment:
		default:
			goto done
		}
		if i == MaxExtHeaders {
			return ClassDrop, TooManyExtHeaders
		}
		if l4+8 > len(ip) || (nh == ProtoHopByHop && i != 0) {
			return ClassDrop, BadExtHeader
		}
		h := ip[l4:]
		switch nh {
		case ProtoFragment:
			m.Flags |= FlagFragment
			nh = h[0]
			l4 += 8
			if binary.BigEndian.Uint16(h[2:4])&0xfff8 != 0 {
				l4 = 0 // non-first fragment: no transport header here
				goto done
			}
			continue
		case ProtoAH:
			l4 += (int(h[1]) + 2) << 2
		default:
			l4 += (int(h[1]) + 1) << 3
		}
		nh = h[0]
		if l4 > len(ip) {
			return ClassDrop, BadExtHeader
		}
	}
done:
	// The transport header is at l4 (relative to ip; 0: none, a non-first
	// fragment). Find ND and Hop-by-Hop packets and check addresses (in
	// line: most packets come straight here).
	m.L4Proto = nh
	if l4 != 0 {
		m.L4Off = uint16(off + l4)
	}
	s0 := binary.BigEndian.Uint64(ip[8:16])
	d0 := binary.BigEndian.Uint64(ip[24:32])
	if ip[8] == 0xff {
		return ClassDrop, SrcMulticast
	}
	if hbh {
		m.Flags |= mbuf.FlagIPv6
		return ClassHopByHop, OK
	}
	if m.L4Proto == ProtoICMPv6 && l4 != 0 && l4 < len(ip) {
		if t := ip[l4]; t >= 133 && t <= 137 {
			if ip[7] != 255 {
				return ClassDrop, BadNDHopLimit
			}
			m.Flags |= mbuf.FlagIPv6
			return ClassND, OK
		}
	}
	if s0 == 0 || d0 == 0 || ip[24] == 0xff {
		if r := martian6(ip[8:24], ip[24:40]); r != OK {
			return ClassDrop, r
		}
	}
	m.Flags |= mbuf.FlagIPv6
	return ClassIPv6, OK
}

// notPlain6 has bit nh set for the next headers Parse leaves to
// parse6: the extension headers parse6 walks, and ICMPv6 (neighbour
// discovery is told apart by the message type after the header).
const notPlain6 = 1<<ProtoHopByHop | 1<<ProtoRouting | 1<<ProtoFragment | 1<<ProtoAH | 1<<ProtoDstOpts | 1<<ProtoICMPv6

// plainNext6 reports whether Parse takes an IPv6 header with next header
// nh itself, without parse6.
func plainNext6(nh byte) bool { return nh >= 64 || notPlain6&(1<<nh) == 0 }

// martian6 checks addresses other than neighbour discovery may not use
// (RFC 4291 §2.5.2, 2.5.3, 2.7).
func martian6(src, dst []byte) Reason {
	if r := special6(src); r != 0 {
		return r - 1 + SrcUnspecified
	}
	if dst[0] == 0xff {
		return DstMulticast
	}
	if r := special6(dst); r != 0 {
		return r - 1 + DstUnspecified
	}
	return OK
}

// special6 returns 1 for ::, 2 for ::1, else 0.
func special6(a []byte) Reason {
	if binary.BigEndian.Uint64(a[0:8]) != 0 {
		return 0
	}
	switch binary.BigEndian.Uint64(a[8:16]) {
	case 0:
		return 1
	case 1:
		return 2
	}
	return 0
}
