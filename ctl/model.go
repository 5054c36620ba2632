package ctl

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/lltable"
	"github.com/fwdd/fwdd/pmd"
)

// model is the configuration as the operator stated it: pure data, no
// devices. A batch of commands is applied to a copy of the model (routes as
// an overlay, since a full table is a million of them); if every command
// validates, the control goroutine reconciles the running stack with the
// new model. So a failed command changes nothing, and a reload (SIGHUP) is
// "build the model from the file, reconcile".
type model struct {
	sysctl map[string]string
	ports  map[string]*portModel
	// order of port creation, for stable ids and output
	portOrder []string
	rules     map[int]fwd.Rule
	neigh     map[neighKey]net.HardwareAddr
	routes    map[routeKey]*routeSpec
	// connDel are connected (or local) routes deleted by hand from one FIB
	// (route del PREFIX fib N): they stay out of that FIB while the
	// address exists, as in FreeBSD.
	connDel map[routeKey]bool
	// lcpFIBs maps FIBs to the kernel tables the netlink mirror copies
	// into them (lcp fib N table T; default FIB 0 <- main). lcpmirror.go.
	lcpFIBs map[int]uint32
}

type portModel struct {
	Name   string
	Driver string
	Args   map[string]string
	FIB    int
	MTU    int
	Up     bool
	Addrs  []netip.Prefix
	// LCP is the name of the port's kernel interface (lcp/), "" for none.
	// Unique across ports, and never another port's dev.
	LCP string
	// Joins are the link-layer multicast groups the operator joined
	// ("port set P join MAC"), in order.
	Joins []string
	// At is where the port was added (file:line of a startup file), for
	// errors when opening it fails.
	At cmdlang.Where
}

type neighKey struct {
	Port string
	Addr netip.Addr
}

type routeKey struct {
	FIB    int
	Prefix netip.Prefix
}

// routeSpec is a static route. Connected and local routes are not stored:
// they follow from the ports' addresses.
type routeSpec struct {
	Kind cmdlang.RouteKind
	Via  []netip.Addr
	Dev  string
}

func (r *routeSpec) equal(o *routeSpec) bool {
	return r.Kind == o.Kind && r.Dev == o.Dev && slices.Equal(r.Via, o.Via)
}

// Sysctl keys and their defaults. Every key is read: cmdlang.Help says
// what each does, and a test sets each and checks its effect.
var sysctlDefaults = map[string]string{
	"net.fibs":                 "1",
	"net.icmp.ratelimit":       "1000", // ICMP errors per second per worker (icmplim)
	"net.icmp.burst":           "100",
	"net.neigh.max_entries":    "16384", // neighbour entries in all: every port, both families, static included
	"net.neigh.max_per_port":   "4096",  // neighbour entries of one port (max_entries still bounds the sum)
	"net.neigh.max_incomplete": "1024",  // entries being resolved (INCOMPLETE), all ports
	"net.neigh.hold":           "16",    // packets held per unresolved neighbour (the oldest is dropped)
	"net.neigh.max_held":       "1024",  // packets held over all unresolved neighbours
	"net.neigh.max_requests":   "1000",  // ARP requests and NS sent per second, all ports
}

// Limits of sysctl values.
const (
	maxFIBs = 4096
)

func newModel() *model {
	return &model{
		sysctl:  maps.Clone(sysctlDefaults),
		ports:   map[string]*portModel{},
		rules:   map[int]fwd.Rule{},
		neigh:   map[neighKey]net.HardwareAddr{},
		connDel: map[routeKey]bool{},
		routes:  map[routeKey]*routeSpec{},
		lcpFIBs: map[int]uint32{0: mainTable},
	}
}

// batch is a model being edited: everything but routes is a deep copy;
// route changes are an overlay (nil value: deleted) over base.routes.
type batch struct {
	base       *model
	m          *model // sysctl, ports, rules, neigh copied; routes empty
	routes     map[routeKey]*routeSpec
	addrsMoved bool // an address was added or removed: re-check every gateway
	// portsChanged: a port was added, deleted or had its driver arguments
	// changed: re-check the references between ports.
	portsChanged bool
	loads        []routeLoad
}

