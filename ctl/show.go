package ctl

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/pmd"
)

// query answers a command that reads state. The rows are ctl/show's (also
// the JSON Data) and ctl/show writes the text, so the daemon and
// ctl/ctltest's fake executor print the same tables.
func (s *stack) query(c cmdlang.Command) (cmdlang.Result, error) {
	switch c := c.(type) {
	case *cmdlang.Get:
		v, ok := s.model.sysctl[c.Key]
		if !ok {
			return cmdlang.Result{}, fmt.Errorf("unknown key %q (see show sysctl)", c.Key)
		}
		return render(map[string]string{c.Key: v}, func(b *strings.Builder) error {
			return show.Sysctls(b, []show.Sysctl{{Key: c.Key, Value: v}}, "")
		})
	case *cmdlang.ShowSysctl:
		rows := []show.Sysctl{}
		for _, k := range slices.Sorted(maps.Keys(s.model.sysctl)) {
			if show.HasKeyPrefix(k, c.Prefix) {
				rows = append(rows, show.Sysctl{Key: k, Value: s.model.sysctl[k]})
			}
		}
		return render(rows, func(b *strings.Builder) error { return show.Sysctls(b, rows, "") })
	case *cmdlang.RouteGet:
		return s.routeGet(c)
	case *cmdlang.ShowPorts:
		return s.showPorts()
	case *cmdlang.ShowRoutes:
		return s.showRoutes(c)
	case *cmdlang.ShowFIBs:
		return s.showFIBs()
	case *cmdlang.ShowRules:
		return s.showRules()
	case *cmdlang.ShowStats:
		return s.showStats()
	case *cmdlang.ShowNeigh:
		return s.nb.show(c.Port)
	case *cmdlang.ShowDriver:
		return s.showDriver(c.Driver)
	case *cmdlang.ShowLCP:
		return s.showLCP()
	}
	if cmdlang.IsObs(c) || cmdlang.IsStream(c) {
		return s.obsQuery(c)
	}
	return cmdlang.Result{}, fmt.Errorf("%s: not a query", c.Verb())
}

// render returns data with the text write makes of it.
func render(data any, write func(*strings.Builder) error) (cmdlang.Result, error) {
	var b strings.Builder
	if err := write(&b); err != nil {
		return cmdlang.Result{}, err
	}
	return cmdlang.Result{Text: b.String(), Data: data}, nil
}

// ifindex is a port's index as show prints it: its id plus one, so that
// the first port is index 1 as in ifconfig (0 means none in show.Route).
func ifindex(id uint16) int { return int(id) + 1 }

// ports returns show ports' rows, in configuration order.
func (s *stack) ports() []show.Port {
	out := []show.Port{}
	for _, pm := range s.model.sortedPorts() {
		lp := s.live[pm.Name]
		if lp == nil {
			continue
		}
		info, link := lp.port.Info(), lp.port.Link()
		p := show.Port{Name: pm.Name, Ifindex: ifindex(lp.id), Driver: info.Driver, Args: maps.Clone(pm.Args),
			FIB: pm.FIB, MTU: lp.mtu, Up: pm.Up, Running: link.Up && link.Present, LLAddr: show.HWAddr(info.MAC),
			Addrs: slices.Clone(pm.Addrs), Queues: info.RxQueues, TxQueues: info.TxQueues, Mode: info.Mode,
			NoDevice: !link.Present, LinkDowns: link.Downs, PerQueue: lp.port.Stats(), LCP: pm.LCP}
		for _, q := range p.PerQueue {
			p.Stats.Add(q)
		}
		if mc, ok := lp.port.(pmd.Multicaster); ok {
			p.Multicast = mc.Multicast()
		}
		out = append(out, p)
	}
	return out
}

func (s *stack) showPorts() (cmdlang.Result, error) {
	rows := s.ports()
	return render(rows, func(b *strings.Builder) error {
		if len(rows) == 0 {
			b.WriteString("no ports (add one: port add p0 driver afxdp dev eth0)\n")
		}
		return show.Ports(b, rows)
	})
}

// portOf returns the live port with id.
func (s *stack) portOf(id uint32) (string, int) {
	for name, lp := range s.live {
		if uint32(lp.id) == id {
			return name, ifindex(lp.id)
		}
	}
	return fmt.Sprintf("port#%d", id), 0
}

func (s *stack) portName(id uint32) string {
	name, _ := s.portOf(id)
	return name
}

