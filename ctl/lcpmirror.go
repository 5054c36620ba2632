package ctl

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/nlmirror"
	"github.com/prometheus/client_golang/prometheus"
)

// The control goroutine's side of the netlink mirror (package nlmirror):
// kernel routes in the tables "lcp fib N table T" names become routes of
// origin "kernel" in FIB N, addresses on the ports' kernel interfaces
// become the ports' addresses and the other way round.
//
// Route origins. A FIB route is connected or local (it follows from a
// port's address, s.connected), static (the model's routes) or kernel
// (anything else in a FIB the mirror feeds). So a kernel route costs the
// FIB's entry and nothing more: the mirror keeps no per-route object. Where
// a kernel route and a static or connected route have the same prefix in
// the same FIB, the static or connected one is installed and the kernel's
// is kept aside in shadow (one entry per such clash) until it goes away.
// Only the kernel changes kernel routes, only the operator static ones.
//
// The mirror runs while a port has a kernel interface (portModel.LCP).

const mainTable = 254 // RT_TABLE_MAIN

// lcpFib applies "lcp fib N table T|off" to the batch.
func (b *batch) lcpFib(c *cmdlang.LCPFib) error {
	if err := b.checkFIB(c.FIB); err != nil {
		return err
	}
	if c.Off {
		delete(b.m.lcpFIBs, c.FIB)
		return nil
	}
	for f, t := range b.m.lcpFIBs {
		if t == c.Table && f != c.FIB {
			return fmt.Errorf("kernel table %d feeds fib %d already (lcp fib %d off first)", c.Table, f, f)
		}
	}
	b.m.lcpFIBs[c.FIB] = c.Table
	return nil
}

// lcpMirror is the mirror's state on the control goroutine.
type lcpMirror struct {
	m      *nlmirror.Mirror
	env    nlmirror.Env
	envKey string
	links  map[int32]nlmirror.Link
	byName map[string]int32
	// shadow holds kernel routes hidden by a static or connected route of
	// the same FIB and prefix (next-hop ids).
	shadow map[routeKey]uint32
	// feeds are the FIBs that may hold kernel routes: those mapped now and
	// those mapped before the last dump (swept by the next one).
	feeds map[int]bool
	fibs  *fib.FIBs // the FIB set the kernel routes are in

	dumping  bool
	seen4    []uint64 // fib<<40 | addr<<8 | bits of the routes a dump installed
	seen6    []seen6
	last     routeKey // previous route of the dump (a prefix's routes come together, best metric first)
	kaddrs   map[int32][]netip.Prefix
	dumpFrom time.Time
	dumpWhy  string

	fromKernel bool // a batch made from kernel events runs: do not write its addresses back
	buf        []fib.NextHop
	changes    []fib.Change
	members    []uint32

	st lcpStats
}

type seen6 struct {
	hi, lo uint64
	fb     uint32 // fib<<8 | bits
}

func cmpSeen6(a, b seen6) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lo, b.lo); c != 0 {
		return c
	}
	return cmp.Compare(a.fb, b.fb)
}

// lcpStats are the control side's counters.
type lcpStats struct {
	Batches    uint64                      `json:"batches"`
	Events     uint64                      `json:"route_events"`
	Reasons    [nlmirror.NumReasons]uint64 `json:"-"`
	Skipped    map[string]uint64           `json:"skipped,omitempty"`
	Partial    uint64                      `json:"partial_multipath"`
	Shadowed   uint64                      `json:"shadowed"`
	IgnoredDel uint64                      `json:"ignored_deletes"`
	Swept      uint64                      `json:"swept"`
	Resyncs    uint64                      `json:"resyncs"`
	ApplyErrs  uint64                      `json:"apply_errors"`
	AddrIn     uint64                      `json:"addresses_from_kernel"`
	AddrOut    uint64                      `json:"addresses_to_kernel"`
	AddrErrs   uint64                      `json:"address_errors"`
	LastDump   string                      `json:"last_dump,omitempty"`
	Mirror     nlmirror.Stats              `json:"mirror"`
}

