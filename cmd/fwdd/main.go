// Command fwdd is the fwdd router daemon.
//
//	fwdd -c FILE [-s SOCKET] [-metrics ADDR] [-pprof ADDR] [-profile cpu|mem|mutex|block|trace]
//	     [-profile-dir DIR] [-cpus LIST] [-workers N] [-poll busy|adaptive] [-idle-spin D] [-rt PRIO] [-ctl-rt PRIO] [-log-level LEVEL]
//	fwdd -check -c FILE
//
// It reads FILE (the command language of fwdctl, one command per line),
// validates all of it, starts the dataplane and applies it, then serves the
// control socket. SIGHUP re-reads FILE and applies the difference; SIGTERM
// and SIGINT stop it cleanly (a second one exits at once, status 1).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fwdd/fwdd/ctl"
	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/vnet"
	"github.com/pkg/profile"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("fwdd", flag.ContinueOnError)
	var (
		config    = fs.String("c", "", "configuration `file` (required)")
		check     = fs.Bool("check", false, "validate the configuration file and exit (like nginx -t)")
		socket    = fs.String("s", ctl.DefaultSocket, "control socket `path`")
		metrics   = fs.String("metrics", "", "serve Prometheus metrics on `addr` (e.g. 127.0.0.1:9417); off by default")
		pprofAddr = fs.String("pprof", "", "serve net/http/pprof on `addr` (e.g. 127.0.0.1:6060); off by default")
		profMode  = fs.String("profile", "", "write a profile for the whole run: cpu, mem, mutex, block or trace")
		profDir   = fs.String("profile-dir", ".", "`directory` for -profile output")
		cpus      = fs.String("cpus", "", "pin workers to these CPUs, e.g. 1 or 0-3,6; one worker per CPU")
		workers   = fs.Int("workers", 0, "number of poll-mode workers (default: one per -cpus entry, or 1)")
		pollMode  = fs.String("poll", "adaptive", "worker poll mode: busy (spin, like DPDK) or adaptive (sleep when idle)")
		poolSize  = fs.Int("mbufs", 0, "mbufs per worker (default 16384)")
		nice      = fs.Int("nice", 0, "nice value of the workers' threads (-20..19; 0: the process's). For -poll busy at ordinary scheduling: -20 keeps other threads on a worker's CPU from taking it for whole time slices")
		rtPrio    = fs.Int("rt", 0, "run workers SCHED_FIFO at this priority (1-99; 0: ordinary scheduling). With -poll busy a worker then never yields its CPU: give it a CPU of its own (-cpus)")
		ctlRT     = fs.Int("ctl-rt", 0, "run fwdd's other threads (control goroutine, netlink mirror, Go runtime) SCHED_FIFO at this priority (1-99; 0: ordinary scheduling), so that route changes reach the workers within a millisecond even when other processes keep the non-worker CPUs busy (docs/tuning.md). Use with -cpus")
		idleSpin  = fs.Duration("idle-spin", 0, "adaptive poll: keep polling this long after the last packet before sleeping (default 200µs)")
		logLevel  = fs.String("log-level", "info", "log level: debug, info, warn or error")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: fwdd -c FILE [options]\n       fwdd -check -c FILE\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "fwdd: unexpected argument %q (options come as -flag value)\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "fwdd: -log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *config == "" {
		fmt.Fprintln(os.Stderr, "fwdd: -c FILE is required (see fwdd -h; an example is in docs/config.md of the source tree)")
		return 2
	}
	// The options are checked before -check, so that -check validates the
	// whole command line a start would use.
	cpuList, err := parseCPUList(*cpus)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fwdd: -cpus: %v\n", err)
		return 2
	}
	pm, err := fwd.ParsePollMode(*pollMode)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fwdd: -poll: %v\n", err)
		return 2
	}
	if *rtPrio < 0 || *rtPrio > 99 {
		fmt.Fprintf(os.Stderr, "fwdd: -rt %d: want a SCHED_FIFO priority from 1 to 99, or 0 for ordinary scheduling\n", *rtPrio)
		return 2
	}
	if *ctlRT < 0 || *ctlRT > 99 {
		fmt.Fprintf(os.Stderr, "fwdd: -ctl-rt %d: want a SCHED_FIFO priority from 1 to 99, or 0 for ordinary scheduling\n", *ctlRT)
		return 2
	}
	if *check {
		// The pools the ports' kernel rings take from are sized by
		// -workers/-cpus and -mbufs: check with them.
		if err := vnet.CheckFileEngine(*config, fwd.Config{Workers: *workers, CPUs: cpuList, PoolSize: *poolSize}); err != nil {
			fmt.Fprintf(os.Stderr, "fwdd: %v\n", err)
			return 1
		}
		fmt.Printf("fwdd: configuration file %s is valid\n", *config)
		return 0
	}
	if *profMode != "" {
		var mode func(*profile.Profile)
		switch *profMode {
		case "cpu":
			mode = profile.CPUProfile
		case "mem":
			mode = profile.MemProfile
		case "mutex":
			mode = profile.MutexProfile
		case "block":
			mode = profile.BlockProfile
		case "trace":
			mode = profile.TraceProfile
		default:
			fmt.Fprintf(os.Stderr, "fwdd: -profile %q: want cpu, mem, mutex, block or trace\n", *profMode)
			return 2
		}
		defer profile.Start(mode, profile.ProfilePath(*profDir), profile.Quiet, profile.NoShutdownHook).Stop()
	}

	// Route churn makes garbage at the rate FIB snapshots are published:
	// fewer collections, for a bigger heap (fib.GCPercent). GOGC in the
	// environment still wins.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(fib.GCPercent)
	}

	// The workers' CPUs are theirs: the runtime's other threads go to the
	// CPUs left (when there are any).
	allowed, rest, err := fwd.ReserveCPUs(cpuList)
	if err != nil {
		log.Warn("cannot keep other threads off the worker CPUs", "err", err)
	} else if rest != "" {
		log.Info("worker CPUs reserved", "workers", *cpus, "other threads", rest)
	}
	// Before the workers start: their threads inherit it and go back to
	// ordinary scheduling (fwd.Config.ControlRT) unless -rt is given.
	if *ctlRT > 0 {
		if err := fwd.ControlRT(*ctlRT); err != nil {
			log.Warn("cannot run the control threads SCHED_FIFO, keeping ordinary scheduling (needs CAP_SYS_NICE)", "priority", *ctlRT, "err", err)
			_ = fwd.ControlRT(0)
			*ctlRT = 0
		} else {
			log.Info("control threads SCHED_FIFO", "priority", *ctlRT)
		}
	}

	d, err := vnet.Start(vnet.Config{
		ConfigFile: *config,
		Socket:     *socket,
		Engine:     fwd.Config{Workers: *workers, CPUs: cpuList, AllowedCPUs: allowed, PollMode: pm, PoolSize: *poolSize, RTPriority: *rtPrio, ControlRT: *ctlRT, Nice: *nice, IdleSpin: *idleSpin},
		Log:        log,
	})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}

	var servers []*http.Server
	if *metrics != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(d.Metrics(), promhttp.HandlerOpts{}))
		srv, err := serve(*metrics, mux, log, "metrics")
		if err != nil {
			log.Error("metrics", "err", err)
			d.Shutdown()
			return 1
		}
		servers = append(servers, srv)
	}
	if *pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		srv, err := serve(*pprofAddr, mux, log, "pprof")
		if err != nil {
			log.Error("pprof", "err", err)
			d.Shutdown()
			return 1
		}
		servers = append(servers, srv)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// Reloads run on their own goroutine (one at a time; SIGHUPs during
	// one are coalesced into one more), so SIGTERM is acted on at once
	// even while a reload reads a large or slow route file.
	hup := make(chan struct{}, 1)
	go func() {
		for range hup {
			if err := d.Reload(); err != nil {
				log.Error("reload failed; the running configuration is unchanged", "file", *config, "err", err)
			} else {
				log.Info("reloaded", "file", *config)
			}
		}
	}()
	status := 0
