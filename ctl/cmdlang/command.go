package cmdlang

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/fwdd/fwdd/pmd"
)

// Command is one parsed command. The concrete types are the structs below;
// executors switch on them:
//
//	switch c := cmd.(type) {
//	case *cmdlang.RouteAdd: ...
//	}
//
// String returns the canonical text of the command, which parses back to an
// equal command (Where aside). Commands are plain values: they are safe to
// marshal to JSON and to hand to another goroutine.
type Command interface {
	// Verb is the command's name as the operator writes it: "route add".
	Verb() string
	// Location says where the command came from.
	Location() Where
	String() string
	isCommand()
}

// Where is the source of a command.
type Where struct {
	File string `json:"file,omitempty"` // "" for live commands
	Line int    `json:"line,omitempty"` // 1-based; 0 with Options.Unnumbered
}

// Location returns w; every command embeds a Where.
func (w Where) Location() Where { return w }

func (Where) isCommand() {}

// Limits checked by the parser. They are syntactic bounds; the stack checks
// the live ones (net.fibs, the ports that exist).
const (
	MaxFIB      = 4095  // fib numbers are 0..MaxFIB (net.fibs up to 4096 bounds them at run time)
	MaxQueues   = 256   // "queues N" (driver argument, checked for known drivers)
	MinMTU      = 68    // RFC 791 minimum; IPv6 needs 1280, the stack says so
	MaxMTU      = 65535 //
	MaxRuleID   = 65535 // rule ids are 1..MaxRuleID, evaluated in id order
	MaxNextHops = 16    // "via" may be repeated this many times (ECMP)
	MaxNameLen  = 15    // port names, like IFNAMSIZ-1
	MaxKeyLen   = 128   // sysctl keys
)

// AnyFIB in a FIB field means "not given": all FIBs for show routes, any
// FIB for a rule's match, unchanged for port set.
const AnyFIB = -1

// Family selects IPv4, IPv6 or both.
type Family uint8

const (
	AnyFamily Family = 0
	Inet      Family = 4
	Inet6     Family = 6
)

func (f Family) String() string {
	switch f {
	case Inet:
		return "inet"
	case Inet6:
		return "inet6"
	}
	return "any"
}

// MarshalText renders "inet", "inet6" or "any".
func (f Family) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// familyOf returns the family of a valid address.
func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return Inet
	}
	return Inet6
}

// ---- sysctl-like tree ----