// lcpWanted reports whether some port has a kernel interface.
func (m *model) lcpWanted() bool {
	for _, p := range m.ports {
		if p.LCP != "" {
			return true
		}
	}
	return false
}

// lcpBatches is the channel the control goroutine takes mirror batches
// from (nil, never ready, while the mirror is off).
func (s *stack) lcpBatches() <-chan *nlmirror.Batch {
	if s.lcpm == nil {
		return nil
	}
	return s.lcpm.m.Batches()
}

// lcpClose stops the mirror (daemon shutdown).
func (s *stack) lcpClose() {
	if s.lcpm != nil {
		s.lcpm.m.Close()
		s.lcpm = nil
	}
}

// lcpReconciled runs after every committed batch: it starts or stops the
// mirror, asks for a dump when what the translation depends on changed
// (ports' kernel interfaces, the table map, the FIB set), and copies the
// operator's address changes to the kernel interfaces.
func (s *stack) lcpReconciled(om *model) {
	if !s.model.lcpWanted() {
		if s.lcpm != nil {
			s.log.Info("netlink mirror stopped: no port has a kernel interface")
			s.lcpm.m.Close()
			s.lcpm.env = nlmirror.Env{}
			s.lcpm.dumping = false
			s.lcpSweep(nil, nil) // every kernel route goes
			s.lcpm = nil
		}
		return
	}
	if s.lcpm == nil {
		cfg := nlmirror.Config{NetNS: s.opts.NetNS, Log: s.log}
		if s.opts.mirror != nil {
			s.opts.mirror(&cfg)
		}
		m, err := nlmirror.Start(cfg)
		if err != nil {
			s.log.Error("netlink mirror: cannot start; kernel routes are not mirrored", "err", err)
			return
		}
		s.lcpm = &lcpMirror{m: m, links: map[int32]nlmirror.Link{}, byName: map[string]int32{},
			shadow: map[routeKey]uint32{}, feeds: map[int]bool{}, fibs: s.fibs}
		s.lcpm.envChanged(s)
		s.log.Info("netlink mirror started", "netns", s.opts.NetNS)
		return // its first dump brings everything
	}
	lm := s.lcpm
	if lm.fibs != s.fibs {
		// A new FIB set (net.fibs changed): it has no kernel route yet.
		lm.fibs = s.fibs
		clear(lm.shadow)
		lm.envChanged(s)
		lm.m.Resync("new FIB set")
		lm.st.Resyncs++
		return
	}
	if lm.envChanged(s) {
		lm.m.Resync("kernel interfaces or table map changed")
		lm.st.Resyncs++
	}
	if lm.fromKernel {
		return
	}
	// The operator's address changes go to the kernel interfaces.
	for _, p := range s.model.ports {
		idx, ok := lm.byName[p.LCP]
		if p.LCP == "" || !ok {
			continue
		}
		var old []netip.Prefix
		if op := om.ports[p.Name]; op != nil && op.LCP == p.LCP {
			old = op.Addrs
		}
		for _, a := range p.Addrs {
			if !slices.Contains(old, a) {
				lm.writeAddr(nlmirror.AddrWrite{Ifindex: idx, Prefix: a})
			}
		}
		for _, a := range old {
			if !slices.Contains(p.Addrs, a) {
				lm.writeAddr(nlmirror.AddrWrite{Del: true, Ifindex: idx, Prefix: a})
			}
		}
	}
}

func (lm *lcpMirror) writeAddr(w nlmirror.AddrWrite) {
	if lm.m.WriteAddr(w) {
		lm.st.AddrOut++
	} else {
		lm.st.AddrErrs++
	}
}

