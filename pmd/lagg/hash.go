package lagg

import (
	"encoding/binary"
	"math/bits"

	"github.com/fwdd/fwdd/mbuf"
)

// Flow hash (FreeBSD lagg_hashmbuf, hash layers l2,l3,l4): the fields of
// the chosen layers are loaded as whole words and folded into two 64-bit
// lanes, which one 64x64->128-bit multiply mixes (the high and low halves
// xored). The lanes start from a per-lagg key derived from the lagg's MAC
// and id, so two routers in a row do not pick members in lockstep.
//
// Fields: l2 the destination and source MACs and the VLAN id of an
// 802.1Q-tagged frame (a vlan over the lagg); l3 the IPv4 or IPv6 source
// and destination addresses; l4 the TCP, UDP or SCTP ports of a frame
// that is not an IPv4 fragment (all fragments of a datagram hash by l3
// alone and keep one member). Every frame of a flow has the same fields,
// hence the same member: no reordering within a flow.

// hashKey derives the lanes' starting values from the lagg's MAC and id.
func hashKey(mac [6]byte, id uint16) (k0, k1 uint64) {
	x := uint64(mac[0])<<40 | uint64(mac[1])<<32 | uint64(mac[2])<<24 | uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5])
	x ^= uint64(id) << 48
	k0 = splitmix(x ^ 0x9e3779b97f4a7c15)
	k1 = splitmix(k0)
	// An odd, nonzero multiplicand: a lane of zero would erase the other.
	return k0 | 1, k1 | 1
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// lanes folds frame d's fields over the layers l2, l3, l4 into the lanes
// a, b (started from the key). It is the reference: pick's fast path
// must agree with it (TestPickMatchesLanes).
func lanes(d []byte, a, b uint64, l2, l3, l4 bool) (uint64, uint64) {
	if len(d) < 14 {
		return a, b
	}
	if l2 {
		a ^= binary.LittleEndian.Uint64(d[0:8])
		b ^= uint64(binary.LittleEndian.Uint32(d[8:12])) << 32
	}
	et := binary.BigEndian.Uint16(d[12:14])
	off := 14
	if et == 0x8100 && len(d) >= 18 {
		if l2 {
			b ^= uint64(binary.BigEndian.Uint16(d[14:16]) & 0xfff)
		}
		et = binary.BigEndian.Uint16(d[16:18])
		off = 18
	}
	var proto uint8
	l4off := 0
	switch {
	case !l3 && !l4:
	case et == 0x0800 && len(d) >= off+20:
		ip := d[off : off+20]
		if l3 {
			// Source and destination: one word, rotated so that it does
			// not cancel the MACs' bits.
			a ^= bits.RotateLeft64(binary.LittleEndian.Uint64(ip[12:20]), 17)
		}
		if binary.BigEndian.Uint16(ip[6:8])&0x3fff == 0 { // not a fragment
			proto = ip[9]
			l4off = off + int(ip[0]&0x0f)*4
		}
	case et == 0x86dd && len(d) >= off+40:
		ip := d[off : off+40]
		if l3 {
			a ^= bits.RotateLeft64(binary.LittleEndian.Uint64(ip[8:16])^binary.LittleEndian.Uint64(ip[32:40]), 17)
			b ^= bits.RotateLeft64(binary.LittleEndian.Uint64(ip[16:24])^binary.LittleEndian.Uint64(ip[24:32]), 41)
		}
		proto = ip[6]
		l4off = off + 40
	}
	if l4 && l4off > 0 && l4off+4 <= len(d) && l4Ports(proto) {
		// Both ports: one word.
		b ^= uint64(binary.LittleEndian.Uint32(d[l4off:l4off+4])) << 12
	}
	return a, b
}

// l4Ports: the protocol's header starts with two 16-bit ports (TCP, UDP,
// SCTP).
func l4Ports(proto uint8) bool { return proto == 6 || proto == 17 || proto == 132 }

// mix folds the lanes into 32 bits: one 64x64->128-bit multiply, the
// halves xored.
func mix(a, b uint64) uint32 {
	hi, lo := bits.Mul64(a, b)
	h := hi ^ lo
	return uint32(h ^ h>>32)
}

// hash is the flow hash of frame d over the lagg's layers.
func (p *Port) hash(d []byte) uint32 {
	return mix(lanes(d, p.k0, p.k1, p.hashL2, p.hashL3, p.hashL4))
}

// spread puts each frame of ms into the burst of the member (of k) its
// flow hash picks — the hash reduced to [0, k) with a multiply, not a
// division —, in order within each member, and returns the members'
// counts packed one byte each (members 0-7 in lo, 8-15 in hi; a burst is
// at most 64 frames). sel is scratch of len(ms).
//
// Three passes, none with a call or a dependency through memory from one
// frame to the next: (1) with the default layers (l2,l3,l4), hash inline
// the common case — an untagged TCP/UDP/SCTP over IPv4 frame without
// options or fragmentation —, marking the others; (2) hash the marked
// through lanes; (3) scatter, the counts in registers.
func (p *Port) spread(ms []*mbuf.Mbuf, sel []uint8, bufs *[MaxMembers][maxBurst]*mbuf.Mbuf, k int) (lo, hi uint64) {
	const other = 0xff
	k0, k1 := p.k0, p.k1
	kk := uint64(k)
	sel = sel[:len(ms)]
	others := len(ms)
	if p.hashL2 && p.hashL3 && p.hashL4 {
		others = 0
		for i, m := range ms {
			d := m.Data()
			if len(d) < 38 || binary.LittleEndian.Uint16(d[12:14]) != 0x0008 || d[14] != 0x45 ||
				binary.LittleEndian.Uint16(d[20:22])&0xff3f != 0 || !l4Ports(d[23]) {
				sel[i] = other
				others++
				continue
			}
			a := k0 ^ binary.LittleEndian.Uint64(d[0:8]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(d[26:34]), 17)
			b := k1 ^ uint64(binary.LittleEndian.Uint32(d[8:12]))<<32 ^ uint64(binary.LittleEndian.Uint32(d[34:38]))<<12
			sel[i] = uint8(uint64(mix(a, b)) * kk >> 32)
		}
	} else {
		for i := range sel {
			sel[i] = other
		}
	}
	if others > 0 {
		for i, m := range ms {
			if sel[i] == other {
				sel[i] = uint8(uint64(mix(lanes(m.Data(), k0, k1, p.hashL2, p.hashL3, p.hashL4))) * kk >> 32)
			}
		}
	}
	for i, m := range ms {
		j := uint(sel[i]) & (MaxMembers - 1)
		var c uint64
		if j < 8 {
			c = lo >> (8 * j)
			lo += 1 << (8 * j)
		} else {
			c = hi >> (8 * (j - 8))
			hi += 1 << (8 * (j - 8))
		}
		bufs[j][c&(maxBurst-1)] = m
	}
	return lo, hi
}
