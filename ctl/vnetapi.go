package ctl

import (
	"context"
	"io"
	"slices"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/prometheus/client_golang/prometheus"
)

// What a vnet host (package vnet) needs from one stack's daemon: dry-run
// checks that report the devices a batch would leave in use, batches whose
// route files are opened by the host (a tenant's restricted view), and the
// stack's metrics collector to wrap with a vnet label.

// ExecOptions tune one batch.
type ExecOptions struct {
	// Open, if set, opens the files of route load instead of the daemon's
	// own opener (which takes any regular file). It is called off the
	// control goroutine, within the usual time bound.
	Open func(name string) (io.ReadCloser, error)
	// Reload replaces the whole configuration with the batch's (as SIGHUP
	// does): what the batch does not state is removed.
	Reload bool
	// Paged leaves large answers in pages (cmdlang.Result.Pages) for a
	// caller that writes them out as they come; otherwise they are
	// gathered.
	Paged bool
}

func (d *Daemon) loader(opt ExecOptions) fileLoader {
	l := d.files
	if opt.Open != nil {
		l.open = opt.Open
	}
	return l
}

// ExecWith is Exec with options.
func (d *Daemon) ExecWith(ctx context.Context, cmds []cmdlang.Command, opt ExecOptions) ([]cmdlang.Result, error) {
	resp, err := d.submit(ctx, request{cmds: cmds, reload: opt.Reload}, d.loader(opt))
	if err != nil || opt.Paged {
		return resp.results, err
	}
	return cmdlang.GatherAll(ctx, resp.results)
}

// Check validates cmds against the running configuration exactly as
// ExecWith would, changing nothing, and returns the devices (see
// devicesOf) the stack would use afterwards, sorted.
func (d *Daemon) Check(ctx context.Context, cmds []cmdlang.Command, opt ExecOptions) ([]string, error) {
	resp, err := d.submit(ctx, request{cmds: cmds, reload: opt.Reload, check: true}, d.loader(opt))
	return resp.devices, err
}

// Devices returns the devices the stack's ports use, sorted.
func (d *Daemon) Devices() []string {
	var devs []string
	_ = d.do(func(s *stack) { devs = devicesOf(s.model) })
	return devs
}

// Collector returns the stack's Prometheus collectors as one (what
// Metrics() has registered).
func (d *Daemon) Collector() prometheus.Collector { return d.coll }

// collectors is several collectors registered as one.
type collectors []prometheus.Collector

func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}

// check is the control goroutine's side of Check.
func (s *stack) check(r request) ([]string, error) {
	b, _, err := s.validate(r)
	if err != nil {
		return nil, err
	}
	return devicesOf(b.m), nil
}

// CheckCommands validates cmds against an empty stack (a vnet about to be
// created) and returns the devices its ports would use, sorted. Relative
// route files are read from dir.
func CheckCommands(ctx context.Context, cmds []cmdlang.Command, dir string) ([]string, error) {
	files, err := defaultLoader().loadAll(ctx, dir, cmds)
	if err != nil {
		return nil, err
	}
	b := newModel().begin()
	for _, c := range cmds {
		if isQuery(c) {
			continue
		}
		if err := b.apply(c, files.read); err != nil {
			return nil, &cmdlang.ExecError{Cmd: c, Err: err}
		}
	}
	if err := b.finish(); err != nil {
		return nil, err
	}
	return devicesOf(b.m), nil
}

// KernelTables stands, among a stack's devices, for its namespace's
// kernel routing tables: a stack with kernel interfaces (lcp) mirrors them,
// so two stacks in one namespace must not both have lcp. It cannot be a
// device name (it has blanks).
const KernelTables = "(kernel tables)"

// devicesOf lists what the stack's ports hold in its namespace: their
// devices, their kernel interfaces (lcp), and KernelTables when it has any.
func devicesOf(m *model) []string {
	var out []string
	add := func(d string) {
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for _, p := range m.ports {
		add(p.Args["dev"])
		if p.LCP != "" {
			add(p.LCP)
			add(KernelTables)
		}
	}
	slices.Sort(out)
	return out
}
