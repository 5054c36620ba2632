package lltable

import (
	"encoding/binary"
	"net/netip"
)

// Wire formats: Ethernet II, ARP for IPv4 over Ethernet (RFC 826), IPv6 and
// the two ICMPv6 neighbour discovery messages we act on (RFC 4861 §4.3,
// §4.4), with their link-layer address options (§4.6.1). Parsers validate
// strictly and return a Drop reason; builders write into a caller buffer.

const (
	etherLen      = 14
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
	etherTypeQinQ = 0x88a8

	arpLen       = 28
	arpHWEther   = 1
	arpOpRequest = 1
	arpOpReply   = 2

	ipv6HdrLen    = 40
	protoICMPv6   = 58
	ndHopLimit    = 255
	icmp6NS       = 135
	icmp6NA       = 136
	icmp6RS       = 133
	icmp6Redirect = 137
	ndMsgLen      = 24 // type, code, checksum, reserved/flags, target

	ndOptSLLA = 1
	ndOptTLLA = 2

	naFlagRouter    = 0x80
	naFlagSolicited = 0x40
	naFlagOverride  = 0x20
)

var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arpMsg is a parsed ARP packet (Ethernet/IPv4 only).
type arpMsg struct {
	op       uint16
	sha      [6]byte
	spa      uint32
	tha      [6]byte
	tpa      uint32
	ethSrc   [6]byte
	ethDst   [6]byte
	hasEther bool
}

// ndMsg is a parsed Neighbor Solicitation or Advertisement.
type ndMsg struct {
	typ     uint8
	flags   uint8 // NA: R, S, O
	src     [16]byte
	dst     [16]byte
	target  [16]byte
	lla     [6]byte // SLLA (NS) or TLLA (NA)
	hasLLA  bool
	ethSrc  [6]byte
	ethDst  [6]byte
	srcZero bool
}

// parseEther returns the EtherType and payload of an untagged Ethernet II
// frame. Tagged frames are refused: fwdd ports are untagged.
func parseEther(f []byte) (typ uint16, payload []byte, why Drop) {
	if len(f) < etherLen {
		return 0, nil, DropShort
	}
	typ = binary.BigEndian.Uint16(f[12:14])
	if typ == etherTypeVLAN || typ == etherTypeQinQ {
		return typ, nil, DropVLAN
	}
	return typ, f[etherLen:], DropNone
}

// parseARP validates an ARP packet (the Ethernet payload) per RFC 826 for
// Ethernet and IPv4: hardware type 1, protocol 0x0800, lengths 6 and 4,
// opcode request or reply. Trailing bytes (Ethernet padding) are allowed.
func parseARP(p []byte, m *arpMsg) Drop {
	if len(p) < arpLen {
		return DropShort
	}
	switch {
	case binary.BigEndian.Uint16(p[0:2]) != arpHWEther:
		return DropARPHardware
	case binary.BigEndian.Uint16(p[2:4]) != etherTypeIPv4:
		return DropARPProtocol
	case p[4] != 6 || p[5] != 4:
		return DropARPLength
	}
	m.op = binary.BigEndian.Uint16(p[6:8])
	if m.op != arpOpRequest && m.op != arpOpReply {
		return DropARPOp
	}
	copy(m.sha[:], p[8:14])
	m.spa = binary.BigEndian.Uint32(p[14:18])
	copy(m.tha[:], p[18:24])
	m.tpa = binary.BigEndian.Uint32(p[24:28])
	if isMulticastMAC(m.sha) || m.sha == [6]byte{} {
		return DropBadSourceMAC
	}
	return DropNone
}

// parseND validates an IPv6 packet (the Ethernet payload) carrying a
// Neighbor Solicitation or Advertisement, per RFC 4861 §7.1.1 and §7.1.2:
// hop limit 255, valid ICMPv6 checksum, code 0, at least 24 bytes, target
// not multicast, every option of non-zero length and inside the message,
// link-layer options of exactly 8 bytes, and for a solicitation from the
// unspecified address a solicited-node destination and no SLLA.
// Other ICMPv6 types return DropNDType (counted, not acted on).
func parseND(p []byte, m *ndMsg) Drop {
	if len(p) < ipv6HdrLen {
		return DropShort
	}
	if p[0]>>4 != 6 {
		return DropIPVersion
	}
	plen := int(binary.BigEndian.Uint16(p[4:6]))
	if plen > len(p)-ipv6HdrLen {
		return DropShort
	}
	if p[6] != protoICMPv6 {
		return DropNDType // extension headers: not neighbour discovery we accept
	}
	icmp := p[ipv6HdrLen : ipv6HdrLen+plen]
	if len(icmp) < 4 {
		return DropShort
	}
	typ := icmp[0]
	if typ != icmp6NS && typ != icmp6NA {
		return DropNDType
	}
	if p[7] != ndHopLimit {
		return DropHopLimit
	}
	copy(m.src[:], p[8:24])
	copy(m.dst[:], p[24:40])
	if icmp[1] != 0 {
		return DropNDCode
	}
	if len(icmp) < ndMsgLen {
		return DropShort
	}
	if icmp6Checksum(&m.src, &m.dst, icmp) != 0 {
		return DropChecksum
	}
	m.typ = typ
	m.flags = icmp[4]
	copy(m.target[:], icmp[8:24])
	if m.target[0] == 0xff {
		return DropTargetMulticast
	}
	if m.src[0] == 0xff {
		return DropSourceMulticast
	}
	m.srcZero = m.src == [16]byte{}
	want := uint8(ndOptSLLA)
	if typ == icmp6NA {
		want = ndOptTLLA
	}
	m.hasLLA = false
	for o := icmp[ndMsgLen:]; len(o) > 0; {
		if len(o) < 2 {
			return DropOption
		}
		n := int(o[1]) * 8
		if n == 0 || n > len(o) {
			return DropOption
		}
		if o[0] == want {
			if n != 8 {
				return DropOption
			}
			if !m.hasLLA {
				copy(m.lla[:], o[2:8])
				m.hasLLA = true
			}
		}
		o = o[n:]
	}
	if m.hasLLA && (isMulticastMAC(m.lla) || m.lla == [6]byte{}) {
		return DropBadSourceMAC
	}
	if typ == icmp6NS && m.srcZero {
		if !isSolicitedNode(&m.dst) {
			return DropDADDest
		}
		if m.hasLLA {
			return DropDADOption
		}
	}
	if typ == icmp6NA && m.dst[0] == 0xff && m.flags&naFlagSolicited != 0 {
		return DropSolicitedMulticast
	}
	return DropNone
}

