package show

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/pmd"
)

// ---- routes: netstat -rn ----

// RouteOrigin says where a route came from.
type RouteOrigin string

const (
	Connected RouteOrigin = "connected" // from addr add (on-link)
	Local     RouteOrigin = "local"     // the port's own address (host route)
	Static    RouteOrigin = "static"    // route add
	Loaded    RouteOrigin = "loaded"    // route load
	Kernel    RouteOrigin = "kernel"    // learned from a kernel table by the netlink mirror (lcp fib)
)

// Route is one route of one FIB. A route with several Gateways is ECMP and
// is printed as one line per next hop, like a multipath route.
type Route struct {
	FIB         int               `json:"fib"`
	Destination netip.Prefix      `json:"destination"`
	Kind        cmdlang.RouteKind `json:"kind"`
	Origin      RouteOrigin       `json:"origin"`
	Gateways    []netip.Addr      `json:"gateways,omitempty"`
	Netif       string            `json:"netif,omitempty"`
	// Netifs, when it has one entry per gateway, names each gateway's
	// port (an ECMP route across ports; Netif then lists them all).
	Netifs  []string `json:"netifs,omitempty"`
	Ifindex int      `json:"ifindex,omitempty"` // for link#N of on-link routes
	Use     uint64   `json:"use,omitempty"`     // lookups that chose it, if counted
}

// Flags returns netstat's flags: U up, G gateway, H host, S static,
// 1 learned from a kernel table (FreeBSD's RTF_PROTO1, the routing daemons'
// flag), B blackhole, R reject.
func (r *Route) Flags() string {
	var b strings.Builder
	b.WriteByte('U')
	if len(r.Gateways) > 0 {
		b.WriteByte('G')
	}
	if r.Destination.IsSingleIP() {
		b.WriteByte('H')
	}
	if r.Origin == Static || r.Origin == Loaded {
		b.WriteByte('S')
	}
	if r.Origin == Kernel {
		b.WriteByte('1')
	}
	switch r.Kind {
	case cmdlang.Blackhole:
		b.WriteByte('B')
	case cmdlang.Reject:
		b.WriteByte('R')
	}
	return b.String()
}

// SortRoutes orders by FIB, family (IPv4 first), address, prefix length.
func SortRoutes(rs []Route) {
	slices.SortStableFunc(rs, func(a, b Route) int {
		if c := cmp.Compare(a.FIB, b.FIB); c != 0 {
			return c
		}
		if c := a.Destination.Addr().Compare(b.Destination.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Destination.Bits(), b.Destination.Bits())
	})
}

func destString(p netip.Prefix) string {
	switch {
	case p.Bits() == 0:
		return "default"
	case p.IsSingleIP():
		return p.Addr().String()
	}
	return p.String()
}

// Routes writes rs (sorted by FIB then family) in the manner of
// netstat -rn: one "Routing tables (fib: N)" block per FIB, with
// Internet and Internet6 sections. fibs lists FIBs to print even when
// empty (nil: only those with routes).
func Routes(w io.Writer, rs []Route, fibs []int) error {
	byFIB := map[int][]Route{}
	for _, r := range rs {
		byFIB[r.FIB] = append(byFIB[r.FIB], r)
	}
	order := slices.Clone(fibs)
	for f := range byFIB {
		if !slices.Contains(order, f) {
			order = append(order, f)
		}
	}
	slices.Sort(order)
	order = slices.Compact(order)
	// Use is shown only when something counts lookups.
	use := slices.ContainsFunc(rs, func(r Route) bool { return r.Use > 0 })
	tw := newTable(w, 2)
	for i, f := range order {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "Routing tables (fib: %d)\n", f)
		for _, fam := range []struct {
			name string
			is4  bool
		}{{"Internet", true}, {"Internet6", false}} {
			var rows []Route
			for _, r := range byFIB[f] {
				if r.Destination.Addr().Is4() == fam.is4 {
					rows = append(rows, r)
				}
			}
			if len(rows) == 0 {
				continue
			}
			fmt.Fprintf(tw, "\n%s:\n", fam.name)
			if use {
				fmt.Fprintf(tw, "Destination\tGateway\tFlags\tNetif\tUse\n")
			} else {
				fmt.Fprintf(tw, "Destination\tGateway\tFlags\tNetif\n")
			}
			for _, r := range rows {
				writeRouteRows(tw, r, use)
			}
		}
	}
	return tw.Flush()
}

