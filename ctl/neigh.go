package ctl

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/lltable"
)

// neighbours drives the engine's neighbour table from the control
// goroutine: ports and their addresses, static entries, polling.
type neighbours struct {
	s *stack
	t *lltable.Table
}

func newNeighbours(s *stack) *neighbours { return &neighbours{s: s, t: s.eng.Neigh()} }

// input polls the table: rings from the workers, timers, publication.
func (n *neighbours) input() { n.t.Poll() }

func (n *neighbours) tick(time.Time) { n.t.Poll() }

// close frees the packets held for unresolved neighbours, so that a
// stopped stack (vnet del, shutdown) leaves every mbuf back in its pool.
// Nothing adds to the table afterwards: only the control goroutine polls it.
func (n *neighbours) close() {
	for _, lp := range n.s.live {
		n.t.RemovePort(lp.id)
	}
}

// syncNeighbours tells the table about ports, addresses and static entries
// after a reconcile.
func (s *stack) syncNeighbours(om, nm *model, removed []*livePort) {
	t := s.nb.t
	if err := t.SetLimits(neighLimits(nm)); err != nil {
		// The model's checks keep every value in range.
		s.log.Error("neighbour table: limits", "err", err)
	}
	for _, lp := range removed {
		t.RemovePort(lp.id)
	}
	for _, lp := range s.live {
		s.setNeighPort(lp)
	}
	for k := range om.neigh {
		if _, ok := nm.neigh[k]; !ok {
			if lp, ok := s.live[k.Port]; ok {
				_ = t.Delete(lp.id, k.Addr)
			}
		}
	}
	for k, mac := range nm.neigh {
		lp, ok := s.live[k.Port]
		if !ok {
			continue
		}
		var m [6]byte
		copy(m[:], mac)
		if err := t.AddStatic(lp.id, k.Addr, m); err != nil {
			s.log.Warn("neighbour table: static entry", "port", k.Port, "addr", k.Addr, "err", err)
		}
	}
	t.Publish()
}

// neighLimits reads the net.neigh.* keys of m.
func neighLimits(m *model) lltable.Limits {
	get := func(k string) int { n, _ := strconv.Atoi(m.sysctl[k]); return n }
	return lltable.Limits{MaxEntries: get("net.neigh.max_entries"), MaxPerPort: get("net.neigh.max_per_port"),
		MaxIncomplete: get("net.neigh.max_incomplete"), HoldLen: get("net.neigh.hold"), MaxHeld: get("net.neigh.max_held"),
		RequestsPerSecond: get("net.neigh.max_requests")}
}

// setNeighPort gives the table lp's MAC and addresses (a changed MAC and
// new addresses are announced).
func (s *stack) setNeighPort(lp *livePort) {
	var mac [6]byte
	copy(mac[:], lp.info.MAC)
	addrs := slices.Clone(lp.model.Addrs)
	// The IPv6 link-local address (EUI-64 from the MAC) answers NDP for
	// neighbours that route to us by link-local next hop.
	if hasV6(addrs) {
		addrs = append(addrs, linkLocal(mac))
	}
	if err := s.nb.t.SetPort(lp.id, mac, addrs); err != nil {
		s.log.Warn("neighbour table: port", "port", lp.model.Name, "err", err)
	}
}

func hasV6(addrs []netip.Prefix) bool {
	for _, a := range addrs {
		if a.Addr().Is6() {
			return true
		}
	}
	return false
}

// linkLocal returns fe80::/64 with the modified EUI-64 of mac (RFC 4291
// appendix A).
func linkLocal(mac [6]byte) netip.Prefix {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8] = mac[0] ^ 0x02
	a[9], a[10] = mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// show answers show neigh [PORT].
func (n *neighbours) show(port string) (cmdlang.Result, error) {
	var id uint16
	if port != "" {
		lp, ok := n.s.live[port]
		if !ok {
			return cmdlang.Result{}, fmt.Errorf("port %s: %w", port, errNoPort)
		}
		id = lp.id
	}
	rows := []show.Neighbour{}
	for _, e := range n.t.List() {
		if port != "" && e.Port != id {
			continue
		}
		row := show.Neighbour{Port: n.s.portName(uint32(e.Port)), Addr: e.Addr, State: strings.ToLower(e.StateS),
			Expire: e.Expires, Router: e.Router, Probes: e.Probes, Held: e.Held}
		if e.LLAddr != "" {
			row.LLAddr = show.HWAddr(slices.Clone(e.MAC[:]))
		}
		rows = append(rows, row)
	}
	show.SortNeighbours(rows)
	return render(rows, func(b *strings.Builder) error { return show.Neighbours(b, rows) })
}

// counters returns the table's counters (control goroutine).
func (n *neighbours) counters() []lltable.Counter {
	c := n.t.Counters()
	return c.List()
}

// countByState counts entries per (port, state) for the metrics.
func (n *neighbours) countByState() map[[2]string]int {
	out := map[[2]string]int{}
	for _, e := range n.t.List() {
		out[[2]string{n.s.portName(uint32(e.Port)), e.StateS}]++
	}
	return out
}
