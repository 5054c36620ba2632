package pkt

import (
	"encoding/binary"

	"github.com/fwdd/fwdd/mbuf"
)

// EchoReply4 turns an ICMP Echo Request (parsed by Parse, for one of our
// addresses) into the Echo Reply in place: addresses swapped (the header
// checksum does not change), TTL set to GenTTL, type 8 -> 0, both checksums
// patched incrementally (RFC 1624). Options are kept unchanged. It returns
// false, changing nothing, if m is not an unfragmented echo request with a
// correct ICMP checksum. The link-layer header is left for the pipeline to
// rewrite; FlagHashValid is cleared (the flow reversed).
func EchoReply4(m *mbuf.Mbuf) bool {
	if m.Flags&(mbuf.FlagIPv4|FlagFragment) != mbuf.FlagIPv4 || m.L4Proto != ProtoICMP {
		return false
	}
	d := m.Data()
	o, l4 := int(m.L3Off), int(m.L4Off)
	if o+IPv4Len > len(d) || l4 < o+IPv4Len || l4+ICMPLen > len(d) {
		return false
	}
	ic := d[l4:]
	if ic[0] != 8 || Checksum(ic) != 0 {
		return false
	}
	ip := d[o:]
	var a [4]byte
	copy(a[:], ip[12:16])
	copy(ip[12:16], ip[16:20])
	copy(ip[16:20], a[:])
	old := binary.BigEndian.Uint16(ip[8:10])
	ip[8] = GenTTL
	binary.BigEndian.PutUint16(ip[10:12], UpdateChecksum(binary.BigEndian.Uint16(ip[10:12]), old, binary.BigEndian.Uint16(ip[8:10])))
	old = binary.BigEndian.Uint16(ic[0:2])
	ic[0] = 0
	binary.BigEndian.PutUint16(ic[2:4], UpdateChecksum(binary.BigEndian.Uint16(ic[2:4]), old, binary.BigEndian.Uint16(ic[0:2])))
	m.Flags &^= mbuf.FlagHashValid
	return true
}

// EchoReply6 is EchoReply4 for ICMPv6 (RFC 4443 §4.2): type 128 -> 129, hop
// limit GenTTL, addresses swapped (the pseudo-header sum does not change).
// Packets with extension headers are refused (a routing header would need
// reversing), as are fragments.
func EchoReply6(m *mbuf.Mbuf) bool {
	if m.Flags&(mbuf.FlagIPv6|FlagFragment) != mbuf.FlagIPv6 || m.L4Proto != ProtoICMPv6 {
		return false
	}
	d := m.Data()
	o, l4 := int(m.L3Off), int(m.L4Off)
	if l4 != o+IPv6Len || l4+ICMPLen > len(d) {
		return false
	}
	ip := d[o:l4]
	ic := d[l4:]
	if ic[0] != 128 || ^Fold(Sum(ic, pseudoSum6(ip, len(ic), ProtoICMPv6))) != 0 {
		return false
	}
	var a [16]byte
	copy(a[:], ip[8:24])
	copy(ip[8:24], ip[24:40])
	copy(ip[24:40], a[:])
	ip[7] = GenTTL
	old := binary.BigEndian.Uint16(ic[0:2])
	ic[0] = 129
	binary.BigEndian.PutUint16(ic[2:4], UpdateChecksum(binary.BigEndian.Uint16(ic[2:4]), old, binary.BigEndian.Uint16(ic[0:2])))
	m.Flags &^= mbuf.FlagHashValid
	return true
}