// RouteGet writes the answer to route get, in the manner of route -n get.
func RouteGet(w io.Writer, addr netip.Addr, r *Route) error {
	if r == nil {
		_, err := fmt.Fprintf(w, "route get %s: not in table\n", addr)
		return err
	}
	fmt.Fprintf(w, "   route to: %s\n", addr)
	fmt.Fprintf(w, "destination: %s\n", r.Destination)
	fmt.Fprintf(w, "        fib: %d\n", r.FIB)
	for _, g := range r.Gateways {
		fmt.Fprintf(w, "    gateway: %s\n", g)
	}
	if r.Kind != cmdlang.Unicast {
		fmt.Fprintf(w, "       kind: %s\n", r.Kind)
	}
	if r.Netif != "" {
		fmt.Fprintf(w, "  interface: %s\n", r.Netif)
	}
	_, err := fmt.Fprintf(w, "      flags: %s\n", r.Flags())
	return err
}

// ---- neighbours: arp -an, ndp -an ----

// Neighbour is one ARP or NDP entry.
type Neighbour struct {
	Port   string        `json:"port"`
	Addr   netip.Addr    `json:"addr"`
	LLAddr HWAddr        `json:"lladdr,omitempty"` // empty while incomplete
	State  string        `json:"state"`            // incomplete, reachable, stale, delay, probe, failed, permanent
	Expire time.Duration `json:"expire_ns,omitempty"`
	Router bool          `json:"router,omitempty"` // NDP R flag
	Probes int           `json:"probes,omitempty"` // solicitations sent in this state
	Held   int           `json:"held,omitempty"`   // packets waiting for resolution
}

// extra is what follows an entry: its state (if asked and not already
// said by "permanent" or "(incomplete)"), and the probes and held
// packets, if any.
func (n *Neighbour) extra(state bool) string {
	var b strings.Builder
	if state && n.State != "permanent" && n.State != "" {
		b.WriteString(" " + n.State)
	}
	if n.Probes > 0 {
		fmt.Fprintf(&b, " probes=%d", n.Probes)
	}
	if n.Held > 0 {
		fmt.Fprintf(&b, " held=%d", n.Held)
	}
	return b.String()
}

// HWAddr is a link-layer address that marshals as "02:00:00:00:00:09"
// (net.HardwareAddr alone marshals as base64).
type HWAddr net.HardwareAddr

func (h HWAddr) String() string { return net.HardwareAddr(h).String() }

// MarshalText renders the colon form.
func (h HWAddr) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText parses any form net.ParseMAC accepts.
func (h *HWAddr) UnmarshalText(b []byte) error {
	m, err := net.ParseMAC(string(b))
	if err != nil {
		return err
	}
	*h = HWAddr(m)
	return nil
}

// SortNeighbours orders by family, then address, then port.
func SortNeighbours(ns []Neighbour) {
	slices.SortStableFunc(ns, func(a, b Neighbour) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return cmp.Compare(a.Port, b.Port)
	})
}