// route turns a FIB route into show's row.
func (s *stack) route(snap *fib.Snapshot, r fib.Route) show.Route {
	row := show.Route{FIB: int(r.FIB), Destination: r.Prefix, Kind: cmdlang.Unicast, Origin: show.Static}
	nh := snap.NextHop(r.NextHop)
	switch nh.Kind {
	case fib.KindGateway:
		row.Gateways = []netip.Addr{nh.Addr}
		row.Netif, row.Ifindex = s.portOf(nh.Port)
	case fib.KindConnected:
		row.Origin = show.Connected
		row.Netif, row.Ifindex = s.portOf(nh.Port)
	case fib.KindLocal:
		row.Origin = show.Local
		row.Netif, row.Ifindex = s.owner(nh.Addr)
	case fib.KindBlackhole:
		row.Kind = cmdlang.Blackhole
	case fib.KindReject:
		row.Kind = cmdlang.Reject
	case fib.KindECMP:
		for _, m := range nh.Members {
			mh := snap.NextHop(m)
			row.Gateways = append(row.Gateways, mh.Addr)
			row.Netifs = append(row.Netifs, s.portName(mh.Port))
		}
		uniq := slices.Compact(slices.Sorted(slices.Values(row.Netifs)))
		row.Netif = strings.Join(uniq, ",")
		if len(uniq) == 1 {
			row.Netifs = nil
		}
	}
	return row
}

// owner returns the port that has local address a and its index, or "", 0.
func (s *stack) owner(a netip.Addr) (string, int) {
	for _, pm := range s.model.sortedPorts() {
		if lp := s.live[pm.Name]; lp != nil && slices.ContainsFunc(pm.Addrs, func(p netip.Prefix) bool { return p.Addr() == a }) {
			return pm.Name, ifindex(lp.id)
		}
	}
	return "", 0
}

func (s *stack) showRoutes(c *cmdlang.ShowRoutes) (cmdlang.Result, error) {
	var fibs []int
	if c.FIB == cmdlang.AnyFIB {
		for i := 0; i < s.fibs.NumFIBs(); i++ {
			fibs = append(fibs, i)
		}
	} else {
		if c.FIB >= s.fibs.NumFIBs() {
			return cmdlang.Result{}, fmt.Errorf("fib %d out of range [0, %d]", c.FIB, s.fibs.NumFIBs()-1)
		}
		fibs = append(fibs, c.FIB)
	}
	if s.do != nil {
		total := 0
		for _, f := range fibs {
			v4, v6, _ := s.fibs.RouteCount(uint32(f))
			switch c.Family {
			case cmdlang.Inet:
				total += v4
			case cmdlang.Inet6:
				total += v6
			default:
				total += v4 + v6
			}
		}
		if total > routePage {
			return cmdlang.Result{Pages: s.routePager(c, fibs)}, nil
		}
	}
	snap := s.fibs.Load()
	conn := s.lcpConnected(s.connected)
	rows := []show.Route{}
	var shown []int
	for _, f := range fibs {
		routes, err := s.fibs.Routes(uint32(f))
		if err != nil {
			return cmdlang.Result{}, err
		}
		if len(routes) == 0 && c.FIB == cmdlang.AnyFIB && f > 0 {
			continue // thousands of empty FIBs are not worth a header each
		}
		shown = append(shown, f)
		for _, r := range routes {
			if c.Family == cmdlang.Inet && !r.Prefix.Addr().Is4() || c.Family == cmdlang.Inet6 && r.Prefix.Addr().Is4() {
				continue
			}
			rows = append(rows, s.route(snap, r))
			if s.lcpIsKernel(r, conn) {
				rows[len(rows)-1].Origin = show.Kernel
			}
		}
	}
	show.SortRoutes(rows)
	return render(rows, func(b *strings.Builder) error { return show.Routes(b, rows, shown) })
}

func (s *stack) routeGet(c *cmdlang.RouteGet) (cmdlang.Result, error) {
	if c.FIB >= s.fibs.NumFIBs() {
		return cmdlang.Result{}, fmt.Errorf("fib %d out of range [0, %d]", c.FIB, s.fibs.NumFIBs()-1)
	}
	r, ok, err := s.fibs.RouteGet(uint32(c.FIB), c.Addr)
	if err != nil {
		return cmdlang.Result{}, err
	}
	if !ok {
		return cmdlang.Result{}, fmt.Errorf("route to %s in fib %d: no route (network unreachable)", c.Addr, c.FIB)
	}
	row := s.route(s.fibs.Load(), r)
	if s.lcpIsKernel(r, s.lcpConnected(s.connected)) {
		row.Origin = show.Kernel
	}
	return render(row, func(b *strings.Builder) error { return show.RouteGet(b, c.Addr, &row) })
}

// fibRows returns show fibs' rows (empty FIBs other than 0 are left out
// when there are more than 16).
func (s *stack) fibRows() []show.FIB {
	snap := s.fibs.Load()
	inputs := map[int][]string{}
	for _, pm := range s.model.sortedPorts() {
		inputs[pm.FIB] = append(inputs[pm.FIB], pm.Name)
	}
	rows := []show.FIB{}
	for f := 0; f < s.fibs.NumFIBs(); f++ {
		row := show.FIB{FIB: f, Ports: inputs[f]}
		row.Routes4, row.Routes6, _ = s.fibs.RouteCount(uint32(f))
		row.Bytes4, row.Bytes6 = snap.MemStats(uint32(f))
		row.Lookups, row.Misses = s.eng.FIBLookups(f)
		if f > 0 && row.Routes4+row.Routes6 == 0 && row.Lookups == 0 && s.fibs.NumFIBs() > 16 {
			continue
		}
		rows = append(rows, row)
	}
	return rows
}