wait:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				select {
				case hup <- struct{}{}:
				default: // one is pending already
				}
				continue
			}
			log.Info("stopping", "signal", sig.String())
			break wait
		case <-d.Failed():
			// The control goroutine stopped on a panic (docs/ctl.md,
			// "Panics"): stop cleanly, and say so in the exit status so a
			// supervisor restarts us.
			log.Error("stopping after an internal error", "err", d.Err())
			status = 70 // EX_SOFTWARE
			break wait
		}
	}
	// The signals stay subscribed until the process exits. A reload asked
	// for while stopping is moot, so a SIGHUP is dropped; a second SIGTERM
	// or SIGINT means the operator will not wait for the clean shutdown.
	// Neither signal.Stop nor signal.Ignore may be used here: a SIGHUP sent
	// just before the SIGTERM can still be inside the runtime's handler on
	// another thread, and once SIGHUP is no longer wanted that handler
	// falls back to the default action and kills the process (Go 1.26's
	// sigfwdgo; seen under load as "signal: hangup" exits).
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGHUP {
				continue
			}
			log.Warn("second stop signal: exiting without finishing the shutdown", "signal", sig.String())
			os.Exit(1)
		}
	}()
	close(hup)
	for _, s := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.Shutdown(ctx)
		cancel()
	}
	d.Shutdown()
	log.Info("stopped")
	return status
}

func serve(addr string, h http.Handler, log *slog.Logger, what string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-%s %s: %w", what, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving "+what, "addr", ln.Addr().String())
	return srv, nil
}

// parseCPUList parses "0-3,6".
func parseCPUList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q: want CPU numbers like 0-3,6", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil || b < a {
				return nil, fmt.Errorf("%q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}
