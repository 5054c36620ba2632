package ctl

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/pmd"
)

// query answers a command that reads state.
func (s *stack) query(c cmdlang.Command) (cmdlang.Result, error) {
	switch c := c.(type) {
	case *cmdlang.Get:
		v, ok := s.model.sysctl[c.Key]
		if !ok {
			return cmdlang.Result{}, fmt.Errorf("unknown key %q (see show sysctl)", c.Key)
		}
		return cmdlang.Result{Text: fmt.Sprintf("%s: %s\n", c.Key, v), Data: map[string]string{c.Key: v}}, nil
	case *cmdlang.ShowSysctl:
		keys := slices.Sorted(maps.Keys(s.model.sysctl))
		var b strings.Builder
		data := map[string]string{}
		for _, k := range keys {
			if strings.HasPrefix(k, c.Prefix) {
				fmt.Fprintf(&b, "%s: %s\n", k, s.model.sysctl[k])
				data[k] = s.model.sysctl[k]
			}
		}
		return cmdlang.Result{Text: b.String(), Data: data}, nil
	case *cmdlang.RouteGet:
		return s.routeGet(c)
	case *cmdlang.ShowPorts:
		return s.showPorts(), nil
	case *cmdlang.ShowRoutes:
		return s.showRoutes(c)
	case *cmdlang.ShowFIBs:
		return s.showFIBs(), nil
	case *cmdlang.ShowRules:
		return s.showRules(), nil
	case *cmdlang.ShowStats:
		return s.showStats(), nil
	case *cmdlang.ShowNeigh:
		return s.nb.show(c.Port)
	}
	return cmdlang.Result{}, fmt.Errorf("%s: not a query", c.Verb())
}

// PortView is the JSON form of a port in show ports.
type PortView struct {
	Name   string           `json:"name"`
	ID     uint16           `json:"id"`
	Info   pmd.Info         `json:"info"`
	Args   string           `json:"args"`
	FIB    int              `json:"fib"`
	MTU    int              `json:"mtu"`
	Admin  bool             `json:"admin_up"`
	Link   pmd.Link         `json:"link"`
	Addrs  []netip.Prefix   `json:"addrs"`
	Stats  pmd.QueueStats   `json:"stats"`
	Queues []pmd.QueueStats `json:"queues"`
}

func (s *stack) portViews() []PortView {
	var out []PortView
	for _, pm := range s.model.sortedPorts() {
		lp := s.live[pm.Name]
		if lp == nil {
			continue
		}
		v := PortView{Name: pm.Name, ID: lp.id, Info: lp.port.Info(), Args: pmd.Args(pm.Args).String(),
			FIB: pm.FIB, MTU: lp.mtu, Admin: pm.Up, Link: lp.port.Link(), Addrs: pm.Addrs, Queues: lp.port.Stats()}
		for _, q := range v.Queues {
			v.Stats.Add(q)
		}
		out = append(out, v)
	}
	return out
}

func (s *stack) showPorts() cmdlang.Result {
	views := s.portViews()
	var b strings.Builder
	for _, v := range views {
		flags := []string{}
		if v.Admin {
			flags = append(flags, "UP")
		}
		if v.Link.Up && v.Link.Present {
			flags = append(flags, "RUNNING")
		}
		if !v.Link.Present {
			flags = append(flags, "NO-DEVICE")
		}
		fmt.Fprintf(&b, "%s: flags=<%s> mtu %d fib %d\n", v.Name, strings.Join(flags, ","), v.MTU, v.FIB)
		fmt.Fprintf(&b, "\tdriver %s", v.Info.Driver)
		if v.Info.Device != "" {
			fmt.Fprintf(&b, " dev %s", v.Info.Device)
		}
		if v.Info.Mode != "" {
			fmt.Fprintf(&b, " mode %s", v.Info.Mode)
		}
		fmt.Fprintf(&b, " queues %d/%d\n", v.Info.RxQueues, v.Info.TxQueues)
		fmt.Fprintf(&b, "\tether %s\n", v.Info.MAC)
		for _, a := range v.Addrs {
			fam := "inet"
			if a.Addr().Is6() {
				fam = "inet6"
			}
			fmt.Fprintf(&b, "\t%s %s\n", fam, a)
		}
		st := v.Stats
		fmt.Fprintf(&b, "\tRX packets %d bytes %d drops %d errors %d\n", st.RxPackets, st.RxBytes, st.RxDrops, st.RxErrors)
		fmt.Fprintf(&b, "\tTX packets %d bytes %d drops %d errors %d\n", st.TxPackets, st.TxBytes, st.TxDrops, st.TxErrors)
		if st.Copies > 0 {
			fmt.Fprintf(&b, "\tcopies %d\n", st.Copies)
		}
	}
	if len(views) == 0 {
		b.WriteString("no ports (add one: port add p0 driver afxdp dev eth0)\n")
	}
	return cmdlang.Result{Text: b.String(), Data: views}
}

