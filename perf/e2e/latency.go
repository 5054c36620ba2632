package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/perf/gen"
)

// The latency phase: each forwarder at a light load (latRate packets/s,
// 64 bytes) with fwdgen's stamps, the generator and the stamp-checking
// sink pinned to the generator CPU and the router's work to the router CPU,
// as issue 13 states it. Linux forwarding is the baseline; fwdd runs once
// with adaptive and once with busy polling. For adaptive fwdd the harness
// also measures the CPU an idle fwdd uses (no traffic for latIdle).

// latencyResult is one forwarder's latency runs.
type latencyResult struct {
	Leg     string
	Rate    float64
	Trials  []gen.Latency
	Lost    []float64 // percent per trial
	IdleCPU float64   // share of one core used by an idle fwdd; <0 = not measured
	// Parks and Preempts are, per trial, the forwarder's busiest thread's
	// voluntary and involuntary context switches per second of the trial
	// (see threadStat); empty for Linux.
	Parks, Preempts []float64
	// Stalls are, per trial, fwdd's busy workers' stalls (gaps of at least
	// 20 µs between polls, fwdctl show workers) per second; empty unless
	// fwdd counted some.
	Stalls []stallRate
	pid    int // the forwarder process, 0 for Linux
}

// stallRate is one trial's stalls per second by cause (all lengths), the
// stalls of at least 100 µs per second, and the longest stall since fwdd
// started.
type stallRate struct {
	Parked, Preempted, Other, Long float64
	MaxUS                          float64
	// Waited and WaitedLong are the shares of the packets the workers
	// received that arrived during a stall (of any length, of at least
	// 100 µs): they waited for it.
	Waited, WaitedLong float64
}

// stallSum is fwdd's stall counters summed over its workers.
type stallSum struct {
	parked, preempted, other, waited [3]uint64
	packets                          uint64 // received
	maxNs                            int64
}

// workerStalls reads the running fwdd's stall counters; ok is false when
// fwdctl does not answer.
func (h *harness) workerStalls(ctx context.Context) (stallSum, bool) {
	var sum stallSum
	if h.fwddSock == "" {
		return sum, false
	}
	out, err := exec.CommandContext(ctx, filepath.Join(h.cfg.bin, "fwdctl"), "-s", h.fwddSock, "-j", "show", "workers").Output()
	if err != nil {
		return sum, false
	}
	var r show.Runtime
	if err := json.Unmarshal(out, &r); err != nil {
		return sum, false
	}
	for _, w := range r.Workers {
		for i := range 3 {
			sum.parked[i] += w.StallsParked[i]
			sum.preempted[i] += w.StallsPreempted[i]
			sum.other[i] += w.StallsOther[i]
			sum.waited[i] += w.StallPackets[i]
		}
		sum.packets += w.Packets
		sum.maxNs = max(sum.maxNs, w.StallMaxNs)
	}
	return sum, true
}

// rate returns the stalls between a and b (b later) per second of secs.
func (b stallSum) rate(a stallSum, secs float64) stallRate {
	d := func(x, y [3]uint64) (all, long float64) {
		for i := range 3 {
			all += float64(y[i] - x[i])
			if i > 0 {
				long += float64(y[i] - x[i])
			}
		}
		return all, long
	}
	p, pl := d(a.parked, b.parked)
	k, kl := d(a.preempted, b.preempted)
	o, ol := d(a.other, b.other)
	r := stallRate{Parked: p / secs, Preempted: k / secs, Other: o / secs, Long: (pl + kl + ol) / secs, MaxUS: float64(b.maxNs) / 1e3}
	if n := float64(b.packets - a.packets); n > 0 {
		w, wl := d(a.waited, b.waited)
		r.Waited, r.WaitedLong = w/n, wl/n
	}
	return r
}

// threadStat is one thread's /proc schedstat: time on the CPU, time spent
// runnable but waiting, and how many times it was scheduled in.
type threadStat struct {
	tid        int
	run, delay time.Duration
	slices     int64
	// vol and invol are the thread's voluntary and involuntary context
	// switches (/proc status). A busy-polling worker never sleeps on its
	// own: its voluntary switches are the Go runtime parking it (a
	// preemption or a stop-the-world hands its P to another thread and
	// back), its involuntary ones the kernel scheduling something else.
	vol, invol int64
}

