package lltable

import (
	"encoding/binary"
	"fmt"
	"github.com/fwdd/fwdd/mbuf"
	"net/netip"
	"reflect"
	"testing"
)

// ndRaw builds an NS/NA frame with arbitrary options and a correct
// checksum.
func ndRaw(typ, flags uint8, src, dst, target netip.Addr, opts []byte) []byte {
	icmp := make([]byte, ndMsgLen+len(opts))
	icmp[0], icmp[4] = typ, flags
	tg := target.As16()
	copy(icmp[8:24], tg[:])
	copy(icmp[24:], opts)
	f := make([]byte, etherLen+ipv6HdrLen+len(icmp))
	ethDst := ourMAC
	if dst.IsMulticast() {
		ethDst = multicastMAC6(dst.As16())
	}
	putEther(f, ethDst, peerMAC, etherTypeIPv6)
	ip := f[etherLen:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(icmp)))
	ip[6], ip[7] = protoICMPv6, 255
	s, d := src.As16(), dst.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	copy(ip[40:], icmp)
	fixSum(f)
	return f
}

// fixSum recomputes the ICMPv6 checksum of an IPv6 frame after a mutation.
func fixSum(f []byte) {
	ip := f[etherLen:]
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if plen > len(ip)-ipv6HdrLen {
		plen = len(ip) - ipv6HdrLen
	}
	m := ip[ipv6HdrLen : ipv6HdrLen+plen]
	if len(m) < 4 {
		return
	}
	m[2], m[3] = 0, 0
	src, dst := [16]byte(ip[8:24]), [16]byte(ip[24:40])
	binary.BigEndian.PutUint16(m[2:4], icmp6Checksum(&src, &dst, m))
}

var sllaPeer = []byte{ndOptSLLA, 1, 2, 0, 0, 0, 0, 0x22}
var tllaPeer = []byte{ndOptTLLA, 1, 2, 0, 0, 0, 0, 0x22}

