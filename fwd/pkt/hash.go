package pkt

import (
	"encoding/binary"
	"math/bits"

	"github.com/fwdd/fwdd/mbuf"
)

// Mixing constants (odd, high-entropy: the first wyhash secrets).
const (
	k0 = 0xa0761d6478bd642f
	k1 = 0xe7037ed1a0b428db
	k2 = 0x8ebc6af09c88c6e3
	k3 = 0x589965cc75374cc3
)

// mum multiplies to 128 bits and folds the halves (wyhash's mixer).
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// FlowHash returns a hash of the packet's flow: source and destination
// address, protocol, and for TCP, UDP, SCTP, UDP-Lite and DCCP the ports.
// Fragments (first ones too) are hashed on addresses and protocol only, so
// every fragment of a datagram takes the same ECMP path. seed is the
// router's own value (avoid hash polarisation with neighbours running the
// same hash); it needs Parse's metadata and returns 0 for non-IP packets.
// Not symmetric. Use it as hash%n or (uint64(hash)*n)>>32.
func FlowHash(m *mbuf.Mbuf, seed uint64) uint32 {
	d := m.Data()
	o := int(m.L3Off)
	var ports uint64
	if l4 := int(m.L4Off); m.Flags&FlagFragment == 0 && l4 != 0 && l4+4 <= len(d) && hasPorts(m.L4Proto) {
		ports = uint64(binary.BigEndian.Uint32(d[l4:l4+4])) << 8
	}
	ports |= uint64(m.L4Proto)
	switch {
	case m.Flags&mbuf.FlagIPv4 != 0 && o+IPv4Len <= len(d):
		a := binary.BigEndian.Uint64(d[o+12 : o+20])
		h := mum(a^seed^k0, ports^k1)
		return fold32(mum(h^k2, k3))
	case m.Flags&mbuf.FlagIPv6 != 0 && o+IPv6Len <= len(d):
		a := d[o+8 : o+40]
		h := mum(binary.BigEndian.Uint64(a[0:8])^seed^k0, binary.BigEndian.Uint64(a[8:16])^k1)
		g := mum(binary.BigEndian.Uint64(a[16:24])^k2, binary.BigEndian.Uint64(a[24:32])^k3)
		return fold32(mum(h^ports^k1, g^k0))
	}
	return 0
}

func fold32(x uint64) uint32 { return uint32(x ^ x>>32) }

// hasPorts reports whether the transport header starts with 16-bit source
// and destination ports.
func hasPorts(p uint8) bool {
	return p == ProtoTCP || p == ProtoUDP || p == ProtoSCTP || p == ProtoUDPLite || p == ProtoDCCP
}
