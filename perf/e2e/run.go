package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fwdd/fwdd/perf/gen"
)

// Generators.
const (
	genAFP  = "afpacket"
	genLive = "live"
)

type config struct {
	bin       string        // directory with fwdgen (and fwdd, fwdctl when they exist)
	dur       time.Duration // per measurement
	reps      int
	sizes     []int
	flows     int
	genCPU    int
	rtrCPU    int
	napi      bool // threaded NAPI for the router's ingress veth, pinned to rtrCPU
	napiRT    int  // SCHED_FIFO priority of that NAPI thread (0 = normal)
	search    bool
	searchDur time.Duration
	searchMax int // trials per size
	searchSz  []int
	legs      []string
	budget    time.Duration
	sink      string // tc or xdp
	fwddArgs  []string
	afpTx     string        // fwdgen back end of the AF_PACKET generator: afpacket (TX ring) or mmsg
	xskfwdSrc string        // the C reference forwarder's source (c-afxdp leg)
	latency   bool          // run the latency phase after the legs
	latRate   float64       // its packets/s
	latIdle   time.Duration // how long idle fwdd's CPU use is measured
	gens      []string      // generators to run (nil: every leg's own)
	genRT     int           // SCHED_FIFO priority of the generator (0: ordinary)
	crefRT    int           // SCHED_FIFO priority of the C forwarder (0: ordinary)
	busyNice  int           // nice value of fwdd's busy-polling worker in the latency phase (0: unchanged)
	latLegs   []string      // latency legs to run (nil: all)
	perfDir   string        // perf record of the router CPU per leg and generator ("" = none)
	sinkRPS   string        // diagnostic: RPS CPU for the sink veth's receive ("" = off)
	portArgs  string        // extra "port add" arguments of fwdd's ports
}

func (h *harness) genBackend(g string) string {
	if g == genAFP && h.cfg.afpTx != "" {
		return h.cfg.afpTx
	}
	return g
}

type harness struct {
	cfg       config
	topo      *Topo
	self      string
	log       io.Writer
	res       []*result
	srch      []*searchResult
	prof      []*profileResult
	skips     []string
	notes     []string
	budget    context.Context
	curSink   string // the running leg's sink
	legSinks  []string
	fwddStats []string
	lat       []*latencyResult
	// routerPid is the running leg's forwarder process (fwdd, xskfwd), 0
	// for the kernel's legs: its CPU time per trial is measured.
	routerPid int
	ksoftirqd int // pid of ksoftirqd on the router CPU; 0: not looked up, -1: none
	// fwddSock is the running fwdd's control socket, "" when none runs.
	fwddSock string
}

// trialRes is one measurement.
type trialRes struct {
	Sent, Recv   uint64
	Seconds      float64
	OfferedPPS   float64
	DeliveredPPS float64
	LossPct      float64
	// RouterCPU is the CPU time (seconds) the forwarder process used
	// during the generator's run, summed over its threads, softirq work
	// done in its context included (/proc/PID/task/*/schedstat); 0 when
	// not measured (kernel legs).
	RouterCPU float64
	// SoftirqCPU is the part of RouterCPU that ksoftirqd on the router
	// CPU used: the softirq work the kernel deferred there (the sink's
	// receive of what the forwarder transmitted, mostly).
	SoftirqCPU float64
	// Wall is how long the generator command took, its setup included
	// (RouterCPU is measured over it).
	Wall float64
}

// perCPU is delivered packets per second of the forwarder's CPU time, 0
// when not measured: on a shared machine it says what a forwarder does
// with the CPU it gets, whatever the scheduler gave it.
func (t trialRes) perCPU() float64 {
	if t.RouterCPU <= 0 {
		return 0
	}
	return float64(t.Recv) / t.RouterCPU
}

type result struct {
	Leg, Gen string
	Size     int
	Trials   []trialRes
}

func (r *result) delivered() []float64 {
	v := make([]float64, len(r.Trials))
	for i, t := range r.Trials {
		v[i] = t.DeliveredPPS
	}
	return v
}

// perCPU returns the trials' delivered packets per forwarder CPU-second,
// nil when a trial did not measure it.
func (r *result) perCPU() []float64 {
	v := make([]float64, len(r.Trials))
	for i, t := range r.Trials {
		if v[i] = t.perCPU(); v[i] == 0 {
			return nil
		}
	}
	return v
}

