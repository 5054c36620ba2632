package cmdlang

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/fwdd/fwdd/pmd"
)

// Options tune parsing.
type Options struct {
	// File names the source in errors and in each command's Where.
	File string
	// Dir is the base directory for relative paths (route load FILE). The
	// daemon passes the client's working directory, or the config file's
	// directory; "" leaves paths as written.
	Dir string
	// MaxErrors bounds the errors Parse collects before it stops (default 10).
	MaxErrors int
	// FirstLine is the number of the first line (default 1).
	FirstLine int
	// Unnumbered leaves Where.Line 0, so errors carry no line number: for
	// one command typed by the operator, where "line 1:" is noise.
	Unnumbered bool
}

// Parse reads a whole file. It returns every command, or no command and
// an ErrorList with the first Options.MaxErrors rejected lines: nothing is
// ever returned partially, so a caller applies all or nothing.
func Parse(r io.Reader, opt Options) ([]Command, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLineLen+2)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		line := len(lines) + 1
		if err == bufio.ErrTooLong {
			return nil, ErrorList{{File: opt.File, Line: line + opt.first() - 1, Msg: fmt.Sprintf("line is longer than %d bytes", MaxLineLen)}}
		}
		return nil, fmt.Errorf("reading %s: %w", orStdin(opt.File), err)
	}
	return ParseLines(lines, opt)
}

func orStdin(f string) string {
	if f == "" {
		return "commands"
	}
	return f
}

func (o Options) first() int {
	if o.FirstLine <= 0 {
		return 1
	}
	return o.FirstLine
}

// ParseFile reads and parses the file at path (the startup file of fwdd -c,
// or fwdd -check): errors are named after path, and relative file names in
// it (route load) are relative to the file's directory.
func ParseFile(path string) ([]Command, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config %w", err)
	}
	defer f.Close()
	dir := ""
	if abs, err := filepath.Abs(path); err == nil {
		dir = filepath.Dir(abs)
	}
	return Parse(f, Options{File: path, Dir: dir})
}

