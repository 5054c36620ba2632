package ctl

import (
	"errors"
	"fmt"
	"github.com/fwdd/fwdd/ctl/cmdlang"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/pmd/mcast"
)

// livePort is a port that exists in the running stack.
type livePort struct {
	model *portModel
	id    uint16
	port  pmd.Port
	info  pmd.Info // identity as last read from the driver (identityCheck)
	mtu   int
	// gone: the device was seen missing (Link().Present false) and its
	// dynamic neighbours flushed.
	gone bool
	// down and downs: the link as last seen by identityCheck (down, and
	// the driver's Link().Downs).
	down  bool
	downs uint64
	// lcp is the name of the port's kernel interface as it exists ("" for
	// none), with the MTU and carrier last set on it.
	lcp        string
	lcpMTU     int
	lcpMAC     net.HardwareAddr
	lcpCarrier bool
	// closed: port was closed for a replacement in place (reconcile) and
	// not reopened; a port whose restoring failed stays so, link down.
	closed bool
}

// sharesDevice reports whether two configurations of one port name the
// same kernel interface (an ArgDev argument of their drivers, as declared
// in pmd): then the new one cannot be opened while the old one is.
func sharesDevice(a, b *portModel) bool {
	devs := func(p *portModel) []string {
		d, ok := pmd.Lookup(p.Driver)
		if !ok {
			return nil
		}
		var out []string
		for _, arg := range d.Args {
			if v, ok := p.Args[arg.Name]; ok && arg.Type == pmd.ArgDev {
				out = append(out, v)
			}
		}
		return out
	}
	bd := devs(b)
	for _, x := range devs(a) {
		if slices.Contains(bd, x) {
			return true
		}
	}
	return false
}

// restorePort reopens a port closed for a replacement that failed, as it
// was (same id, so the published state and routes still fit). It is the
// caller's batch that failed: the running stack is as before but for the
// time the port was closed.
func (s *stack) restorePort(lp *livePort) error {
	pcfg := pmd.Config{
		Name: lp.model.Name, ID: lp.id, Driver: lp.model.Driver, Args: pmd.Args(lp.model.Args),
		Pools: s.eng.Pools(), QueuePool: s.eng.QueuePool, NetNS: s.opts.NetNS, Log: s.log, Shared: s.eng.Shared(),
		LinkChanged: s.linkChanged,
		Lookup: func(name string) (pmd.Port, uint16, bool) {
			if o, ok := s.live[name]; ok && !o.closed {
				return o.port, o.id, true
			}
			return nil, 0, false
		},
	}
	p, err := pmd.Open(pcfg)
	if err != nil {
		return err
	}
	if err := s.eng.AttachPort(lp.id, p); err != nil {
		_ = p.Close()
		return err
	}
	lp.port, lp.info, lp.closed = p, p.Info(), false
	lp.down, lp.downs = !p.Link().Up, p.Link().Downs
	s.live[lp.model.Name] = lp
	return nil
}

// nhKey identifies a FIB next hop so that equal next hops are shared.
type nhKey struct {
	kind fib.Kind
	port uint32
	addr netip.Addr
	ecmp string
}

