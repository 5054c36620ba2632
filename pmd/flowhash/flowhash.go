package flowhash

import (
	"encoding/binary"
	"math/bits"
)

// Hash is a keyed flow hash over a set of layers. Immutable after New.
type Hash struct {
	k0         uint64 // lane a's start; lane b starts at LaneB
	l2, l3, l4 bool
}

// LaneB is lane b's start for every key: the key is in lane a, so that
// a routed frame's constant part (the key and its Ethernet header) is one
// word (Eth).
const LaneB = 0x9e3779b97f4a7c15

// New returns the hash over layers l2, l3, l4 keyed by a port's MAC and
// id (so that two routers in a row do not pick lower ports in lockstep,
// and a test sees the same spread each run).
func New(l2, l3, l4 bool, mac [6]byte, id uint16) *Hash {
	x := uint64(mac[0])<<40 | uint64(mac[1])<<32 | uint64(mac[2])<<24 | uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5])
	x ^= uint64(id) << 48
	// Odd, nonzero multiplicands: a lane of zero would erase the other.
	return &Hash{k0: splitmix(x^0x9e3779b97f4a7c15) | 1, l2: l2, l3: l3, l4: l4}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Layers returns the layers the hash covers.
func (h *Hash) Layers() (l2, l3, l4 bool) { return h.l2, h.l3, h.l4 }

// Key returns the lanes' starting values (b is LaneB).
func (h *Hash) Key() (a, b uint64) { return h.k0, LaneB }

// Frame is the hash of frame d: the reference.
func (h *Hash) Frame(d []byte) uint32 { return Mix(h.Lanes(d, h.k0, LaneB)) }

// Lanes folds frame d's fields over the hash's layers into the lanes a, b
// (Key to start). Frames shorter than their headers fold what they have.
func (h *Hash) Lanes(d []byte, a, b uint64) (uint64, uint64) {
	if len(d) < 14 {
		return a, b
	}
	if h.l2 {
		a = AddEth(a, binary.LittleEndian.Uint64(d[0:8]), binary.LittleEndian.Uint32(d[8:12]))
	}
	et := binary.BigEndian.Uint16(d[12:14])
	off := 14
	if et == 0x8100 && len(d) >= 18 {
		if h.l2 {
			b ^= uint64(binary.BigEndian.Uint16(d[14:16]) & 0xfff)
		}
		et = binary.BigEndian.Uint16(d[16:18])
		off = 18
	}
	var proto uint8
	l4off := 0
	switch {
	case !h.l3 && !h.l4:
	case et == 0x0800 && len(d) >= off+20:
		ip := d[off : off+20]
		if h.l3 {
			a = AddIPv4(a, binary.LittleEndian.Uint64(ip[12:20]))
		}
		if binary.BigEndian.Uint16(ip[6:8])&0x3fff == 0 { // not a fragment
			proto = ip[9]
			l4off = off + int(ip[0]&0x0f)*4
		}
	case et == 0x86dd && len(d) >= off+40:
		ip := d[off : off+40]
		if h.l3 {
			a, b = AddIPv6(a, b, ip)
		}
		proto = ip[6]
		l4off = off + 40
	}
	if h.l4 && l4off > 0 && l4off+4 <= len(d) && HasPorts(proto) {
		b = AddPorts(b, binary.LittleEndian.Uint32(d[l4off:l4off+4]))
	}
	return a, b
}

// Eth returns lane a after the layer-2 fields of an untagged frame whose
// bytes 0-7 and 8-11 (the MACs), loaded little-endian, are eth0 and eth1:
// the starting point of a routed frame's hash (constant per next hop;
// lane b starts at LaneB). Without l2 it is the key.
func (h *Hash) Eth(eth0 uint64, eth1 uint32) uint64 {
	if h.l2 {
		return AddEth(h.k0, eth0, eth1)
	}
	return h.k0
}

// AddEth folds the MACs (bytes 0-7 and 8-11, loaded little-endian) into
// lane a (layer l2).
func AddEth(a, eth0 uint64, eth1 uint32) uint64 {
	return a ^ eth0 ^ uint64(eth1)<<24
}

// AddIPv4 folds an IPv4 header's bytes 12-19 (source and destination),
// loaded little-endian, into lane a (layer l3). The word is rotated so
// that it does not cancel the MACs' bits.
func AddIPv4(a, addrs uint64) uint64 { return a ^ bits.RotateLeft64(addrs, 17) }

// AddIPv6 folds an IPv6 header's source and destination (ip is at least
// the 40-byte fixed header) into the lanes (layer l3).
func AddIPv6(a, b uint64, ip []byte) (uint64, uint64) {
	_ = ip[39]
	a ^= bits.RotateLeft64(binary.LittleEndian.Uint64(ip[8:16])^binary.LittleEndian.Uint64(ip[32:40]), 17)
	b ^= bits.RotateLeft64(binary.LittleEndian.Uint64(ip[16:24])^binary.LittleEndian.Uint64(ip[24:32]), 41)
	return a, b
}

// AddPorts folds a transport header's first 4 bytes (both ports), loaded
// little-endian, into lane b (layer l4; only for HasPorts protocols of a
// frame that is not an IPv4 fragment).
func AddPorts(b uint64, ports uint32) uint64 { return b ^ uint64(ports)<<12 }

// HasPorts: the protocol's header starts with two 16-bit ports (TCP, UDP,
// SCTP).
func HasPorts(proto uint8) bool { return proto == 6 || proto == 17 || proto == 132 }

// Mix folds the lanes into 32 bits: one 64x64->128-bit multiply, bits
// 0-31 of the low word xored with bits 64-95, which depend on every bit
// of both lanes.
func Mix(a, b uint64) uint32 {
	hi, lo := bits.Mul64(a, b)
	return uint32(hi ^ lo)
}

// Pick reduces hash h to one of k choices with a multiply, not a
// division: the same for every frame of a flow while k stays.
func Pick(h uint32, k int) int { return int(uint64(h) * uint64(k) >> 32) }