// Neighbours writes IPv4 entries like arp -an and IPv6 ones like ndp -an.
func Neighbours(w io.Writer, ns []Neighbour) error {
	var v6 []Neighbour
	for _, n := range ns {
		if !n.Addr.Is4() {
			v6 = append(v6, n)
			continue
		}
		ll := n.LLAddr.String()
		if ll == "" {
			ll = "(incomplete)"
		}
		var exp string
		switch {
		case n.State == "permanent":
			exp = "permanent"
		case n.Expire > 0:
			exp = fmt.Sprintf("expires in %d seconds", int(n.Expire.Seconds()))
		default:
			exp = "expired"
		}
		fmt.Fprintf(w, "? (%s) at %s on %s %s [ethernet]%s\n", n.Addr, ll, n.Port, exp, n.extra(n.State != "incomplete"))
	}
	if len(v6) == 0 {
		return nil
	}
	tw := newTable(w, 1)
	fmt.Fprintf(tw, "Neighbor\tLinklayer Address\tNetif\tExpire\tState\tFlags\n")
	for _, n := range v6 {
		ll := n.LLAddr.String()
		if ll == "" {
			ll = "(incomplete)"
		}
		exp := "permanent"
		if n.State != "permanent" {
			exp = expire(n.Expire)
		}
		flags := ""
		if n.Router {
			flags = "R"
		}
		flags = strings.TrimSpace(flags + n.extra(false))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Addr, ll, n.Port, exp, n.State, flags)
	}
	return tw.Flush()
}