// Set is "set KEY VALUE". The value is kept as text: its type belongs to the
// key, which the stack owns.
type Set struct {
	Where
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Get is "get KEY".
type Get struct {
	Where
	Key string `json:"key"`
}

func (*Set) Verb() string { return "set" }
func (*Get) Verb() string { return "get" }
func (c *Set) String() string {
	return "set " + c.Key + " " + Quote(c.Value)
}
func (c *Get) String() string { return "get " + c.Key }

// ---- ports ----

// PortAdd is "port add NAME driver DRIVER [fib N] [mtu N] [lcp IFNAME] [KEY VALUE|KEY=VALUE]...".
// Everything that is not driver, fib, mtu or lcp is a driver argument, kept as
// text for the driver to validate (pmd.Args has the same underlying type):
// "dev r0 queues 2 mode zerocopy" gives Args{"dev": "r0", "queues": "2",
// "mode": "zerocopy"}. A repeatable argument (pmd.Arg.Repeat) may be given
// several times; its values are joined by single spaces. When the driver
// is linked into this program the parser checks the arguments against its
// description (pmd.Check) and points at the offending word; otherwise the
// daemon does.
//
// LCP names the port's kernel interface (linux-cp: a TAP device in fwdd's
// network namespace that carries the host-bound traffic); "" is none. It is
// a valid Linux interface name (ValidLCPName) and never LCPOff.
type PortAdd struct {
	Where
	Name   string            `json:"name"`
	Driver string            `json:"driver"`
	FIB    int               `json:"fib"`           // default 0
	MTU    int               `json:"mtu,omitempty"` // 0: the driver's default
	Args   map[string]string `json:"args,omitempty"`
	LCP    string            `json:"lcp,omitempty"` // "": no kernel interface
}

// LCPOff in PortSet.LCP removes the port's kernel interface ("port set P
// lcp off"); "" in PortSet.LCP leaves it unchanged. So "off" is not a name
// a kernel interface can take with lcp.
const LCPOff = "off"

// ValidLCPName reports whether s can name a kernel interface made by lcp:
// what Linux accepts (1 to 15 bytes, not "." or "..", no '/', ':' or
// blank), without '%' (the kernel would treat "e%d" as a pattern and pick
// a name itself), and not LCPOff.
func ValidLCPName(s string) bool {
	return validDev(s) && s != LCPOff && !strings.ContainsAny(s, "%")
}

// Admin is a port's administrative state change.
type Admin uint8

const (
	AdminUnchanged Admin = iota
	AdminUp
	AdminDown
)

func (a Admin) String() string {
	switch a {
	case AdminUp:
		return "up"
	case AdminDown:
		return "down"
	}
	return "unchanged"
}

// MarshalText renders "up", "down" or "unchanged".
func (a Admin) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// PortSet is "port set NAME [fib N] [mtu N] [up|down] [lcp IFNAME|lcp off]
// [KEY VALUE|-KEY VALUE]...": at least one change. A driver argument KEY
// VALUE sets the argument (adds a value to a repeatable one, like lagg's
// laggport); -KEY VALUE removes that value. Changing driver arguments
// reopens the port.
type PortSet struct {
	Where
	Name  string  `json:"name"`
	FIB   int     `json:"fib"`           // AnyFIB: unchanged
	MTU   int     `json:"mtu,omitempty"` // 0: unchanged
	Admin Admin   `json:"admin"`
	LCP   string  `json:"lcp,omitempty"`  // "": unchanged; LCPOff: remove; else the new kernel interface name
	Args  []ArgOp `json:"args,omitempty"` // in order
	// Join and Leave are link-layer multicast groups the operator asks the
	// port to join on its device or to leave ("join 01:80:c2:00:00:14").
	Join  []string `json:"join,omitempty"`
	Leave []string `json:"leave,omitempty"`
}

// ArgOp is one driver argument change of "port set".
type ArgOp struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Remove bool   `json:"remove,omitempty"`
}

// PortDel is "port del NAME".
type PortDel struct {
	Where
	Name string `json:"name"`
}

func (*PortAdd) Verb() string { return "port add" }
func (*PortSet) Verb() string { return "port set" }
func (*PortDel) Verb() string { return "port del" }

func (c *PortAdd) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "port add %s driver %s", c.Name, c.Driver)
	if c.FIB != 0 {
		fmt.Fprintf(&b, " fib %d", c.FIB)
	}
	if c.MTU != 0 {
		fmt.Fprintf(&b, " mtu %d", c.MTU)
	}
	if c.LCP != "" {
		b.WriteString(" lcp " + Quote(c.LCP))
	}
	b.WriteString(FormatArgs(c.Driver, c.Args))
	return b.String()
}

// FormatArgs renders driver arguments as " KEY VALUE..." sorted by key, a
// repeatable argument (pmd.Arg.Repeat) once per value in order.
func FormatArgs(driver string, args map[string]string) string {
	var b strings.Builder
	d, _ := pmd.Lookup(driver)
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s, ok := d.Arg(k); ok && s.Repeat {
			for _, v := range pmd.Args(args).List(k) {
				b.WriteString(" " + k + " " + Quote(v))
			}
			continue
		}
		b.WriteString(" " + k + " " + Quote(args[k]))
	}
	return b.String()
}