func (r *result) offered() []float64 {
	v := make([]float64, len(r.Trials))
	for i, t := range r.Trials {
		v[i] = t.OfferedPPS
	}
	return v
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minmax(v []float64) (lo, hi float64) {
	for i, x := range v {
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	return
}

func (h *harness) logf(format string, a ...any) {
	fmt.Fprintf(h.log, format+"\n", a...)
}

// proc is a started child process with captured output.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan error
	once   sync.Once
	err    error
}

func start(ctx context.Context, ready string, name string, args ...string) (*proc, error) {
	p := &proc{cmd: exec.CommandContext(ctx, name, args...), done: make(chan error, 1)}
	p.cmd.Stdout = &p.stdout
	p.cmd.Cancel = func() error { return p.cmd.Process.Signal(syscall.SIGTERM) }
	p.cmd.WaitDelay = 3 * time.Second
	var sc *bufio.Scanner
	if ready != "" {
		pr, err := p.cmd.StderrPipe()
		if err != nil {
			return nil, err
		}
		sc = bufio.NewScanner(pr)
	} else {
		p.cmd.Stderr = &p.stderr
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if sc == nil {
		go func() { p.done <- p.cmd.Wait() }()
		return p, nil
	}
	got := make(chan bool, 1)
	go func() {
		ok := false
		for sc.Scan() {
			line := sc.Text()
			p.stderr.WriteString(line + "\n")
			if !ok && strings.Contains(line, ready) {
				ok = true
				got <- true
			}
		}
		if !ok {
			got <- false
		}
		p.done <- p.cmd.Wait()
	}()
	select {
	case ok := <-got:
		if !ok {
			err := <-p.done
			return nil, fmt.Errorf("%s exited before ready: %v: %s", name, err, strings.TrimSpace(p.stderr.String()))
		}
	case <-time.After(10 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s not ready after 10s: %s", name, strings.TrimSpace(p.stderr.String()))
	}
	return p, nil
}

// stop interrupts the process and waits for it (idempotent).
func (p *proc) stop() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case p.err = <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			p.err = <-p.done
		}
	})
	return p.err
}

func (h *harness) fwdgen() string { return filepath.Join(h.cfg.bin, "fwdgen") }

// trial offers traffic from the gen namespace and counts what reaches the
// sink's XDP counter. rate 0 = flat out.
func (h *harness) trial(ctx context.Context, g string, size int, rate float64, dur time.Duration, during func() func()) (trialRes, error) {
	sinkKind := h.cfg.sink
	if sinkKind == "auto" || sinkKind == "" {
		sinkKind = h.curSink
	}
	r, _, err := h.runTrial(ctx, trialSpec{gen: g, sink: sinkKind, size: size, rate: rate, dur: dur, during: during})
	return r, err
}

// trialSpec is one measurement: generator back end, sink back end (a
// counting BPF sink, or afpacket to check stamps and latency), frame size,
// rate (0 = flat out) and duration.
type trialSpec struct {
	gen, sink string
	size      int
	rate      float64
	dur       time.Duration
	stamps    bool // live generator: send times in the stamps (latency)
	during    func() func()
}