// routeLoad is a bulk load kept as one entry (a full table is a million
// routes: not worth an overlay entry each until commit).
type routeLoad struct {
	fib      int
	prefixes []netip.Prefix
	spec     routeSpec
}

func (m *model) begin() *batch {
	c := &model{
		sysctl:    maps.Clone(m.sysctl),
		ports:     make(map[string]*portModel, len(m.ports)),
		portOrder: slices.Clone(m.portOrder),
		rules:     maps.Clone(m.rules),
		neigh:     maps.Clone(m.neigh),
		connDel:   maps.Clone(m.connDel),
		lcpFIBs:   maps.Clone(m.lcpFIBs),
	}
	for k, p := range m.ports {
		cp := *p
		cp.Args = maps.Clone(p.Args)
		cp.Addrs = slices.Clone(p.Addrs)
		cp.Joins = slices.Clone(p.Joins)
		c.ports[k] = &cp
	}
	return &batch{base: m, m: c, routes: map[routeKey]*routeSpec{}}
}

// route returns the route at k as the batch sees it.
func (b *batch) route(k routeKey) *routeSpec {
	if r, ok := b.routes[k]; ok {
		return r
	}
	return b.base.routes[k]
}

func (b *batch) fibs() int {
	n, _ := strconv.Atoi(b.m.sysctl["net.fibs"])
	return n
}

var errNoPort = errors.New("no such port (see show ports)")

func (b *batch) port(name string) (*portModel, error) {
	p, ok := b.m.ports[name]
	if !ok {
		return nil, fmt.Errorf("port %s: %w", name, errNoPort)
	}
	return p, nil
}

// checkLCP checks that kernel interface name lcp ("" for none) for port
// name, whose driver arguments are args, is free among the ports: no other
// port has it as its lcp, and no port (this one included) attaches to a
// device of that name. The kernel checks the rest when the interface is
// made.
func (b *batch) checkLCP(name, lcp string, args map[string]string) error {
	if lcp == "" {
		return nil
	}
	if !cmdlang.ValidLCPName(lcp) {
		return fmt.Errorf("lcp %q is not a valid kernel interface name (1 to 15 characters, no '/', ':', '%%' or blank)", lcp)
	}
	if args["dev"] == lcp {
		return fmt.Errorf("lcp %s: port %s attaches to dev %s already (choose another name for the kernel interface)", lcp, name, lcp)
	}
	for _, q := range b.m.ports {
		if q.Name == name {
			continue
		}
		if q.LCP == lcp {
			return fmt.Errorf("lcp %s is port %s's kernel interface already (port set %s lcp off first, or choose another name)", lcp, q.Name, q.Name)
		}
		if q.Args["dev"] == lcp {
			return fmt.Errorf("lcp %s: port %s attaches to dev %s (choose another name for the kernel interface)", lcp, q.Name, lcp)
		}
	}
	return nil
}

func (b *batch) checkFIB(fib int) error {
	if fib < 0 || fib >= b.fibs() {
		return fmt.Errorf("fib %d out of range [0, %d] (raise net.fibs: set net.fibs %d)", fib, b.fibs()-1, fib+1)
	}
	return nil
}