func (c *PortSet) String() string {
	var b strings.Builder
	b.WriteString("port set " + c.Name)
	if c.FIB != AnyFIB {
		fmt.Fprintf(&b, " fib %d", c.FIB)
	}
	if c.MTU != 0 {
		fmt.Fprintf(&b, " mtu %d", c.MTU)
	}
	if c.Admin != AdminUnchanged {
		b.WriteString(" " + c.Admin.String())
	}
	if c.LCP != "" {
		b.WriteString(" lcp " + Quote(c.LCP))
	}
	for _, g := range c.Join {
		b.WriteString(" join " + g)
	}
	for _, g := range c.Leave {
		b.WriteString(" leave " + g)
	}
	for _, a := range c.Args {
		if a.Remove {
			b.WriteString(" -")
		} else {
			b.WriteString(" ")
		}
		b.WriteString(a.Key + " " + Quote(a.Value))
	}
	return b.String()
}

func (c *PortDel) String() string { return "port del " + c.Name }

// ---- addresses ----

// AddrAdd is "addr add PORT ADDR/LEN". Prefix keeps the host bits: it is
// the port's address and, masked, its connected network.
type AddrAdd struct {
	Where
	Port   string       `json:"port"`
	Prefix netip.Prefix `json:"prefix"`
}

// AddrDel is "addr del PORT ADDR/LEN".
type AddrDel struct {
	Where
	Port   string       `json:"port"`
	Prefix netip.Prefix `json:"prefix"`
}

func (*AddrAdd) Verb() string     { return "addr add" }
func (*AddrDel) Verb() string     { return "addr del" }
func (c *AddrAdd) String() string { return "addr add " + c.Port + " " + c.Prefix.String() }
func (c *AddrDel) String() string { return "addr del " + c.Port + " " + c.Prefix.String() }

// ---- routes ----

// RouteKind says what a route does with a packet.
type RouteKind uint8

const (
	Unicast   RouteKind = iota // forward via Via (ECMP if several) and/or out of Dev
	Blackhole                  // drop silently
	Reject                     // drop and send ICMP unreachable
)

func (k RouteKind) String() string {
	switch k {
	case Blackhole:
		return "blackhole"
	case Reject:
		return "reject"
	}
	return "unicast"
}

