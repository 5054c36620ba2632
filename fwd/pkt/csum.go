package pkt

import (
	"encoding/binary"
	"math/bits"

	"github.com/fwdd/fwdd/mbuf"
)

// Sum adds b to acc, an unfolded ones'-complement accumulator (RFC 1071),
// 8 bytes at a time with 64-bit end-around carry, and returns the new
// accumulator. b is read as big-endian 16-bit words; an odd final byte is
// padded with zero. Chain calls only on even-length pieces except the last.
func Sum(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b[0:4])), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b[0:2])), c)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0])<<8, c)
	}
	acc, c = bits.Add64(acc, 0, c)
	return acc + c
}

// Fold folds an accumulator to 16 bits (end-around carry). Adding a word
// to itself rotated by half its width leaves in the upper half the
// ones'-complement sum of the two halves, carry folded in (Linux's
// csum_fold): two short steps instead of four dependent ones.
func Fold(acc uint64) uint16 {
	acc += bits.RotateLeft64(acc, 32)
	x := uint32(acc >> 32)
	x += bits.RotateLeft32(x, 16)
	return uint16(x >> 16)
}

// Checksum is the Internet checksum of b: the complement of its folded sum.
// Over a header whose checksum field holds a correct value it returns 0.
func Checksum(b []byte) uint16 { return ^Fold(Sum(b, 0)) }

// UpdateChecksum returns checksum hc after a 16-bit word of the summed data
// changed from old to new (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
func UpdateChecksum(hc, old, new uint16) uint16 {
	x := uint32(^hc) + uint32(^old) + uint32(new)
	x = x>>16 + x&0xffff
	x = x>>16 + x&0xffff
	return ^uint16(x)
}

// DecTTL4 decrements the TTL of the IPv4 header at m.L3Off and patches its
// checksum incrementally (RFC 1624). It returns expired = true, changing
// nothing, when the TTL is 0 or 1 (RFC 1812 §5.3.1: send Time Exceeded) or
// when m.L3Off does not leave room for a header.
func DecTTL4(m *mbuf.Mbuf) (expired bool) {
	d := m.Data()
	o := int(m.L3Off)
	if o+IPv4Len > len(d) {
		return true
	}
	return DecTTL4Header((*[IPv4Len]byte)(d[o:]))
}

// DecTTL4Header is DecTTL4 of the IPv4 header ip, for a caller that holds
// the header already (small enough to inline; no bounds checks).
func DecTTL4Header(ip *[IPv4Len]byte) (expired bool) {
	// TTL, protocol and checksum in one load and one store.
	w := binary.BigEndian.Uint32(ip[8:12])
	if w < 2<<24 { // TTL 0 or 1
		return true
	}
	// The word (TTL, protocol) dropped by 0x0100, so ~m + m' = 0xfeff; x
	// is at most 0x1fefe and one end-around carry folds it.
	x := ^w&0xffff + 0xfeff
	binary.BigEndian.PutUint32(ip[8:12], (w-1<<24)&0xffff0000|^(x+x>>16)&0xffff)
	return false
}

// DecHopLimit6 decrements the hop limit of the IPv6 header at m.L3Off. It
// returns expired = true, changing nothing, when the hop limit is 0 or 1
// (RFC 8200 §3, RFC 4443 §3.3) or m.L3Off leaves no room for a header.
func DecHopLimit6(m *mbuf.Mbuf) (expired bool) {
	d := m.Data()
	o := int(m.L3Off)
	if o+IPv6Len > len(d) {
		return true
	}
	if d[o+7] <= 1 {
		return true
	}
	d[o+7]--
	return false
}

// pseudoSum6 is the sum of the IPv6 pseudo-header (RFC 8200 §8.1) of the
// header ip for an upper-layer packet of length n and protocol nh.
func pseudoSum6(ip []byte, n int, nh uint8) uint64 {
	return Sum(ip[8:40], uint64(n)+uint64(nh))
}