// envChanged rebuilds the translation environment from the model, the live
// ports and the kernel's interfaces. It reports whether kernel routes must
// be dumped again: a table mapping changed, or a port's kernel interface
// went away, went down or changed (Linux drops an interface's IPv4 routes
// without a message). A kernel interface that just appeared for a port
// needs no dump (no route can use it yet): it gets the port's addresses.
func (lm *lcpMirror) envChanged(s *stack) bool {
	env := nlmirror.Env{FIBs: map[uint32]int{}, Ports: map[int32]uint32{}}
	var key strings.Builder
	for _, f := range slices.Sorted(mapKeys(s.model.lcpFIBs)) {
		if f < s.fibs.NumFIBs() {
			t := s.model.lcpFIBs[f]
			env.FIBs[t] = f
			lm.feeds[f] = true
			fmt.Fprintf(&key, "f%d=%d;", f, t)
		}
	}
	old := lm.env
	lm.env = env
	resync := key.String() != lm.envKey
	lm.envKey = key.String()
	for _, name := range s.model.portOrder {
		p := s.model.ports[name]
		lp := s.live[name]
		if p.LCP == "" || lp == nil {
			continue
		}
		idx, ok := lm.byName[p.LCP]
		if !ok || !lm.links[idx].AdminUp {
			continue
		}
		env.Ports[idx] = uint32(lp.id)
		if was, ok := old.Ports[idx]; !ok && !lm.dumping {
			for _, a := range p.Addrs {
				lm.writeAddr(nlmirror.AddrWrite{Ifindex: idx, Prefix: a})
			}
		} else if ok && was != uint32(lp.id) {
			resync = true
		}
	}
	var gone map[uint32]bool
	for idx, id := range old.Ports {
		if now, ok := env.Ports[idx]; !ok || now != id {
			resync = true
			if gone == nil {
				gone = map[uint32]bool{}
			}
			gone[id] = true
		}
	}
	if gone != nil && lm.fibs == s.fibs {
		s.lcpDropPorts(gone)
	}
	return resync
}

