package lltable

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzInput feeds arbitrary frames (and a time step) to a table that has
// entries in several states. It must never panic or leak an mbuf, and the
// published snapshot must always agree with the entries.
func FuzzInput(f *testing.F) {
	f.Add(arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, peer4, [6]byte{}, our4), uint8(0))
	f.Add(arpFrame(ourMAC, peerMAC2, arpOpReply, peerMAC2, netip.MustParseAddr("198.18.0.3"), ourMAC, our4), uint8(1))
	f.Add(nsFrame(peer6, peerMAC, our6, our6, &peerMAC), uint8(2))
	f.Add(naFrame(peer6, peerMAC, our6, naFlagSolicited|naFlagOverride, peer6, &peerMAC), uint8(3))
	f.Add(naFrame(netip.MustParseAddr("2001:2::3"), peerMAC2, allNodes6(), naFlagOverride, netip.MustParseAddr("2001:2::3"), &peerMAC2), uint8(4))
	f.Add(ndRaw(icmp6NS, 0, netip.IPv6Unspecified(), netip.AddrFrom16(solicitedNode(our6.As16())), our6, nil), uint8(5))
	f.Add([]byte{}, uint8(9))
	f.Fuzz(func(t *testing.T, frame []byte, step uint8) {
		if len(frame) > 1500 {
			frame = frame[:1500]
		}
		e := newEnv(t, func(c *Config) { c.HoldLen = 2 })
		e.miss(peer4)
		e.miss(peer6)
		e.into(netip.MustParseAddr("198.18.0.3"), StateStale)
		e.into(netip.MustParseAddr("2001:2::3"), StateReachable)
		_ = e.tab.AddStatic(port1, netip.MustParseAddr("198.18.0.9"), peerMAC)
		e.in(frame)
		e.advance(time.Duration(step) * 100 * time.Millisecond)
		e.in(frame)
		e.tab.Poll()
		s := e.tab.Snapshot()
		n := 0
		for _, x := range e.tab.List() {
			mac, ok := s.lookupAddr(x.Port, x.Addr)
			if ok != x.State.usable() || (ok && mac != x.MAC) {
				t.Fatalf("snapshot disagrees on %v: %x %v", x, mac, ok)
			}
			if ok {
				n++
			}
		}
		if a, b := s.Len(); a+b != n {
			t.Fatalf("snapshot has %d entries, table %d usable", a+b, n)
		}
		e.checkNoLeak()
	})
}

func (s *Snapshot) lookupAddr(port uint16, a netip.Addr) ([6]byte, bool) {
	if a.Is4() {
		return s.Lookup4(port, ip4(a))
	}
	b := a.As16()
	return s.Lookup6(port, &b)
}
