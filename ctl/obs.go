package ctl

import (
	"context"
	"fmt"
	"github.com/fwdd/fwdd/capture"
	"github.com/fwdd/fwdd/trace"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/events"
	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/lltable"
	"github.com/prometheus/client_golang/prometheus"
)

// obs is the daemon's observability state (issue 16): the event bus the
// control goroutine publishes on, and the hooks that feed it. Trace and
// capture sessions are in trace.go and capture.go of this package; their
// state lives in the trace and capture packages.
type obs struct {
	s   *stack
	bus *events.Bus

	// Armed captures and the trace (control goroutine only); the workers
	// see them through fwd.Observers.
	captures    []*capture.Session
	trace       *trace.Session
	traceFilter string
}

// newObs makes the observability state and wires the neighbour table's
// notifications into it (before the engine, which builds the table, is
// made).
func newObs(opts *Options) *obs {
	o := &obs{bus: events.NewBus()}
	prev := opts.Engine.Neigh.Notify
	opts.Engine.Neigh.Notify = func(e lltable.Entry, old lltable.State, deleted bool) {
		if prev != nil {
			prev(e, old, deleted)
		}
		o.neigh(e, old, deleted)
	}
	return o
}

// Events returns the daemon's event bus (fwdctl monitor subscribes to it).
func (d *Daemon) Events() *events.Bus { return d.st.obs.bus }

func (o *obs) neigh(e lltable.Entry, old lltable.State, deleted bool) {
	if o.s == nil || !o.bus.Wants(events.Neigh) {
		return
	}
	ev := events.Event{Kind: events.Neigh, Action: "change", Port: o.s.portName(uint32(e.Port)), Addr: e.Addr,
		LLAddr: e.LLAddr, State: strings.ToLower(e.StateS)}
	switch {
	case deleted:
		ev.Action = "del"
	case old == 0:
		ev.Action = "add"
	default:
		ev.Old = strings.ToLower(old.String())
	}
	o.bus.Publish(ev)
}

// kernelRoutes publishes the routes the netlink mirror copied from the
// kernel (lcp): route events with origin kernel, and one lcp event.
func (o *obs) kernelRoutes(changes []fib.Change) {
	o.bus.Publish(events.Event{Kind: events.LCP, Action: "mirror", Info: fmt.Sprintf("%d kernel route changes applied", len(changes))})
	o.routesFrom(changes, "kernel")
}

// routes publishes the FIB changes just applied.
func (o *obs) routes(changes []fib.Change) { o.routesFrom(changes, "") }

// routesFrom publishes FIB changes; origin, if set, overrides the origin
// the next hop implies.
func (o *obs) routesFrom(changes []fib.Change, origin string) {
	if !o.bus.Wants(events.Route) {
		return
	}
	if len(changes) > MaxRouteEvents {
		// A table load: one summary, not a million events that would
		// overflow every monitor's queue.
		o.bus.Publish(events.Event{Kind: events.Route, Action: "bulk",
			Info: fmt.Sprintf("%d route changes in one batch (a route load or reload), not listed one by one: see show routes", len(changes))})
		return
	}
	s := o.s
	snap := s.fibs.Load()
	for _, c := range changes {
		ev := events.Event{Kind: events.Route, Action: "add", Prefix: c.Prefix, Origin: string(show.Static)}
		if !c.Connected {
			f := int(c.FIB)
			ev.FIB = &f
		}
		if c.Op == fib.OpDelete {
			ev.Action = "del"
			if c.Connected {
				ev.Origin = "connected"
			}
			if origin != "" {
				ev.Origin = origin
			}
			o.bus.Publish(ev)
			continue
		}
		row := s.route(snap, fib.Route{FIB: c.FIB, Prefix: c.Prefix, NextHop: c.NextHop})
		ev.Via = row.Gateways
		ev.Dev = row.Netif
		ev.Origin = string(row.Origin)
		if origin != "" {
			ev.Origin = origin
		}
		ev.Type = row.Kind.String()
		switch snap.NextHop(c.NextHop).Kind {
		case fib.KindLocal:
			ev.Type = "local"
		case fib.KindConnected:
			ev.Type = "connected"
		}
		o.bus.Publish(ev)
	}
}