// runTrial runs one measurement and returns it with the sink's summary.
func (h *harness) runTrial(ctx context.Context, ts trialSpec) (trialRes, gen.Summary, error) {
	t := h.topo
	sinkArgs := []string{"netns", "exec", t.S}
	if ts.sink == gen.BackendAFPacket {
		// Checking stamps costs CPU: pin the sink beside the generator,
		// off the router's CPU, all its threads (taskset) and not just its
		// receiving worker (-cpus): the Go runtime's other threads wake up
		// every few milliseconds while the worker polls, and on the
		// router's CPU they would take it from a forwarder at ordinary
		// priority (fwdd -poll busy).
		sinkArgs = append(sinkArgs, "taskset", "-c", strconv.Itoa(h.cfg.genCPU))
	}
	sinkArgs = append(sinkArgs, h.fwdgen(), "-rx", "-backend", ts.sink, "-i", t.S0, "-d", "0", "-j", "-q")
	if ts.sink == gen.BackendAFPacket {
		sinkArgs = append(sinkArgs, "-cpus", strconv.Itoa(h.cfg.genCPU))
	}
	sink, err := start(ctx, "fwdgen: ready", "ip", sinkArgs...)
	if err != nil {
		return trialRes{}, gen.Summary{}, fmt.Errorf("sink: %w", err)
	}
	defer sink.stop()
	args := []string{"netns", "exec", t.G, "taskset", "-c", strconv.Itoa(h.cfg.genCPU)}
	if h.cfg.genRT > 0 {
		// SCHED_RR, not FIFO: the live generator's sending thread sits in
		// one BPF_PROG_RUN call for the whole run and its watcher thread
		// (same process, same CPU, same priority) must get in to end it
		// with a signal; under FIFO it never would (the call ran for
		// minutes), RR rotates them every time slice (100 ms).
		args = append(args, "chrt", "-r", strconv.Itoa(h.cfg.genRT))
	}
	args = append(args, h.fwdgen(),
		"-i", t.G0, "-dst-mac", t.MAC[t.R0], "-size", strconv.Itoa(ts.size), "-flows", strconv.Itoa(h.cfg.flows),
		"-dst-addrs", strconv.Itoa(h.cfg.flows), "-d", ts.dur.String(), "-cpus", strconv.Itoa(h.cfg.genCPU),
		"-backend", h.genBackend(ts.gen), "-j", "-q")
	if ts.rate > 0 {
		args = append(args, "-rate", strconv.FormatFloat(ts.rate, 'f', 0, 64))
	}
	if ts.gen == genLive && !ts.stamps {
		// Throughput trials count at the sink: no send times, so the
		// generator's cost per frame stays close to a bare live-frames loop.
		args = append(args, "-ts=false")
	}
	var after func()
	if ts.during != nil {
		after = ts.during()
	}
	cpu0, soft0, wall0 := procCPU(h.routerPid), h.softirqCPU(), time.Now()
	out, err := exec.CommandContext(ctx, "ip", args...).Output()
	cpu1, soft1, wall := procCPU(h.routerPid), h.softirqCPU(), time.Since(wall0)
	if after != nil {
		after()
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return trialRes{}, gen.Summary{}, fmt.Errorf("generator: %w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return trialRes{}, gen.Summary{}, fmt.Errorf("generator: %w", err)
	}
	var tx gen.Summary
	if err := json.Unmarshal(out, &tx); err != nil {
		return trialRes{}, gen.Summary{}, fmt.Errorf("generator output: %w", err)
	}
	time.Sleep(100 * time.Millisecond) // let the last frames drain through the router
	if err := sink.stop(); err != nil {
		return trialRes{}, gen.Summary{}, fmt.Errorf("sink: %w: %s", err, sink.stderr.String())
	}
	var rx gen.Summary
	if err := json.Unmarshal(sink.stdout.Bytes(), &rx); err != nil {
		return trialRes{}, gen.Summary{}, fmt.Errorf("sink output %q: %w", sink.stdout.String(), err)
	}
	r := trialRes{Sent: tx.Packets, Recv: rx.Packets, Seconds: tx.Seconds, Wall: wall.Seconds()}
	if cpu0 >= 0 && cpu1 > cpu0 {
		r.RouterCPU = (cpu1 - cpu0).Seconds()
		if soft0 >= 0 && soft1 >= soft0 {
			r.SoftirqCPU = (soft1 - soft0).Seconds()
			r.RouterCPU += r.SoftirqCPU
		}
	}
	if tx.Seconds > 0 {
		r.OfferedPPS = float64(tx.Packets) / tx.Seconds
		r.DeliveredPPS = float64(rx.Packets) / tx.Seconds
	}
	if tx.Packets > 0 {
		l := float64(tx.Packets) - float64(rx.Packets)
		if l < 0 {
			l = 0
		}
		r.LossPct = 100 * l / float64(tx.Packets)
	}
	return r, rx, nil
}

// leg is one forwarder configuration in the router namespace.
type leg struct {
	name  string
	gens  []string
	desc  string
	fwdd  string // "" or the fwdd driver
	sink  string // counting sink on s0 suited to the frames this leg delivers
	setup func(ctx context.Context) (teardown func(), err error)
}

// legs returns the legs -legs asked for, in the harness's order.
func (h *harness) legs() []leg {
	var out []leg
	for _, l := range h.allLegs() {
		for _, want := range h.cfg.legs {
			if want == l.name {
				out = append(out, l)
			}
		}
	}
	return out
}

// allLegs returns every forwarder the harness knows.
func (h *harness) allLegs() []leg {
	t := h.topo
	napi := func(ctx context.Context) error {
		if !h.cfg.napi {
			return nil
		}
		return t.threadedNAPI(ctx, t.R, t.R0, h.cfg.rtrCPU, h.cfg.napiRT)
	}
	unnapi := func() {
		if h.cfg.napi {
			_ = t.threadedNAPI(context.Background(), t.R, t.R0, -1, 0)
		}
	}
	all := []leg{
		{name: "linux", gens: []string{genAFP}, sink: gen.BackendTC,
			desc: "Linux IPv4 forwarding in the router namespace; r0 has GRO on (NAPI) with threaded NAPI pinned to the router CPU",
			setup: func(ctx context.Context) (func(), error) {
				if err := t.forwarding(ctx, true); err != nil {
					return nil, err
				}
				if err := t.ethtool(ctx, t.R, "-K", t.R0, "gro", "on"); err != nil {
					return nil, err
				}
				if err := napi(ctx); err != nil {
					return nil, err
				}
				return func() {
					unnapi()
					_ = t.ethtool(context.Background(), t.R, "-K", t.R0, "gro", "off")
					_ = t.forwarding(context.Background(), false)
				}, nil
			}},
		{name: "linux-backlog", gens: []string{genAFP}, sink: gen.BackendTC,
			desc: "Linux IPv4 forwarding, default veth (no NAPI on r0): forwarding runs in the generator CPU's softirq",
			setup: func(ctx context.Context) (func(), error) {
				if err := t.forwarding(ctx, true); err != nil {
					return nil, err
				}
				return func() { _ = t.forwarding(context.Background(), false) }, nil
			}},
		{name: "xdp", gens: []string{genAFP, genLive}, sink: gen.BackendXDP,
			desc: "XDP-native forwarder on r0: rewrite MACs, bpf_redirect to r1 (threaded NAPI of r0 pinned to the router CPU)",
			setup: func(ctx context.Context) (func(), error) {
				td, err := h.attachForwarder()
				if err != nil {
					return nil, err
				}
				if err := napi(ctx); err != nil {
					td()
					return nil, err
				}
				return func() { unnapi(); td() }, nil
			}},
		{name: "fwdd-afxdp", gens: []string{genAFP, genLive}, fwdd: "afxdp", sink: gen.BackendTC,
			desc: "fwdd, afxdp driver on r0 and r1, one worker pinned to the router CPU"},
		{name: "xdp-inline", gens: []string{genAFP, genLive}, sink: gen.BackendXDP,
			desc:  "the same XDP-native forwarder, r0 without threaded NAPI: veth runs it in the generator CPU's softirq, where it is cheapest (no cross-CPU ring hand-off and wake-up)",
			setup: func(ctx context.Context) (func(), error) { return h.attachForwarder() }},
		{name: "c-afxdp", gens: []string{genAFP, genLive}, sink: gen.BackendTC,
			desc:  "C AF_XDP forwarder (perf/xskfwd, libxdp; kernel xsk_fwd structure, MAC rewrite only) on r0 -> r1, pinned to the router CPU",
			setup: h.startXskfwd},
		{name: "fwdd-afpacket", gens: []string{genAFP}, fwdd: "afpacket", sink: gen.BackendTC,
			desc: "fwdd, afpacket driver on r0 and r1, one worker pinned to the router CPU"},
	}
	for i, l := range all {
		if l.fwdd != "" {
			drv := l.fwdd
			all[i].setup = func(ctx context.Context) (func(), error) { return h.startFwdd(ctx, drv) }
		}
	}
	return all
}

func (h *harness) find(legName, g string, size int) *result {
	for _, r := range h.res {
		if r.Leg == legName && r.Gen == g && r.Size == size {
			return r
		}
	}
	return nil
}

func budgetLeft(ctx context.Context) bool { return ctx.Err() == nil }

// runAll measures every leg and, if asked, runs the throughput search.
func (h *harness) runAll(ctx context.Context) error {
	for _, l := range h.legs() {
		if !budgetLeft(h.budget) {
			h.skips = append(h.skips, l.name+": time budget exhausted")
			continue
		}
		h.curSink = l.sink
		if h.cfg.sink != "auto" && h.cfg.sink != "" {
			h.curSink = h.cfg.sink
		}
		h.logf("== %s: %s (sink: %s)", l.name, l.desc, h.curSink)
		h.legSinks = append(h.legSinks, l.name+": "+h.curSink)
		td, err := l.setup(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			msg := fmt.Sprintf("%s: %v", l.name, err)
			h.skips = append(h.skips, msg)
			h.logf("   skipped: %s", msg)
			continue
		}
		before := h.vethStats(ctx)
		err = h.runLeg(ctx, l)
		h.logVethStats(ctx, l.name, before)
		td()
		if err != nil {
			return err
		}
	}
	if h.cfg.latency {
		return h.runLatency(ctx)
	}
	return nil
}

func (h *harness) runLeg(ctx context.Context, l leg) error {
	// Warm-up: neighbours resolved, XDP/NAPI paths set up; not recorded.
	if _, err := h.trial(ctx, genAFP, 64, 10000, 300*time.Millisecond, nil); err != nil {
		return fmt.Errorf("%s warm-up: %w", l.name, err)
	}
	for _, g := range l.gens {
		if !h.wantGen(g) {
			continue
		}
		for _, size := range h.cfg.sizes {
			r := &result{Leg: l.name, Gen: g, Size: size}
			for i := 0; i < h.cfg.reps; i++ {
				if !budgetLeft(h.budget) {
					break
				}
				var during func() func()
				if l.fwdd != "" && i == 0 && size == h.cfg.sizes[0] {
					during = h.profileDuring(l.name+"-"+g, h.cfg.dur)
				}
				if h.cfg.perfDir != "" && size == h.cfg.sizes[0] {
					during = both(during, h.perfDuring(fmt.Sprintf("%s-%s-rep%d", l.name, g, i+1), h.cfg.dur))
				}
				tr, err := h.trial(ctx, g, size, 0, h.cfg.dur, during)
				if err != nil {
					return fmt.Errorf("%s/%s/%dB: %w", l.name, g, size, err)
				}
				r.Trials = append(r.Trials, tr)
				cpu := ""
				if tr.RouterCPU > 0 {
					cpu = fmt.Sprintf(", router CPU %.2f s of %.2f (ksoftirqd %.2f): %.3f Mpps/CPU-s", tr.RouterCPU, tr.Wall, tr.SoftirqCPU, tr.perCPU()/1e6)
				}
				h.logf("   %-14s gen %-8s %4dB rep %d: offered %7.3f Mpps, delivered %7.3f Mpps (%d), loss %6.2f%%%s",
					l.name, g, size, i+1, tr.OfferedPPS/1e6, tr.DeliveredPPS/1e6, tr.Recv, tr.LossPct, cpu)
			}
			if len(r.Trials) > 0 {
				h.res = append(h.res, r)
			}
		}
	}
	if h.cfg.search && h.wantGen(genAFP) && l.name != "xdp" && l.name != "xdp-inline" && l.name != "linux-backlog" {
		for _, size := range h.cfg.searchSz {
			if !budgetLeft(h.budget) {
				break
			}
			s, err := h.throughput(ctx, l.name, size)
			if err != nil {
				return err
			}
			h.srch = append(h.srch, s)
		}
	}
	return nil
}

// vethStats reads the router's ingress veth counters (ethtool -S r0):
// where frames offered to a forwarder were lost (rx_queue_0_drops: its
// receive ring was full; xdp_redirect: handed to the forwarder's
// program's target, for AF_XDP the socket, which may still drop them when
// its RX ring is full). nil when unreadable.
func (h *harness) vethStats(ctx context.Context) map[string]uint64 {
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", h.topo.R, "ethtool", "-S", h.topo.R0).Output()
	if err != nil {
		return nil
	}
	m := map[string]uint64{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m
}

// logVethStats logs what r0's counters gained during a leg.
func (h *harness) logVethStats(ctx context.Context, leg string, before map[string]uint64) {
	after := h.vethStats(ctx)
	if before == nil || after == nil {
		return
	}
	var parts []string
	for _, k := range []string{"rx_queue_0_xdp_packets", "rx_queue_0_xdp_redirect", "rx_queue_0_xdp_drops", "rx_queue_0_drops", "rx_queue_0_xdp_tx"} {
		if d := after[k] - before[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(k, "rx_queue_0_"), d))
		}
	}
	if len(parts) > 0 {
		h.logf("   %s: r0 during the leg: %s", leg, strings.Join(parts, ", "))
	}
}