// reconcile makes the running stack match the batch's model, coming from
// model om. With incremental, only the static routes the batch touched are
// compared (a live command); otherwise all of them (a reload). On error the
// running stack is as it was: ports opened on the way are closed again.
// The caller commits the batch only after reconcile succeeded.
func (s *stack) reconcile(om *model, b *batch, incremental bool) (err error) {
	nm := b.m
	// 1. Ports to remove: gone, or their driver or arguments changed —
	// except those whose driver may take the change live
	// (pmd.Reconfigurer, asked in step 2).
	var removed, live []*livePort
	for name, lp := range s.live {
		np, ok := nm.ports[name]
		if !ok || np.Driver != lp.model.Driver {
			removed = append(removed, lp)
			continue
		}
		if !mapsEqual(np.Args, lp.model.Args) {
			if _, ok := lp.port.(pmd.Reconfigurer); ok && !lp.closed {
				live = append(live, lp)
			} else {
				removed = append(removed, lp)
			}
		}
	}
	// A port stacked on a reopened one (a lagg on its members, a vlan on
	// its parent) is reopened too.
	for grew := true; grew; {
		grew = false
		for name, lp := range s.live {
			np, ok := nm.ports[name]
			if !ok || slices.Contains(removed, lp) {
				continue
			}
			for _, r := range pmd.PortRefs(np.Driver, np.Args) {
				if dep, ok := s.live[r.Port]; ok && slices.Contains(removed, dep) {
					removed = append(removed, lp)
					grew = true
					break
				}
			}
		}
	}
	// On error the live set is as it was: the ports and the model each
	// live port had (this defer runs last, after the ports this batch
	// opened are closed and those it closed are reopened).
	oldLive := maps.Clone(s.live)
	type saved struct {
		model *portModel
		mtu   int
	}
	oldPorts := make(map[*livePort]saved, len(s.live))
	for _, lp := range s.live {
		oldPorts[lp] = saved{lp.model, lp.mtu}
	}
	defer func() {
		if err != nil {
			s.live = oldLive
			for lp, sv := range oldPorts {
				lp.model, lp.mtu = sv.model, sv.mtu
			}
		}
	}()

	// 1b. A batch that opens a port checks first that the pools cover what
	// every port keeps in the kernel (fill rings) with a margin.
	for _, np := range nm.sortedPorts() {
		if lp, ok := s.live[np.Name]; !ok || slices.Contains(removed, lp) {
			if err := s.checkPoolBuffers(nm); err != nil {
				return atWhere(np.At, err)
			}
			break
		}
	}

	// 2a. A changed port whose new configuration uses a kernel interface
	// the running one holds (an afxdp port whose mode or queues changed)
	// cannot be opened beside it: it is replaced in place, closed first.
	// If the batch then fails, it is opened again as it was (this defer
	// runs after the one below has closed the ports the batch opened).
	var inPlace []*livePort
	defer func() {
		if err == nil {
			return
		}
		for _, lp := range inPlace {
			if rerr := s.restorePort(lp); rerr != nil {
				err = fmt.Errorf("%w; restoring port %s as it was failed too: %v: the port is down (fix the device and port del/add it, or see show ports)", err, lp.model.Name, rerr)
			} else {
				s.log.Info("port restored", "port", lp.model.Name, "driver", lp.model.Driver)
			}
		}
	}()
	closeInPlace := func(lp *livePort) {
		np, ok := nm.ports[lp.model.Name]
		if !ok || !sharesDevice(lp.model, np) {
			return
		}
		if !lp.closed {
			s.eng.DetachPort(lp.id)
			if cerr := lp.port.Close(); cerr != nil {
				s.log.Warn("port close", "port", lp.model.Name, "err", cerr)
			}
		}
		lp.closed = true
		inPlace = append(inPlace, lp)
		s.log.Info("port closed to be replaced in place", "port", lp.model.Name)
	}
	for _, lp := range removed {
		closeInPlace(lp)
	}

	// 2. Ports to add: open them first, the step most likely to fail.
	var opened []*livePort
	defer func() {
		if err != nil {
			for _, lp := range opened {
				s.eng.DetachPort(lp.id)
				_ = lp.port.Close()
				delete(s.live, lp.model.Name)
			}
		}
	}()
	// Live changes (pmd.Reconfigurer) are checked here, in dependency
	// order (the ports they name are open), and applied in step 6.
	var applies []func()
	lookup := func(name string) (pmd.Port, uint16, bool) {
		if lp, ok := s.live[name]; ok && !slices.Contains(removed, lp) {
			return lp.port, lp.id, true
		}
		return nil, 0, false
	}
	for _, np := range nm.sortedPorts() {
		if lp, ok := s.live[np.Name]; ok && !slices.Contains(removed, lp) {
			// A port stacked on one reopened by a live change's
			// fallback (below) is reopened too.
			reopen := false
			for _, r := range pmd.PortRefs(np.Driver, np.Args) {
				if slices.ContainsFunc(removed, func(x *livePort) bool { return x.model.Name == r.Port }) {
					reopen = true
				}
			}
			if !reopen && slices.Contains(live, lp) {
				rc := lp.port.(pmd.Reconfigurer)
				apply, rerr := rc.Reconfigure(pmd.Config{
					Name: np.Name, ID: lp.id, Driver: np.Driver, Args: pmd.Args(np.Args),
					Pools: s.eng.Pools(), QueuePool: s.eng.QueuePool, NetNS: s.opts.NetNS, Log: s.log, Shared: s.eng.Shared(),
					LinkChanged: s.linkChanged,
					Lookup:      lookup,
				})
				switch {
				case rerr == nil:
					applies = append(applies, apply)
					s.log.Info("port changed live", "port", np.Name, "driver", np.Driver)
				case errors.Is(rerr, pmd.ErrReopen):
					s.log.Info("port reopened for a change it cannot take live", "port", np.Name, "why", rerr.Error())
					reopen = true
				default:
					return atWhere(np.At, fmt.Errorf("port %s: %w", np.Name, rerr))
				}
			}
			if !reopen {
				continue
			}
			removed = append(removed, lp)
			closeInPlace(lp)
		}
		id := s.freePortID(removed)
		pcfg := pmd.Config{
			Name: np.Name, ID: id, Driver: np.Driver, Args: pmd.Args(np.Args),
			Pools: s.eng.Pools(), QueuePool: s.eng.QueuePool, NetNS: s.opts.NetNS, Log: s.log, Shared: s.eng.Shared(),
			LinkChanged: s.linkChanged,
			Lookup:      lookup,
		}
		p, err := pmd.Open(pcfg)
		if err != nil {
			return atWhere(np.At, err)
		}
		l := p.Link()
		lp := &livePort{model: np, id: id, port: p, info: p.Info(), down: !l.Up, downs: l.Downs}
		if err := s.eng.AttachPort(id, p); err != nil {
			_ = p.Close()
			return atWhere(np.At, fmt.Errorf("port %s: %w", np.Name, err))
		}
		opened = append(opened, lp)
		s.live[np.Name] = lp
		s.log.Info("port up", "port", np.Name, "driver", np.Driver, "device", lp.info.Device,
			"queues", lp.info.RxQueues, "mode", lp.info.Mode, "mac", lp.info.MAC.String())
	}
	// Removed ports leave the live set now, so that their names and ids are
	// free for the route and rule computations below; they are closed at
	// the end, once nothing refers to them.
	for _, lp := range removed {
		if s.live[lp.model.Name] == lp {
			delete(s.live, lp.model.Name)
		}
	}
	for _, lp := range s.live {
		lp.model = nm.ports[lp.model.Name]
		lp.mtu = lp.model.MTU
		if lp.mtu == 0 {
			lp.mtu = lp.info.MTU
		}
	}

	// 2b. Kernel interfaces (lcp): created now (a taken name or a missing
	// TUN device fails here, changing nothing); those nobody wants any
	// more are removed once everything succeeded.
	lcpCommit, lcpUndo, err := s.reconcileLCP(removed)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			lcpUndo()
		}
	}()

	// 3. FIB count: a new FIB set is filled completely and reaches the
	// workers with the State that uses it, in one snapshot (publish, step
	// 6); on error the old one stays.
	if nm.sysctl["net.fibs"] != om.sysctl["net.fibs"] || s.fibs == nil {
		n, _ := strconv.Atoi(nm.sysctl["net.fibs"])
		oldF, oldNH, oldInst, oldConn := s.fibs, s.nhs, s.installed, s.connected
		if err := s.resizeFIBs(n); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				s.fibs, s.nhs, s.installed, s.connected = oldF, oldNH, oldInst, oldConn
			}
		}()
		incremental = false // a new FIB set: install everything
	}

	// 4. Routes.
	changes, err := s.routeChanges(om, b, incremental, removed)
	if err != nil {
		return err
	}
	changes = s.lcpAdjust(om, b, changes)
	if err := s.fibs.Apply(changes); err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	s.routesApplied()
	s.obs.routes(changes)

	// 5. Rules.
	rules := nm.sortedRules()
	for i := range rules {
		if rules[i].InName != "" {
			rules[i].InPort = int(s.live[rules[i].InName].id)
		}
	}
	compiled, err := fwd.CompileRules(rules, s.fibs.NumFIBs())
	if err != nil {
		return err
	}
	s.rules = compiled
	for id, r := range nm.rules {
		if old, ok := om.rules[id]; !ok || old.Slot != r.Slot {
			s.ruleBases[r.Slot] = s.eng.RuleHits(r.Slot)
		}
	}

	// 6. Neighbours and the workers' view (nothing fails from here on).
	// Live changes first: the stacked ports' bindings are re-read and the
	// workers leave the bursts they were in, so that a lower port a change
	// released (a lagg member removed) is used by nothing of the port any
	// more before the new state can hand it to something else.
	for _, apply := range applies {
		apply()
	}
	if len(applies) > 0 {
		s.eng.Rebind()
		s.eng.Synchronize()
	}
	lcpCommit()
	s.model = nm
	s.syncNeighbours(om, nm, removed)
	s.publish()

	// 7. Close what was removed, now that no snapshot refers to it.
	for _, lp := range removed {
		if lp.closed { // replaced in place, or left closed by a failed restore
			s.log.Info("port closed", "port", lp.model.Name)
			continue
		}
		s.eng.DetachPort(lp.id)
		if err := lp.port.Close(); err != nil {
			s.log.Warn("port close", "port", lp.model.Name, "err", err)
		}
		s.log.Info("port removed", "port", lp.model.Name)
	}
	s.syncMulticast()
	return nil
}