// apply validates one command and records its effect in the batch. Show and
// get commands change nothing and are answered by the caller.
func (b *batch) apply(c cmdlang.Command, readFile func(string) ([]netip.Prefix, error)) error {
	switch c := c.(type) {
	case *cmdlang.Set:
		return b.set(c.Key, c.Value)
	case *cmdlang.PortAdd:
		if _, dup := b.m.ports[c.Name]; dup {
			return fmt.Errorf("port %s exists already (port del %s first, or port set to change it)", c.Name, c.Name)
		}
		if len(b.m.ports) >= 1<<16-1 {
			return fmt.Errorf("too many ports")
		}
		if err := b.checkFIB(c.FIB); err != nil {
			return err
		}
		if err := b.checkLCP(c.Name, c.LCP, c.Args); err != nil {
			return err
		}
		// The driver and its arguments, as the driver declares them
		// (unknown drivers included: the parser passes names it does not
		// know), before anything is opened.
		if err := pmd.Check(c.Driver, pmd.Args(c.Args)); err != nil {
			return err
		}
		b.m.ports[c.Name] = &portModel{Name: c.Name, Driver: c.Driver, Args: maps.Clone(c.Args), FIB: c.FIB, MTU: c.MTU, Up: true, LCP: c.LCP, At: c.Where}
		b.m.portOrder = append(b.m.portOrder, c.Name)
		b.portsChanged = true
	case *cmdlang.PortSet:
		p, err := b.port(c.Name)
		if err != nil {
			return err
		}
		p.At = c.Where // errors opening it now are this command's
		if c.FIB != cmdlang.AnyFIB {
			if err := b.checkFIB(c.FIB); err != nil {
				return err
			}
			p.FIB = c.FIB
		}
		if c.MTU != 0 {
			p.MTU = c.MTU
		}
		switch c.Admin {
		case cmdlang.AdminUp:
			p.Up = true
		case cmdlang.AdminDown:
			p.Up = false
		}
		switch c.LCP {
		case "":
		case cmdlang.LCPOff:
			p.LCP = ""
		default:
			if err := b.checkLCP(c.Name, c.LCP, p.Args); err != nil {
				return err
			}
			p.LCP = c.LCP
		}
		for _, g := range c.Join {
			if slices.Contains(p.Joins, g) {
				return fmt.Errorf("port %s has joined %s already (see show ports)", c.Name, g)
			}
			p.Joins = append(p.Joins, g)
		}
		for _, g := range c.Leave {
			i := slices.Index(p.Joins, g)
			if i < 0 {
				return fmt.Errorf("port %s has not joined %s (see show ports; groups the stack needs are not left by hand)", c.Name, g)
			}
			p.Joins = slices.Delete(p.Joins, i, i+1)
		}
		if len(c.Args) > 0 {
			if err := setArgs(p, c.Args); err != nil {
				return err
			}
			b.portsChanged = true
		}
	case *cmdlang.PortDel:
		if _, err := b.port(c.Name); err != nil {
			return err
		}
		for _, r := range b.m.rules {
			if r.InName == c.Name {
				return fmt.Errorf("port %s is used by rule %d (rule del %d first)", c.Name, r.ID, r.ID)
			}
		}
		if us := b.m.portUsers(c.Name); len(us) > 0 {
			u := b.m.ports[us[0]]
			for _, r := range pmd.PortRefs(u.Driver, u.Args) {
				if r.Port == c.Name {
					return fmt.Errorf("port %s is used by port %s (port del %s first, or port set %s -%s %s)", c.Name, u.Name, u.Name, u.Name, r.Arg, c.Name)
				}
			}
		}
		delete(b.m.ports, c.Name)
		b.portsChanged = true
		b.m.portOrder = slices.DeleteFunc(b.m.portOrder, func(s string) bool { return s == c.Name })
		for k := range b.m.neigh {
			if k.Port == c.Name {
				delete(b.m.neigh, k)
			}
		}
		b.addrsMoved = true
	case *cmdlang.AddrAdd:
		p, err := b.port(c.Port)
		if err != nil {
			return err
		}
		for _, q := range b.m.ports {
			for _, a := range q.Addrs {
				if a.Addr() == c.Prefix.Addr() {
					return fmt.Errorf("address %s is already on port %s", c.Prefix.Addr(), q.Name)
				}
			}
		}
		if c.Prefix.Addr().Is4() && c.Prefix.Bits() > 32 || c.Prefix.Addr().Is6() && c.Prefix.Addr().IsMulticast() {
			return fmt.Errorf("address %s: not a unicast interface address", c.Prefix)
		}
		p.Addrs = append(p.Addrs, c.Prefix)
		b.addrsMoved = true
	case *cmdlang.AddrDel:
		p, err := b.port(c.Port)
		if err != nil {
			return err
		}
		i := slices.Index(p.Addrs, c.Prefix)
		if i < 0 {
			return fmt.Errorf("port %s has no address %s (see show ports)", c.Port, c.Prefix)
		}
		p.Addrs = slices.Delete(p.Addrs, i, i+1)
		b.addrsMoved = true
	case *cmdlang.RouteAdd:
		if err := b.checkFIB(c.FIB); err != nil {
			return err
		}
		spec := &routeSpec{Kind: c.Kind, Via: slices.Clone(c.Via), Dev: c.Dev}
		if err := b.checkSpec(spec); err != nil {
			return err
		}
		b.routes[routeKey{c.FIB, c.Prefix}] = spec
	case *cmdlang.RouteDel:
		if err := b.checkFIB(c.FIB); err != nil {
			return err
		}
		k := routeKey{c.FIB, c.Prefix}
		if b.route(k) != nil {
			b.routes[k] = nil
			return nil
		}
		if b.m.isConnected(c.Prefix) && !b.m.connDel[k] {
			b.m.connDel[k] = true
			return nil
		}
		return fmt.Errorf("no route %s in fib %d (see show routes fib %d)", c.Prefix, c.FIB, c.FIB)
	case *cmdlang.RouteLoad:
		if err := b.checkFIB(c.FIB); err != nil {
			return err
		}
		spec := routeSpec{Kind: c.Kind, Via: slices.Clone(c.Via), Dev: c.Dev}
		if err := b.checkSpec(&spec); err != nil {
			return err
		}
		prefixes, err := readFile(c.File)
		if err != nil {
			return err
		}
		b.loads = append(b.loads, routeLoad{fib: c.FIB, prefixes: prefixes, spec: spec})
	case *cmdlang.LCPFib:
		return b.lcpFib(c)
	case *cmdlang.RuleAdd:
		return b.ruleAdd(c)
	case *cmdlang.RuleDel:
		if _, ok := b.m.rules[c.ID]; !ok {
			return fmt.Errorf("no rule %d (see show rules)", c.ID)
		}
		delete(b.m.rules, c.ID)
	case *cmdlang.NeighAdd:
		p, err := b.port(c.Port)
		if err != nil {
			return err
		}
		_ = p
		b.m.neigh[neighKey{c.Port, c.Addr}] = slices.Clone(c.LLAddr)
	case *cmdlang.NeighDel:
		if _, err := b.port(c.Port); err != nil {
			return err
		}
		k := neighKey{c.Port, c.Addr}
		if _, ok := b.m.neigh[k]; !ok {
			return fmt.Errorf("no static neighbour %s on %s (dynamic entries expire by themselves; see show neigh)", c.Addr, c.Port)
		}
		delete(b.m.neigh, k)
	}
	return nil
}