// wantGen reports whether -gens asks for generator g (all by default).
func (h *harness) wantGen(g string) bool {
	if len(h.cfg.gens) == 0 {
		return true
	}
	for _, x := range h.cfg.gens {
		if x == g {
			return true
		}
	}
	return false
}

// procCPU returns the CPU time pid's threads have used (their schedstat
// run times summed), or -1 when pid is 0 or unreadable.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	var sum time.Duration
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue // a thread that exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err == nil {
			sum += time.Duration(ns)
		}
	}
	return sum
}

// softirqCPU returns the CPU time of ksoftirqd on the router CPU, or -1.
func (h *harness) softirqCPU() time.Duration {
	if h.routerPid <= 0 {
		return -1
	}
	if h.ksoftirqd == 0 {
		h.ksoftirqd = -1
		ents, _ := os.ReadDir("/proc")
		want := fmt.Sprintf("ksoftirqd/%d", h.cfg.rtrCPU)
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
			if err == nil && strings.TrimSpace(string(b)) == want {
				h.ksoftirqd, _ = strconv.Atoi(e.Name())
				break
			}
		}
	}
	return procCPU(h.ksoftirqd)
}

// searchResult is an RFC 2544-style throughput: the highest offered rate
// with loss ≤ 0.1 %.
type searchResult struct {
	Leg       string
	Size      int
	PPS       float64 // offered rate achieved at the best passing trial
	Loss      float64
	Trials    int
	GenBound  bool // flat out passed: the generator, not the forwarder, is the limit
	FlatOffer float64
	MinFailed float64 // lowest rate tried that failed (when nothing passed)
}

