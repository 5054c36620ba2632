package pmd

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// ArgType is the type of a driver argument's value.
type ArgType uint8

const (
	// ArgString is any non-empty word.
	ArgString ArgType = iota
	// ArgInt is a decimal integer in [Min, Max] (a power of two if
	// PowerOfTwo).
	ArgInt
	// ArgBool is on/off (also 1/0, true/false, yes/no).
	ArgBool
	// ArgEnum is one of Choices.
	ArgEnum
	// ArgSet is a comma-separated, non-empty subset of Choices ("l2,l3").
	ArgSet
	// ArgMAC is a unicast Ethernet address like 02:00:00:00:00:01.
	ArgMAC
	// ArgDev is a kernel interface name (1..15 bytes); CheckDevices checks
	// that it exists.
	ArgDev
	// ArgPort names another port of the same stack. The stack opens the
	// named port first, refuses to delete it while it is named here, and
	// reopens this port when the named one is reopened.
	ArgPort
)

var argTypeNames = [...]string{ArgString: "word", ArgInt: "integer", ArgBool: "on|off", ArgEnum: "choice",
	ArgSet: "list", ArgMAC: "MAC", ArgDev: "IFNAME", ArgPort: "PORT"}

func (t ArgType) String() string {
	if int(t) < len(argTypeNames) {
		return argTypeNames[t]
	}
	return "unknown"
}

// Arg describes one driver argument. Drivers list theirs in Driver.Args;
// the command language, fwdd -check, help, docs/drivers.md and the tests
// read them from there, so that a driver plugs in without touching ctl/.
type Arg struct {
	Name string
	Type ArgType
	// Help is one short phrase: what the argument does.
	Help string
	// Default is the value used when the argument is absent ("" when
	// there is none, or when it depends on other arguments: say so in
	// Help).
	Default string
	// Required arguments must be given.
	Required bool
	// Min and Max bound an ArgInt.
	Min, Max int
	// PowerOfTwo: an ArgInt must be a power of two.
	PowerOfTwo bool
	// Choices are the values of an ArgEnum or the elements of an ArgSet.
	Choices []string
	// Repeat: the argument may be given several times ("laggport m0
	// laggport m1"); Args holds the values joined by single spaces, in
	// order, and Args.List splits them. "port set NAME KEY VALUE" adds a
	// value and "port set NAME -KEY VALUE" removes one.
	Repeat bool
	// Member (ArgPort only): the named port becomes part of this one: it
	// may have no addresses of its own and belongs to at most one port.
	Member bool
}

