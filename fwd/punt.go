package fwd

import (
	"encoding/binary"

	"github.com/fwdd/fwdd/fwd/pkt"
	"github.com/fwdd/fwdd/mbuf"
)

// The punt stage: what goes to a port's kernel interface (package lcp)
// when the port has one (PortState.LCP). Host-bound traffic only; transit
// never goes through the kernel.
//
//   - packets for our addresses the dataplane does not answer itself
//     (everything but ICMP echo requests): local4, local6;
//   - IPv4 link-local multicast 224.0.0.0/24 (OSPF, VRRP, ...) and
//     broadcast (255.255.255.255, or a frame to ff:ff:ff:ff:ff:ff);
//   - IPv6 to ff02::/16 (all-routers, OSPFv3, MLD, RS/RA) and to
//     link-local unicast fe80::/10, with or without Hop-by-Hop options
//     (MLD carries a router alert);
//   - a copy of every ARP and NDP frame, so that both the kernel and the
//     neighbour table learn neighbours.
//
// Every call site tests in.LCP && p.punt != nil first: the control
// goroutine's pipeline never punts, and a port without a kernel interface
// drops as before. Punting hands the mbuf to the worker's lcp.Producer,
// which buffers it until finish (one ring enqueue per burst).

// puntLCP hands m to its port's kernel interface.
func (p *pipeline) puntLCP(m *mbuf.Mbuf) {
	p.bc.v[PuntedLCP]++
	p.punt.Punt(m)
}

// puntCopy punts a copy of m (ARP, NDP) and leaves m to the caller.
func (p *pipeline) puntCopy(m *mbuf.Mbuf) {
	one := p.one[:]
	if p.cache.Alloc(one) == 0 {
		p.bc.v[DropNoBuffer]++
		return
	}
	c := one[0]
	d := m.Data()
	buf := c.Append(len(d))
	if buf == nil {
		p.cache.Free(one)
		p.bc.v[DropNoBuffer]++
		return
	}
	copy(buf, d)
	c.Port = m.Port
	p.puntLCP(c)
}

// hostBoundDrop reports whether a frame the parser refused for its
// destination (why) is link-local multicast or broadcast the host wants.
// Only the IPv4 destination reasons qualify; the header was validated up to
// the address checks.
func hostBoundDrop(m *mbuf.Mbuf, why pkt.Reason) bool {
	switch why {
	case pkt.DstBroadcast:
		return m.EtherType == pkt.EtherTypeIPv4
	case pkt.DstMulticast:
		d := m.Data()
		o := int(m.L3Off)
		if m.EtherType == pkt.EtherTypeIPv4 {
			return len(d) >= o+20 && binary.BigEndian.Uint32(d[o+16:o+20])>>8 == 0xe00000 // 224.0.0.0/24
		}
		return m.EtherType == pkt.EtherTypeIPv6 && len(d) >= o+40 && d[o+24] == 0xff && d[o+25]&0x0f == 0x02 // ff02::/16 (and ffX2: link scope)
	}
	return false
}

// hostBound4 reports whether an IPv4 packet not sent to our MAC is for the
// host: a link-layer broadcast (subnet broadcast, DHCP, RIP).
func hostBound4(m *mbuf.Mbuf) bool {
	d := m.Data()
	return binary.BigEndian.Uint32(d[0:4]) == 0xffffffff && binary.BigEndian.Uint16(d[4:6]) == 0xffff
}

// hostBound6 reports whether an IPv6 packet is for the host's link-local
// stack: to link-scope multicast (ff02::/16), or to link-local unicast
// (fe80::/10) in a frame sent to our MAC (ours).
func hostBound6(m *mbuf.Mbuf, ours bool) bool {
	d := m.Data()
	o := int(m.L3Off)
	if len(d) < o+40 {
		return false
	}
	a, b := d[o+24], d[o+25]
	return a == 0xff && b&0x0f == 0x02 || ours && a == 0xfe && b&0xc0 == 0x80
}