// note says how to read a search result.
func (s *searchResult) note() string {
	switch {
	case s.GenBound:
		return "generator-bound (flat out passed)"
	case s.PPS == 0:
		return fmt.Sprintf("no rate passed: below %.3f Mpps, the lowest tried", s.MinFailed/1e6)
	}
	return ""
}

const lossThreshold = 0.1 // percent

func (h *harness) throughput(ctx context.Context, legName string, size int) (*searchResult, error) {
	s := &searchResult{Leg: legName, Size: size}
	tr, err := h.trial(ctx, genAFP, size, 0, h.cfg.searchDur, nil)
	if err != nil {
		return nil, err
	}
	s.Trials++
	s.FlatOffer = tr.OfferedPPS
	h.logf("   search %-12s %4dB flat out: offered %.3f Mpps loss %.3f%%", legName, size, tr.OfferedPPS/1e6, tr.LossPct)
	if tr.LossPct <= lossThreshold {
		s.PPS, s.Loss, s.GenBound = tr.OfferedPPS, tr.LossPct, true
		return s, nil
	}
	lo, hi := 0.0, tr.OfferedPPS
	rate := tr.DeliveredPPS * 0.95
	for s.Trials < h.cfg.searchMax && budgetLeft(h.budget) {
		if rate <= lo || rate >= hi {
			rate = (lo + hi) / 2
		}
		tr, err := h.trial(ctx, genAFP, size, rate, h.cfg.searchDur, nil)
		if err != nil {
			return nil, err
		}
		s.Trials++
		h.logf("   search %-12s %4dB rate %.3f Mpps: offered %.3f Mpps loss %.3f%%", legName, size, rate/1e6, tr.OfferedPPS/1e6, tr.LossPct)
		if tr.LossPct <= lossThreshold {
			lo = rate
			if tr.OfferedPPS > s.PPS {
				s.PPS, s.Loss = tr.OfferedPPS, tr.LossPct
			}
		} else {
			hi = rate
			if s.MinFailed == 0 || rate < s.MinFailed {
				s.MinFailed = rate
			}
		}
		if hi > 0 && (hi-lo)/hi < 0.05 {
			break
		}
		rate = (lo + hi) / 2
	}
	return s, nil
}

