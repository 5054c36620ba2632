// Package ctltest provides an in-memory cmdlang.Executor for tests of the
// control socket and fwdctl: it keeps a toy routing table and port list so
// that "route add" followed by "show routes" shows something, applies each
// batch all or nothing, and can be told to fail or to block.
package ctltest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/fwdd/fwdd/ctl/cmdlang"
)

// Route is one row of the fake's "show routes" data.
type Route struct {
	FIB         int          `json:"fib"`
	Destination netip.Prefix `json:"destination"`
	Kind        string       `json:"kind"`
	Via         []netip.Addr `json:"via,omitempty"`
	Dev         string       `json:"dev,omitempty"`
}

// Port is one row of the fake's "show ports" data.
type Port struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
	FIB    int    `json:"fib"`
	Up     bool   `json:"up"`
}

type state struct {
	routes map[int]map[netip.Prefix]Route
	ports  map[string]Port
	sysctl map[string]string
}

func (s *state) clone() *state {
	n := &state{routes: map[int]map[netip.Prefix]Route{}, ports: map[string]Port{}, sysctl: map[string]string{}}
	for f, t := range s.routes {
		n.routes[f] = map[netip.Prefix]Route{}
		for k, v := range t {
			n.routes[f][k] = v
		}
	}
	for k, v := range s.ports {
		n.ports[k] = v
	}
	for k, v := range s.sysctl {
		n.sysctl[k] = v
	}
	return n
}

// Executor is the fake. The zero value is not usable; call New.
type Executor struct {
	// Fail, if set, is asked about every command of a batch before
	// anything is applied; an error fails the batch with an ExecError.
	Fail func(cmdlang.Command) error
	// Gate, if set, makes Exec wait until it can receive from Gate (or
	// Gate is closed, or ctx ends) before applying. Before waiting, Exec
	// sends on Entered if a receiver is ready or Entered has room.
	Gate    chan struct{}
	Entered chan struct{}

	mu      sync.Mutex
	st      *state
	batches [][]cmdlang.Command
}

var _ cmdlang.Executor = (*Executor)(nil)

// New returns a fake with no ports and no routes, net.fibs 2.
func New() *Executor {
	return &Executor{st: &state{routes: map[int]map[netip.Prefix]Route{}, ports: map[string]Port{}, sysctl: map[string]string{"net.fibs": "2"}}}
}

// Batches returns a copy of every batch Exec applied successfully.
func (e *Executor) Batches() [][]cmdlang.Command {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][]cmdlang.Command(nil), e.batches...)
}

// Exec applies cmds to a copy of the state and publishes the copy only if
// every command succeeded (all or nothing, like the real control goroutine).
func (e *Executor) Exec(ctx context.Context, cmds []cmdlang.Command) ([]cmdlang.Result, error) {
	if e.Gate != nil {
		select {
		case e.Entered <- struct{}{}:
		default:
		}
		select {
		case <-e.Gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.st.clone()
	res := make([]cmdlang.Result, len(cmds))
	for i, c := range cmds {
		if e.Fail != nil {
			if err := e.Fail(c); err != nil {
				return nil, &cmdlang.ExecError{Cmd: c, Err: err}
			}
		}
		r, err := st.apply(c)
		if err != nil {
			return nil, &cmdlang.ExecError{Cmd: c, Err: err}
		}
		res[i] = r
	}
	e.st = st
	e.batches = append(e.batches, cmds)
	return res, nil
}

var errNoPort = errors.New("no such port (see show ports)")

func (s *state) apply(c cmdlang.Command) (cmdlang.Result, error) {
	switch c := c.(type) {
	case *cmdlang.Set:
		if _, ok := s.sysctl[c.Key]; !ok {
			return cmdlang.Result{}, fmt.Errorf("unknown key %s (see show sysctl)", c.Key)
		}
		s.sysctl[c.Key] = c.Value
	case *cmdlang.Get:
		v, ok := s.sysctl[c.Key]
		if !ok {
			return cmdlang.Result{}, fmt.Errorf("unknown key %s (see show sysctl)", c.Key)
		}
		return cmdlang.Result{Text: c.Key + ": " + v + "\n", Data: map[string]string{c.Key: v}}, nil
	case *cmdlang.PortAdd:
		if _, ok := s.ports[c.Name]; ok {
			return cmdlang.Result{}, errors.New("port exists (see show ports)")
		}
		s.ports[c.Name] = Port{Name: c.Name, Driver: c.Driver, FIB: c.FIB, Up: true}
	case *cmdlang.PortDel:
		if _, ok := s.ports[c.Name]; !ok {
			return cmdlang.Result{}, errNoPort
		}
		delete(s.ports, c.Name)
	case *cmdlang.RouteAdd:
		if c.Dev != "" {
			if _, ok := s.ports[c.Dev]; !ok {
				return cmdlang.Result{}, fmt.Errorf("dev %s: %w", c.Dev, errNoPort)
			}
		}
		t := s.routes[c.FIB]
		if t == nil {
			t = map[netip.Prefix]Route{}
			s.routes[c.FIB] = t
		}
		if _, ok := t[c.Prefix]; ok {
			return cmdlang.Result{}, errors.New("route exists (route del it first)")
		}
		t[c.Prefix] = Route{FIB: c.FIB, Destination: c.Prefix, Kind: c.Kind.String(), Via: c.Via, Dev: c.Dev}
	case *cmdlang.RouteDel:
		if _, ok := s.routes[c.FIB][c.Prefix]; !ok {
			return cmdlang.Result{}, errors.New("no such route (see show routes)")
		}
		delete(s.routes[c.FIB], c.Prefix)
	case *cmdlang.ShowRoutes:
		var rows []Route
		for f, t := range s.routes {
			if c.FIB != cmdlang.AnyFIB && f != c.FIB {
				continue
			}
			for _, r := range t {
				if c.Family == cmdlang.Inet && !r.Destination.Addr().Is4() || c.Family == cmdlang.Inet6 && r.Destination.Addr().Is4() {
					continue
				}
				rows = append(rows, r)
			}
		}
		sort.Slice(rows, func(i, j int) bool {
			if rows[i].FIB != rows[j].FIB {
				return rows[i].FIB < rows[j].FIB
			}
			return rows[i].Destination.String() < rows[j].Destination.String()
		})
		var b strings.Builder
		fmt.Fprintf(&b, "%-4s %-24s %-24s %s\n", "FIB", "Destination", "Gateway", "Netif")
		for _, r := range rows {
			gw := r.Kind
			if len(r.Via) > 0 {
				var s []string
				for _, v := range r.Via {
					s = append(s, v.String())
				}
				gw = strings.Join(s, ",")
			}
			fmt.Fprintf(&b, "%-4d %-24s %-24s %s\n", r.FIB, r.Destination, gw, r.Dev)
		}
		if rows == nil {
			rows = []Route{}
		}
		return cmdlang.Result{Text: b.String(), Data: rows}, nil
	case *cmdlang.ShowPorts:
		var rows []Port
		for _, p := range s.ports {
			rows = append(rows, p)
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
		var b strings.Builder
		for _, p := range rows {
			fmt.Fprintf(&b, "%s: driver %s fib %d\n", p.Name, p.Driver, p.FIB)
		}
		if rows == nil {
			rows = []Port{}
		}
		return cmdlang.Result{Text: b.String(), Data: rows}, nil
	}
	// Everything else is accepted and changes nothing in the fake.
	return cmdlang.Result{}, nil
}
