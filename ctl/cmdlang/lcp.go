package cmdlang

import "strconv"

// LCPFib is "lcp fib N table T" (kernel table T feeds FIB N through the
// netlink mirror) or "lcp fib N off" (FIB N mirrors no table). Without
// any, FIB 0 mirrors table main (254). A table feeds at most one FIB.
type LCPFib struct {
	Where
	FIB   int    `json:"fib"`
	Table uint32 `json:"table,omitempty"` // 1..2^32-1; 0 with Off
	Off   bool   `json:"off,omitempty"`
}

// MaxTable is the largest kernel routing table id (RT_TABLE_MAX).
const MaxTable = 1<<32 - 1

// Reserved kernel tables that cannot feed a FIB: unspec (0), compat (252),
// default (253) and local (255) hold no routes a router forwards with.
var reservedTables = map[uint32]string{0: "unspec", 252: "compat", 253: "default", 255: "local"}

func (*LCPFib) Verb() string { return "lcp fib" }
func (c *LCPFib) String() string {
	s := "lcp fib " + strconv.Itoa(c.FIB)
	if c.Off {
		return s + " off"
	}
	return s + " table " + strconv.FormatUint(uint64(c.Table), 10)
}

// ShowLCP is "show lcp": the table-to-FIB mapping, the kernel interfaces
// of the ports and the netlink mirror's counters.
type ShowLCP struct{ Where }

func (*ShowLCP) Verb() string   { return "show lcp" }
func (*ShowLCP) String() string { return "show lcp" }

func (p *parser) lcp() Command {
	p.verb = "lcp"
	w := p.next()
	if w == nil || w.text != "fib" {
		p.fail(w, "expected \"lcp fib N table T\" or \"lcp fib N off\"")
		return nil
	}
	p.verb = "lcp fib"
	c := &LCPFib{Where: p.at}
	n := p.next()
	if n == nil {
		p.fail(nil, "missing the FIB number (lcp fib N table T)")
		return nil
	}
	c.FIB = p.numWord(w, n, "a FIB number", 0, MaxFIB)
	w = p.next()
	switch {
	case p.err != nil:
		return nil
	case w == nil:
		p.fail(nil, "missing \"table T\" or \"off\" after lcp fib %d", c.FIB)
		return nil
	case w.text == "off":
		c.Off = true
	case w.text == "table":
		t := p.next()
		if t == nil {
			p.fail(nil, "missing the kernel table id (a number, 254 is main; see /etc/iproute2/rt_tables)")
			return nil
		}
		v, err := strconv.ParseUint(t.text, 10, 32)
		if t.text == "main" {
			v, err = 254, nil
		}
		if err != nil || v == 0 {
			p.fail(t, "kernel table %q is not a table id (1 to %d, or main)", t.text, uint64(MaxTable))
			return nil
		}
		if name, bad := reservedTables[uint32(v)]; bad {
			p.fail(t, "kernel table %d (%s) cannot feed a FIB (use main, 254, or a table of your own)", v, name)
			return nil
		}
		c.Table = uint32(v)
	default:
		p.unexpected(w, "table T or off")
		return nil
	}
	p.end()
	return c
}