// startFwdd writes the config, starts fwdd in the router namespace pinned
// to the router CPU, and waits until fwdctl answers.
func (h *harness) startFwdd(ctx context.Context, driver string, extra ...string) (func(), error) {
	td, pid, err := h.startFwddPid(ctx, driver, extra...)
	if err != nil {
		return nil, err
	}
	h.routerPid = pid
	return func() { h.routerPid = 0; td() }, nil
}

// startFwddPid is startFwdd that also returns fwdd's process id (ip netns
// exec execs fwdd in place, so it is the started process's).
func (h *harness) startFwddPid(ctx context.Context, driver string, extra ...string) (func(), int, error) {
	t := h.topo
	fwdd, fwdctl := filepath.Join(h.cfg.bin, "fwdd"), filepath.Join(h.cfg.bin, "fwdctl")
	for _, b := range []string{fwdd, fwdctl} {
		if _, err := os.Stat(b); err != nil {
			return nil, 0, fmt.Errorf("fwdd not runnable yet: %s missing (build cmd/fwdd and cmd/fwdctl with make build)", b)
		}
	}
	dir, err := os.MkdirTemp("", "fwb-fwdd-")
	if err != nil {
		return nil, 0, err
	}
	cfgFile, sock := filepath.Join(dir, "fwdd.conf"), filepath.Join(dir, "fwdd.sock")
	pa := ""
	if h.cfg.portArgs != "" {
		pa = " " + h.cfg.portArgs
	}
	conf := fmt.Sprintf(`port add p0 driver %[1]s dev %[2]s%[4]s
port add p1 driver %[1]s dev %[3]s%[4]s
addr add p0 198.18.0.1/24
addr add p1 198.19.0.1/24
route add 198.19.128.0/17 via 198.19.0.2
`, driver, t.R0, t.R1, pa)
	if err := os.WriteFile(cfgFile, []byte(conf), 0o644); err != nil {
		return nil, 0, err
	}
	// No taskset: fwdd checks -cpus against runtime.NumCPU (affinity-
	// limited) as if CPUs were numbered from 0; its worker pins itself.
	args := []string{"netns", "exec", t.R, fwdd, "-c", cfgFile, "-s", sock, "-cpus", strconv.Itoa(h.cfg.rtrCPU), "-pprof", "127.0.0.1:6060"}
	if h.cfg.napiRT > 0 && !busyPoll(append(h.cfg.fwddArgs, extra...)) {
		// The same scheduling class as the Linux and XDP legs' NAPI
		// thread, so that the shared machine's other tenants delay
		// neither. Not with busy polling: a SCHED_FIFO thread that never
		// sleeps starves the softirq work the kernel defers to ksoftirqd
		// on its CPU (the RT throttle lets it run 50 ms a second).
		args = append(args, "-rt", strconv.Itoa(h.cfg.napiRT))
	}
	args = append(append(args, h.cfg.fwddArgs...), extra...)
	p, err := start(ctx, "", "ip", args...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, 0, fmt.Errorf("fwdd not runnable yet: %w", err)
	}
	td := func() {
		// fwdd's own counters (drops by reason) explain the losses.
		for _, what := range []string{"stats", "ports"} {
			if out, err := exec.Command(fwdctl, "-s", sock, "show", what).CombinedOutput(); err == nil {
				h.fwddStats = append(h.fwddStats, fmt.Sprintf("fwdd (%s driver) after its runs, fwdctl show %s:\n%s", driver, what, out))
			}
		}
		h.fwddSock = ""
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-p.done:
			os.RemoveAll(dir)
			return nil, 0, fmt.Errorf("fwdd not runnable yet: exited (%v): %s", err, tail(p.stderr.String(), 400))
		default:
		}
		if exec.CommandContext(ctx, fwdctl, "-s", sock, "-j", "show", "stats").Run() == nil {
			if h.cfg.napi && driver == "afxdp" {
				h.notes = append(h.notes, "fwdd-afxdp: r0's NAPI left unthreaded (fwdd's own XDP program); see -napi")
			}
			h.fwddSock = sock
			return td, p.cmd.Process.Pid, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			td()
			return nil, 0, fmt.Errorf("fwdd not runnable yet: fwdctl -s %s show stats does not answer after 15s: %s", sock, tail(p.stderr.String(), 400))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// busyPoll reports whether fwdd flags ask for -poll busy.
func busyPoll(flags []string) bool {
	for i, f := range flags {
		if f == "-poll=busy" || f == "-poll" && i+1 < len(flags) && flags[i+1] == "busy" {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