func TestMalformedDropped(t *testing.T) {
	arpOK := func() []byte { return arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, peer4, [6]byte{}, our4) }
	nsOK := func() []byte { return ndRaw(icmp6NS, 0, peer6, our6, our6, sllaPeer) }
	naOK := func() []byte {
		return ndRaw(icmp6NA, naFlagSolicited|naFlagOverride, peer6, our6, peer6, tllaPeer)
	}
	mut := func(f []byte, fn func([]byte), fix bool) []byte {
		fn(f)
		if fix {
			fixSum(f)
		}
		return f
	}
	type tc struct {
		name string
		f    []byte
		why  Drop
	}
	cases := []tc{
		{"empty", nil, DropShort},
		{"short ethernet", arpOK()[:13], DropShort},
		{"vlan", mut(arpOK(), func(f []byte) { f[12], f[13] = 0x81, 0 }, false), DropVLAN},
		{"ipv4 ethertype", mut(arpOK(), func(f []byte) { f[12], f[13] = 0x08, 0 }, false), DropEtherType},
		{"arp short", arpOK()[:etherLen+27], DropShort},
		{"arp hardware type", mut(arpOK(), func(f []byte) { f[15] = 6 }, false), DropARPHardware},
		{"arp protocol", mut(arpOK(), func(f []byte) { f[16], f[17] = 0x86, 0xdd }, false), DropARPProtocol},
		{"arp hlen", mut(arpOK(), func(f []byte) { f[18] = 8 }, false), DropARPLength},
		{"arp plen", mut(arpOK(), func(f []byte) { f[19] = 16 }, false), DropARPLength},
		{"arp op", mut(arpOK(), func(f []byte) { f[21] = 3 }, false), DropARPOp},
		{"arp multicast sha", mut(arpOK(), func(f []byte) { f[22] = 1 }, false), DropBadSourceMAC},
		{"arp zero sha", mut(arpOK(), func(f []byte) { clear(f[22:28]) }, false), DropBadSourceMAC},
		{"arp multicast ether source", mut(arpOK(), func(f []byte) { f[6] = 3 }, false), DropBadSourceMAC},
		{"ipv6 short", nsOK()[:etherLen+39], DropShort},
		{"ipv6 version", mut(nsOK(), func(f []byte) { f[14] = 0x40 }, false), DropIPVersion},
		{"payload length beyond frame", mut(nsOK(), func(f []byte) { f[18], f[19] = 0, 200 }, false), DropShort},
		{"icmp truncated", mut(nsOK(), func(f []byte) { f[18], f[19] = 0, 3 }, false), DropShort},
		{"extension header", mut(nsOK(), func(f []byte) { f[20] = 0 }, false), DropNDType},
		{"router solicitation", mut(nsOK(), func(f []byte) { f[54] = icmp6RS }, true), DropNDType},
		{"ns hop limit 64", mut(nsOK(), func(f []byte) { f[21] = 64 }, false), DropHopLimit},
		{"na hop limit 254", mut(naOK(), func(f []byte) { f[21] = 254 }, false), DropHopLimit},
		{"ns bad checksum", mut(nsOK(), func(f []byte) { f[56] ^= 0x40 }, false), DropChecksum},
		{"na bad checksum", mut(naOK(), func(f []byte) { f[len(f)-1] ^= 1 }, false), DropChecksum},
		{"ns code 1", mut(nsOK(), func(f []byte) { f[55] = 1 }, true), DropNDCode},
		{"ns 20 bytes", mut(nsOK(), func(f []byte) { f[18], f[19] = 0, 20 }, true), DropShort},
		{"ns option length 0", ndRaw(icmp6NS, 0, peer6, our6, our6, []byte{ndOptSLLA, 0, 2, 0, 0, 0, 0, 0x22}), DropOption},
		{"na unknown option length 0", ndRaw(icmp6NA, naFlagSolicited, peer6, our6, peer6, append([]byte{9, 0, 0, 0, 0, 0, 0, 0}, tllaPeer...)), DropOption},
		{"ns option truncated", ndRaw(icmp6NS, 0, peer6, our6, our6, []byte{ndOptSLLA, 2, 2, 0, 0, 0, 0, 0x22}), DropOption},
		{"ns option odd tail", ndRaw(icmp6NS, 0, peer6, our6, our6, append(sllaPeer, 1)), DropOption},
		{"ns slla 16 bytes", ndRaw(icmp6NS, 0, peer6, our6, our6, append([]byte{ndOptSLLA, 2, 2, 0, 0, 0, 0, 0x22}, make([]byte, 8)...)), DropOption},
		{"ns multicast slla", ndRaw(icmp6NS, 0, peer6, our6, our6, []byte{ndOptSLLA, 1, 1, 0, 0, 0, 0, 0x22}), DropBadSourceMAC},
		{"ns multicast target", ndRaw(icmp6NS, 0, peer6, our6, allNodes6(), sllaPeer), DropTargetMulticast},
		{"na multicast target", ndRaw(icmp6NA, naFlagSolicited, peer6, our6, allNodes6(), tllaPeer), DropTargetMulticast},
		{"ns multicast source", ndRaw(icmp6NS, 0, allNodes6(), our6, our6, sllaPeer), DropSourceMulticast},
		{"dad ns to unicast", ndRaw(icmp6NS, 0, netip.IPv6Unspecified(), our6, our6, nil), DropDADDest},
		{"dad ns with slla", ndRaw(icmp6NS, 0, netip.IPv6Unspecified(), netip.AddrFrom16(solicitedNode(our6.As16())), our6, sllaPeer), DropDADOption},
		{"na solicited to multicast", ndRaw(icmp6NA, naFlagSolicited, peer6, allNodes6(), peer6, tllaPeer), DropSolicitedMulticast},
		{"ns from our MAC", mut(nsOK(), func(f []byte) { copy(f[6:12], ourMAC[:]) }, false), DropSpoof},
		{"arp on unknown port", nil, DropNoPort}, // filled below
	}
	cases[len(cases)-1].f = arpOK()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			// A table with something in it: an INCOMPLETE entry for each
			// family (the frames would resolve them) and a REACHABLE one.
			e.miss(peer4)
			e.miss(peer6)
			e.into(netip.MustParseAddr("198.18.0.3"), StateReachable)
			e.stk.take()
			before := e.tab.List()
			ctr := e.tab.Counters()
			snap := e.tab.Snapshot()
			m := e.packetRaw(c.f)
			if i == len(cases)-1 {
				m.Port = 77
			}
			e.tab.Input(m)
			e.tab.Poll()
			if after := e.tab.List(); !reflect.DeepEqual(before, after) {
				t.Fatalf("table changed:\n%v\n%v", before, after)
			}
			if e.tab.Snapshot() != snap {
				t.Fatal("snapshot republished")
			}
			if out := e.stk.take(); len(out) != 0 {
				t.Fatalf("sent %d frames", len(out))
			}
			got := e.tab.Counters()
			if got.Dropped[c.why] != ctr.Dropped[c.why]+1 {
				var diff []string
				for d := Drop(0); d < NumDrops; d++ {
					if got.Dropped[d] != ctr.Dropped[d] {
						diff = append(diff, d.String())
					}
				}
				t.Fatalf("want drop %v counted, got %v", c.why, diff)
			}
			e.checkNoLeak()
		})
	}
	// The unmutated frames are accepted (the cases above test what they
	// claim to).
	for _, f := range [][]byte{arpOK(), nsOK(), naOK()} {
		e := newEnv(t, nil)
		e.miss(peer6)
		e.in(f)
		if d := e.tab.Counters().Dropped; d != [NumDrops]uint64{} {
			t.Fatalf("valid frame dropped: %v", fmt.Sprint(d))
		}
	}
}

func (e *env) packetRaw(f []byte) *mbuf.Mbuf {
	var ms [1]*mbuf.Mbuf
	if e.pool.Alloc(ms[:]) != 1 {
		e.t.Fatal("pool exhausted")
	}
	copy(ms[0].Append(len(f)), f)
	ms[0].Port = port1
	return ms[0]
}