// Usage renders the argument as in help: "queues N (1..64, default 1)".
func (a Arg) Usage() string {
	var v string
	switch a.Type {
	case ArgInt:
		v = "N"
	case ArgEnum:
		v = strings.Join(a.Choices, "|")
	case ArgSet:
		v = strings.Join(a.Choices, ",")
	default:
		v = a.Type.String()
	}
	s := a.Name + " " + v
	var notes []string
	if a.Type == ArgInt {
		r := fmt.Sprintf("%d..%d", a.Min, a.Max)
		if a.PowerOfTwo {
			r += ", power of two"
		}
		notes = append(notes, r)
	}
	if a.Required {
		notes = append(notes, "required")
	}
	if a.Repeat {
		notes = append(notes, "repeatable")
	}
	if a.Default != "" {
		notes = append(notes, "default "+a.Default)
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s
}

// ArgError is a driver argument refused by Check; Key names the argument
// ("" for an unknown driver), so that a parser can point at its word.
type ArgError struct {
	Driver string
	Key    string
	Err    error
}

func (e *ArgError) Error() string {
	if e.Key == "" {
		return "driver " + e.Driver + ": " + e.Err.Error()
	}
	return "driver " + e.Driver + ": argument " + e.Key + ": " + e.Err.Error()
}

func (e *ArgError) Unwrap() error { return e.Err }

// Lookup returns the registered driver name.
func Lookup(name string) (Driver, bool) {
	driversMu.RLock()
	defer driversMu.RUnlock()
	d, ok := drivers[name]
	return d, ok
}

// Check validates a driver name and its arguments against the driver's
// description (Driver.Args), without opening anything: unknown driver,
// unknown or missing argument, values out of type or range, repetition.
// Errors are *ArgError. It is what pmd.Open runs first, and what the
// command parser and fwdd -check run early.
func Check(driver string, a Args) error {
	d, ok := Lookup(driver)
	if !ok {
		return &ArgError{Driver: driver, Err: fmt.Errorf("%w (available: %s)", ErrUnknownDriver, strings.Join(driverNames(), ", "))}
	}
	return d.CheckArgs(a)
}

// CheckDevices reports an error for every ArgDev argument of a that names
// no kernel interface in the network namespace nsPath ("" for the current
// one). It opens nothing; call it after Check.
func CheckDevices(driver string, a Args, nsPath string) error {
	d, ok := Lookup(driver)
	if !ok {
		return Check(driver, a)
	}
	var errs []error
	for _, s := range d.Args {
		v, ok := a[s.Name]
		if !ok || s.Type != ArgDev {
			continue
		}
		err := InNetNS(nsPath, func() error {
			_, err := net.InterfaceByName(v)
			return err
		})
		if err != nil {
			errs = append(errs, &ArgError{Driver: driver, Key: s.Name, Err: fmt.Errorf("%q: no such interface (%s)", v, SeeIPLink(nsPath))})
		}
	}
	return errors.Join(errs...)
}

// PortRefs returns the names of other ports a's ArgPort arguments name,
// with whether the reference makes the named port a member.
func PortRefs(driver string, a Args) (refs []PortRef) {
	d, ok := Lookup(driver)
	if !ok {
		return nil
	}
	for _, s := range d.Args {
		if s.Type != ArgPort {
			continue
		}
		for _, v := range a.List(s.Name) {
			refs = append(refs, PortRef{Arg: s.Name, Port: v, Member: s.Member})
		}
	}
	return refs
}

// PortRef is one port named by another port's ArgPort argument.
type PortRef struct {
	Arg    string // the argument ("laggport")
	Port   string // the port it names
	Member bool   // Arg.Member
}

func driverNames() []string {
	var names []string
	for _, d := range Drivers() {
		names = append(names, d.Name)
	}
	return names
}

// Arg returns the description of argument name, if the driver has one.
func (d Driver) Arg(name string) (Arg, bool) {
	for _, a := range d.Args {
		if a.Name == name {
			return a, true
		}
	}
	return Arg{}, false
}

// CheckArgs validates a against d.Args (see Check).
func (d Driver) CheckArgs(a Args) error {
	fail := func(key, format string, args ...any) error {
		return &ArgError{Driver: d.Name, Key: key, Err: fmt.Errorf(format, args...)}
	}
	for _, k := range a.keys() {
		s, ok := d.Arg(k)
		if !ok {
			names := make([]string, len(d.Args))
			for i, s := range d.Args {
				names[i] = s.Name
			}
			if len(names) == 0 {
				return fail(k, "unknown: driver %s takes no arguments", d.Name)
			}
			return fail(k, "unknown (accepted: %s)", strings.Join(names, ", "))
		}
		vals := []string{a[k]}
		if s.Repeat {
			vals = a.List(k)
			if len(vals) == 0 {
				return fail(k, "needs a value")
			}
			seen := map[string]bool{}
			for _, v := range vals {
				if seen[v] {
					return fail(k, "%q given twice", v)
				}
				seen[v] = true
			}
		}
		for _, v := range vals {
			if err := s.check(v); err != nil {
				return fail(k, "%q: %v", v, err)
			}
		}
	}
	for _, s := range d.Args {
		if _, ok := a[s.Name]; s.Required && !ok {
			return fail(s.Name, "required: %s %s (%s)", s.Name, s.Type, s.Help)
		}
	}
	return nil
}

// check validates one value.
func (s Arg) check(v string) error {
	switch s.Type {
	case ArgString:
		if v == "" || strings.ContainsAny(v, " \t\n") {
			return errors.New("want a non-empty word")
		}
	case ArgInt:
		n, err := strconv.Atoi(v)
		if err != nil || n < s.Min || n > s.Max {
			return fmt.Errorf("want an integer in [%d, %d]", s.Min, s.Max)
		}
		if s.PowerOfTwo && n&(n-1) != 0 {
			return fmt.Errorf("want a power of two in [%d, %d]", s.Min, s.Max)
		}
	case ArgBool:
		if _, err := (Args{"x": v}).Bool("x", false); err != nil {
			return errors.New("want on or off")
		}
	case ArgEnum:
		for _, c := range s.Choices {
			if v == c {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(s.Choices, ", "))
	case ArgSet:
		if v == "" {
			return fmt.Errorf("want a comma-separated list of %s", strings.Join(s.Choices, ", "))
		}
		seen := map[string]bool{}
		for _, e := range strings.Split(v, ",") {
			ok := false
			for _, c := range s.Choices {
				ok = ok || e == c
			}
			if !ok || seen[e] {
				return fmt.Errorf("want a comma-separated list of distinct %s", strings.Join(s.Choices, ", "))
			}
			seen[e] = true
		}
	case ArgMAC:
		hw, err := net.ParseMAC(v)
		if err != nil || len(hw) != 6 || hw[0]&1 != 0 {
			return errors.New("want a unicast MAC address like 02:00:00:00:00:01")
		}
	case ArgDev:
		if v == "" || len(v) > 15 || v == "." || v == ".." || strings.ContainsAny(v, "/ \t:") {
			return errors.New("want a kernel interface name (at most 15 characters, no '/', ':' or blank; see ip link)")
		}
	case ArgPort:
		if !ValidPortName(v) {
			return errors.New("want a port name")
		}
	}
	return nil
}

// ValidPortName accepts port names: 1..64 bytes of a-z, 0-9, '_' and '.',
// starting with a letter, no ".." and not ending in '.' ("p0", "lagg0",
// "p0.100").
func ValidPortName(s string) bool {
	if s == "" || len(s) > 64 || !(s[0] >= 'a' && s[0] <= 'z') || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// List returns the values of a repeatable argument (split at spaces), or
// nil if absent.
func (a Args) List(key string) []string {
	v, ok := a[key]
	if !ok {
		return nil
	}
	return strings.Fields(v)
}

// Add appends value to a repeatable argument.
func (a Args) Add(key, value string) {
	if v, ok := a[key]; ok && v != "" {
		a[key] = v + " " + value
	} else {
		a[key] = value
	}
}

// Remove deletes value from a repeatable argument and reports whether it
// was there; the argument goes when its last value does.
func (a Args) Remove(key, value string) bool {
	vals := a.List(key)
	for i, v := range vals {
		if v == value {
			vals = append(vals[:i], vals[i+1:]...)
			if len(vals) == 0 {
				delete(a, key)
			} else {
				a[key] = strings.Join(vals, " ")
			}
			return true
		}
	}
	return false
}

func (a Args) keys() []string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Usage renders the registered drivers and their arguments for help text:
// one line per driver, then one indented line per argument.
func Usage() string {
	var b strings.Builder
	for _, d := range Drivers() {
		fmt.Fprintf(&b, "driver %s: %s\n", d.Name, d.Help)
		for _, a := range d.Args {
			fmt.Fprintf(&b, "    %-44s %s\n", a.Usage(), a.Help)
		}
	}
	return b.String()
}

// Markdown renders the registered drivers' arguments as markdown tables
// (docs/drivers.md embeds it; a test keeps it current).
func Markdown() string {
	var b strings.Builder
	for _, d := range Drivers() {
		fmt.Fprintf(&b, "### %s\n\n%s.\n\n", d.Name, d.Help)
		if len(d.Args) == 0 {
			b.WriteString("No arguments.\n\n")
			continue
		}
		b.WriteString("| argument | value | default | meaning |\n|---|---|---|---|\n")
		for _, a := range d.Args {
			v := a.Type.String()
			switch a.Type {
			case ArgInt:
				v = fmt.Sprintf("%d..%d", a.Min, a.Max)
				if a.PowerOfTwo {
					v += ", power of two"
				}
			case ArgEnum:
				v = strings.Join(a.Choices, " \\| ")
			case ArgSet:
				v = "list of " + strings.Join(a.Choices, ", ")
			}
			v = strings.ReplaceAll(strings.ReplaceAll(v, " \\| ", "|"), "|", " \\| ")
			if a.Repeat {
				v += ", repeatable"
			}
			if a.Member {
				v += ", member"
			}
			def := a.Default
			switch {
			case a.Required:
				def = "required"
			case def == "":
				def = "-"
			default:
				def = "`" + def + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", a.Name, v, def, a.Help)
		}
		b.WriteString("\n")
	}
	return b.String()
}