// lcpDropPorts removes at once the kernel routes through ports that lost
// their kernel interface (removed, down, renamed): the kernel dropped them
// (IPv4 without a message), and the port id may soon be another port's.
// The dump that follows puts back what the kernel still has.
func (s *stack) lcpDropPorts(gone map[uint32]bool) {
	lm := s.lcpm
	snap := s.fibs.Load()
	via := func(id uint32) bool {
		nh := snap.NextHop(id)
		switch nh.Kind {
		case fib.KindGateway, fib.KindConnected:
			return gone[nh.Port]
		case fib.KindECMP:
			for _, m := range nh.Members {
				if mh := snap.NextHop(m); gone[mh.Port] {
					return true
				}
			}
		}
		return false
	}
	conn := s.lcpConnected(s.connected)
	var changes []fib.Change
	for f := range lm.feeds {
		if f >= s.fibs.NumFIBs() {
			continue
		}
		routes, _ := s.fibs.Routes(uint32(f))
		for _, r := range routes {
			if via(r.NextHop) && !s.lcpStaticOrConnected(routeKey{f, r.Prefix}, conn) {
				changes = append(changes, fib.Change{Op: fib.OpDelete, FIB: uint32(f), Prefix: r.Prefix})
			}
		}
	}
	for k, nh := range lm.shadow {
		if via(nh) {
			delete(lm.shadow, k)
		}
	}
	s.lcpCommit(changes)
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// lcpConnected returns the prefixes of the connected and local routes.
func (s *stack) lcpConnected(conn map[connKey]uint32) map[netip.Prefix]bool {
	out := make(map[netip.Prefix]bool, len(conn))
	for k := range conn {
		out[k.prefix] = true
	}
	return out
}

// lcpApply applies one batch from the mirror: links, addresses, then
// routes in one FIB change (one snapshot published), and the sweep at the
// end of a dump.
func (s *stack) lcpApply(b *nlmirror.Batch) {
	lm := s.lcpm
	if lm == nil {
		return
	}
	lm.st.Batches++
	if b.Dump&nlmirror.DumpFirst != 0 {
		clear(lm.links)
		clear(lm.byName)
		lm.dumping = true
		lm.seen4, lm.seen6 = lm.seen4[:0], lm.seen6[:0]
		lm.last = routeKey{}
		lm.kaddrs = map[int32][]netip.Prefix{}
		lm.dumpFrom = time.Now()
		lm.dumpWhy = b.Reason
		if b.Reason != "start" {
			lm.st.Resyncs++
		}
	}
	for _, l := range b.Links {
		if old, ok := lm.links[l.Index]; ok && old.Name != l.Name && lm.byName[old.Name] == l.Index {
			delete(lm.byName, old.Name)
		}
		if l.Del {
			if lm.byName[l.Name] == l.Index {
				delete(lm.byName, l.Name)
			}
			delete(lm.links, l.Index)
			continue
		}
		lm.links[l.Index] = l
		lm.byName[l.Name] = l.Index
	}
	if lm.envChanged(s) && !lm.dumping {
		// A kernel interface of a port came, went or went down: the
		// kernel does not report the routes it dropped with it.
		lm.m.Resync("kernel interface changed")
	}
	s.lcpAddrs(b)
	s.lcpRoutes(b.Routes)
	if b.Dump&nlmirror.DumpLast != 0 {
		s.lcpDumpAddrs()
		s.lcpSweep(lm.seen4, lm.seen6)
		lm.dumping = false
		lm.st.LastDump = fmt.Sprintf("%s (%s, %d routes installed, took %v)", lm.dumpFrom.UTC().Format(time.RFC3339), lm.dumpWhy,
			len(lm.seen4)+len(lm.seen6), time.Since(lm.dumpFrom).Round(time.Millisecond))
		if cap(lm.seen4) > 1<<16 {
			lm.seen4, lm.seen6 = nil, nil // a full table's worth: give it back
		}
	}
}

// lcpPortOf returns the port whose kernel interface has ifindex idx.
func (s *stack) lcpPortOf(idx int32) *portModel {
	l, ok := s.lcpm.links[idx]
	if !ok {
		return nil
	}
	for _, p := range s.model.ports {
		if p.LCP != "" && p.LCP == l.Name {
			// Only the interface that is the port's now: the late events
			// of a deleted one of the same name (lcp off, then on again)
			// must not take the port's addresses away.
			if lp, ok := s.live[p.Name]; ok {
				if info, ok := s.eng.LCP().Lookup(lp.id); ok && int32(info.Ifindex) != idx {
					return nil
				}
			}
			return p
		}
	}
	return nil
}

// lcpAddrs turns address events on the ports' kernel interfaces into
// addr add/del commands (each its own batch: one bad address does not
// stop the others). In a dump they are gathered for lcpDumpAddrs.
//
// Only the last event of a prefix in a batch counts (the kernel's state
// after the batch): a delete and an add of one prefix in one batch (the
// echoes of an operator's addr del and addr add) leave the port's address
// alone instead of deleting it.
func (s *stack) lcpAddrs(b *nlmirror.Batch) {
	lm := s.lcpm
	type key struct {
		port   string
		prefix netip.Prefix
	}
	var order []key
	var last map[key]bool // key -> the last event was a delete
	for _, a := range b.Addrs {
		p := s.lcpPortOf(a.Ifindex)
		if p == nil {
			continue
		}
		if b.Dump&nlmirror.DumpFirst != 0 {
			lm.kaddrs[a.Ifindex] = append(lm.kaddrs[a.Ifindex], a.Prefix)
			continue
		}
		if last == nil {
			last = map[key]bool{}
		}
		k := key{p.Name, a.Prefix}
		if _, ok := last[k]; !ok {
			order = append(order, k)
		}
		last[k] = a.Del
	}
	var cmds []cmdlang.Command
	for _, k := range order {
		has := slices.Contains(s.model.ports[k.port].Addrs, k.prefix)
		switch del := last[k]; {
		case del && has:
			cmds = append(cmds, &cmdlang.AddrDel{Port: k.port, Prefix: k.prefix})
		case !del && !has:
			cmds = append(cmds, &cmdlang.AddrAdd{Port: k.port, Prefix: k.prefix})
		}
	}
	s.lcpRun(cmds)
}

// lcpDumpAddrs makes the ports' and their kernel interfaces' addresses one
// set after a dump: the kernel's become the port's, the port's are put on
// the interface.
func (s *stack) lcpDumpAddrs() {
	lm := s.lcpm
	var cmds []cmdlang.Command
	for _, name := range s.model.portOrder {
		p := s.model.ports[name]
		idx, ok := lm.byName[p.LCP]
		if p.LCP == "" || !ok {
			continue
		}
		k := lm.kaddrs[idx]
		for _, a := range k {
			if !slices.Contains(p.Addrs, a) {
				cmds = append(cmds, &cmdlang.AddrAdd{Port: p.Name, Prefix: a})
			}
		}
		for _, a := range p.Addrs {
			if !slices.Contains(k, a) {
				lm.writeAddr(nlmirror.AddrWrite{Ifindex: idx, Prefix: a})
			}
		}
	}
	lm.kaddrs = nil
	s.lcpRun(cmds)
}

// lcpRun applies commands made from kernel events, one batch each.
func (s *stack) lcpRun(cmds []cmdlang.Command) {
	lm := s.lcpm
	for _, c := range cmds {
		lm.fromKernel = true
		_, err := s.run(request{cmds: []cmdlang.Command{c}})
		lm.fromKernel = false
		s.enter(phaseReconcile)
		if err != nil {
			lm.st.AddrErrs++
			s.log.Warn("netlink mirror: kernel address not taken", "cmd", c.String(), "err", err)
			continue
		}
		lm.st.AddrIn++
	}
}

// lcpStaticOrConnected reports whether FIB f has a static or a connected
// route at p (those win over the kernel's).
func (s *stack) lcpStaticOrConnected(k routeKey, conn map[netip.Prefix]bool) bool {
	return s.model.routes[k] != nil || conn[k.Prefix] && !s.model.connDel[k]
}

// lcpRoutes translates route events into one FIB change.
func (s *stack) lcpRoutes(rs []nlmirror.Route) {
	lm := s.lcpm
	if len(rs) == 0 {
		return
	}
	conn := s.lcpConnected(s.connected)
	changes := lm.changes[:0]
	for i := range rs {
		r := &rs[i]
		lm.st.Events++
		f, mapped := lm.env.FIBs[r.Table]
		if !mapped {
			lm.st.Reasons[nlmirror.SkipTable]++
			continue
		}
		k := routeKey{f, r.Dst}
		if lm.dumping && k == lm.last {
			continue // a worse-metric route of the same prefix
		}
		t, reason := nlmirror.Translate(r, &lm.env, lm.buf)
		lm.buf = t.Hops[:0]
		if !r.Del {
			lm.st.Reasons[reason]++
			if t.Partial {
				lm.st.Partial++
			}
		}
		var nh uint32
		if reason == nlmirror.Install {
			var err error
			if nh, err = s.lcpNextHop(&t); err != nil {
				lm.st.ApplyErrs++
				s.log.Warn("netlink mirror: next hop", "route", r.Dst, "err", err)
				continue
			}
		}
		if lm.dumping {
			lm.last = k
			if reason == nlmirror.Install {
				lm.markSeen(k)
			}
		}
		if s.lcpStaticOrConnected(k, conn) {
			if r.Del || reason != nlmirror.Install {
				delete(lm.shadow, k)
			} else {
				lm.shadow[k] = nh
				lm.st.Shadowed++
			}
			continue
		}
		cur, ok, _ := s.fibs.RouteExact(uint32(f), r.Dst)
		switch {
		case r.Del:
			if !ok {
				continue
			}
			if reason == nlmirror.Install && cur != nh {
				// Not the route installed (another metric of the
				// prefix): keep ours.
				lm.st.IgnoredDel++
				continue
			}
			if reason != nlmirror.Install {
				lm.st.IgnoredDel++
				continue
			}
			changes = append(changes, fib.Change{Op: fib.OpDelete, FIB: uint32(f), Prefix: r.Dst})
		case reason != nlmirror.Install:
			// The kernel's route for the prefix is now one fwdd does not
			// forward with: what fwdd had for it goes.
			if ok {
				changes = append(changes, fib.Change{Op: fib.OpDelete, FIB: uint32(f), Prefix: r.Dst})
			}
		default:
			if !ok || cur != nh {
				changes = append(changes, fib.Change{Op: fib.OpAdd, FIB: uint32(f), Prefix: r.Dst, NextHop: nh})
			}
		}
	}
	s.lcpCommit(changes)
	if cap(changes) > 1<<16 {
		changes = nil
	}
	lm.changes = changes[:0]
}

func (s *stack) lcpCommit(changes []fib.Change) {
	if len(changes) == 0 {
		return
	}
	if err := s.fibs.Apply(changes); err != nil {
		s.lcpm.st.ApplyErrs++
		s.log.Error("netlink mirror: kernel routes not applied", "changes", len(changes), "err", err)
		return
	}
	s.obs.kernelRoutes(changes)
}

// lcpNextHop registers a translated route's next hop.
func (s *stack) lcpNextHop(t *nlmirror.Target) (uint32, error) {
	switch t.Kind {
	case fib.KindBlackhole, fib.KindReject:
		return s.nexthop(fib.NextHop{Kind: t.Kind})
	case fib.KindECMP:
		lm := s.lcpm
		lm.members = lm.members[:0]
		for _, h := range t.Hops {
			id, err := s.nexthop(h)
			if err != nil {
				return 0, err
			}
			lm.members = append(lm.members, id)
		}
		return s.nexthop(fib.NextHop{Kind: fib.KindECMP, Members: lm.members})
	}
	return s.nexthop(t.Hops[0])
}

func (lm *lcpMirror) markSeen(k routeKey) {
	a := k.Prefix.Addr()
	if a.Is4() {
		b := a.As4()
		lm.seen4 = append(lm.seen4, uint64(k.FIB)<<40|uint64(binary.BigEndian.Uint32(b[:]))<<8|uint64(k.Prefix.Bits()))
		return
	}
	b := a.As16()
	lm.seen6 = append(lm.seen6, seen6{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), uint32(k.FIB)<<8 | uint32(k.Prefix.Bits())})
}