// RouteView is the JSON form of a route.
type RouteView struct {
	FIB     uint32       `json:"fib"`
	Prefix  netip.Prefix `json:"prefix"`
	Kind    string       `json:"kind"`
	Gateway []string     `json:"gateway,omitempty"`
	Port    string       `json:"port,omitempty"`
}

func (s *stack) portName(id uint32) string {
	for name, lp := range s.live {
		if uint32(lp.id) == id {
			return name
		}
	}
	return fmt.Sprintf("port#%d", id)
}

// describe turns a next-hop id into the gateway and port columns.
func (s *stack) describe(snap *fib.Snapshot, id uint32) (kind string, gws []string, port string) {
	nh := snap.NextHop(id)
	switch nh.Kind {
	case fib.KindGateway:
		return "gateway", []string{nh.Addr.String()}, s.portName(nh.Port)
	case fib.KindConnected:
		return "connected", nil, s.portName(nh.Port)
	case fib.KindLocal:
		return "local", nil, ""
	case fib.KindBlackhole:
		return "blackhole", nil, ""
	case fib.KindReject:
		return "reject", nil, ""
	case fib.KindECMP:
		var ports []string
		for _, m := range nh.Members {
			mh := snap.NextHop(m)
			gws = append(gws, mh.Addr.String())
			ports = append(ports, s.portName(mh.Port))
		}
		return "ecmp", gws, strings.Join(ports, ",")
	}
	return "none", nil, ""
}

func (s *stack) showRoutes(c *cmdlang.ShowRoutes) (cmdlang.Result, error) {
	fibs := []int{}
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
	snap := s.fibs.Load()
	var b strings.Builder
	var views []RouteView
	for _, f := range fibs {
		routes, err := s.fibs.Routes(uint32(f))
		if err != nil {
			return cmdlang.Result{}, err
		}
		if len(routes) == 0 && c.FIB == cmdlang.AnyFIB && f > 0 {
			continue
		}
		fmt.Fprintf(&b, "Routing table (fib %d)\n", f)
		for _, fam := range []cmdlang.Family{cmdlang.Inet, cmdlang.Inet6} {
			if c.Family != cmdlang.AnyFamily && c.Family != fam {
				continue
			}
			if fam == cmdlang.Inet {
				b.WriteString("\nInternet:\n")
			} else {
				b.WriteString("\nInternet6:\n")
			}
			tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "Destination\tGateway\tFlags\tNetif")
			for _, r := range routes {
				if r.Prefix.Addr().Is4() != (fam == cmdlang.Inet) {
					continue
				}
				kind, gws, port := s.describe(snap, r.NextHop)
				views = append(views, RouteView{FIB: r.FIB, Prefix: r.Prefix, Kind: kind, Gateway: gws, Port: port})
				gw, flags := strings.Join(gws, ","), "U"
				switch kind {
				case "gateway", "ecmp":
					flags = "UGS"
				case "connected":
					gw = "link#" + port
				case "local":
					gw, flags = "link#lo", "UHS"
				case "blackhole":
					gw, flags = "-", "UB"
				case "reject":
					gw, flags = "-", "UR"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Prefix, gw, flags, port)
			}
			tw.Flush()
		}
		b.WriteString("\n")
	}
	return cmdlang.Result{Text: b.String(), Data: views}, nil
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
	kind, gws, port := s.describe(s.fibs.Load(), r.NextHop)
	v := RouteView{FIB: r.FIB, Prefix: r.Prefix, Kind: kind, Gateway: gws, Port: port}
	var b strings.Builder
	fmt.Fprintf(&b, "   route to: %s\ndestination: %s\n", c.Addr, r.Prefix)
	if len(gws) > 0 {
		fmt.Fprintf(&b, "    gateway: %s\n", strings.Join(gws, ", "))
	}
	if port != "" {
		fmt.Fprintf(&b, "  interface: %s\n", port)
	}
	fmt.Fprintf(&b, "       kind: %s\n        fib: %d\n", kind, r.FIB)
	return cmdlang.Result{Text: b.String(), Data: v}, nil
}

