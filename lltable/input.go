package lltable

import (
	"net/netip"
	"time"

	"github.com/fwdd/fwdd/mbuf"
)

// Input processes ARP frames and ICMPv6 neighbour discovery packets
// received on m.Port (the control-side entry point for stacks that punt
// through their own ring). It takes ownership of every mbuf and frees it.
// Malformed frames are dropped and counted by reason and never change the
// table.
func (t *Table) Input(ms ...*mbuf.Mbuf) {
	for _, m := range ms {
		t.input(m)
	}
}

func (t *Table) input(m *mbuf.Mbuf) {
	t.ctr.Input++
	if why := t.inputFrame(m.Port, m.Data()); why != DropNone {
		t.ctr.Dropped[why]++
	}
	t.freeOne(m)
}

// inputFrame handles one frame; the caller frees it. It returns DropNone
// when the frame was acceptable (whether or not it changed anything).
func (t *Table) inputFrame(port uint16, f []byte) Drop {
	typ, p, why := parseEther(f)
	if why != DropNone {
		return why
	}
	var ethDst, ethSrc [6]byte
	copy(ethDst[:], f[0:6])
	copy(ethSrc[:], f[6:12])
	switch typ {
	case etherTypeARP:
		t.ctr.InARP++
		var a arpMsg
		if why := parseARP(p, &a); why != DropNone {
			return why
		}
		a.ethSrc, a.ethDst = ethSrc, ethDst
		return t.arpInput(port, &a)
	case etherTypeIPv6:
		t.ctr.InND++
		var n ndMsg
		if why := parseND(p, &n); why != DropNone {
			return why
		}
		n.ethSrc, n.ethDst = ethSrc, ethDst
		if isMulticastMAC(ethSrc) {
			return DropBadSourceMAC
		}
		if n.typ == icmp6NS {
			return t.nsInput(port, &n)
		}
		return t.naInput(port, &n)
	}
	return DropEtherType
}

// arpInput applies RFC 826's merge algorithm, with these rules:
//   - a sender claiming our MAC or one of our addresses is refused
//     (counted as a conflict when it claims our address from another MAC);
//   - an existing entry for the sender is updated (merge); a reply to one
//     of our addresses confirms it (REACHABLE), anything else that changes
//     the MAC makes it STALE;
//   - a request for one of our addresses creates a STALE entry for an
//     on-link sender, and is answered; replies never create entries
//     (like Linux arp_accept=0);
//   - a sender address of 0.0.0.0 (RFC 5227 probe) teaches nothing but is
//     answered;
//   - static entries never change.
func (t *Table) arpInput(port uint16, a *arpMsg) Drop {
	ps := t.ports[port]
	if ps == nil {
		return DropNoPort
	}
	if a.sha == ps.mac || a.ethSrc == ps.mac {
		return DropSpoof
	}
	if isMulticastMAC(a.ethSrc) {
		return DropBadSourceMAC
	}
	now := t.clock.Now()
	spa, tpa := addr4(a.spa), addr4(a.tpa)
	if a.spa != 0 && ps.ours(spa) {
		t.ctr.Conflicts++
		return DropSpoof
	}
	forUs := ps.ours(tpa)
	merged := false
	if a.spa != 0 {
		if e := t.entries[key{port, spa}]; e != nil {
			merged = true
			t.learn(e, a.sha, a.op == arpOpReply && forUs, now)
		}
	}
	if !forUs {
		if merged {
			return DropNone
		}
		return DropNotForUs
	}
	if !merged && a.spa != 0 && a.op == arpOpRequest {
		t.learnNew(port, ps, spa, a.sha, now)
	}
	if a.op == arpOpRequest {
		t.arpReply(port, ps, a)
	}
	return DropNone
}

// learnNew creates a STALE entry for a neighbour that sent us a request
// (an ARP request or an NS with a source link-layer option) and has no
// entry yet. Like Linux, only a source a neighbour of this port can have
// is learned (learnable); the others are counted as not_on_link (the
// request is still answered). The new entry is STALE: the first packet
// sent to it moves it to DELAY and then PROBE (RFC 4861 §7.3.3), so a
// spoofed MAC is verified as soon as it is used. At a limit, create
// evicts an unused STALE or FAILED entry first.
func (t *Table) learnNew(port uint16, ps *portState, a netip.Addr, mac [6]byte, now time.Time) {
	if !ps.learnable(a) {
		t.ctr.Dropped[DropNotOnLink]++
		return
	}
	e := t.create(port, ps, a, now)
	if e == nil {
		return
	}
	e.mac = mac
	t.toStale(e, now)
	t.ctr.Learned++
}