// lcpSweep ends a dump: every kernel route of the FIBs the mirror feeds
// (or fed) that the dump did not install goes, and so does every shadowed
// one it did not list. nil seen sets remove every kernel route.
func (s *stack) lcpSweep(seen4 []uint64, seen6s []seen6) {
	lm := s.lcpm
	slices.Sort(seen4)
	slices.SortFunc(seen6s, cmpSeen6)
	has := func(k routeKey) bool {
		a := k.Prefix.Addr()
		if a.Is4() {
			b := a.As4()
			_, ok := slices.BinarySearch(seen4, uint64(k.FIB)<<40|uint64(binary.BigEndian.Uint32(b[:]))<<8|uint64(k.Prefix.Bits()))
			return ok
		}
		b := a.As16()
		_, ok := slices.BinarySearchFunc(seen6s, seen6{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), uint32(k.FIB)<<8 | uint32(k.Prefix.Bits())}, cmpSeen6)
		return ok
	}
	conn := s.lcpConnected(s.connected)
	var changes []fib.Change
	for f := range lm.feeds {
		if f >= s.fibs.NumFIBs() {
			continue
		}
		routes, err := s.fibs.Routes(uint32(f))
		if err != nil {
			continue
		}
		for _, r := range routes {
			k := routeKey{f, r.Prefix}
			if s.lcpStaticOrConnected(k, conn) || has(k) {
				continue
			}
			changes = append(changes, fib.Change{Op: fib.OpDelete, FIB: uint32(f), Prefix: r.Prefix})
		}
	}
	for k := range lm.shadow {
		if !has(k) {
			delete(lm.shadow, k)
		}
	}
	lm.st.Swept += uint64(len(changes))
	if len(changes) > 0 {
		s.log.Info("netlink mirror: stale kernel routes removed", "routes", len(changes))
	}
	s.lcpCommit(changes)
	// From now on only the FIBs mapped now hold kernel routes.
	clear(lm.feeds)
	for _, f := range lm.env.FIBs {
		lm.feeds[f] = true
	}
}