// FIBView is one FIB in show fibs.
type FIBView struct {
	FIB     int `json:"fib"`
	Routes4 int `json:"routes4"`
	Routes6 int `json:"routes6"`
	Bytes4  int `json:"bytes4"`
	Bytes6  int `json:"bytes6"`
}

func (s *stack) showFIBs() cmdlang.Result {
	snap := s.fibs.Load()
	var views []FIBView
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "FIB\tIPv4 routes\tIPv6 routes\tIPv4 bytes\tIPv6 bytes")
	for f := 0; f < s.fibs.NumFIBs(); f++ {
		routes, _ := s.fibs.Routes(uint32(f))
		v := FIBView{FIB: f}
		for _, r := range routes {
			if r.Prefix.Addr().Is4() {
				v.Routes4++
			} else {
				v.Routes6++
			}
		}
		v.Bytes4, v.Bytes6 = snap.MemStats(uint32(f))
		if f > 0 && v.Routes4+v.Routes6 == 0 && s.fibs.NumFIBs() > 16 {
			continue // thousands of empty FIBs are not worth a line each
		}
		views = append(views, v)
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\n", f, v.Routes4, v.Routes6, v.Bytes4, v.Bytes6)
	}
	tw.Flush()
	fmt.Fprintf(&b, "net.fibs: %d\n", s.fibs.NumFIBs())
	return cmdlang.Result{Text: b.String(), Data: views}
}

// RuleView is one rule in show rules.
type RuleView struct {
	ID   uint32 `json:"id"`
	Rule string `json:"rule"`
	Hits uint64 `json:"hits"`
}

func (s *stack) showRules() cmdlang.Result {
	var views []RuleView
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHits\tRule")
	for _, r := range s.rules.List() {
		v := RuleView{ID: r.ID, Rule: r.String(), Hits: s.eng.RuleHits(r.Slot) - s.ruleBases[r.Slot]}
		views = append(views, v)
		fmt.Fprintf(tw, "%d\t%d\t%s\n", v.ID, v.Hits, v.Rule)
	}
	tw.Flush()
	return cmdlang.Result{Text: b.String(), Data: views}
}

// StatsView is show stats.
type StatsView struct {
	Counters map[string]uint64   `json:"counters"`
	Workers  []map[string]uint64 `json:"workers"`
	Pools    any                 `json:"pools"`
	Punt     map[string]uint64   `json:"punt"`
}

func (s *stack) showStats() cmdlang.Result {
	c := s.eng.Counters()
	v := StatsView{Counters: c, Workers: nil, Punt: map[string]uint64{}}
	for _, w := range s.eng.CountersByWorker() {
		v.Workers = append(v.Workers, w)
	}
	var pools []any
	for _, p := range s.eng.Pools() {
		pools = append(pools, p.Stats())
	}
	v.Pools = pools
	keys := slices.Sorted(maps.Keys(c))
	sort.SliceStable(keys, func(i, j int) bool { return !strings.HasPrefix(keys[i], "drop") && strings.HasPrefix(keys[j], "drop") })
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, k := range keys {
		if c[k] == 0 && strings.HasPrefix(k, "drop") {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\n", k, c[k])
	}
	tw.Flush()
	for _, p := range s.eng.Pools() {
		st := p.Stats()
		fmt.Fprintf(&b, "pool %s: %d mbufs, %d free, %d cached, %d in use, %d allocation misses\n",
			st.Name, st.Count, st.Free, st.Cached, st.InUse, st.AllocMiss)
	}
	return cmdlang.Result{Text: b.String(), Data: v}
}