// MarshalText renders "unicast", "blackhole" or "reject".
func (k RouteKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// RouteAdd is one of
//
//	route add PREFIX via ADDR [via ADDR]... [dev PORT] [fib N]
//	route add PREFIX dev PORT [fib N]                 (directly attached)
//	route add PREFIX blackhole|reject [fib N]
//
// Prefix is masked (host bits set are an error); a bare address is a host
// route; "default" is 0.0.0.0/0 or ::/0 after the family of the first via.
// Every Via has the family of Prefix, no Via repeats, and a link-local Via
// comes with Dev.
type RouteAdd struct {
	Where
	FIB    int          `json:"fib"`
	Prefix netip.Prefix `json:"prefix"`
	Kind   RouteKind    `json:"kind"`
	Via    []netip.Addr `json:"via,omitempty"`
	Dev    string       `json:"dev,omitempty"`
}

// RouteDel is "route del PREFIX [fib N]".
type RouteDel struct {
	Where
	FIB    int          `json:"fib"`
	Prefix netip.Prefix `json:"prefix"`
}

// RouteGet is "route get ADDR [fib N]": the matching route and next hop.
type RouteGet struct {
	Where
	FIB  int        `json:"fib"`
	Addr netip.Addr `json:"addr"`
}

// RouteLoad is "route load FILE [fib N] [via ADDR]... [dev PORT] | [blackhole|reject]":
// bulk-load the prefixes of FILE (one per line, '#' comments). Each prefix is
// routed via the Via addresses of its own family (ECMP if several); with
// neither Via nor Dev the Kind must be blackhole or reject. FILE is relative
// to Options.Dir when given (the client's working directory, or the config
// file's directory); the daemon reads it.
type RouteLoad struct {
	Where
	FIB  int          `json:"fib"`
	File string       `json:"file"`
	Kind RouteKind    `json:"kind"`
	Via  []netip.Addr `json:"via,omitempty"`
	Dev  string       `json:"dev,omitempty"`
}

func (*RouteAdd) Verb() string  { return "route add" }
func (*RouteDel) Verb() string  { return "route del" }
func (*RouteGet) Verb() string  { return "route get" }
func (*RouteLoad) Verb() string { return "route load" }

func writeNextHops(b *strings.Builder, kind RouteKind, via []netip.Addr, dev string, fib int) {
	for _, v := range via {
		b.WriteString(" via " + v.String())
	}
	if dev != "" {
		b.WriteString(" dev " + dev)
	}
	if kind != Unicast {
		b.WriteString(" " + kind.String())
	}
	if fib != 0 {
		fmt.Fprintf(b, " fib %d", fib)
	}
}

func (c *RouteAdd) String() string {
	var b strings.Builder
	b.WriteString("route add " + c.Prefix.String())
	writeNextHops(&b, c.Kind, c.Via, c.Dev, c.FIB)
	return b.String()
}

func (c *RouteDel) String() string {
	s := "route del " + c.Prefix.String()
	if c.FIB != 0 {
		s += " fib " + strconv.Itoa(c.FIB)
	}
	return s
}

func (c *RouteGet) String() string {
	s := "route get " + c.Addr.String()
	if c.FIB != 0 {
		s += " fib " + strconv.Itoa(c.FIB)
	}
	return s
}

func (c *RouteLoad) String() string {
	var b strings.Builder
	b.WriteString("route load " + Quote(c.File))
	writeNextHops(&b, c.Kind, c.Via, c.Dev, c.FIB)
	return b.String()
}

// ---- rules (ipfw-like classifier, evaluated in id order) ----

// Well-known protocol numbers accepted by name in "proto".
const (
	ProtoICMP  = 1
	ProtoTCP   = 6
	ProtoUDP   = 17
	ProtoICMP6 = 58
	ProtoSCTP  = 132
	AnyProto   = -1
)

var protoNames = map[string]int{"icmp": ProtoICMP, "tcp": ProtoTCP, "udp": ProtoUDP, "icmp6": ProtoICMP6, "sctp": ProtoSCTP}

// ProtoName returns the name of a protocol number ("tcp"), or the number.
func ProtoName(p int) string {
	for n, v := range protoNames {
		if v == p {
			return n
		}
	}
	return strconv.Itoa(p)
}

// PortRange is an inclusive transport port range. The zero value (Set
// false) matches any port.
type PortRange struct {
	Set bool   `json:"set"`
	Lo  uint16 `json:"lo"`
	Hi  uint16 `json:"hi"`
}

func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// Contains reports whether p is in the range (always true when not Set).
func (r PortRange) Contains(p uint16) bool { return !r.Set || (p >= r.Lo && p <= r.Hi) }

// ActionKind is what a matching rule does.
type ActionKind uint8

const (
	ActionSetFIB ActionKind = iota + 1 // continue the lookup in FIB Action.FIB
	ActionCount                        // count and go on to the next rule
	ActionDrop                         // drop (counted)
)

func (k ActionKind) String() string {
	switch k {
	case ActionSetFIB:
		return "setfib"
	case ActionCount:
		return "count"
	case ActionDrop:
		return "drop"
	}
	return "none"
}

// MarshalText renders "setfib", "count" or "drop".
func (k ActionKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Action of a rule; FIB is meaningful for ActionSetFIB only.
type Action struct {
	Kind ActionKind `json:"kind"`
	FIB  int        `json:"fib,omitempty"`
}

func (a Action) String() string {
	if a.Kind == ActionSetFIB {
		return "setfib " + strconv.Itoa(a.FIB)
	}
	return a.Kind.String()
}

// RuleAdd is
//
//	rule add [ID] [in PORT] [fib N] [from PFX|any] [to PFX|any]
//	         [proto udp|tcp|sctp|icmp|icmp6|NUM] [sport N[-M]] [dport N[-M]]
//	         setfib N | count | drop
//
// ID 0 means "let the stack choose" (like ipfw: after the last rule). From
// and To are masked prefixes of one family, or invalid (zero) for any;
// Family is that family, or the one implied by icmp/icmp6, or AnyFamily.
// Sport/Dport need proto tcp, udp or sctp.
type RuleAdd struct {
	Where
	ID     int          `json:"id"`
	In     string       `json:"in,omitempty"`
	FIB    int          `json:"fib"` // AnyFIB: any
	Family Family       `json:"family"`
	From   netip.Prefix `json:"from"`
	To     netip.Prefix `json:"to"`
	Proto  int          `json:"proto"` // AnyProto: any
	Sport  PortRange    `json:"sport"`
	Dport  PortRange    `json:"dport"`
	Action Action       `json:"action"`
}

// RuleDel is "rule del ID".
type RuleDel struct {
	Where
	ID int `json:"id"`
}

func (*RuleAdd) Verb() string { return "rule add" }
func (*RuleDel) Verb() string { return "rule del" }

func (c *RuleAdd) String() string {
	var b strings.Builder
	b.WriteString("rule add")
	if c.ID != 0 {
		fmt.Fprintf(&b, " %d", c.ID)
	}
	if c.In != "" {
		b.WriteString(" in " + c.In)
	}
	if c.FIB != AnyFIB {
		fmt.Fprintf(&b, " fib %d", c.FIB)
	}
	if c.From.IsValid() {
		b.WriteString(" from " + c.From.String())
	}
	if c.To.IsValid() {
		b.WriteString(" to " + c.To.String())
	}
	if c.Proto != AnyProto {
		b.WriteString(" proto " + ProtoName(c.Proto))
	}
	if c.Sport.Set {
		b.WriteString(" sport " + c.Sport.String())
	}
	if c.Dport.Set {
		b.WriteString(" dport " + c.Dport.String())
	}
	b.WriteString(" " + c.Action.String())
	return b.String()
}

func (c *RuleDel) String() string { return "rule del " + strconv.Itoa(c.ID) }

// ---- neighbours ----

// NeighAdd is "neigh add PORT ADDR lladdr MAC": a static ARP/NDP entry.
// LLAddr is a 6-byte unicast Ethernet address.
type NeighAdd struct {
	Where
	Port   string           `json:"port"`
	Addr   netip.Addr       `json:"addr"`
	LLAddr net.HardwareAddr `json:"lladdr"`
}

// MarshalJSON writes LLAddr as "02:00:00:00:00:09" (net.HardwareAddr alone
// would marshal as base64).
func (c *NeighAdd) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Where
		Port   string     `json:"port"`
		Addr   netip.Addr `json:"addr"`
		LLAddr string     `json:"lladdr"`
	}{c.Where, c.Port, c.Addr, c.LLAddr.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *NeighAdd) UnmarshalJSON(b []byte) error {
	var v struct {
		Where
		Port   string     `json:"port"`
		Addr   netip.Addr `json:"addr"`
		LLAddr string     `json:"lladdr"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	mac, err := net.ParseMAC(v.LLAddr)
	if err != nil {
		return err
	}
	*c = NeighAdd{Where: v.Where, Port: v.Port, Addr: v.Addr, LLAddr: mac}
	return nil
}

// NeighDel is "neigh del PORT ADDR".
type NeighDel struct {
	Where
	Port string     `json:"port"`
	Addr netip.Addr `json:"addr"`
}

func (*NeighAdd) Verb() string { return "neigh add" }
func (*NeighDel) Verb() string { return "neigh del" }
func (c *NeighAdd) String() string {
	return "neigh add " + c.Port + " " + c.Addr.String() + " lladdr " + c.LLAddr.String()
}
func (c *NeighDel) String() string { return "neigh del " + c.Port + " " + c.Addr.String() }

// ---- show ----

// ShowPorts is "show ports" (ifconfig-like).
type ShowPorts struct{ Where }

// ShowRoutes is "show routes [fib N] [inet|inet6]" (netstat -rn -F N).
type ShowRoutes struct {
	Where
	FIB    int    `json:"fib"` // AnyFIB: every FIB
	Family Family `json:"family"`
}

// ShowNeigh is "show neigh [PORT]" (arp -an, ndp -an).
type ShowNeigh struct {
	Where
	Port string `json:"port,omitempty"` // "": every port
}

// ShowRules is "show rules".
type ShowRules struct{ Where }

// ShowFIBs is "show fibs".
type ShowFIBs struct{ Where }

// ShowStats is "show stats".
type ShowStats struct{ Where }

// ShowDriver is "show DRIVER" for a driver whose ports have a status table
// (pmd.Driver.Status, e.g. "show lagg").
type ShowDriver struct {
	Where
	Driver string `json:"driver"`
}

func (c *ShowDriver) Verb() string   { return "show " + c.Driver }
func (c *ShowDriver) String() string { return "show " + c.Driver }

// ShowSysctl is "show sysctl [PREFIX]".
type ShowSysctl struct {
	Where
	Prefix string `json:"prefix,omitempty"`
}

func (*ShowPorts) Verb() string  { return "show ports" }
func (*ShowRoutes) Verb() string { return "show routes" }
func (*ShowNeigh) Verb() string  { return "show neigh" }
func (*ShowRules) Verb() string  { return "show rules" }
func (*ShowFIBs) Verb() string   { return "show fibs" }
func (*ShowStats) Verb() string  { return "show stats" }
func (*ShowSysctl) Verb() string { return "show sysctl" }

func (*ShowPorts) String() string { return "show ports" }
func (c *ShowRoutes) String() string {
	s := "show routes"
	if c.FIB != AnyFIB {
		s += " fib " + strconv.Itoa(c.FIB)
	}
	if c.Family != AnyFamily {
		s += " " + c.Family.String()
	}
	return s
}
func (c *ShowNeigh) String() string {
	if c.Port == "" {
		return "show neigh"
	}
	return "show neigh " + c.Port
}
func (*ShowRules) String() string { return "show rules" }
func (*ShowFIBs) String() string  { return "show fibs" }
func (*ShowStats) String() string { return "show stats" }
func (c *ShowSysctl) String() string {
	if c.Prefix == "" {
		return "show sysctl"
	}
	return "show sysctl " + c.Prefix
}

// IsShow reports whether c only reads state (show, get, route get): such
// commands may run while nothing else changes and never need undoing.
func IsShow(c Command) bool {
	switch c := c.(type) {
	case *ShowPorts, *ShowRoutes, *ShowNeigh, *ShowRules, *ShowFIBs, *ShowStats, *ShowSysctl, *Get, *RouteGet, *ShowLCP, *ShowVnets:
		return true
	case *InVnet:
		return IsShow(c.Cmd)
	}
	return false
}

func unmarshalEnum[T ~uint8](dst *T, b []byte, what string, names map[string]T) error {
	v, ok := names[string(b)]
	if !ok {
		return fmt.Errorf("unknown %s %q", what, b)
	}
	*dst = v
	return nil
}

// UnmarshalText accepts what MarshalText writes.
func (f *Family) UnmarshalText(b []byte) error {
	return unmarshalEnum(f, b, "family", map[string]Family{"any": AnyFamily, "inet": Inet, "inet6": Inet6})
}

// UnmarshalText accepts what MarshalText writes.
func (a *Admin) UnmarshalText(b []byte) error {
	return unmarshalEnum(a, b, "admin state", map[string]Admin{"unchanged": AdminUnchanged, "up": AdminUp, "down": AdminDown})
}

// UnmarshalText accepts what MarshalText writes.
func (k *RouteKind) UnmarshalText(b []byte) error {
	return unmarshalEnum(k, b, "route kind", map[string]RouteKind{"unicast": Unicast, "blackhole": Blackhole, "reject": Reject})
}

// UnmarshalText accepts what MarshalText writes.
func (k *ActionKind) UnmarshalText(b []byte) error {
	return unmarshalEnum(k, b, "rule action", map[string]ActionKind{"setfib": ActionSetFIB, "count": ActionCount, "drop": ActionDrop})
}