func (b *batch) set(key, value string) error {
	if _, ok := sysctlDefaults[key]; !ok {
		keys := slices.Sorted(maps.Keys(sysctlDefaults))
		return fmt.Errorf("unknown key %q (known: %v)", key, keys)
	}
	n, err := strconv.Atoi(value)
	if err != nil {
		return fmt.Errorf("%s: %q is not a number", key, value)
	}
	switch key {
	case "net.fibs":
		if n < 1 || n > maxFIBs {
			return fmt.Errorf("net.fibs %d out of range [1, %d]", n, maxFIBs)
		}
		// Shrinking must not strand anything in the FIBs that go away.
		for _, p := range b.m.ports {
			if p.FIB >= n {
				return fmt.Errorf("net.fibs %d: port %s uses fib %d (port set %s fib 0 first)", n, p.Name, p.FIB, p.Name)
			}
		}
		for _, r := range b.m.rules {
			if r.FIB >= n || (r.Action == fwd.ActSetFIB && int(r.SetFIB) >= n) {
				return fmt.Errorf("net.fibs %d: rule %d uses a higher fib (rule del %d first)", n, r.ID, r.ID)
			}
		}
		if old, _ := strconv.Atoi(b.m.sysctl["net.fibs"]); n < old && b.hasRoutesAbove(n) {
			return fmt.Errorf("net.fibs %d: static routes exist in fib %d or above (delete them first)", n, n)
		}
	case "net.icmp.ratelimit", "net.icmp.burst":
		if n < 0 || n > 10_000_000 {
			return fmt.Errorf("%s %d out of range [0, 10000000] (0: unlimited)", key, n)
		}
	case "net.neigh.max_entries", "net.neigh.max_per_port", "net.neigh.max_incomplete", "net.neigh.max_held", "net.neigh.max_requests":
		if n < 1 || n > 1<<20 {
			return fmt.Errorf("%s %d out of range [1, %d]", key, n, 1<<20)
		}
	case "net.neigh.hold":
		if n < 1 || n > lltable.MaxHoldLen {
			return fmt.Errorf("%s %d out of range [1, %d]", key, n, lltable.MaxHoldLen)
		}
	}
	b.m.sysctl[key] = strconv.Itoa(n)
	return nil
}