// threadStats reads the schedstat of every thread of pid (nil for pid 0).
func threadStats(pid int) map[int]threadStat {
	if pid <= 0 {
		return nil
	}
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[int]threadStat{}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		var run, delay, slices int64
		if _, err := fmt.Sscan(string(b), &run, &delay, &slices); err == nil {
			st := threadStat{tid: tid, run: time.Duration(run), delay: time.Duration(delay), slices: slices}
			st.vol, st.invol = ctxtSwitches(dir + "/" + e.Name() + "/status")
			out[tid] = st
		}
	}
	return out
}

// ctxtSwitches reads voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches from a /proc status file (0 when missing).
func ctxtSwitches(path string) (vol, invol int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "voluntary_ctxt_switches":
			vol = n
		case "nonvoluntary_ctxt_switches":
			invol = n
		}
	}
	return vol, invol
}

// busiestThread returns the difference between two threadStats of the
// thread that ran most in between (a forwarder's worker).
func busiestThread(a, b map[int]threadStat) (threadStat, bool) {
	var best threadStat
	ok := false
	for tid, y := range b {
		x := a[tid]
		d := threadStat{tid: tid, run: y.run - x.run, delay: y.delay - x.delay, slices: y.slices - x.slices, vol: y.vol - x.vol, invol: y.invol - x.invol}
		if !ok || d.run > best.run {
			best, ok = d, true
		}
	}
	return best, ok
}

func (l *latencyResult) p(sel func(gen.Latency) float64) (med, lo, hi float64) {
	v := make([]float64, len(l.Trials))
	for i, t := range l.Trials {
		v[i] = sel(t)
	}
	lo, hi = minmax(v)
	return median(v), lo, hi
}

func (l *latencyResult) p50() (float64, float64, float64) {
	return l.p(func(x gen.Latency) float64 { return x.P50US })
}

func (l *latencyResult) p99() (float64, float64, float64) {
	return l.p(func(x gen.Latency) float64 { return x.P99US })
}

// latencyLeg is a forwarder set up for the latency phase.
type latencyLeg struct {
	name  string
	setup func(ctx context.Context) (teardown func(), pid int, err error)
}

func (h *harness) latencyLegs() []latencyLeg {
	all := h.allLatencyLegs()
	if len(h.cfg.latLegs) == 0 {
		return all
	}
	var out []latencyLeg
	for _, l := range all {
		for _, want := range h.cfg.latLegs {
			if l.name == want {
				out = append(out, l)
			}
		}
	}
	return out
}

func (h *harness) allLatencyLegs() []latencyLeg {
	var linux leg
	for _, l := range h.allLegs() {
		if l.name == "linux" {
			linux = l
		}
	}
	fwdd := func(poll string) func(ctx context.Context) (func(), int, error) {
		return func(ctx context.Context) (func(), int, error) {
			args := []string{"-poll", poll}
			if poll == "busy" && h.cfg.busyNice != 0 {
				args = append(args, "-nice", strconv.Itoa(h.cfg.busyNice))
			}
			return h.startFwddPid(ctx, "afxdp", args...)
		}
	}
	return []latencyLeg{
		{name: "linux", setup: func(ctx context.Context) (func(), int, error) {
			td, err := linux.setup(ctx)
			return td, 0, err
		}},
		{name: "fwdd-adaptive", setup: fwdd("adaptive")},
		{name: "fwdd-busy", setup: fwdd("busy")},
	}
}