// lcpAdjust keeps kernel routes apart from the operator's in a reconcile's
// FIB changes (called before they are applied): a static or connected
// route that lands on a kernel route shadows it; when it goes, the kernel
// route comes back instead of a hole.
func (s *stack) lcpAdjust(om *model, b *batch, changes []fib.Change) []fib.Change {
	lm := s.lcpm
	if lm == nil || lm.fibs != s.fibs || len(lm.feeds) == 0 {
		return changes
	}
	nm := b.m
	connOld := s.lcpConnected(s.connected)
	connNew := s.lcpConnected(s.pendingConnected)
	kernelOld := func(k routeKey) bool {
		return b.base.routes[k] == nil && !(connOld[k.Prefix] && !om.connDel[k])
	}
	operatorNew := func(k routeKey) bool {
		return b.route(k) != nil || connNew[k.Prefix] && !nm.connDel[k]
	}
	hide := func(k routeKey) {
		if nh, ok, _ := s.fibs.RouteExact(uint32(k.FIB), k.Prefix); ok && kernelOld(k) {
			lm.shadow[k] = nh
			lm.st.Shadowed++
		}
	}
	var back []fib.Change
	restore := func(k routeKey) {
		if nh, ok := lm.shadow[k]; ok && !operatorNew(k) {
			back = append(back, fib.Change{Op: fib.OpAdd, FIB: uint32(k.FIB), Prefix: k.Prefix, NextHop: nh})
			delete(lm.shadow, k)
		}
	}
	for i := range changes {
		c := &changes[i]
		if c.Connected {
			for f := range lm.feeds {
				k := routeKey{f, c.Prefix}
				if c.Op == fib.OpAdd {
					hide(k)
				} else {
					restore(k)
				}
			}
			continue
		}
		k := routeKey{int(c.FIB), c.Prefix}
		if !lm.feeds[k.FIB] {
			continue
		}
		if c.Op == fib.OpAdd {
			hide(k)
		} else {
			restore(k)
		}
	}
	return append(changes, back...)
}

