package pkt

import (
	"encoding/binary"

	"github.com/fwdd/fwdd/mbuf"
)

// FragResult is the outcome of Fragment4.
type FragResult uint8

const (
	FragOK        FragResult = iota
	FragNotNeeded            // the packet fits the MTU
	FragDF                   // Don't Fragment set: send FragNeeded instead
	FragNotIPv4              // no parsed IPv4 header
	FragMTU                  // MTU too small for the header and 8 bytes of data (< 68 with no options)
	FragTooMany              // more fragments than the frags slice holds
	FragNoBuffer             // the cache ran out, or its buffers are too small

	NumFragResults
)

var fragNames = [NumFragResults]string{"ok", "not_needed", "df", "not_ipv4", "mtu_too_small", "too_many", "no_buffer"}

func (r FragResult) String() string {
	if r < NumFragResults {
		return fragNames[r]
	}
	return "unknown"
}

// MinMTU4 is the smallest IPv4 MTU (RFC 791).
const MinMTU4 = 68

// Fragment4 splits m, a parsed IPv4 packet longer than mtu (the egress IP
// MTU) without DF, into fragments of at most mtu bytes (RFC 791 §3.2,
// RFC 1812 §5.2.6). Fragments carry 8-byte multiples of data; options with
// the copy flag go into every fragment, the others only into the first.
// A fragment being fragmented again keeps its offset and MF.
//
// m itself becomes the first fragment (trimmed, header patched), so on
// FragOK frags[0] == m and frags[1:n] are new mbufs from c, each with a
// 14-byte Ethernet header (m's addresses, untagged) and m's metadata (Port,
// FIB, Hash, OutPort, NextHop; L4Off 0). The caller owns all n and sends
// them in order. On any other result m is unchanged, nothing is allocated
// and frags is untouched beyond what it held; the caller still owns m.
func Fragment4(m *mbuf.Mbuf, mtu int, c *mbuf.Cache, frags []*mbuf.Mbuf) (int, FragResult) {
	if m.Flags&mbuf.FlagIPv4 == 0 {
		return 0, FragNotIPv4
	}
	d := m.Data()
	o := int(m.L3Off)
	if o < EthLen || o+IPv4Len > len(d) {
		return 0, FragNotIPv4
	}
	ip := d[o:]
	hlen := int(ip[0]&0x0f) << 2
	tot := int(binary.BigEndian.Uint16(ip[2:4]))
	if ip[0]>>4 != 4 || hlen < IPv4Len || tot < hlen || tot > len(ip) {
		return 0, FragNotIPv4
	}
	if tot <= mtu {
		return 0, FragNotNeeded
	}
	frag := binary.BigEndian.Uint16(ip[6:8])
	if frag&0x4000 != 0 {
		return 0, FragDF
	}
	// Options copied into later fragments.
	var opts [40]byte
	nopt := copiedOptions(ip[IPv4Len:hlen], &opts)
	hlen2 := IPv4Len + (nopt+3)&^3
	p1 := (mtu - hlen) &^ 7
	pn := (mtu - hlen2) &^ 7
	if p1 < 8 || pn < 8 {
		return 0, FragMTU
	}
	payload := tot - hlen
	baseOff := int(frag&0x1fff) << 3
	if baseOff+payload > 0xffff {
		return 0, FragNotIPv4
	}
	n := 1 + (payload-p1+pn-1)/pn
	if n > len(frags) {
		return 0, FragTooMany
	}
	rest := frags[1:n]
	if got := c.Alloc(rest); got < len(rest) {
		c.Free(rest[:got])
		return 0, FragNoBuffer
	}
	if rest[0].Tailroom() < EthLen+hlen2+pn {
		c.Free(rest)
		return 0, FragNoBuffer
	}
	origMF := frag&0x2000 != 0
	for i, f := range rest {
		start := p1 + i*pn
		size := min(pn, payload-start)
		b := f.Append(EthLen + hlen2 + size)
		copy(b[0:12], d[0:12])
		binary.BigEndian.PutUint16(b[12:14], EtherTypeIPv4)
		h := b[EthLen:]
		copy(h[:IPv4Len], ip[:IPv4Len])
		h[0] = 0x40 | uint8(hlen2>>2)
		copy(h[IPv4Len:hlen2], opts[:hlen2-IPv4Len])
		binary.BigEndian.PutUint16(h[2:4], uint16(hlen2+size))
		fo := uint16((baseOff + start) >> 3)
		if i < len(rest)-1 || origMF {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(h[6:8], fo)
		h[10], h[11] = 0, 0
		binary.BigEndian.PutUint16(h[10:12], Checksum(h[:hlen2]))
		copy(h[hlen2:], ip[hlen+start:hlen+start+size])
		f.Port, f.FIB, f.Hash, f.OutPort, f.NextHop = m.Port, m.FIB, m.Hash, m.OutPort, m.NextHop
		f.Flags = m.Flags&^(mbuf.FlagVLAN|mbuf.FlagTxHash) | FlagFragment
		f.EtherType, f.VLANTCI = EtherTypeIPv4, 0
		f.L3Off, f.L4Off, f.L4Proto = EthLen, 0, m.L4Proto
	}
	// m becomes the first fragment.
	m.Trim(len(ip) - (hlen + p1))
	binary.BigEndian.PutUint16(ip[2:4], uint16(hlen+p1))
	binary.BigEndian.PutUint16(ip[6:8], frag|0x2000)
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:12], Checksum(ip[:hlen]))
	m.Flags |= FlagFragment
	frags[0] = m
	return n, FragOK
}

// copiedOptions copies the options with the copy flag (RFC 791: type bit
// 0x80) into dst, padded with End of Option List, and returns their length.
func copiedOptions(o []byte, dst *[40]byte) int {
	n := 0
	for i := 0; i < len(o); {
		t := o[i]
		if t == optEOL {
			break
		}
		if t == optNOP {
			i++
			continue
		}
		if i+1 >= len(o) {
			break
		}
		l := int(o[i+1])
		if l < 2 || i+l > len(o) {
			break
		}
		if t&0x80 != 0 && n+l <= len(dst) {
			n += copy(dst[n:], o[i:i+l])
		}
		i += l
	}
	for j := n; j < (n+3)&^3 && j < len(dst); j++ {
		dst[j] = optEOL
	}
	return n
}