// config publishes what a committed batch changed in ports and rules
// (routes and neighbours have their own hooks), and a reload.
func (o *obs) config(om, nm *model, reload bool, source string) {
	if reload {
		o.bus.Publish(events.Event{Kind: events.Config, Action: "reload", Info: source})
	}
	if o.bus.Wants(events.Port) {
		for _, name := range om.portOrder {
			if _, ok := nm.ports[name]; !ok {
				o.bus.Publish(events.Event{Kind: events.Port, Action: "del", Port: name})
			}
		}
		for _, name := range nm.portOrder {
			np := nm.ports[name]
			op, ok := om.ports[name]
			switch {
			case !ok:
				o.bus.Publish(events.Event{Kind: events.Port, Action: "add", Port: name, Info: portInfo(np)})
				if np.LCP != "" {
					o.bus.Publish(events.Event{Kind: events.LCP, Action: "add", Port: name, Info: "lcp " + np.LCP})
				}
			case op.LCP != np.LCP:
				o.bus.Publish(events.Event{Kind: events.Port, Action: "change", Port: name, Info: portInfo(np)})
				if op.LCP != "" {
					o.bus.Publish(events.Event{Kind: events.LCP, Action: "del", Port: name, Info: "lcp " + op.LCP})
				}
				if np.LCP != "" {
					o.bus.Publish(events.Event{Kind: events.LCP, Action: "add", Port: name, Info: "lcp " + np.LCP})
				}
			case op.Up != np.Up:
				a := "down"
				if np.Up {
					a = "up"
				}
				o.bus.Publish(events.Event{Kind: events.Port, Action: a, Port: name, Info: "(admin)"})
			case op.FIB != np.FIB || op.MTU != np.MTU || !slices.Equal(op.Addrs, np.Addrs) ||
				op.Driver != np.Driver || !maps.Equal(op.Args, np.Args):
				o.bus.Publish(events.Event{Kind: events.Port, Action: "change", Port: name, Info: portInfo(np)})
			}
		}
	}
	if o.bus.Wants(events.Rule) {
		for _, id := range slices.Sorted(maps.Keys(om.rules)) {
			r, ok := nm.rules[id]
			if !ok || r.String() != om.rules[id].String() {
				o.bus.Publish(events.Event{Kind: events.Rule, Action: "del", Rule: id, Info: om.rules[id].String()})
			}
		}
		for _, id := range slices.Sorted(maps.Keys(nm.rules)) {
			r, ok := om.rules[id]
			if !ok || r.String() != nm.rules[id].String() {
				o.bus.Publish(events.Event{Kind: events.Rule, Action: "add", Rule: id, Info: nm.rules[id].String()})
			}
		}
	}
}

func portInfo(p *portModel) string {
	var b strings.Builder
	fmt.Fprintf(&b, "driver %s fib %d", p.Driver, p.FIB)
	if p.MTU != 0 {
		fmt.Fprintf(&b, " mtu %d", p.MTU)
	}
	if p.LCP != "" {
		b.WriteString(" lcp " + p.LCP)
	}
	for _, a := range p.Addrs {
		b.WriteString(" addr " + a.String())
	}
	return b.String()
}

// link publishes a port's link (carrier) change.
func (o *obs) link(port string, up bool) {
	a := "down"
	if up {
		a = "up"
	}
	o.bus.Publish(events.Event{Kind: events.Port, Action: a, Port: port, Info: "(link)"})
}

// MaxRouteEvents is the most route changes of one batch published one by
// one; a larger batch is published as one "bulk" event.
const MaxRouteEvents = 1024

// MonitorQueue is a monitor's queue: a monitor that falls this many
// events behind is dropped.
const MonitorQueue = 4096

// Stream runs the streaming commands (ctlsock.StreamExecutor): monitor and
// capture. It runs on the connection's goroutine, never on the control
// goroutine.
func (d *Daemon) Stream(ctx context.Context, c cmdlang.Command, out *ctlsock.Stream) (cmdlang.Result, error) {
	switch c := c.(type) {
	case *cmdlang.Monitor:
		return d.monitor(ctx, c, out)
	case *cmdlang.Capture:
		return d.capture(ctx, c, out)
	}
	return cmdlang.Result{}, fmt.Errorf("%s does not stream", c.Verb())
}

func (d *Daemon) monitor(ctx context.Context, c *cmdlang.Monitor, out *ctlsock.Stream) (cmdlang.Result, error) {
	mask := events.All
	if len(c.Kinds) > 0 {
		mask = 0
		for _, k := range c.Kinds {
			kind, err := events.ParseKind(k)
			if err != nil {
				return cmdlang.Result{}, err
			}
			mask |= events.MaskOf(kind)
		}
	}
	sub := d.st.obs.bus.Subscribe(mask, MonitorQueue)
	defer sub.Close()
	n := 0
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				if sub.Dropped() {
					return cmdlang.Result{}, fmt.Errorf("monitor dropped after %d events: it fell %d events behind (read faster, or watch fewer kinds); state may have changed since: resync with show routes / show neigh", n, MonitorQueue)
				}
				return cmdlang.Result{Text: fmt.Sprintf("monitor ended after %d events\n", n)}, nil
			}
			if err := out.Send(ev.String()+"\n", &ev, nil); err != nil {
				return cmdlang.Result{}, err
			}
			n++
		case <-ctx.Done():
			return cmdlang.Result{}, nil
		}
	}
}