// lcpIsKernel reports whether FIB route r is a kernel route.
func (s *stack) lcpIsKernel(r fib.Route, conn map[netip.Prefix]bool) bool {
	if s.lcpm == nil || !s.lcpm.feeds[int(r.FIB)] {
		return false
	}
	return !s.lcpStaticOrConnected(routeKey{int(r.FIB), r.Prefix}, conn)
}

// lcpPortRow is a row of show lcp's port list.
type lcpPortRow struct {
	Port    string `json:"port"`
	LCP     string `json:"lcp"`
	Ifindex int32  `json:"ifindex,omitempty"`
	State   string `json:"state"`
}

type lcpShow struct {
	Running bool              `json:"running"`
	Tables  map[string]uint32 `json:"tables"` // FIB -> kernel table
	Ports   []lcpPortRow      `json:"ports"`
	Stats   *lcpStats         `json:"stats,omitempty"`
}

func (s *stack) showLCP() (cmdlang.Result, error) {
	out := lcpShow{Tables: map[string]uint32{}, Ports: []lcpPortRow{}}
	for f, t := range s.model.lcpFIBs {
		out.Tables[fmt.Sprint(f)] = t
	}
	for _, name := range s.model.portOrder {
		p := s.model.ports[name]
		if p.LCP == "" {
			continue
		}
		row := lcpPortRow{Port: name, LCP: p.LCP, State: "absent"}
		if s.lcpm != nil {
			if idx, ok := s.lcpm.byName[p.LCP]; ok {
				row.Ifindex = idx
				row.State = "down"
				if s.lcpm.links[idx].AdminUp {
					row.State = "up"
				}
			}
		}
		out.Ports = append(out.Ports, row)
	}
	if s.lcpm != nil {
		out.Running = true
		st := s.lcpm.st
		st.Mirror = s.lcpm.m.Stats()
		st.Skipped = map[string]uint64{}
		for r := nlmirror.Reason(1); r < nlmirror.NumReasons; r++ {
			if st.Reasons[r] > 0 {
				st.Skipped[r.String()] = st.Reasons[r]
			}
		}
		out.Stats = &st
	}
	return render(out, func(b *strings.Builder) error {
		fmt.Fprintf(b, "Kernel tables feeding FIBs:")
		for _, f := range slices.Sorted(mapKeys(s.model.lcpFIBs)) {
			fmt.Fprintf(b, " fib %d <- table %d;", f, s.model.lcpFIBs[f])
		}
		b.WriteString("\n")
		for _, r := range out.Ports {
			fmt.Fprintf(b, "port %s: kernel interface %s (%s", r.Port, r.LCP, r.State)
			if r.Ifindex != 0 {
				fmt.Fprintf(b, ", ifindex %d", r.Ifindex)
			}
			b.WriteString(")\n")
		}
		if out.Stats == nil {
			b.WriteString("netlink mirror: off (no port has a kernel interface)\n")
			return nil
		}
		st := out.Stats
		fmt.Fprintf(b, "netlink mirror: %d batches, %d route events, %d installed, skipped %v\n",
			st.Batches, st.Events, st.Reasons[nlmirror.Install], st.Skipped)
		fmt.Fprintf(b, "  shadowed by static/connected %d, partial multipath %d, ignored deletes %d, swept %d, apply errors %d\n",
			st.Shadowed, st.Partial, st.IgnoredDel, st.Swept, st.ApplyErrs)
		fmt.Fprintf(b, "  addresses from kernel %d, to kernel %d, errors %d\n", st.AddrIn, st.AddrOut, st.AddrErrs+st.Mirror.AddrWriteErr)
		m := st.Mirror
		fmt.Fprintf(b, "  dumps %d (resyncs %d), overruns %d, dropped %d, interrupted %d, waited %d, neighbour events %d\n",
			m.Dumps, st.Resyncs, m.Overruns, m.Dropped, m.Interrupted, m.Coalesced, m.NeighEvents)
		if st.LastDump != "" {
			fmt.Fprintf(b, "  last dump %s\n", st.LastDump)
		}
		return nil
	})
}

