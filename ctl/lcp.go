package ctl

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/lcp"
)

// The ports' kernel interfaces (package lcp). A live port's lcp field is
// the name of the interface that exists for it ("" none); the model's LCP
// is the one the operator wants. reconcileLCP makes them agree.

// lcpCarrier is what a port's kernel interface shows as carrier: the
// port is administratively up and its link is up.
func (s *stack) lcpCarrier(lp *livePort) bool {
	l := lp.port.Link()
	return lp.model.Up && l.Up && l.Present
}

// reconcileLCP creates the kernel interfaces the model wants and that do
// not exist yet, first removing those whose name moves to another port.
// It returns what to do once the whole reconcile succeeded (remove the
// interfaces nobody wants any more) and what to do if it failed (remove
// what it created, put back what it removed), or an error having changed
// nothing.
func (s *stack) reconcileLCP(removed []*livePort) (commit, undo func(), err error) {
	lc := s.eng.LCP()
	type want struct {
		lp   *livePort
		name string
	}
	var create []want
	wanted := map[string]bool{}
	for _, lp := range s.live {
		if n := lp.model.LCP; n != "" && n != lp.lcp {
			create = append(create, want{lp, n})
			wanted[n] = true
		}
	}
	// Interfaces that go away: of removed ports, and of live ports whose
	// name changed or is off.
	var drop []*livePort
	for _, lp := range removed {
		if lp.lcp != "" {
			drop = append(drop, lp)
		}
	}
	for _, lp := range s.live {
		if lp.lcp != "" && lp.model.LCP != lp.lcp {
			drop = append(drop, lp)
		}
	}
	// Removed before the creations: interfaces whose name moves to another
	// port, and those of ports being renamed (one interface per port).
	var early []*livePort
	var early0 []string
	for _, lp := range drop {
		if wanted[lp.lcp] || s.live[lp.model.Name] == lp && lp.model.LCP != "" {
			early = append(early, lp)
		}
	}
	var created []*livePort
	undo = func() {
		for _, lp := range created {
			_ = lc.Remove(lp.id)
			lp.lcp = ""
		}
		for i, lp := range early {
			if _, err := lc.Add(lp.id, early0[i], s.opts.NetNS, lp.info.MAC, lp.mtu, s.lcpCarrier(lp)); err != nil {
				s.log.Error("lcp: could not restore a kernel interface", "port", lp.model.Name, "lcp", early0[i], "err", err)
				continue
			}
			lp.lcp = early0[i]
		}
	}
	for _, lp := range early {
		early0 = append(early0, lp.lcp)
		if err := lc.Remove(lp.id); err != nil {
			s.log.Warn("lcp: removing a kernel interface", "lcp", lp.lcp, "err", err)
		}
		lp.lcp = ""
	}
	for _, w := range create {
		if _, err := lc.Add(w.lp.id, w.name, s.opts.NetNS, w.lp.info.MAC, w.lp.mtu, s.lcpCarrier(w.lp)); err != nil {
			undo()
			return nil, nil, fmt.Errorf("port %s: %w", w.lp.model.Name, err)
		}
		w.lp.lcp = w.name
		w.lp.lcpMTU = w.lp.mtu
		w.lp.lcpMAC = w.lp.info.MAC
		w.lp.lcpCarrier = s.lcpCarrier(w.lp)
		created = append(created, w.lp)
	}
	commit = func() {
		for _, lp := range drop {
			if slices.Contains(early, lp) {
				continue // removed already
			}
			if err := lc.Remove(lp.id); err != nil {
				s.log.Warn("lcp: removing a kernel interface", "lcp", lp.lcp, "err", err)
			}
			lp.lcp = ""
		}
	}
	return commit, undo, nil
}

// syncLCP makes the kernel interfaces' carrier, MTU and MAC follow their ports
// (from publish: after every change and link event).
func (s *stack) syncLCP() {
	lc := s.eng.LCP()
	for _, lp := range s.live {
		if lp.lcp == "" {
			continue
		}
		if c := s.lcpCarrier(lp); c != lp.lcpCarrier {
			if err := lc.SetCarrier(lp.id, c); err != nil {
				s.log.Warn("lcp: carrier", "lcp", lp.lcp, "err", err)
			}
			lp.lcpCarrier = c
		}
		if lp.mtu != lp.lcpMTU {
			if err := lc.SetMTU(lp.id, lp.mtu); err != nil {
				s.log.Warn("lcp: mtu", "lcp", lp.lcp, "err", err)
			}
			lp.lcpMTU = lp.mtu
		}
		if !bytes.Equal(lp.info.MAC, lp.lcpMAC) {
			if err := lc.SetMAC(lp.id, lp.info.MAC); err != nil {
				s.log.Warn("lcp: mac", "lcp", lp.lcp, "err", err)
			}
			lp.lcpMAC = lp.info.MAC
		}
	}
}

// lcpRow is one port's kernel-interface counters.
type lcpRow struct {
	port, lcp string
	stats     lcp.Stats
}

// lcpRows returns the counters of every port with a kernel interface, in
// configuration order.
func (s *stack) lcpRows() []lcpRow {
	var rows []lcpRow
	for _, pm := range s.model.sortedPorts() {
		lp := s.live[pm.Name]
		if lp == nil || lp.lcp == "" {
			continue
		}
		rows = append(rows, lcpRow{pm.Name, lp.lcp, s.eng.LCP().Stats(lp.id)})
	}
	return rows
}

// counters names a row's counters as show stats and the metrics do.
func (r *lcpRow) counters() []struct {
	name string
	v    uint64
} {
	return []struct {
		name string
		v    uint64
	}{{"punted", r.stats.Punted}, {"punt_drop", r.stats.PuntDrop}, {"injected", r.stats.Injected}, {"inject_drop", r.stats.InjectDrop}}
}

// lcpCounterRows are show stats' rows of the kernel interfaces.
func (s *stack) lcpCounterRows() []show.Counter {
	var rows []show.Counter
	for _, r := range s.lcpRows() {
		scope := "lcp " + r.lcp + " (port " + r.port + ")"
		for _, c := range r.counters() {
			rows = append(rows, show.Counter{Scope: scope, Name: c.name, Value: c.v})
		}
	}
	return rows
}