// runLatency measures every latency leg; a leg that cannot be set up is
// skipped with the reason.
func (h *harness) runLatency(ctx context.Context) error {
	for _, l := range h.latencyLegs() {
		if !budgetLeft(h.budget) {
			h.skips = append(h.skips, "latency "+l.name+": time budget exhausted")
			continue
		}
		h.logf("== latency %s: %.0f packets/s, 64 B, stamps checked at the sink", l.name, h.cfg.latRate)
		td, pid, err := l.setup(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.skips = append(h.skips, fmt.Sprintf("latency %s: %v", l.name, err))
			continue
		}
		res := &latencyResult{Leg: l.name, Rate: h.cfg.latRate, IdleCPU: -1, pid: pid}
		err = h.latencyTrials(ctx, res)
		if err == nil && pid > 0 && l.name == "fwdd-adaptive" {
			res.IdleCPU, err = idleCPU(ctx, pid, h.cfg.latIdle)
			h.logf("   idle fwdd (adaptive): %.1f%% of a core over %v", 100*res.IdleCPU, h.cfg.latIdle)
		}
		td()
		if err != nil {
			return fmt.Errorf("latency %s: %w", l.name, err)
		}
		h.lat = append(h.lat, res)
	}
	return nil
}

func (h *harness) latencyTrials(ctx context.Context, res *latencyResult) error {
	// Warm-up: neighbours resolved, paths set up.
	if _, _, err := h.runTrial(ctx, trialSpec{gen: genAFP, sink: gen.BackendTC, size: 64, rate: 10000, dur: 300 * time.Millisecond}); err != nil {
		return err
	}
	for i := 0; i < h.cfg.reps && budgetLeft(h.budget); i++ {
		before, t0 := threadStats(res.pid), time.Now()
		st0, stOK := h.workerStalls(ctx)
		tr, rx, err := h.runTrial(ctx, trialSpec{gen: genAFP, sink: gen.BackendAFPacket, size: 64, rate: h.cfg.latRate, dur: h.cfg.dur})
		el := time.Since(t0).Seconds()
		if st1, ok := h.workerStalls(ctx); ok && stOK && st1.maxNs > 0 {
			r := st1.rate(st0, el)
			res.Stalls = append(res.Stalls, r)
			h.logf("   %-14s rep %d: worker stalls ≥ 20 µs per second: parked by the Go runtime %.0f, preempted %.0f, other %.0f; ≥ 100 µs: %.0f/s; packets that arrived during one %.2f%% (≥ 100 µs: %.2f%%); longest since start %.0f µs",
				res.Leg, i+1, r.Parked, r.Preempted, r.Other, r.Long, 100*r.Waited, 100*r.WaitedLong, r.MaxUS)
		}
		after := threadStats(res.pid)
		if w, ok := busiestThread(before, after); ok {
			res.Parks = append(res.Parks, float64(w.vol)/el)
			res.Preempts = append(res.Preempts, float64(w.invol)/el)
			// The other threads' wake-ups land on the generator's CPU
			// (fwdd reserves the router CPU for its worker).
			var others, othersRun int64
			for tid, y := range after {
				if tid != w.tid {
					others += y.slices - before[tid].slices
					othersRun += int64(y.run - before[tid].run)
				}
			}
			h.logf("   %-14s rep %d: busiest thread %d: ran %.2f s, scheduled in %d times (%d voluntary, %d involuntary switches), waited %.1f ms runnable; the other threads: scheduled in %.0f times/s, ran %.1f ms", res.Leg, i+1,
				w.tid, w.run.Seconds(), w.slices, w.vol, w.invol, float64(w.delay)/1e6, float64(others)/el, float64(othersRun)/1e6)
		}
		if err != nil {
			return err
		}
		if rx.Latency == nil || rx.Latency.Samples == 0 {
			return fmt.Errorf("the sink took no latency samples (%d frames received)", rx.Packets)
		}
		res.Trials = append(res.Trials, *rx.Latency)
		res.Lost = append(res.Lost, tr.LossPct)
		h.logf("   %-14s rep %d: p50 %.1f µs, p99 %.1f µs, max %.1f µs, loss %.2f%%", res.Leg, i+1,
			rx.Latency.P50US, rx.Latency.P99US, rx.Latency.MaxUS, tr.LossPct)
	}
	return nil
}

// idleCPU returns the share of one core that process pid used over d.
func idleCPU(ctx context.Context, pid int, d time.Duration) (float64, error) {
	t0, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	t1, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	const hz = 100 // USER_HZ: the unit of /proc/PID/stat on Linux
	return float64(t1-t0) / hz / time.Since(start).Seconds(), nil
}