func (b *batch) hasRoutesAbove(n int) bool {
	for k, r := range b.routes {
		if r != nil && k.FIB >= n {
			return true
		}
	}
	for k := range b.base.routes {
		if k.FIB >= n {
			if r, ok := b.routes[k]; !ok || r != nil {
				return true
			}
		}
	}
	for _, l := range b.loads {
		if l.fib >= n {
			return true
		}
	}
	return false
}

// checkSpec checks a route's next hops against the ports and addresses the
// batch has now. Gateways must be on a connected network (or name dev).
func (b *batch) checkSpec(s *routeSpec) error {
	if s.Dev != "" {
		if _, err := b.port(s.Dev); err != nil {
			return err
		}
	}
	for _, v := range s.Via {
		if s.Dev != "" {
			continue
		}
		if _, ok := b.connectedPort(v); !ok {
			return fmt.Errorf("gateway %s is not on a connected network (add an address on the port that reaches it, or give dev PORT)", v)
		}
	}
	return nil
}

// connectedPort returns the port whose connected network holds a (the
// longest such prefix wins).
func (b *batch) connectedPort(a netip.Addr) (string, bool) {
	return b.m.connectedPort(a)
}

func (m *model) connectedPort(a netip.Addr) (string, bool) {
	best, bestBits := "", -1
	for _, name := range m.portOrder {
		for _, pfx := range m.ports[name].Addrs {
			if pfx.Masked().Contains(a) && pfx.Bits() > bestBits {
				best, bestBits = name, pfx.Bits()
			}
		}
	}
	return best, bestBits >= 0
}

func (b *batch) ruleAdd(c *cmdlang.RuleAdd) error {
	id := c.ID
	if id == 0 {
		id = 100
		for k := range b.m.rules {
			if k >= id {
				id = (k/100 + 1) * 100
			}
		}
	}
	if _, dup := b.m.rules[id]; dup {
		return fmt.Errorf("rule %d exists already (rule del %d first)", id, id)
	}
	if len(b.m.rules) >= fwd.MaxRules {
		return fmt.Errorf("too many rules (at most %d)", fwd.MaxRules)
	}
	r := fwd.Rule{ID: uint32(id), InPort: -1, FIB: c.FIB, Src: c.From, Dst: c.To, Proto: c.Proto}
	if c.In != "" {
		if _, err := b.port(c.In); err != nil {
			return err
		}
		r.InPort = 0 // resolved to the port id at reconcile time
		r.InName = c.In
	}
	if c.Sport.Set {
		r.SPort = fwd.PortRange{Lo: c.Sport.Lo, Hi: c.Sport.Hi}
	}
	if c.Dport.Set {
		r.DPort = fwd.PortRange{Lo: c.Dport.Lo, Hi: c.Dport.Hi}
	}
	switch c.Action.Kind {
	case cmdlang.ActionSetFIB:
		r.Action, r.SetFIB = fwd.ActSetFIB, uint16(c.Action.FIB)
	case cmdlang.ActionCount:
		r.Action = fwd.ActCount
	case cmdlang.ActionDrop:
		r.Action = fwd.ActDrop
	}
	slot, ok := b.freeSlot()
	if !ok {
		return fmt.Errorf("too many rules (at most %d)", fwd.MaxRules)
	}
	r.Slot = slot
	if err := r.Validate(b.fibs()); err != nil {
		return err
	}
	b.m.rules[id] = r
	return nil
}