// obsQuery answers trace add/clear, show trace and show workers (on the
// control goroutine).
func (s *stack) obsQuery(c cmdlang.Command) (cmdlang.Result, error) {
	switch c := c.(type) {
	case *cmdlang.ShowWorkers:
		r := s.runtime()
		return render(r, func(b *strings.Builder) error { return show.Workers(b, r) })
	case *cmdlang.TraceAdd:
		return s.traceAdd(c)
	case *cmdlang.TraceClear:
		return s.traceClear()
	case *cmdlang.ShowTrace:
		return s.showTrace()
	case *cmdlang.Monitor, *cmdlang.Capture:
		return cmdlang.Result{}, fmt.Errorf("%s streams its answer: run it alone from the shell (fwdctl %s ...), not in a batch or at the prompt", c.Verb(), c.Verb())
	}
	return cmdlang.Result{}, fmt.Errorf("%s: not a query", c.Verb())
}

func (s *stack) runtime() *show.Runtime {
	r := &show.Runtime{Workers: []show.Worker{}}
	for _, w := range s.eng.Workers() {
		l := w.Load()
		r.Workers = append(r.Workers, show.Worker{Worker: l.Worker, CPU: l.CPU, Polls: l.Polls, BusyPolls: l.BusyPolls, Packets: l.Packets,
			StallsParked: l.Stalls.Parked, StallsPreempted: l.Stalls.Preempted, StallsOther: l.Stalls.Other, StallPackets: l.Stalls.Packets, StallMaxNs: int64(l.Stalls.Max)})
	}
	r.Neighbours, r.NeighHeld = s.nb.t.Len()
	return r
}

// loadCollector exports the workers' poll counters: how busy each worker
// is (busy_polls / polls) and packets per busy poll.
type loadCollector struct {
	d                    *Daemon
	polls, busy, packets *prometheus.Desc
	stalls, stallPackets *prometheus.Desc
}

func newLoadCollector(d *Daemon) *loadCollector {
	l := []string{"worker"}
	return &loadCollector{
		d:       d,
		polls:   prometheus.NewDesc("fwdd_worker_polls_total", "Receive polls (one RxBurst on one queue) per worker.", l, nil),
		busy:    prometheus.NewDesc("fwdd_worker_busy_polls_total", "Receive polls that returned packets, per worker.", l, nil),
		packets: prometheus.NewDesc("fwdd_worker_poll_packets_total", "Packets returned by receive polls, per worker (divided by busy polls: packets per poll).", l, nil),
		stalls: prometheus.NewDesc("fwdd_worker_stalls_total", "Busy workers' gaps between polls of at least min (counted in their longest class), by cause: parked (the Go runtime parked the thread), preempted (another thread ran on its CPU), other (interrupts, the hypervisor).",
			[]string{"worker", "cause", "min"}, nil),
		stallPackets: prometheus.NewDesc("fwdd_worker_stall_packets_total", "Packets that arrived during a busy worker's stalls of at least min (they waited for it).",
			[]string{"worker", "min"}, nil),
	}
}

func (c *loadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.polls
	ch <- c.busy
	ch <- c.packets
	ch <- c.stalls
	ch <- c.stallPackets
}

func (c *loadCollector) Collect(ch chan<- prometheus.Metric) {
	for _, w := range c.d.st.eng.Workers() {
		l := w.Load()
		ws := strconv.Itoa(l.Worker)
		ch <- prometheus.MustNewConstMetric(c.polls, prometheus.CounterValue, float64(l.Polls), ws)
		ch <- prometheus.MustNewConstMetric(c.busy, prometheus.CounterValue, float64(l.BusyPolls), ws)
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(l.Packets), ws)
		// The stall length classes' labels, fwd.Stalls' indexes.
		for i, m := range [...]string{"20us", "100us", "1ms"} {
			ch <- prometheus.MustNewConstMetric(c.stalls, prometheus.CounterValue, float64(l.Stalls.Parked[i]), ws, "parked", m)
			ch <- prometheus.MustNewConstMetric(c.stalls, prometheus.CounterValue, float64(l.Stalls.Preempted[i]), ws, "preempted", m)
			ch <- prometheus.MustNewConstMetric(c.stalls, prometheus.CounterValue, float64(l.Stalls.Other[i]), ws, "other", m)
			ch <- prometheus.MustNewConstMetric(c.stallPackets, prometheus.CounterValue, float64(l.Stalls.Packets[i]), ws, m)
		}
	}
}
