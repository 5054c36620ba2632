// Package ctltest provides an in-memory cmdlang.Executor for tests of the
// control socket and fwdctl: it keeps a toy routing table, port list and
// sysctl tree so that "route add" followed by "show routes" shows something
// (formatted by package show, as the real executor should), applies each
// batch all or nothing, and can be told to fail or to block. It is also a
// small worked example of an Executor.
package ctltest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/show"
)

type state struct {
	routes map[int]map[netip.Prefix]show.Route
	ports  map[string]show.Port
	sysctl map[string]string
}

func (s *state) clone() *state {
	n := &state{routes: map[int]map[netip.Prefix]show.Route{}, ports: map[string]show.Port{}, sysctl: map[string]string{}}
	for f, t := range s.routes {
		n.routes[f] = map[netip.Prefix]show.Route{}
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
	return &Executor{st: &state{routes: map[int]map[netip.Prefix]show.Route{}, ports: map[string]show.Port{}, sysctl: map[string]string{"net.fibs": "2"}}}
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
		s.ports[c.Name] = show.Port{Name: c.Name, Ifindex: len(s.ports) + 1, Driver: c.Driver, Args: c.Args, FIB: c.FIB, MTU: cmp.Or(c.MTU, 1500), Up: true, Queues: 1}
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
			t = map[netip.Prefix]show.Route{}
			s.routes[c.FIB] = t
		}
		if _, ok := t[c.Prefix]; ok {
			return cmdlang.Result{}, errors.New("route exists (route del it first)")
		}
		t[c.Prefix] = show.Route{FIB: c.FIB, Destination: c.Prefix, Kind: c.Kind, Origin: show.Static, Gateways: c.Via, Netif: c.Dev}
	case *cmdlang.RouteDel:
		if _, ok := s.routes[c.FIB][c.Prefix]; !ok {
			return cmdlang.Result{}, errors.New("no such route (see show routes)")
		}
		delete(s.routes[c.FIB], c.Prefix)
	case *cmdlang.ShowRoutes:
		rows := []show.Route{}
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
		show.SortRoutes(rows)
		var b strings.Builder
		show.Routes(&b, rows, nil)
		return cmdlang.Result{Text: b.String(), Data: rows}, nil
	case *cmdlang.ShowPorts:
		rows := []show.Port{}
		for _, p := range s.ports {
			rows = append(rows, p)
		}
		slices.SortFunc(rows, func(a, b show.Port) int { return strings.Compare(a.Name, b.Name) })
		var b strings.Builder
		show.Ports(&b, rows)
		return cmdlang.Result{Text: b.String(), Data: rows}, nil
	case *cmdlang.ShowSysctl:
		rows := []show.Sysctl{}
		for k, v := range s.sysctl {
			if show.HasKeyPrefix(k, c.Prefix) {
				rows = append(rows, show.Sysctl{Key: k, Value: v})
			}
		}
		slices.SortFunc(rows, func(a, b show.Sysctl) int { return strings.Compare(a.Key, b.Key) })
		var b strings.Builder
		show.Sysctls(&b, rows, "")
		return cmdlang.Result{Text: b.String(), Data: rows}, nil
	}
	// Everything else is accepted and changes nothing in the fake.
	return cmdlang.Result{}, nil
}
