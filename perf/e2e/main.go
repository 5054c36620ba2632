// Command e2e is fwdd's end-to-end benchmark harness (make bench-e2e, root):
// it builds the gen → router → sink namespace topology and measures the
// packets per second delivered at the sink for Linux forwarding, the
// XDP-native forwarder and fwdd (afxdp, afpacket), with the same generator
// and CPU pinning in the same run, then prints a report and optionally
// rewrites the "end to end" section of BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(mainErr())
}

func mainErr() int {
	var (
		bin      = flag.String("bin", "bin", "directory holding fwdgen (and fwdd, fwdctl)")
		quick    = flag.Bool("quick", false, "about 1-2 minutes: 64 bytes only, 2 reps of 1 s, short search")
		dur      = flag.Duration("d", 2*time.Second, "duration of each measurement")
		reps     = flag.Int("reps", 3, "repetitions per measurement")
		sizes    = flag.String("sizes", "64,512,1518", "frame sizes (with FCS) for the flat-out runs")
		flows    = flag.Int("flows", 64, "flows (UDP source ports and destination addresses)")
		genCPU   = flag.Int("gen-cpu", 0, "CPU of the generator")
		rtrCPU   = flag.Int("router-cpu", 1, "CPU of the router: fwdd's worker, the router veth's NAPI thread")
		napi     = flag.Bool("napi", true, "threaded NAPI on the router's ingress veth, pinned to -router-cpu (linux, xdp legs)")
		afpTx    = flag.String("afp-tx", "afpacket", "fwdgen back end for the AF_PACKET generator: afpacket (TPACKET_V2 TX ring) or mmsg (sendmmsg)")
		fwddArgs = flag.String("fwdd-args", "", "extra fwdd flags, space-separated (e.g. \"-poll busy\")")
		portArgs = flag.String("fwdd-port-args", "", "extra arguments of fwdd's two ports (\"port add ... ARGS\"), e.g. \"ring 512\" or \"busypoll 20\" for the afxdp driver (fwdd only: the C forwarder has none)")
		napiRT   = flag.Int("napi-rt", 50, "SCHED_FIFO priority for the router's NAPI thread (0 = ordinary scheduling)")
		search   = flag.Bool("search", true, "RFC 2544-style throughput search (loss ≤ 0.1%) for linux and fwdd")
		sdur     = flag.Duration("search-d", 2*time.Second, "duration of each search trial")
		smax     = flag.Int("search-trials", 7, "search trials per size at most")
		ssizes   = flag.String("search-sizes", "64,512,1518", "frame sizes for the search")
		gens     = flag.String("gens", "", "generators to run, comma-separated (afpacket, live; default: each leg's own)")
		legs     = flag.String("legs", "linux,linux-backlog,xdp,xdp-inline,c-afxdp,fwdd-afxdp,fwdd-afpacket", "forwarders to measure")
		budget   = flag.Duration("budget", 9*time.Minute, "no new measurement starts after this")
		sink     = flag.String("sink", "auto", "sink counter on s0: tc (tcx ingress; cheapest for skbs), xdp (cheapest for redirected xdp frames), or auto (xdp for the xdp leg, tc for the others)")
		bench    = flag.String("benchmarks", "", "rewrite the \"end to end\" section of this BENCHMARKS.md")
		svg      = flag.String("svg", "", "write the Mpps-per-size plot here (SVG)")
		latency  = flag.Bool("latency", true, "latency phase: Linux forwarding, fwdd adaptive and fwdd busy at -lat-rate with stamps; idle fwdd's CPU")
		latRate  = flag.Float64("lat-rate", 20000, "packets/s of the latency phase")
		genRT    = flag.Int("gen-rt", 0, "run the generator SCHED_RR at this priority (0: ordinary; for A/B runs on a loaded machine)")
		crefRT   = flag.Int("cref-rt", 0, "run the C AF_XDP forwarder SCHED_FIFO at this priority (0: ordinary, like fwdd -poll busy; for A/B runs on a loaded machine, beside -fwdd-args \"-rt N\")")
		busyNice = flag.Int("busy-nice", -20, "nice value of fwdd's worker in the busy latency leg (fwdd -nice; 0: unchanged). A busy poller cannot run SCHED_FIFO like the other legs' router threads (it would starve its CPU's deferred kernel work); at -20 other ordinary threads no longer take its CPU for whole time slices")
		latLegs  = flag.String("lat-legs", "", "latency legs to run, comma-separated (linux, fwdd-adaptive, fwdd-busy; default all)")
		latIdle  = flag.Duration("lat-idle", 3*time.Second, "how long an idle fwdd's CPU use is measured")
		xskSrc   = flag.String("xskfwd", defaultXskfwdSource, "source of the C AF_XDP reference forwarder (c-afxdp leg; built with gcc -lxdp -lbpf)")
		perfDir  = flag.String("perf", "", "record perf (cpu-clock, call graphs) on the router and generator CPUs during each flat-out trial of the first size, into this directory (LEG-GEN-repN.data), the same for every leg")
		sinkRPS  = flag.String("sink-rps", "", "DIAGNOSTIC, not the issue's rig: steer the sink veth's receive (skbs the router transmits) to this CPU with RPS on s0, for every leg alike, so that it no longer runs on the router CPU as veth makes it (on real NICs the sink is another machine); empty: off, the rig as specified")
		fetchURL = flag.String("fetch", "", "internal: fetch URL to -o (run inside the router namespace)")
		fetchOut = flag.String("o", "", "internal: output of -fetch")
	)
	flag.Parse()
	if *fetchURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := fetch(ctx, *fetchURL, *fetchOut); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench-e2e: needs root (namespaces, veth, XDP); run: sudo make bench-e2e")
		return 2
	}
	cfg := config{bin: *bin, dur: *dur, reps: *reps, flows: *flows, genCPU: *genCPU, rtrCPU: *rtrCPU, napi: *napi, napiRT: *napiRT, afpTx: *afpTx, xskfwdSrc: *xskSrc, latency: *latency, latRate: *latRate, latIdle: *latIdle, fwddArgs: strings.Fields(*fwddArgs),
		search: *search, sink: *sink, searchDur: *sdur, searchMax: *smax, budget: *budget}
	var err error
	if cfg.sizes, err = parseInts(*sizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e: -sizes:", err)
		return 2
	}
	if cfg.searchSz, err = parseInts(*ssizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e: -search-sizes:", err)
		return 2
	}
	cfg.legs = strings.Split(*legs, ",")
	cfg.genRT, cfg.crefRT, cfg.busyNice = *genRT, *crefRT, *busyNice
	cfg.perfDir, cfg.sinkRPS, cfg.portArgs = *perfDir, *sinkRPS, *portArgs
	if *latLegs != "" {
		cfg.latLegs = strings.Split(*latLegs, ",")
	}
	if *gens != "" {
		cfg.gens = strings.Split(*gens, ",")
	}
	if *quick {
		cfg.dur, cfg.reps, cfg.sizes = time.Second, 2, []int{64}
		cfg.searchDur, cfg.searchMax, cfg.searchSz = time.Second, 4, []int{64}
		cfg.budget = 90 * time.Second
	}
	rep, code := runHarness(cfg, os.Stderr)
	if rep == nil {
		return code
	}
	fmt.Print(rep.text())
	if *svg != "" {
		if err := os.WriteFile(*svg, []byte(rep.svg()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench-e2e:", err)
			return 1
		}
	}
	if *bench != "" {
		svgRel := ""
		if *svg != "" {
			if r, err := filepath.Rel(filepath.Dir(*bench), *svg); err == nil {
				svgRel = r
			}
		}
		if err := rewriteSection(*bench, "end to end", rep.markdown(svgRel)); err != nil {
			fmt.Fprintln(os.Stderr, "bench-e2e:", err)
			return 1
		}
	}
	return code
}