// syncMulticast gives every port the link-layer multicast groups it needs
// on its device (pmd.Multicaster): for IPv6, all-nodes, all-routers and
// the solicited-node group of each address; and what the operator joined.
// A failure is logged (the port works, in promiscuous devices at least).
func (s *stack) syncMulticast() {
	for name, lp := range s.live {
		mc, ok := lp.port.(pmd.Multicaster)
		if !ok {
			continue
		}
		var groups []net.HardwareAddr
		for _, a := range lp.model.Addrs {
			if a.Addr().Is6() {
				if len(groups) == 0 {
					groups = append(groups, mcast.AllNodes, mcast.AllRouters)
				}
				groups = append(groups, mcast.SolicitedNode(a.Addr().As16()))
			}
		}
		if err := mc.SetMulticast("addr", groups); err != nil {
			s.log.Warn("multicast memberships", "port", name, "err", err)
		}
		var joins []net.HardwareAddr
		for _, g := range lp.model.Joins {
			if hw, err := net.ParseMAC(g); err == nil {
				joins = append(joins, hw)
			}
		}
		if err := mc.SetMulticast("join", joins); err != nil {
			s.log.Warn("multicast memberships", "port", name, "err", err)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// freePortID returns the lowest id neither live nor about to be reused.
func (s *stack) freePortID(removed []*livePort) uint16 {
	used := map[uint16]bool{}
	for _, lp := range s.live {
		used[lp.id] = true
	}
	for _, lp := range removed {
		used[lp.id] = true
	}
	for id := uint16(0); ; id++ {
		if !used[id] {
			return id
		}
	}
}

// resizeFIBs replaces the FIB set with n empty FIBs; routeChanges then
// installs everything.
func (s *stack) resizeFIBs(n int) error {
	cfg := fib.Config{FIBs: n}
	if s.eng != nil {
		cfg.Readers = s.eng.FIBReaders() // the workers' registrations: reuse what they left
	}
	f, err := fib.New(cfg)
	if err != nil {
		return err
	}
	s.fibs = f
	s.nhs = map[nhKey]uint32{}
	s.installed = map[routeKey]uint32{}
	s.connected = map[connKey]uint32{}
	return nil
}

// connKey is a connected or local route installed in every FIB.
type connKey struct {
	prefix netip.Prefix
	port   string
}

// routeChanges computes the FIB changes from the old model to the new one.
func (s *stack) routeChanges(om *model, b *batch, incremental bool, removed []*livePort) ([]fib.Change, error) {
	nm := b.m
	var out []fib.Change
	// Connected networks and local addresses, in every FIB.
	want := map[connKey]uint32{}
	for _, p := range nm.sortedPorts() {
		lp := s.live[p.Name]
		for _, a := range p.Addrs {
			nh, err := s.nexthop(fib.NextHop{Kind: fib.KindConnected, Port: uint32(lp.id)})
			if err != nil {
				return nil, err
			}
			want[connKey{a.Masked(), p.Name}] = nh
			host := netip.PrefixFrom(a.Addr(), a.Addr().BitLen())
			lnh, err := s.nexthop(fib.NextHop{Kind: fib.KindLocal, Addr: a.Addr()})
			if err != nil {
				return nil, err
			}
			want[connKey{host, ""}] = lnh
		}
	}
	for k := range s.connected {
		if _, ok := want[k]; !ok {
			out = append(out, fib.Change{Op: fib.OpDelete, Prefix: k.prefix, Connected: true})
		}
	}
	for k, nh := range want {
		if old, ok := s.connected[k]; !ok || old != nh {
			out = append(out, fib.Change{Op: fib.OpAdd, Prefix: k.prefix, NextHop: nh, Connected: true})
		}
	}
	// Connected routes deleted by hand from one FIB: re-delete them after
	// any re-add above (changes apply in order), and put back the ones no
	// longer deleted.
	for k := range nm.connDel {
		out = append(out, fib.Change{Op: fib.OpDelete, FIB: uint32(k.FIB), Prefix: k.Prefix})
	}
	for k := range om.connDel {
		if nm.connDel[k] {
			continue
		}
		for ck, nh := range want {
			if ck.prefix == k.Prefix {
				out = append(out, fib.Change{Op: fib.OpAdd, FIB: uint32(k.FIB), Prefix: k.Prefix, NextHop: nh})
			}
		}
	}
	s.pendingConnected = want

	// Static routes: the ones the batch touched, or all of them when ports
	// went away, addresses moved or the FIB set is new (a gateway's port
	// may have changed).
	var changed map[routeKey]bool
	if incremental && len(removed) == 0 && !addrsDiffer(om, nm) {
		changed = make(map[routeKey]bool, len(b.routes))
		for k := range b.routes {
			changed[k] = true
		}
	} else {
		changed = make(map[routeKey]bool, len(s.installed)+len(b.routes))
		for k := range s.installed {
			changed[k] = true
		}
		for k := range b.base.routes {
			changed[k] = true
		}
		for k := range b.routes {
			changed[k] = true
		}
	}
	// installed is updated only once the changes are applied.
	next := map[routeKey]uint32{}
	var gone []routeKey
	for k := range changed {
		spec := b.route(k)
		if spec == nil {
			if _, ok := s.installed[k]; ok {
				out = append(out, fib.Change{Op: fib.OpDelete, FIB: uint32(k.FIB), Prefix: k.Prefix})
				gone = append(gone, k)
			}
			continue
		}
		nh, err := s.specNextHop(nm, spec)
		if err != nil {
			return nil, fmt.Errorf("route %s (fib %d): %w", k.Prefix, k.FIB, err)
		}
		if old, ok := s.installed[k]; ok && old == nh {
			continue
		}
		out = append(out, fib.Change{Op: fib.OpAdd, FIB: uint32(k.FIB), Prefix: k.Prefix, NextHop: nh})
		next[k] = nh
	}
	s.pendingInstalled, s.pendingGone = next, gone
	return out, nil
}

// routesApplied records what routeChanges computed, once Apply succeeded.
func (s *stack) routesApplied() {
	for k, nh := range s.pendingInstalled {
		s.installed[k] = nh
	}
	for _, k := range s.pendingGone {
		delete(s.installed, k)
	}
	s.connected = s.pendingConnected
	s.pendingConnected = nil
	s.pendingInstalled, s.pendingGone = nil, nil
}

func addrsDiffer(a, b *model) bool {
	if len(a.ports) != len(b.ports) {
		return true
	}
	for name, p := range a.ports {
		q, ok := b.ports[name]
		if !ok || !slices.Equal(p.Addrs, q.Addrs) {
			return true
		}
	}
	return false
}

// specNextHop returns the FIB next hop of a static route.
func (s *stack) specNextHop(m *model, spec *routeSpec) (uint32, error) {
	switch spec.Kind {
	case 1: // blackhole
		return s.nexthop(fib.NextHop{Kind: fib.KindBlackhole})
	case 2: // reject
		return s.nexthop(fib.NextHop{Kind: fib.KindReject})
	}
	if len(spec.Via) == 0 {
		lp, ok := s.live[spec.Dev]
		if !ok {
			return 0, fmt.Errorf("port %s: %w", spec.Dev, errNoPort)
		}
		return s.nexthop(fib.NextHop{Kind: fib.KindConnected, Port: uint32(lp.id)})
	}
	var members []uint32
	for _, v := range spec.Via {
		name := spec.Dev
		if name == "" {
			var ok bool
			if name, ok = m.connectedPort(v); !ok {
				return 0, fmt.Errorf("gateway %s is not on a connected network", v)
			}
		}
		lp, ok := s.live[name]
		if !ok {
			return 0, fmt.Errorf("port %s: %w", name, errNoPort)
		}
		id, err := s.nexthop(fib.NextHop{Kind: fib.KindGateway, Port: uint32(lp.id), Addr: v})
		if err != nil {
			return 0, err
		}
		members = append(members, id)
	}
	if len(members) == 1 {
		return members[0], nil
	}
	return s.nexthop(fib.NextHop{Kind: fib.KindECMP, Members: members})
}

// nexthop returns the id of an equal next hop, registering it if new.
func (s *stack) nexthop(nh fib.NextHop) (uint32, error) {
	k := nhKey{kind: nh.Kind, port: nh.Port, addr: nh.Addr}
	if nh.Kind == fib.KindECMP {
		k.ecmp = fmt.Sprint(nh.Members)
	}
	if id, ok := s.nhs[k]; ok {
		return id, nil
	}
	id, err := s.fibs.AddNextHop(nh)
	if err != nil {
		return 0, err
	}
	s.nhs[k] = id
	return id, nil
}

// publish gives the workers the current ports and rules, with the FIB set
// they refer to, as one snapshot (a worker never sees rules or port FIBs of
// one FIB set with another: issue 12.13).
func (s *stack) publish() {
	st := &fwd.State{Rules: s.rules}
	st.ICMPRate, _ = strconv.Atoi(s.model.sysctl["net.icmp.ratelimit"])
	st.ICMPBurst, _ = strconv.Atoi(s.model.sysctl["net.icmp.burst"])
	for _, lp := range s.live {
		for int(lp.id) >= len(st.Ports) {
			st.Ports = append(st.Ports, fwd.PortState{})
		}
		link := lp.port.Link()
		st.Ports[lp.id] = fwd.NewPortState(lp.info.MAC, lp.mtu, uint16(lp.model.FIB),
			lp.model.Up && link.Up && link.Present, lp.model.Addrs)
		st.Ports[lp.id].TxQueues = min(lp.info.TxQueues, len(s.eng.Workers()))
		st.Ports[lp.id].LCP = lp.lcp != ""
	}
	s.eng.Publish(st, s.fibs)
	s.syncLCP()
}

var errStopped = errors.New("fwdd is shutting down")

// atWhere prefixes err with the file:line a command came from, when it
// came from a file (a port that fails to open at start names its line).
func atWhere(w cmdlang.Where, err error) error {
	if w.File == "" {
		return err
	}
	return fmt.Errorf("%s:%d: %w", w.File, w.Line, err)
}
