package ctl

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/trace"
)

// TraceShow is show trace's answer.
type TraceShow struct {
	Armed   bool          `json:"armed"`
	Want    int           `json:"want"`
	Traced  int           `json:"traced"`
	Filter  string        `json:"filter,omitempty"`
	Packets []trace.Shown `json:"packets"`
}

// traceAdd arms a trace of the next c.Count matching packets, replacing
// any earlier one (its records are forgotten).
func (s *stack) traceAdd(c *cmdlang.TraceAdd) (cmdlang.Result, error) {
	f := trace.Filter{Port: -1, From: c.From, To: c.To}
	if c.Port != "" {
		lp, ok := s.live[c.Port]
		if !ok {
			return cmdlang.Result{}, fmt.Errorf("trace add: port %s: %w", c.Port, errNoPort)
		}
		f.Port = int(lp.id)
	}
	s.obs.trace = trace.New(c.Count, f)
	s.publishObservers()
	s.obs.traceFilter = filterText(c)
	return cmdlang.Result{Text: fmt.Sprintf("tracing the next %d packets%s (show trace; trace clear)\n", c.Count, s.obs.traceFilter)}, nil
}

func filterText(c *cmdlang.TraceAdd) string {
	var b strings.Builder
	if c.Port != "" {
		b.WriteString(" on port " + c.Port)
	}
	if c.From.IsValid() {
		b.WriteString(" from " + c.From.String())
	}
	if c.To.IsValid() {
		b.WriteString(" to " + c.To.String())
	}
	return b.String()
}

// traceClear disarms the trace and forgets its records.
func (s *stack) traceClear() (cmdlang.Result, error) {
	if s.obs.trace == nil {
		return cmdlang.Result{Text: "no trace\n"}, nil
	}
	s.obs.trace = nil
	s.obs.traceFilter = ""
	s.publishObservers()
	s.eng.Synchronize()
	return cmdlang.Result{Text: "trace cleared\n"}, nil
}

// traceTick unpublishes a trace that has all its packets (the workers then
// stop checking it).
func (s *stack) traceTick() {
	if t := s.obs.trace; t != nil && t.Full() && s.eng.Observers() != nil && s.eng.Observers().Trace == t {
		s.publishObservers()
	}
}

func (s *stack) showTrace() (cmdlang.Result, error) {
	t := s.obs.trace
	ans := &TraceShow{Packets: []trace.Shown{}}
	if t != nil {
		s.traceTick()
		ans.Want, ans.Filter = t.Want(), strings.TrimSpace(s.obs.traceFilter)
		recs := t.Records()
		ans.Traced = len(recs)
		ans.Armed = !t.Full()
		for i := range recs {
			ans.Packets = append(ans.Packets, trace.Show(&recs[i], s))
		}
	}
	return render(ans, func(b *strings.Builder) error {
		switch {
		case t == nil:
			b.WriteString("no trace armed (trace add N [port P] [from PFX] [to PFX])\n")
			return nil
		case ans.Armed:
			fmt.Fprintf(b, "%d of %d packets traced%s; still armed\n", ans.Traced, ans.Want, s.obs.traceFilter)
		default:
			fmt.Fprintf(b, "%d of %d packets traced%s\n", ans.Traced, ans.Want, s.obs.traceFilter)
		}
		for i := range ans.Packets {
			b.WriteString("\n")
			ans.Packets[i].Text(b)
		}
		return nil
	})
}

// The stack resolves trace records (trace.Resolver), on the control
// goroutine.

func (s *stack) PortName(id int) string { return s.portName(uint32(id)) }

func (s *stack) Route(f int, addr netip.Addr, nh uint64) string {
	if f < 0 || f >= s.fibs.NumFIBs() {
		return ""
	}
	r, ok, err := s.fibs.RouteGet(uint32(f), addr)
	if err != nil || !ok || uint64(r.NextHop) != nh {
		return ""
	}
	row := s.route(s.fibs.Load(), fib.Route{FIB: r.FIB, Prefix: r.Prefix, NextHop: r.NextHop})
	return fmt.Sprintf("%s (%s)", r.Prefix, row.Origin)
}

func (s *stack) NeighState(port int, addr netip.Addr) string {
	e, ok := s.nb.t.Lookup(uint16(port), addr)
	if !ok {
		return "no entry"
	}
	return strings.ToLower(e.StateS)
}