// runHarness builds the topology, runs the legs and returns the report. It
// cleans up on every path, including SIGINT/SIGTERM.
func runHarness(cfg config, log *os.File) (*report, int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cleanupStale()
	if _, err := os.Stat(filepath.Join(cfg.bin, "fwdgen")); err != nil {
		fmt.Fprintf(os.Stderr, "bench-e2e: %s/fwdgen missing: run make bench-e2e (or go build -o %s/ ./cmd/fwdgen)\n", cfg.bin, cfg.bin)
		return nil, 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		return nil, 1
	}
	start := time.Now()
	topo, err := newTopo(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e: topology:", err)
		return nil, 1
	}
	defer topo.Close()
	bctx, cancel := context.WithTimeout(ctx, cfg.budget)
	defer cancel()
	h := &harness{cfg: cfg, topo: topo, self: self, log: log, budget: bctx}
	// NAPI on the sink veth: redirected frames (XDP, AF_XDP) are dropped
	// silently without it.
	if err := topo.ethtool(ctx, topo.S, "-K", topo.S0, "gro", "on"); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		return nil, 1
	}
	if cfg.sinkRPS != "" {
		cpu, err := strconv.Atoi(cfg.sinkRPS)
		if err == nil {
			err = topo.rps(ctx, topo.S, topo.S0, cpu)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-e2e: -sink-rps:", err)
			return nil, 1
		}
		h.notes = append(h.notes, fmt.Sprintf("DIAGNOSTIC RIG (-sink-rps %s): RPS on the sink veth moves the sink's receive of skbs to CPU %s for every leg; the issue's rig keeps it on the router CPU", cfg.sinkRPS, cfg.sinkRPS))
	}
	fmt.Fprintf(log, "bench-e2e: topology %s/%s/%s up; generator on CPU %d, router on CPU %d\n", topo.G, topo.R, topo.S, cfg.genCPU, cfg.rtrCPU)
	err = h.runAll(ctx)
	code := 0
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		code = 1
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench-e2e: interrupted; namespaces removed")
			return nil, 130
		}
	}
	return &report{h: h, elapsed: time.Since(start), when: time.Now().UTC()}, code
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