// learn merges a link-layer address heard for e. confirm says the message
// proves reachability (an ARP reply to us; NDP uses naInput).
func (t *Table) learn(e *entry, mac [6]byte, confirm bool, now time.Time) {
	switch e.state {
	case StateStatic:
		if mac != e.mac {
			t.ctr.StaticRejected++
		}
		return
	case StateIncomplete, StateFailed:
		t.ctr.Learned++
		t.resolved(e, mac, confirm, now)
		return
	}
	changed := mac != e.mac
	if changed {
		t.ctr.Moved++
		t.ctr.Learned++
		t.setMAC(e, mac)
	}
	switch {
	case confirm:
		t.toReachable(e, now)
	case changed:
		t.toStale(e, now)
	}
}

func (t *Table) arpReply(port uint16, ps *portState, a *arpMsg) {
	m := t.alloc()
	if m == nil {
		return
	}
	n := buildARP(m.Append(arpFrameLen), a.sha, ps.mac, arpOpReply, ps.mac, a.tpa, a.sha, a.spa)
	m.SetLen(n)
	t.ctr.ARPRepliesSent++
	t.transmit(port, m)
}

// nsInput handles a Neighbor Solicitation (RFC 4861 §7.2.3): only for our
// own targets; an SLLA option from a specified source creates a STALE
// entry or updates one (STALE if the address changed); the answer is a
// solicited NA with R, S, O set to the source, or an NA to all-nodes
// without S when the source is unspecified (DAD).
func (t *Table) nsInput(port uint16, n *ndMsg) Drop {
	ps := t.ports[port]
	if ps == nil {
		return DropNoPort
	}
	if n.ethSrc == ps.mac || (n.hasLLA && n.lla == ps.mac) {
		return DropSpoof
	}
	target := netip.AddrFrom16(n.target)
	if !ps.ours(target) {
		return DropNotForUs
	}
	now := t.clock.Now()
	src := netip.AddrFrom16(n.src)
	if !n.srcZero {
		if ps.ours(src) {
			t.ctr.Conflicts++
			return DropSpoof
		}
		if n.hasLLA {
			if e := t.entries[key{port, src}]; e != nil {
				t.learn(e, n.lla, false, now)
			} else {
				t.learnNew(port, ps, src, n.lla, now)
			}
		}
	}
	m := t.alloc()
	if m == nil {
		return DropNone
	}
	var ethDst [6]byte
	var dst [16]byte
	flags := uint8(naFlagRouter | naFlagOverride)
	if n.srcZero {
		dst, ethDst = allNodes, multicastMAC6(allNodes)
	} else {
		dst, flags = n.src, flags|naFlagSolicited
		ethDst = n.ethSrc
		if n.hasLLA {
			ethDst = n.lla
		}
	}
	l := buildND(m.Append(ndFrameLen), ethDst, ps.mac, n.target, dst, icmp6NA, flags, n.target, &ps.mac)
	m.SetLen(l)
	t.ctr.NASent++
	t.transmit(port, m)
	return DropNone
}

// naInput handles a Neighbor Advertisement (RFC 4861 §7.2.5).
func (t *Table) naInput(port uint16, n *ndMsg) Drop {
	ps := t.ports[port]
	if ps == nil {
		return DropNoPort
	}
	if n.ethSrc == ps.mac || (n.hasLLA && n.lla == ps.mac) {
		return DropSpoof
	}
	target := netip.AddrFrom16(n.target)
	if ps.ours(target) {
		t.ctr.Conflicts++
		return DropSpoof
	}
	e := t.entries[key{port, target}]
	if e == nil {
		return DropNone // no entry: silently discarded (§7.2.5)
	}
	now := t.clock.Now()
	solicited := n.flags&naFlagSolicited != 0
	override := n.flags&naFlagOverride != 0
	router := n.flags&naFlagRouter != 0
	switch e.state {
	case StateStatic:
		if n.hasLLA && n.lla != e.mac {
			t.ctr.StaticRejected++
		}
		return DropNone
	case StateIncomplete, StateFailed:
		if !n.hasLLA {
			return DropNone
		}
		e.router = router
		t.ctr.Learned++
		t.resolved(e, n.lla, solicited, now)
		return DropNone
	}
	differs := n.hasLLA && n.lla != e.mac
	if !override && differs {
		// Keep the cached address; only a REACHABLE entry goes STALE.
		if e.state == StateReachable {
			t.toStale(e, now)
		}
		return DropNone
	}
	if differs {
		t.ctr.Moved++
		t.setMAC(e, n.lla)
	}
	switch {
	case solicited:
		t.toReachable(e, now)
	case differs:
		t.toStale(e, now)
	}
	e.router = router
	return DropNone
}