func expire(d time.Duration) string {
	if d <= 0 {
		return "expired"
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%dm%ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm%ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// ---- ports: ifconfig ----

// Port is one port with its addresses and summed counters.
type Port struct {
	Name    string            `json:"name"`
	Ifindex int               `json:"ifindex"`
	Driver  string            `json:"driver"`
	Args    map[string]string `json:"args,omitempty"`
	FIB     int               `json:"fib"`
	MTU     int               `json:"mtu"`
	Up      bool              `json:"up"`
	Running bool              `json:"running"` // workers poll it
	LLAddr  HWAddr            `json:"lladdr,omitempty"`
	Addrs   []netip.Prefix    `json:"addrs,omitempty"`
	Queues  int               `json:"queues"`
	Stats   pmd.QueueStats    `json:"stats"` // summed over queues

	// What a real driver adds (all optional).
	TxQueues int    `json:"tx_queues,omitempty"` // when it differs from Queues (receive)
	Mode     string `json:"mode,omitempty"`      // the mode the driver runs in (zerocopy, copy, native...)
	NoDevice bool   `json:"no_device,omitempty"` // the underlying device has disappeared
	// LinkDowns counts the times the link went down or away since the port
	// was opened (pmd.Link.Downs; 0 for drivers that do not count).
	LinkDowns uint64           `json:"link_downs,omitempty"`
	PerQueue  []pmd.QueueStats `json:"per_queue,omitempty"` // Stats by queue
	LCP       string           `json:"lcp,omitempty"`       // the port's kernel interface (lcp), "" for none
	// Multicast are the link-layer multicast groups joined on the device
	// (or asked of the ports below, for a vlan or a lagg).
	Multicast []string `json:"multicast,omitempty"`
}

// Ports writes ps in the manner of ifconfig.
func Ports(w io.Writer, ps []Port) error {
	for i := range ps {
		p := &ps[i]
		var flags []string
		if p.Up {
			flags = append(flags, "UP")
		}
		if p.Running {
			flags = append(flags, "RUNNING")
		}
		if p.NoDevice {
			flags = append(flags, "NO-DEVICE")
		}
		fmt.Fprintf(w, "%s: flags=<%s> mtu %d fib %d index %d\n", p.Name, strings.Join(flags, ","), p.MTU, p.FIB, p.Ifindex)
		keys := make([]string, 0, len(p.Args))
		for k := range p.Args {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(cmdlang.FormatArgs(p.Driver, map[string]string{k: p.Args[k]}))
			if k == "mode" && p.Mode != "" && p.Mode != p.Args[k] {
				b.WriteString(" (" + p.Mode + ")") // mode auto (copy)
			}
		}
		if _, ok := p.Args["mode"]; !ok && p.Mode != "" {
			b.WriteString(" mode " + p.Mode)
		}
		queues := strconv.Itoa(p.Queues)
		if p.TxQueues > 0 && p.TxQueues != p.Queues {
			queues += "/" + strconv.Itoa(p.TxQueues)
		}
		fmt.Fprintf(w, "\tdriver %s%s queues %s\n", p.Driver, b.String(), queues)
		if len(p.LLAddr) > 0 {
			fmt.Fprintf(w, "\tether %s\n", p.LLAddr)
		}
		if p.LCP != "" {
			fmt.Fprintf(w, "\tlcp %s\n", cmdlang.Quote(p.LCP))
		}
		if len(p.Multicast) > 0 {
			fmt.Fprintf(w, "\tmulticast %s\n", strings.Join(p.Multicast, " "))
		}
		for _, a := range p.Addrs {
			if a.Addr().Is4() {
				m := net.CIDRMask(a.Bits(), 32)
				fmt.Fprintf(w, "\tinet %s netmask 0x%s", a.Addr(), m.String())
				if a.Bits() < 31 {
					fmt.Fprintf(w, " broadcast %s", broadcast(a))
				}
				fmt.Fprintln(w)
			} else {
				fmt.Fprintf(w, "\tinet6 %s prefixlen %d\n", a.Addr(), a.Bits())
			}
		}
		s := p.Stats
		fmt.Fprintf(w, "\tRX packets %d bytes %d drops %d errors %d\n", s.RxPackets, s.RxBytes, s.RxDrops, s.RxErrors)
		fmt.Fprintf(w, "\tTX packets %d bytes %d drops %d errors %d\n", s.TxPackets, s.TxBytes, s.TxDrops, s.TxErrors)
		if s.Copies > 0 {
			fmt.Fprintf(w, "\tcopies %d\n", s.Copies)
		}
	}
	return nil
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ---- rules: ipfw show ----

// Rule is one classifier rule with its hit counters.
type Rule struct {
	Rule    cmdlang.RuleAdd `json:"rule"` // ID set; Where unused
	Packets uint64          `json:"packets"`
	Bytes   uint64          `json:"bytes"`
}

// Rules writes rules like ipfw show: number, packets, bytes, the rule in
// the command language. The bytes column is left out when no rule counts
// bytes (a stack that counts packets only).
func Rules(w io.Writer, rs []Rule) error {
	bytes := slices.ContainsFunc(rs, func(r Rule) bool { return r.Bytes > 0 })
	for _, r := range rs {
		body := r.Rule.String()
		body = strings.TrimPrefix(body, "rule add ")
		body = strings.TrimPrefix(body, strconv.Itoa(r.Rule.ID)+" ")
		if bytes {
			fmt.Fprintf(w, "%05d %10d %12d %s\n", r.Rule.ID, r.Packets, r.Bytes, body)
		} else {
			fmt.Fprintf(w, "%05d %10d %s\n", r.Rule.ID, r.Packets, body)
		}
	}
	return nil
}

// ---- fibs ----

// FIB is one FIB's summary.
type FIB struct {
	FIB     int      `json:"fib"`
	Routes4 int      `json:"routes4"`
	Routes6 int      `json:"routes6"`
	Lookups uint64   `json:"lookups"`
	Misses  uint64   `json:"misses"`
	Ports   []string `json:"ports,omitempty"`  // ports whose input FIB this is
	Bytes4  int      `json:"bytes4,omitempty"` // memory of the IPv4 table
	Bytes6  int      `json:"bytes6,omitempty"`
}

// FIBs writes one line per FIB. The lookup and memory columns are left
// out when no FIB has them.
func FIBs(w io.Writer, fs []FIB) error {
	lookups := slices.ContainsFunc(fs, func(f FIB) bool { return f.Lookups > 0 || f.Misses > 0 })
	mem := slices.ContainsFunc(fs, func(f FIB) bool { return f.Bytes4 > 0 || f.Bytes6 > 0 })
	tw := newTable(w, 2)
	fmt.Fprintf(tw, "FIB\tIPv4 routes\tIPv6 routes")
	if lookups {
		fmt.Fprintf(tw, "\tLookups\tMisses")
	}
	if mem {
		fmt.Fprintf(tw, "\tIPv4 bytes\tIPv6 bytes")
	}
	fmt.Fprintf(tw, "\tPorts\n")
	for _, f := range fs {
		ports := strings.Join(f.Ports, ",")
		if ports == "" {
			ports = "-"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d", f.FIB, f.Routes4, f.Routes6)
		if lookups {
			fmt.Fprintf(tw, "\t%d\t%d", f.Lookups, f.Misses)
		}
		if mem {
			fmt.Fprintf(tw, "\t%d\t%d", f.Bytes4, f.Bytes6)
		}
		fmt.Fprintf(tw, "\t%s\n", ports)
	}
	return tw.Flush()
}

// ---- stats: netstat -s ----

// Counter is one named counter in a scope ("port p0", "fwd", "mbuf").
type Counter struct {
	Scope string `json:"scope"`
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// Stats writes counters grouped by scope in the order given, like
// netstat -s: "scope:" then "\tVALUE name" lines. Zero counters are
// skipped unless all is set (netstat -z style).
func Stats(w io.Writer, cs []Counter, all bool) error {
	last := "\x00"
	for _, c := range cs {
		if c.Value == 0 && !all {
			continue
		}
		if c.Scope != last {
			fmt.Fprintf(w, "%s:\n", c.Scope)
			last = c.Scope
		}
		fmt.Fprintf(w, "\t%d %s\n", c.Value, c.Name)
	}
	return nil
}

// ---- sysctl ----

// Sysctl is one key and its value.
type Sysctl struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Doc   string `json:"doc,omitempty"`
}

// Sysctls writes "key: value" lines (sysctl -a), keys with the given
// prefix only ("" for all; a prefix matches whole dot-separated words).
func Sysctls(w io.Writer, ss []Sysctl, prefix string) error {
	for _, s := range ss {
		if !HasKeyPrefix(s.Key, prefix) {
			continue
		}
		fmt.Fprintf(w, "%s: %s\n", s.Key, s.Value)
	}
	return nil
}

// HasKeyPrefix reports whether key is prefix or below it: "net" matches
// "net.fibs" but not "network".
func HasKeyPrefix(key, prefix string) bool {
	return prefix == "" || key == prefix || strings.HasPrefix(key, prefix+".")
}

// table is a tabwriter whose lines lose their trailing blanks (an empty
// last column would otherwise leave padding behind).
type table struct {
	tw  *tabwriter.Writer
	buf strings.Builder
	w   io.Writer
}

func newTable(w io.Writer, pad int) *table {
	t := &table{w: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 8, pad, ' ', 0)
	return t
}

func (t *table) Write(b []byte) (int, error) { return t.tw.Write(b) }

func (t *table) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(t.buf.String(), "\n")
	var out strings.Builder
	for _, l := range lines {
		nl := strings.HasSuffix(l, "\n")
		out.WriteString(strings.TrimRight(l, " \n"))
		if nl {
			out.WriteByte('\n')
		}
	}
	t.buf.Reset()
	_, err := io.WriteString(t.w, out.String())
	return err
}

// writeRouteRows writes r's lines of a routing table: one per gateway (or
// one naming its kind or link), with the Use column when use is set.
func writeRouteRows(tw io.Writer, r Route, use bool) {
	gws := make([]string, 0, len(r.Gateways))
	for _, g := range r.Gateways {
		gws = append(gws, g.String())
	}
	if len(gws) == 0 {
		switch {
		case r.Kind != cmdlang.Unicast:
			gws = append(gws, r.Kind.String())
		case r.Ifindex > 0:
			gws = append(gws, "link#"+strconv.Itoa(r.Ifindex))
		default:
			gws = append(gws, "link")
		}
	}
	netif := r.Netif
	if netif == "" {
		netif = "-"
	}
	for i, g := range gws {
		nif := netif
		if len(r.Netifs) == len(gws) {
			nif = r.Netifs[i]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s", destString(r.Destination), g, r.Flags(), nif)
		if use {
			fmt.Fprintf(tw, "\t%d", r.Use)
		}
		fmt.Fprintln(tw)
	}
}