// cpuTicks returns utime+stime of pid (all its threads) in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: the fields start after its ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return ut + st, nil
}

// latencyHeading says what the latency lines measure and how each
// forwarder was scheduled.
func (r *report) latencyHeading() string {
	h := r.h
	busy := "ordinary priority"
	if h.cfg.busyNice != 0 {
		busy = fmt.Sprintf("ordinary priority at nice %d (`-nice %d`)", h.cfg.busyNice, h.cfg.busyNice)
	}
	return fmt.Sprintf("Latency (64 B, AF_PACKET generator with stamps, %.0f packets/s; generator and sink on CPU %d, router on CPU %d; "+
		"Linux's NAPI thread SCHED_FIFO %d, fwdd adaptive `-rt %d`, fwdd busy %s; median of %d runs, min–max; "+
		"the worker thread's voluntary switches are the Go runtime parking it — a busy poller never sleeps on its own — "+
		"its involuntary ones other threads taking its CPU):",
		h.cfg.latRate, h.cfg.genCPU, h.cfg.rtrCPU, h.cfg.napiRT, h.cfg.napiRT, busy, h.cfg.reps)
}

// latencyLines are the latency comparisons with issue 13's targets.
func (r *report) latencyLines() []string {
	h := r.h
	var base *latencyResult
	for _, l := range h.lat {
		if l.Leg == "linux" {
			base = l
		}
	}
	var out []string
	for _, l := range h.lat {
		m50, lo50, hi50 := l.p50()
		m99, lo99, hi99 := l.p99()
		line := fmt.Sprintf("%s at %.0f pps: p50 %.1f µs (%.1f–%.1f), p99 %.1f µs (%.1f–%.1f)", l.Leg, l.Rate, m50, lo50, hi50, m99, lo99, hi99)
		if base != nil && l != base {
			b50, _, _ := base.p50()
			b99, _, _ := base.p99()
			line += fmt.Sprintf("; %.1f× Linux's p50, %.1f× its p99", m50/b50, m99/b99)
			switch l.Leg {
			case "fwdd-adaptive":
				line += targetVerdict("p50 ≤ 5× Linux", m50 <= 5*b50) + targetVerdict("p99 ≤ 100 µs", m99 <= 100)
			case "fwdd-busy":
				line += targetVerdict("p50 ≤ 2× Linux", m50 <= 2*b50) + targetVerdict("p99 ≤ 10× Linux", m99 <= 10*b99)
			}
		}
		if len(l.Parks) > 0 {
			lo, hi := minmax(l.Parks)
			line += fmt.Sprintf("; worker thread: %.0f voluntary switches/s (%.0f–%.0f), %.0f involuntary/s", median(l.Parks), lo, hi, median(l.Preempts))
		}
		if len(l.Stalls) > 0 {
			sel := func(f func(stallRate) float64) float64 {
				v := make([]float64, len(l.Stalls))
				for i, r := range l.Stalls {
					v[i] = f(r)
				}
				return median(v)
			}
			line += fmt.Sprintf("; worker stalls ≥ 20 µs between polls per second: %.0f parked by the Go runtime, %.0f preempted, %.0f other (interrupts, hypervisor); ≥ 100 µs: %.0f/s; packets that arrived during a stall %.2f%% (≥ 100 µs: %.2f%%); longest %.0f µs",
				sel(func(r stallRate) float64 { return r.Parked }), sel(func(r stallRate) float64 { return r.Preempted }),
				sel(func(r stallRate) float64 { return r.Other }), sel(func(r stallRate) float64 { return r.Long }),
				100*sel(func(r stallRate) float64 { return r.Waited }), 100*sel(func(r stallRate) float64 { return r.WaitedLong }),
				l.Stalls[len(l.Stalls)-1].MaxUS)
		}
		if l.IdleCPU >= 0 {
			line += fmt.Sprintf("; idle: %.1f%% of a core", 100*l.IdleCPU) + targetVerdict("idle < 5%", l.IdleCPU < 0.05)
		}
		out = append(out, line)
	}
	return out
}

func targetVerdict(target string, met bool) string {
	if met {
		return " — " + target + ": met"
	}
	return " — " + target + ": NOT met"
}