func (s *stack) showFIBs() (cmdlang.Result, error) {
	rows := s.fibRows()
	return render(rows, func(b *strings.Builder) error {
		if err := show.FIBs(b, rows); err != nil {
			return err
		}
		_, err := fmt.Fprintf(b, "net.fibs: %d\n", s.fibs.NumFIBs())
		return err
	})
}

// ruleAdd turns an engine rule back into the command that adds it.
func ruleAdd(r fwd.Rule) cmdlang.RuleAdd {
	c := cmdlang.RuleAdd{ID: int(r.ID), In: r.InName, FIB: r.FIB, From: r.Src, To: r.Dst, Proto: r.Proto}
	if c.FIB < 0 {
		c.FIB = cmdlang.AnyFIB
	}
	if c.Proto < 0 {
		c.Proto = cmdlang.AnyProto
	}
	if !r.SPort.Any() {
		c.Sport = cmdlang.PortRange{Set: true, Lo: r.SPort.Lo, Hi: r.SPort.Hi}
	}
	if !r.DPort.Any() {
		c.Dport = cmdlang.PortRange{Set: true, Lo: r.DPort.Lo, Hi: r.DPort.Hi}
	}
	switch r.Action {
	case fwd.ActSetFIB:
		c.Action = cmdlang.Action{Kind: cmdlang.ActionSetFIB, FIB: int(r.SetFIB)}
	case fwd.ActCount:
		c.Action = cmdlang.Action{Kind: cmdlang.ActionCount}
	case fwd.ActDrop:
		c.Action = cmdlang.Action{Kind: cmdlang.ActionDrop}
	}
	return c
}

// ruleRows returns show rules' rows: the engine counts packets, not bytes.
func (s *stack) ruleRows() []show.Rule {
	rows := []show.Rule{}
	for _, r := range s.rules.List() {
		rows = append(rows, show.Rule{Rule: ruleAdd(r), Packets: s.eng.RuleHits(r.Slot) - s.ruleBases[r.Slot]})
	}
	return rows
}

func (s *stack) showRules() (cmdlang.Result, error) {
	rows := s.ruleRows()
	return render(rows, func(b *strings.Builder) error { return show.Rules(b, rows) })
}

// counterRows returns show stats' rows: the pipeline's counters (drops
// after the others), then each worker's (the last is the control path's)
// when more than one has counted something, then the mbuf pools.
func (s *stack) counterRows() []show.Counter {
	var rows []show.Counter
	add := func(scope string, c fwd.Counters) {
		keys := slices.Sorted(maps.Keys(c))
		slices.SortStableFunc(keys, func(a, b string) int {
			da, db := strings.HasPrefix(a, "drop"), strings.HasPrefix(b, "drop")
			switch {
			case da == db:
				return 0
			case db:
				return -1
			}
			return 1
		})
		for _, k := range keys {
			rows = append(rows, show.Counter{Scope: scope, Name: k, Value: c[k]})
		}
	}
	add("fwd", s.eng.Counters())
	byWorker := s.eng.CountersByWorker()
	busy := 0
	for _, c := range byWorker {
		for _, v := range c {
			if v > 0 {
				busy++
				break
			}
		}
	}
	if busy < 2 {
		byWorker = nil // one busy worker: its counters are the totals above
	}
	for w, c := range byWorker {
		scope := fmt.Sprintf("fwd worker %d", w)
		if w == len(byWorker)-1 {
			scope = "fwd control"
		}
		add(scope, c)
	}
	// The neighbour table's own counters: every frame and packet the
	// pipeline punted to it (fwd's punted) is in input or misses, and
	// from there in a drop, an answer, a hold or a release.
	for _, c := range s.nb.counters() {
		rows = append(rows, show.Counter{Scope: "neigh", Name: c.Name, Value: c.Value})
	}
	rows = append(rows, s.lcpCounterRows()...)
	for _, p := range s.eng.Pools() {
		st := p.Stats()
		scope := "mbuf pool " + st.Name
		for _, c := range []struct {
			name string
			v    uint64
		}{{"mbufs", uint64(st.Count)}, {"free", uint64(st.Free)}, {"cached", uint64(st.Cached)}, {"in use", uint64(st.InUse)}, {"allocation misses", uint64(st.AllocMiss)}} {
			rows = append(rows, show.Counter{Scope: scope, Name: c.name, Value: c.v})
		}
	}
	return rows
}

func (s *stack) showStats() (cmdlang.Result, error) {
	rows := s.counterRows()
	return render(rows, func(b *strings.Builder) error { return show.Stats(b, rows, false) })
}