// mirrorCollector exports the netlink mirror's counters as
// fwdd_lcp_mirror_total{counter=...} (nothing while the mirror is off).
type mirrorCollector struct {
	d    *Daemon
	desc *prometheus.Desc
}

func newMirrorCollector(d *Daemon) *mirrorCollector {
	return &mirrorCollector{d: d, desc: prometheus.NewDesc("fwdd_lcp_mirror_total",
		"Netlink mirror counters: route events, installed and skipped_* kernel routes, dumps, resyncs, overruns, dropped events, swept stale routes, addresses both ways (docs/netlink-mirror.md).",
		[]string{"counter"}, nil)}
}

func (c *mirrorCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *mirrorCollector) Collect(ch chan<- prometheus.Metric) {
	var st lcpStats
	on := false
	if err := c.d.do(func(s *stack) {
		if s.lcpm != nil {
			on = true
			st = s.lcpm.st
			st.Mirror = s.lcpm.m.Stats()
		}
	}); err != nil || !on {
		return
	}
	m := st.Mirror
	vals := []struct {
		name string
		v    uint64
	}{
		{"batches", st.Batches}, {"route_events", st.Events}, {"installed", st.Reasons[nlmirror.Install]},
		{"shadowed", st.Shadowed}, {"partial_multipath", st.Partial}, {"ignored_deletes", st.IgnoredDel},
		{"swept", st.Swept}, {"resyncs", st.Resyncs}, {"apply_errors", st.ApplyErrs},
		{"addresses_from_kernel", st.AddrIn}, {"addresses_to_kernel", st.AddrOut}, {"address_errors", st.AddrErrs + m.AddrWriteErr},
		{"dumps", m.Dumps}, {"overruns", m.Overruns}, {"dropped", m.Dropped}, {"interrupted", m.Interrupted},
		{"waited", m.Coalesced}, {"neighbour_events", m.NeighEvents},
	}
	for r := nlmirror.Reason(1); r < nlmirror.NumReasons; r++ {
		vals = append(vals, struct {
			name string
			v    uint64
		}{"skipped_" + r.String(), st.Reasons[r]})
	}
	for _, x := range vals {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(x.v), x.name)
	}
}