func (b *batch) freeSlot() (uint16, bool) {
	used := make(map[uint16]bool, len(b.m.rules))
	for _, r := range b.m.rules {
		used[r.Slot] = true
	}
	// Slots of rules deleted in this batch are not reused before commit,
	// so a deleted rule's counter never leaks into a new one.
	for _, r := range b.base.rules {
		used[r.Slot] = true
	}
	for s := uint16(0); s < fwd.MaxRules; s++ {
		if !used[s] {
			return s, true
		}
	}
	return 0, false
}

// finish runs the checks that need the whole batch: every gateway still on
// a connected network after addresses moved.
func (b *batch) finish() error {
	if b.portsChanged || b.addrsMoved {
		if err := b.m.checkPortRefs(); err != nil {
			return err
		}
	}
	for _, l := range b.loads {
		for _, p := range l.prefixes {
			s := l.spec
			b.routes[routeKey{l.fib, p}] = &s
		}
	}
	b.loads = nil
	if err := b.m.checkStaticNeighbours(); err != nil {
		return err
	}
	if !b.addrsMoved {
		return nil
	}
	check := func(k routeKey, s *routeSpec) error {
		if err := b.checkSpec(s); err != nil {
			return fmt.Errorf("route %s (fib %d): %w", k.Prefix, k.FIB, err)
		}
		return nil
	}
	for k, s := range b.routes {
		if s != nil {
			if err := check(k, s); err != nil {
				return err
			}
		}
	}
	// Base routes: one check per distinct next-hop set is enough.
	seen := map[string]bool{}
	for k, s := range b.base.routes {
		if _, ok := b.routes[k]; ok {
			continue // deleted or replaced by the batch: checked above
		}
		key := fmt.Sprint(s.Via, s.Dev)
		if seen[key] {
			continue
		}
		seen[key] = true
		if err := check(k, s); err != nil {
			return err
		}
	}
	return nil
}

// commit produces the new model (the base's routes map is updated in place:
// only the control goroutine holds it, after reconcile succeeded).
func (b *batch) commit() *model {
	m := b.m
	m.routes = b.base.routes
	for k, r := range b.routes {
		if r == nil {
			delete(m.routes, k)
		} else {
			m.routes[k] = r
		}
	}
	return m
}

// isConnected reports whether p is the connected network or the local host
// route of one of the ports' addresses.
func (m *model) isConnected(p netip.Prefix) bool {
	for _, pm := range m.ports {
		for _, a := range pm.Addrs {
			if a.Masked() == p || netip.PrefixFrom(a.Addr(), a.Addr().BitLen()) == p {
				return true
			}
		}
	}
	return false
}

// sortedPorts returns the ports in creation order, except that a port
// named by another's driver arguments (a lagg member, a vlan parent) comes
// before it: the order to open them in.
func (m *model) sortedPorts() []*portModel {
	out := make([]*portModel, 0, len(m.portOrder))
	done := map[string]bool{}
	var visit func(n string, depth int)
	visit = func(n string, depth int) {
		p := m.ports[n]
		if p == nil || done[n] || depth > len(m.ports) {
			return
		}
		done[n] = true
		for _, r := range pmd.PortRefs(p.Driver, p.Args) {
			visit(r.Port, depth+1)
		}
		out = append(out, p)
	}
	for _, n := range m.portOrder {
		visit(n, 0)
	}
	return out
}