func isMulticastMAC(a [6]byte) bool { return a[0]&1 != 0 }

func isSolicitedNode(a *[16]byte) bool {
	return a[0] == 0xff && a[1] == 0x02 && [9]byte(a[2:11]) == [9]byte{} && a[11] == 1 && a[12] == 0xff
}

// solicitedNode returns ff02::1:ffXX:XXXX for target t (RFC 4291 §2.7.1).
func solicitedNode(t [16]byte) [16]byte {
	a := [16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff}
	a[13], a[14], a[15] = t[13], t[14], t[15]
	return a
}

// multicastMAC6 maps an IPv6 multicast address to 33:33:xx:xx:xx:xx
// (RFC 2464 §7).
func multicastMAC6(a [16]byte) [6]byte {
	return [6]byte{0x33, 0x33, a[12], a[13], a[14], a[15]}
}

var allNodes = [16]byte{0: 0xff, 1: 0x02, 15: 0x01}

// icmp6Checksum returns the ones' complement checksum of an ICMPv6 message
// with the IPv6 pseudo-header (RFC 8200 §8.1). Over a message whose
// checksum field is correct the result is 0.
func icmp6Checksum(src, dst *[16]byte, msg []byte) uint16 {
	var s uint64
	for i := 0; i < 16; i += 2 {
		s += uint64(binary.BigEndian.Uint16(src[i:]))
		s += uint64(binary.BigEndian.Uint16(dst[i:]))
	}
	s += uint64(len(msg)>>16) + uint64(len(msg)&0xffff)
	s += protoICMPv6
	n := len(msg)
	for i := 0; i+1 < n; i += 2 {
		s += uint64(binary.BigEndian.Uint16(msg[i:]))
	}
	if n&1 != 0 {
		s += uint64(msg[n-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// putEther writes an Ethernet header.
func putEther(b []byte, dst, src [6]byte, typ uint16) {
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:14], typ)
}

// arpFrameLen is an ARP frame padded to the Ethernet minimum (60 bytes
// without FCS).
const arpFrameLen = 60

// buildARP writes a complete ARP frame into b (len >= arpFrameLen) and
// returns its length.
func buildARP(b []byte, ethDst, ethSrc [6]byte, op uint16, sha [6]byte, spa uint32, tha [6]byte, tpa uint32) int {
	putEther(b, ethDst, ethSrc, etherTypeARP)
	p := b[etherLen:]
	binary.BigEndian.PutUint16(p[0:2], arpHWEther)
	binary.BigEndian.PutUint16(p[2:4], etherTypeIPv4)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:8], op)
	copy(p[8:14], sha[:])
	binary.BigEndian.PutUint32(p[14:18], spa)
	copy(p[18:24], tha[:])
	binary.BigEndian.PutUint32(p[24:28], tpa)
	clear(b[etherLen+arpLen : arpFrameLen])
	return arpFrameLen
}

// ndFrameLen is an NS or NA with one link-layer address option.
const ndFrameLen = etherLen + ipv6HdrLen + ndMsgLen + 8

// buildND writes a complete NS or NA frame into b (len >= ndFrameLen) with
// a link-layer option (SLLA for NS, TLLA for NA) when lla is non-nil, and
// returns its length.
func buildND(b []byte, ethDst, ethSrc [6]byte, src, dst [16]byte, typ, flags uint8, target [16]byte, lla *[6]byte) int {
	icmpLen := ndMsgLen
	if lla != nil {
		icmpLen += 8
	}
	putEther(b, ethDst, ethSrc, etherTypeIPv6)
	ip := b[etherLen:]
	ip[0], ip[1], ip[2], ip[3] = 0x60, 0, 0, 0
	binary.BigEndian.PutUint16(ip[4:6], uint16(icmpLen))
	ip[6], ip[7] = protoICMPv6, ndHopLimit
	copy(ip[8:24], src[:])
	copy(ip[24:40], dst[:])
	m := ip[ipv6HdrLen : ipv6HdrLen+icmpLen]
	m[0], m[1], m[2], m[3] = typ, 0, 0, 0
	m[4], m[5], m[6], m[7] = flags, 0, 0, 0
	copy(m[8:24], target[:])
	if lla != nil {
		m[24] = ndOptSLLA
		if typ == icmp6NA {
			m[24] = ndOptTLLA
		}
		m[25] = 1
		copy(m[26:32], lla[:])
	}
	binary.BigEndian.PutUint16(m[2:4], icmp6Checksum(&src, &dst, m))
	return etherLen + ipv6HdrLen + icmpLen
}

func ip4(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func addr4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