// ParseLines parses lines[i] as line Options.FirstLine+i, with Parse's
// all-or-nothing result. Blank and comment lines yield no command.
func ParseLines(lines []string, opt Options) ([]Command, error) {
	max := opt.MaxErrors
	if max <= 0 {
		max = 10
	}
	var cmds []Command
	var errs ErrorList
	for i, l := range lines {
		at := Where{File: opt.File, Line: opt.first() + i}
		if opt.Unnumbered {
			at.Line = 0
		}
		c, err := parseLine(l, at, &opt)
		if err != nil {
			errs = append(errs, err)
			if len(errs) >= max {
				break
			}
			continue
		}
		if c != nil {
			cmds = append(cmds, c)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cmds, nil
}

// ParseLine parses one live command (no file, line 1). A blank or
// comment-only line gives (nil, nil). The error is an *Error.
func ParseLine(line string) (Command, error) {
	c, err := parseLine(line, Where{Line: 1}, &Options{})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func parseLine(line string, at Where, opt *Options) (Command, *Error) {
	words, err := lex(line)
	if err != nil {
		err.File, err.Line = at.File, at.Line
		return nil, err
	}
	if len(words) == 0 {
		return nil, nil
	}
	p := &parser{at: at, words: words, opt: opt}
	c := p.command()
	if p.err != nil {
		return nil, p.err
	}
	return c, nil
}

// parser parses the words of one line. The first error sticks in err;
// later calls return zero values and the command is dropped.
type parser struct {
	at    Where
	words []word
	i     int
	verb  string
	opt   *Options
	err   *Error
	seen  []string // keywords (or keyword groups) given so far
	seenA [8]string
}

func (p *parser) fail(w *word, format string, args ...any) {
	if p.err != nil {
		return
	}
	// Words are quoted truncated: the line may be anything (a file that is
	// not a configuration at all), and errors end up in logs.
	for i, a := range args {
		if s, ok := a.(string); ok && p.isWord(s) {
			args[i] = Truncate(s)
		}
	}
	e := &Error{File: p.at.File, Line: p.at.Line, Verb: p.verb, Msg: fmt.Sprintf(format, args...)}
	if w != nil {
		e.Word, e.Col = Truncate(w.text), w.col
	}
	p.err = e
}

// isWord reports whether s is the text of one of the line's words.
func (p *parser) isWord(s string) bool {
	for i := range p.words {
		if p.words[i].text == s {
			return true
		}
	}
	return false
}

func (p *parser) more() bool { return p.err == nil && p.i < len(p.words) }

// next returns the next word, or nil at the end of the line.
func (p *parser) next() *word {
	if p.i >= len(p.words) {
		return nil
	}
	w := &p.words[p.i]
	p.i++
	return w
}

// value returns the word after keyword kw, failing with
// `"kw" needs WHAT, got end of line`.
func (p *parser) value(kw *word, what string) *word {
	w := p.next()
	if w == nil {
		p.fail(nil, "%q needs %s, got end of line", kw.text, what)
	}
	return w
}

// once fails if keyword kw (or one of its group, named by key) was already given.
func (p *parser) once(kw *word, key string) bool {
	if p.seen == nil {
		p.seen = p.seenA[:0]
	}
	if slices.Contains(p.seen, key) {
		if key == kw.text {
			p.fail(kw, "%q given twice", kw.text)
		} else {
			p.fail(kw, "%q conflicts with an earlier %s", kw.text, key)
		}
		return false
	}
	p.seen = append(p.seen, key)
	return true
}

func (p *parser) end() {
	if w := p.next(); w != nil {
		p.fail(w, "unexpected %q after the end of the command", w.text)
	}
}

func (p *parser) unexpected(w *word, expected string) {
	p.fail(w, "unexpected %q (expected %s)", w.text, expected)
}

// sub reads the subcommand word of verb and sets p.verb.
func (p *parser) sub(verb string, subs ...string) string {
	p.verb = verb
	w := p.next()
	if w == nil {
		p.fail(nil, "missing subcommand (expected %s)", orList(subs))
		return ""
	}
	for _, s := range subs {
		if w.text == s {
			p.verb = verb + " " + s
			return s
		}
	}
	p.fail(w, "unknown subcommand %q (expected %s)", w.text, orList(subs))
	return ""
}

func orList(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// ---- values ----

func (p *parser) num(kw *word, what string, lo, hi int) int {
	w := p.value(kw, what)
	if w == nil {
		return 0
	}
	return p.numWord(kw, w, what, lo, hi)
}

func (p *parser) numWord(kw, w *word, what string, lo, hi int) int {
	n, err := strconv.ParseUint(w.text, 10, 32)
	if err != nil || n < uint64(lo) || n > uint64(hi) {
		if kw == nil {
			p.fail(w, "expected %s from %d to %d, got %q", what, lo, hi, w.text)
		} else {
			p.fail(w, "%q needs %s from %d to %d, got %q", kw.text, what, lo, hi, w.text)
		}
		return 0
	}
	return int(n)
}

func (p *parser) fib(kw *word) int {
	return p.num(kw, "a FIB number", 0, MaxFIB)
}

// name reads a port name (letters, digits, '_', '-', '.'; starting with a
// letter; at most MaxNameLen bytes).
func (p *parser) name(w *word, role string) string {
	if w == nil {
		p.fail(nil, "missing %s name", role)
		return ""
	}
	if !validName(w.text) {
		p.fail(w, "%s name %q is not valid (a letter, then letters, digits, '_', '-' or '.', at most %d characters)", role, w.text, MaxNameLen)
		return ""
	}
	return w.text
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// addr parses an IP address in word w for keyword/role kw.
func (p *parser) addrWord(w *word, role string) netip.Addr {
	if w == nil {
		p.fail(nil, "%s needs an address, got end of line", role)
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(w.text)
	if err != nil {
		p.fail(w, "%s needs an address, got %q", role, w.text)
		return netip.Addr{}
	}
	if a.Zone() != "" {
		p.fail(w, "%s: zones are not used in %q; name the port with dev", role, w.text)
		return netip.Addr{}
	}
	if a.Is4In6() {
		p.fail(w, "%s: write the IPv4-mapped address %q as %s", role, w.text, a.Unmap())
		return netip.Addr{}
	}
	return a
}

// unicast checks that a is usable as a host/next-hop address.
func (p *parser) unicast(w *word, role string, a netip.Addr) bool {
	switch {
	case a.IsUnspecified():
		p.fail(w, "%s %s is the unspecified address", role, a)
	case a.IsMulticast():
		p.fail(w, "%s %s is a multicast address", role, a)
	case a.IsLoopback():
		p.fail(w, "%s %s is a loopback address", role, a)
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		p.fail(w, "%s %s is the broadcast address", role, a)
	default:
		return true
	}
	return false
}

// prefixWord parses a route-style prefix: masked, or a bare address as a
// host route.
func (p *parser) prefixWord(w *word, role string) netip.Prefix {
	if w == nil {
		p.fail(nil, "missing %s (a prefix like 198.51.100.0/24 or 2001:db8::/32)", role)
		return netip.Prefix{}
	}
	if !strings.Contains(w.text, "/") {
		a := p.addrWord(w, fmt.Sprintf("%s %q", role, Truncate(w.text)))
		if p.err != nil {
			p.err.Msg = fmt.Sprintf("%s needs a prefix like 198.51.100.0/24 or 2001:db8::/32, got %q", role, Truncate(w.text))
			return netip.Prefix{}
		}
		return netip.PrefixFrom(a, a.BitLen())
	}
	pf, err := netip.ParsePrefix(w.text)
	if err != nil {
		p.fail(w, "%s needs a prefix like 198.51.100.0/24 or 2001:db8::/32, got %q", role, w.text)
		return netip.Prefix{}
	}
	if pf.Addr().Is4In6() {
		p.fail(w, "%s: write the IPv4-mapped prefix %q in IPv4 form", role, w.text)
		return netip.Prefix{}
	}
	if m := pf.Masked(); m != pf {
		p.fail(w, "%s %s has host bits set (did you mean %s?)", role, pf, m)
		return netip.Prefix{}
	}
	return pf
}

// ---- commands ----

func (p *parser) command() Command {
	w := p.next()
	switch w.text {
	case "set":
		return p.set()
	case "get":
		return p.get()
	case "port":
		switch p.sub("port", "add", "set", "del") {
		case "add":
			return p.portAdd()
		case "set":
			return p.portSet()
		case "del":
			c := &PortDel{Where: p.at, Name: p.name(p.next(), "port")}
			p.end()
			return c
		}
	case "addr":
		switch s := p.sub("addr", "add", "del"); s {
		case "add", "del":
			port := p.name(p.next(), "port")
			pf := p.ifaddr()
			p.end()
			if s == "add" {
				return &AddrAdd{Where: p.at, Port: port, Prefix: pf}
			}
			return &AddrDel{Where: p.at, Port: port, Prefix: pf}
		}
	case "route":
		switch p.sub("route", "add", "del", "get", "load") {
		case "add":
			return p.routeAdd()
		case "del":
			c := &RouteDel{Where: p.at}
			c.Prefix = p.prefixWord(p.next(), "destination")
			c.FIB = p.onlyFIB()
			return c
		case "get":
			c := &RouteGet{Where: p.at}
			w := p.next()
			c.Addr = p.addrWord(w, "destination")
			c.FIB = p.onlyFIB()
			return c
		case "load":
			return p.routeLoad()
		}
	case "rule":
		switch p.sub("rule", "add", "del") {
		case "add":
			return p.ruleAdd()
		case "del":
			c := &RuleDel{Where: p.at}
			w := p.next()
			if w == nil {
				p.fail(nil, "missing rule id (a number from 1 to %d)", MaxRuleID)
			} else {
				c.ID = p.numWord(nil, w, "a rule id", 1, MaxRuleID)
			}
			p.end()
			return c
		}
	case "neigh":
		switch s := p.sub("neigh", "add", "del"); s {
		case "add":
			return p.neighAdd()
		case "del":
			c := &NeighDel{Where: p.at}
			c.Port = p.name(p.next(), "port")
			c.Addr = p.hostAddr(p.next(), "neighbour")
			p.end()
			return c
		}
	case "show":
		return p.show()
	case "vnet":
		return p.vnet()
	case "lcp":
		return p.lcp()
	case "monitor":
		p.verb = "monitor"
		return p.monitor()
	case "capture":
		p.verb = "capture"
		return p.capture()
	case "trace":
		return p.trace()
	default:
		p.fail(w, "unknown command %q (expected set, get, port, addr, route, rule, neigh, lcp or show)", w.text)
	}
	return nil
}

// hostAddr reads a unicast address in role.
func (p *parser) hostAddr(w *word, role string) netip.Addr {
	if p.err != nil {
		return netip.Addr{}
	}
	a := p.addrWord(w, role)
	if p.err == nil {
		p.unicast(w, role, a)
	}
	return a
}

// onlyFIB parses an optional "fib N" and the end of the line.
func (p *parser) onlyFIB() int {
	fib := 0
	for p.more() {
		w := p.next()
		if w.text != "fib" {
			p.unexpected(w, "fib")
			break
		}
		if p.once(w, "fib") {
			fib = p.fib(w)
		}
	}
	return fib
}

func validKey(s string) bool {
	if s == "" || len(s) > MaxKeyLen {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (p *parser) key(w *word, role string) string {
	if w == nil {
		p.fail(nil, "missing %s (like net.fibs)", role)
		return ""
	}
	if !validKey(w.text) {
		p.fail(w, "%s %q is not valid (lower-case words of a-z, 0-9, '_' joined by '.', like net.fibs)", role, w.text)
		return ""
	}
	return w.text
}

func (p *parser) set() Command {
	p.verb = "set"
	c := &Set{Where: p.at}
	c.Key = p.key(p.next(), "key")
	if p.err != nil {
		return nil
	}
	w := p.next()
	if w == nil {
		p.fail(nil, "%s needs a value, got end of line", c.Key)
		return nil
	}
	c.Value = w.text
	p.end()
	return c
}

func (p *parser) get() Command {
	p.verb = "get"
	c := &Get{Where: p.at}
	c.Key = p.key(p.next(), "key")
	p.end()
	return c
}

func validIdent(s string) bool {
	if s == "" || len(s) > 64 || !(s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (p *parser) portAdd() Command {
	c := &PortAdd{Where: p.at}
	c.Name = p.name(p.next(), "port")
	type arg struct {
		k, v string
		w    *word // the value's word, for errors
		key  *word
	}
	var args []arg
	for p.more() {
		w := p.next()
		switch w.text {
		case "driver":
			if p.once(w, "driver") {
				if v := p.value(w, "a driver name (afxdp, afpacket, null, ...)"); v != nil {
					if !validIdent(v.text) {
						p.fail(v, "\"driver\" needs a driver name (afxdp, afpacket, null, ...), got %q", v.text)
					}
					c.Driver = v.text
				}
			}
		case "fib":
			if p.once(w, "fib") {
				c.FIB = p.fib(w)
			}
		case "mtu":
			if p.once(w, "mtu") {
				c.MTU = p.num(w, "an MTU", MinMTU, MaxMTU)
			}
		case "lcp":
			if p.once(w, "lcp") {
				if v := p.value(w, "a kernel interface name"); v != nil {
					if v.text == LCPOff {
						p.fail(v, "\"lcp off\" is for port set; leave lcp out for no kernel interface")
						break
					}
					c.LCP = p.lcpName(v)
				}
			}
		default:
			k, v, vw, ok := p.driverArg(w, "driver, fib, mtu, lcp or a driver argument like dev IFNAME or key=value")
			if ok {
				args = append(args, arg{k, v, vw, w})
			}
		}
	}
	if p.err != nil {
		return nil
	}
	if c.Driver == "" {
		p.fail(nil, "missing driver (port add NAME driver afxdp|afpacket|null|... [KEY VALUE]...)")
		return nil
	}
	// The driver's own description of its arguments decides (pmd.Check);
	// a driver this program does not link is checked by the daemon.
	d, known := pmd.Lookup(c.Driver)
	words := map[string]*word{}
	for _, a := range args {
		if c.Args == nil {
			c.Args = map[string]string{}
		}
		if _, dup := c.Args[a.k]; dup {
			if s, ok := d.Arg(a.k); known && (!ok || !s.Repeat) {
				p.fail(a.key, "driver argument %q given twice", a.k)
				return nil
			}
			pmd.Args(c.Args).Add(a.k, a.v)
			continue
		}
		c.Args[a.k] = a.v
		words[a.k] = a.w
	}
	if known {
		p.checkArgs(c.Driver, c.Args, words)
	}
	if p.err != nil {
		return nil
	}
	return c
}

// driverArg reads a driver argument, "KEY VALUE" or "KEY=VALUE", starting
// at w.
func (p *parser) driverArg(w *word, expected string) (k, v string, vw *word, ok bool) {
	k, v, hasEq := strings.Cut(w.text, "=")
	if !hasEq {
		if !validIdent(k) {
			p.unexpected(w, expected)
			return "", "", nil, false
		}
		vw = p.value(w, "a value")
		if vw == nil {
			return "", "", nil, false
		}
		return k, vw.text, vw, true
	}
	vw = &word{text: v, col: w.col + len(k) + 1}
	if !validIdent(k) {
		p.fail(w, "driver argument %q: the key must be a lower-case word", w.text)
		return "", "", nil, false
	}
	if k == "driver" || k == "fib" || k == "mtu" || k == "lcp" {
		p.fail(w, "write %q as %q", w.text, k+" "+v)
		return "", "", nil, false
	}
	return k, v, vw, true
}

// checkArgs runs the driver's argument check, pointing at the word of the
// argument it refuses.
func (p *parser) checkArgs(driver string, args map[string]string, words map[string]*word) {
	err := pmd.Check(driver, pmd.Args(args))
	if err == nil {
		return
	}
	var ae *pmd.ArgError
	if errors.As(err, &ae) {
		p.fail(words[ae.Key], "%s", ae.Error())
		return
	}
	p.fail(nil, "%v", err)
}

func (p *parser) portSet() Command {
	c := &PortSet{Where: p.at, FIB: AnyFIB}
	c.Name = p.name(p.next(), "port")
	for p.more() {
		w := p.next()
		switch w.text {
		case "fib":
			if p.once(w, "fib") {
				c.FIB = p.fib(w)
			}
		case "mtu":
			if p.once(w, "mtu") {
				c.MTU = p.num(w, "an MTU", MinMTU, MaxMTU)
			}
		case "up", "down":
			if p.once(w, "up/down") {
				c.Admin = AdminUp
				if w.text == "down" {
					c.Admin = AdminDown
				}
			}
		case "lcp":
			if p.once(w, "lcp") {
				if v := p.value(w, "a kernel interface name or off"); v != nil {
					if v.text == LCPOff {
						c.LCP = LCPOff
					} else {
						c.LCP = p.lcpName(v)
					}
				}
			}
		case "join", "leave":
			if v := p.value(w, "a multicast MAC address like 01:80:c2:00:00:14"); v != nil {
				hw, err := net.ParseMAC(v.text)
				if err != nil || len(hw) != 6 || hw[0]&1 == 0 {
					p.fail(v, "%q needs a multicast MAC address (first octet odd, like 01:80:c2:00:00:14), got %q", w.text, v.text)
					break
				}
				if w.text == "join" {
					c.Join = append(c.Join, hw.String())
				} else {
					c.Leave = append(c.Leave, hw.String())
				}
			}
		default:
			const expected = "fib N, mtu N, up, down, lcp IFNAME|off, join MAC, leave MAC, a driver argument KEY VALUE or -KEY VALUE"
			op := ArgOp{}
			aw := w
			if strings.HasPrefix(w.text, "-") && validIdent(w.text[1:]) {
				op.Remove = true
				aw = &word{text: w.text[1:], col: w.col + 1}
			}
			k, v, _, ok := p.driverArg(aw, expected)
			if ok {
				op.Key, op.Value = k, v
				c.Args = append(c.Args, op)
			}
		}
	}
	if p.err == nil && c.FIB == AnyFIB && c.MTU == 0 && c.Admin == AdminUnchanged && c.LCP == "" && len(c.Args) == 0 && len(c.Join)+len(c.Leave) == 0 {
		p.fail(nil, "nothing to set (expected fib N, mtu N, up, down, lcp IFNAME|off or a driver argument)")
	}
	if p.err != nil {
		return nil
	}
	return c
}

// lcpName reads the kernel interface name of "lcp NAME".
func (p *parser) lcpName(w *word) string {
	if !ValidLCPName(w.text) {
		p.fail(w, "\"lcp\" needs a kernel interface name (1 to 15 characters, no '/', ':', '%%' or blank, not \"off\"), got %q", w.text)
		return ""
	}
	return w.text
}

// ifaddr reads an interface address ADDR/LEN: host bits are kept.
func (p *parser) ifaddr() netip.Prefix {
	if p.err != nil {
		return netip.Prefix{}
	}
	w := p.next()
	if w == nil {
		p.fail(nil, "missing address (like 198.18.0.1/24 or 2001:2::1/64)")
		return netip.Prefix{}
	}
	pf, err := netip.ParsePrefix(w.text)
	if err != nil {
		if _, aerr := netip.ParseAddr(w.text); aerr == nil {
			p.fail(w, "%q needs a prefix length, like %s/24", w.text, w.text)
		} else {
			p.fail(w, "needs an address with prefix length (like 198.18.0.1/24 or 2001:2::1/64), got %q", w.text)
		}
		return netip.Prefix{}
	}
	a := pf.Addr()
	switch {
	case a.Is4In6():
		p.fail(w, "write the IPv4-mapped address %q in IPv4 form", w.text)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
		p.fail(w, "%s is not a unicast address a port can own", a)
	case a.Is4() && pf.Bits() < 31 && a == lastAddr(pf):
		p.fail(w, "%s is the broadcast address of %s", a, pf.Masked())
	case a.Is4() && pf.Bits() < 31 && a == pf.Masked().Addr():
		p.fail(w, "%s is the network address of %s (use a host address)", a, pf.Masked())
	}
	return pf
}

// lastAddr returns the highest address of pf (IPv4).
func lastAddr(pf netip.Prefix) netip.Addr {
	b := pf.Masked().Addr().As4()
	host := uint32(1)<<(32-pf.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// nextHops parses the shared tail of route add and route load: via, dev,
// fib, blackhole, reject. family is the family every via must have
// (AnyFamily for route load). It returns the kind, the vias, dev and fib.
func (p *parser) nextHops(family Family, prefix string) (RouteKind, []netip.Addr, string, int) {
	kind, fib, dev := Unicast, 0, ""
	var via []netip.Addr
	var kindWord *word
	for p.more() {
		w := p.next()
		switch w.text {
		case "via":
			v := p.next()
			if v == nil {
				p.fail(nil, "\"via\" needs an address, got end of line")
				break
			}
			a, err := netip.ParseAddr(v.text)
			if err != nil {
				p.fail(v, "\"via\" needs an address, got %q", v.text)
				break
			}
			a = p.addrWord(v, "\"via\"")
			if p.err != nil || !p.unicast(v, "via", a) {
				break
			}
			if family != AnyFamily && familyOf(a) != family {
				p.fail(v, "via %s is %s but %s is %s", a, famName(familyOf(a)), prefix, famName(family))
				break
			}
			for _, o := range via {
				if o == a {
					p.fail(v, "via %s given twice", a)
				}
			}
			if len(via) == MaxNextHops {
				p.fail(v, "too many next hops (at most %d)", MaxNextHops)
			}
			via = append(via, a)
		case "dev":
			if p.once(w, "dev") {
				if v := p.value(w, "a port name"); v != nil {
					dev = p.name(v, "port")
				}
			}
		case "fib":
			if p.once(w, "fib") {
				fib = p.fib(w)
			}
		case "blackhole", "reject":
			if p.once(w, "blackhole/reject") {
				kindWord = w
				kind = Blackhole
				if w.text == "reject" {
					kind = Reject
				}
			}
		default:
			p.unexpected(w, "via, dev, fib, blackhole or reject")
		}
	}
	if p.err != nil {
		return kind, via, dev, fib
	}
	if kind != Unicast && (len(via) > 0 || dev != "") {
		p.fail(kindWord, "a %s route has no via or dev", kind)
	}
	if kind == Unicast && len(via) == 0 && dev == "" {
		p.fail(nil, "needs via ADDR, dev PORT, blackhole or reject")
	}
	if dev == "" {
		for _, a := range via {
			if a.Is6() && a.IsLinkLocalUnicast() {
				p.fail(nil, "via %s is link-local: name its port with dev PORT", a)
				break
			}
		}
	}
	return kind, via, dev, fib
}

func famName(f Family) string {
	if f == Inet {
		return "IPv4"
	}
	return "IPv6"
}

func (p *parser) routeAdd() Command {
	c := &RouteAdd{Where: p.at}
	w := p.next()
	if w != nil && w.text == "default" {
		// The family comes from the first via.
		save := p.i
		family := AnyFamily
		for j := p.i; j+1 < len(p.words); j++ {
			if p.words[j].text == "via" {
				if a, err := netip.ParseAddr(p.words[j+1].text); err == nil {
					family = familyOf(a)
				}
				break
			}
		}
		p.i = save
		if family == AnyFamily {
			p.fail(w, "\"default\" takes its family from via; without via write 0.0.0.0/0 or ::/0")
			return nil
		}
		c.Prefix = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if family == Inet6 {
			c.Prefix = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
	} else {
		c.Prefix = p.prefixWord(w, "destination")
	}
	if p.err != nil {
		return nil
	}
	c.Kind, c.Via, c.Dev, c.FIB = p.nextHops(familyOf(c.Prefix.Addr()), c.Prefix.String())
	if p.err != nil {
		return nil
	}
	return c
}

func (p *parser) routeLoad() Command {
	c := &RouteLoad{Where: p.at}
	w := p.next()
	if w == nil {
		p.fail(nil, "missing file name (route load FILE [fib N] [via ADDR]...)")
		return nil
	}
	switch w.text {
	case "via", "dev", "fib", "blackhole", "reject":
		p.fail(w, "missing file name before %q (route load FILE [fib N] [via ADDR]...)", w.text)
		return nil
	}
	c.File = w.text
	if p.opt.Dir != "" && !filepath.IsAbs(c.File) {
		c.File = filepath.Join(p.opt.Dir, c.File)
	}
	c.Kind, c.Via, c.Dev, c.FIB = p.nextHops(AnyFamily, "")
	if p.err != nil {
		return nil
	}
	return c
}

func (p *parser) portRange(kw *word) PortRange {
	w := p.value(kw, "a port or range N-M")
	if w == nil {
		return PortRange{}
	}
	lo, hi, isRange := strings.Cut(w.text, "-")
	l, err1 := strconv.ParseUint(lo, 10, 16)
	h, err2 := l, error(nil)
	if isRange {
		h, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil {
		p.fail(w, "%q needs a port from 0 to 65535 or a range N-M, got %q", kw.text, w.text)
		return PortRange{}
	}
	if l > h {
		p.fail(w, "%q range %s is reversed (write %d-%d)", kw.text, w.text, h, l)
		return PortRange{}
	}
	return PortRange{Set: true, Lo: uint16(l), Hi: uint16(h)}
}

func (p *parser) rulePrefix(kw *word) netip.Prefix {
	w := p.value(kw, "a prefix or any")
	if w == nil {
		return netip.Prefix{}
	}
	if w.text == "any" {
		return netip.Prefix{}
	}
	return p.prefixWord(w, `"`+kw.text+`"`)
}

func (p *parser) ruleAdd() Command {
	c := &RuleAdd{Where: p.at, FIB: AnyFIB, Proto: AnyProto}
	if p.i < len(p.words) && p.words[p.i].text != "" && p.words[p.i].text[0] >= '0' && p.words[p.i].text[0] <= '9' {
		w := p.next()
		c.ID = p.numWord(nil, w, "a rule id", 1, MaxRuleID)
	}
	var fromW, toW, protoW, portW *word
	for p.more() {
		w := p.next()
		switch w.text {
		case "in":
			if p.once(w, "in") {
				if v := p.value(w, "a port name"); v != nil {
					c.In = p.name(v, "port")
				}
			}
		case "fib":
			if p.once(w, "fib") {
				c.FIB = p.fib(w)
			}
		case "from":
			if p.once(w, "from") {
				fromW = w
				c.From = p.rulePrefix(w)
			}
		case "to":
			if p.once(w, "to") {
				toW = w
				c.To = p.rulePrefix(w)
			}
		case "proto":
			if p.once(w, "proto") {
				v := p.value(w, "a protocol (udp, tcp, sctp, icmp, icmp6 or a number)")
				if v == nil {
					break
				}
				protoW = v
				if n, ok := protoNames[v.text]; ok {
					c.Proto = n
				} else {
					c.Proto = p.numWord(w, v, "a protocol (udp, tcp, sctp, icmp, icmp6 or a number)", 0, 255)
				}
			}
		case "sport":
			if p.once(w, "sport") {
				portW = w
				c.Sport = p.portRange(w)
			}
		case "dport":
			if p.once(w, "dport") {
				portW = w
				c.Dport = p.portRange(w)
			}
		case "setfib":
			if p.once(w, "action") {
				c.Action = Action{Kind: ActionSetFIB, FIB: p.fib(w)}
			}
		case "count", "drop":
			if p.once(w, "action") {
				c.Action = Action{Kind: ActionCount}
				if w.text == "drop" {
					c.Action.Kind = ActionDrop
				}
			}
		default:
			p.unexpected(w, "in, fib, from, to, proto, sport, dport, or an action: setfib N, count, drop")
		}
	}
	if p.err != nil {
		return nil
	}
	if c.Action.Kind == 0 {
		p.fail(nil, "missing action (setfib N, count or drop)")
		return nil
	}
	if c.From.IsValid() {
		c.Family = familyOf(c.From.Addr())
	}
	if c.To.IsValid() {
		f := familyOf(c.To.Addr())
		if c.Family != AnyFamily && f != c.Family {
			p.fail(toW, "from %s is %s but to %s is %s", c.From, famName(c.Family), c.To, famName(f))
			return nil
		}
		c.Family = f
	}
	_ = fromW
	switch {
	case c.Proto == ProtoICMP && c.Family == Inet6:
		p.fail(protoW, "proto icmp is IPv4; for IPv6 use icmp6")
	case c.Proto == ProtoICMP6 && c.Family == Inet:
		p.fail(protoW, "proto icmp6 is IPv6; for IPv4 use icmp")
	case (c.Sport.Set || c.Dport.Set) && c.Proto != ProtoTCP && c.Proto != ProtoUDP && c.Proto != ProtoSCTP:
		p.fail(portW, "%q needs proto tcp, udp or sctp", portW.text)
	}
	if c.Family == AnyFamily {
		switch c.Proto {
		case ProtoICMP:
			c.Family = Inet
		case ProtoICMP6:
			c.Family = Inet6
		}
	}
	if p.err != nil {
		return nil
	}
	return c
}

func (p *parser) neighAdd() Command {
	c := &NeighAdd{Where: p.at}
	c.Port = p.name(p.next(), "port")
	c.Addr = p.hostAddr(p.next(), "neighbour")
	for p.more() {
		w := p.next()
		switch w.text {
		case "lladdr":
			if p.once(w, "lladdr") {
				v := p.value(w, "a MAC address like 02:00:00:00:00:09")
				if v == nil {
					break
				}
				mac, err := net.ParseMAC(v.text)
				switch {
				case err != nil || len(mac) != 6:
					p.fail(v, "\"lladdr\" needs a MAC address like 02:00:00:00:00:09, got %q", v.text)
				case mac[0]&1 != 0:
					p.fail(v, "lladdr %s is a multicast or broadcast address", mac)
				case mac.String() == "00:00:00:00:00:00":
					p.fail(v, "lladdr %s is all zeros", mac)
				}
				c.LLAddr = mac
			}
		default:
			p.unexpected(w, "lladdr")
		}
	}
	if p.err == nil && c.LLAddr == nil {
		p.fail(nil, "missing lladdr MAC (neigh add PORT ADDR lladdr 02:00:00:00:00:09)")
	}
	if p.err != nil {
		return nil
	}
	return c
}

func (p *parser) show() Command {
	p.verb = "show"
	what := []string{"ports", "routes", "neigh", "rules", "fibs", "stats", "sysctl", "lcp", "trace", "workers"}
	w := p.next()
	if w == nil {
		p.fail(nil, "missing what to show (expected %s)", orList(what))
		return nil
	}
	aliases := map[string]string{"port": "ports", "route": "routes", "neighbors": "neigh", "neighbours": "neigh", "rule": "rules", "fib": "fibs", "stat": "stats"}
	t := w.text
	if a, ok := aliases[t]; ok {
		t = a
	}
	p.verb = "show " + t
	switch t {
	case "vnets", "vnet":
		p.verb = "show vnets"
		p.end()
		return &ShowVnets{Where: p.at}
	case "ports":
		p.end()
		return &ShowPorts{Where: p.at}
	case "rules":
		p.end()
		return &ShowRules{Where: p.at}
	case "fibs":
		p.end()
		return &ShowFIBs{Where: p.at}
	case "lcp":
		p.end()
		return &ShowLCP{Where: p.at}
	case "stats":
		p.end()
		return &ShowStats{Where: p.at}
	case "trace":
		p.end()
		return &ShowTrace{Where: p.at}
	case "workers":
		p.end()
		return &ShowWorkers{Where: p.at}
	case "neigh":
		c := &ShowNeigh{Where: p.at}
		if w := p.next(); w != nil {
			c.Port = p.name(w, "port")
		}
		p.end()
		return c
	case "sysctl":
		c := &ShowSysctl{Where: p.at}
		if w := p.next(); w != nil {
			c.Prefix = p.key(w, "prefix")
		}
		p.end()
		return c
	case "routes":
		c := &ShowRoutes{Where: p.at, FIB: AnyFIB}
		for p.more() {
			w := p.next()
			switch w.text {
			case "fib":
				if p.once(w, "fib") {
					c.FIB = p.fib(w)
				}
			case "inet", "inet6":
				if p.once(w, "family") {
					c.Family = Inet
					if w.text == "inet6" {
						c.Family = Inet6
					}
				}
			default:
				p.unexpected(w, "fib N, inet or inet6")
			}
		}
		return c
	}
	if d, ok := pmd.Lookup(t); ok && d.Status {
		p.end()
		return &ShowDriver{Where: p.at, Driver: t}
	}
	p.verb = "show"
	for _, d := range pmd.Drivers() {
		if d.Status {
			what = append(what, d.Name)
		}
	}
	p.fail(w, "cannot show %q (expected %s)", w.text, orList(what))
	return nil
}

// validDev accepts Linux interface names: 1..15 bytes, no '/', no blank,
// not "." or "..".
func validDev(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/ \t:")
}