// setArgs applies "port set" driver argument changes to p: a value is
// added to a repeatable argument, replaces any other; -KEY VALUE removes
// it. The result must pass the driver's check.
func setArgs(p *portModel, ops []cmdlang.ArgOp) error {
	d, known := pmd.Lookup(p.Driver)
	args := pmd.Args(maps.Clone(p.Args))
	if args == nil {
		args = pmd.Args{}
	}
	for _, op := range ops {
		s, ok := d.Arg(op.Key)
		if known && !ok {
			return pmd.Check(p.Driver, pmd.Args{op.Key: op.Value})
		}
		switch {
		case op.Remove && s.Repeat:
			if !args.Remove(op.Key, op.Value) {
				return fmt.Errorf("port %s has no %s %s (see show ports)", p.Name, op.Key, op.Value)
			}
		case op.Remove:
			if args[op.Key] != op.Value {
				return fmt.Errorf("port %s has no %s %s (see show ports)", p.Name, op.Key, op.Value)
			}
			delete(args, op.Key)
		case s.Repeat:
			if slices.Contains(args.List(op.Key), op.Value) {
				return fmt.Errorf("port %s has %s %s already", p.Name, op.Key, op.Value)
			}
			args.Add(op.Key, op.Value)
		default:
			args[op.Key] = op.Value
		}
	}
	if known {
		if err := pmd.Check(p.Driver, args); err != nil {
			return fmt.Errorf("port %s: %w", p.Name, err)
		}
	}
	p.Args = args
	return nil
}

// checkPortRefs checks the references between ports (pmd.ArgPort driver
// arguments): the named port exists and is another one; a member (lagg
// port) has no addresses and belongs to one port only, which is its only
// user.
func (m *model) checkPortRefs() error {
	users := map[string][]string{}    // port -> ports naming it
	owner := map[string]pmd.PortRef{} // member -> the reference that owns it
	ownerName := map[string]string{}
	for _, n := range m.portOrder {
		p := m.ports[n]
		for _, r := range pmd.PortRefs(p.Driver, p.Args) {
			q, ok := m.ports[r.Port]
			switch {
			case !ok:
				return fmt.Errorf("port %s: %s %s: no such port (port add %s first)", n, r.Arg, r.Port, r.Port)
			case r.Port == n:
				return fmt.Errorf("port %s: %s %s: a port cannot name itself", n, r.Arg, r.Port)
			case r.Member && len(q.Addrs) > 0:
				return fmt.Errorf("port %s: %s %s: %s has addresses, and a member has none of its own (addr del %s %s first)",
					n, r.Arg, r.Port, r.Port, r.Port, q.Addrs[0])
			}
			users[r.Port] = append(users[r.Port], n)
			if r.Member {
				if o, dup := ownerName[r.Port]; dup {
					return fmt.Errorf("port %s: %s %s: %s is a member of %s already (a port belongs to at most one)", n, r.Arg, r.Port, r.Port, o)
				}
				owner[r.Port], ownerName[r.Port] = r, n
			}
		}
	}
	for mem, o := range ownerName {
		for _, u := range users[mem] {
			if u != o {
				return fmt.Errorf("port %s names %s, which is a member of %s (%s %s): use %s instead", u, mem, o, owner[mem].Arg, mem, o)
			}
		}
	}
	return nil
}

// portUsers returns the ports whose driver arguments name port n.
func (m *model) portUsers(n string) []string {
	var out []string
	for _, u := range m.portOrder {
		p := m.ports[u]
		for _, r := range pmd.PortRefs(p.Driver, p.Args) {
			if r.Port == n {
				out = append(out, u)
				break
			}
		}
	}
	return out
}

// sortedRules returns the rules by id.
func (m *model) sortedRules() []fwd.Rule {
	ids := slices.Sorted(maps.Keys(m.rules))
	out := make([]fwd.Rule, 0, len(ids))
	for _, id := range ids {
		out = append(out, m.rules[id])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// checkStaticNeighbours refuses a model whose static neighbours alone
// exceed net.neigh.max_per_port on a port or net.neigh.max_entries in all
// (the table could not hold them; dynamic entries are evicted or refused
// at run time instead).
func (m *model) checkStaticNeighbours() error {
	l := neighLimits(m)
	if len(m.neigh) > l.MaxEntries {
		return fmt.Errorf("%d static neighbours exceed net.neigh.max_entries %d (raise it or delete some)", len(m.neigh), l.MaxEntries)
	}
	perPort := map[string]int{}
	for k := range m.neigh {
		if perPort[k.Port]++; perPort[k.Port] > l.MaxPerPort {
			return fmt.Errorf("port %s: more than net.neigh.max_per_port %d static neighbours (raise it or delete some)", k.Port, l.MaxPerPort)
		}
	}
	return nil
}
