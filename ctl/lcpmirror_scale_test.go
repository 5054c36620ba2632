package ctl

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/nlmirror"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// fullTablePath finds ../shared/data/fulltable-2024.txt.gz above the
// working directory, or skips.
func fullTablePath(tb testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		tb.Skip(err)
	}
	for {
		p := filepath.Join(dir, "shared", "data", "fulltable-2024.txt.gz")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		up := filepath.Dir(dir)
		if up == dir {
			tb.Skip("no shared/data/fulltable-2024.txt.gz above the working directory")
		}
		dir = up
	}
}

// fibView reads the workers' view of FIB 0: the published snapshot, as a
// worker loads it once per burst. The FIB set reuses the snapshot memory
// its readers have left (fib.Config.Readers), so the test reads through a
// Reader of its own, online only for the lookup, like a worker.
type fibView struct {
	f  *fib.FIBs
	rd *fib.Reader
}

func (e *lcpEnv) view() fibView {
	var v fibView
	if err := e.d.do(func(s *stack) { v.f = s.fibs; v.rd = s.eng.FIBReaders().NewReader() }); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(v.rd.Close)
	return v
}

func (v fibView) lookup(a netip.Addr) uint32 {
	v.rd.Online()
	defer v.rd.Offline()
	s := v.f.Load()
	if a.Is4() {
		b := a.As4()
		return s.Lookup4(0, binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return s.Lookup6(0, &b)
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestLCPMirrorFullTable installs the full Internet table (IPv4 and IPv6)
// in the kernel's main table with ip -batch, through an lcp interface, and
// checks that fwdd's FIB holds it exactly (every prefix, and lookups of a
// sample) once the route the kernel took last is in, with the memory the
// FIB needs. The lag behind the kernel is logged (the target is 2 s;
// BenchmarkLCPMirrorLag measures it); only 30 s fails.
// In CI (make test) it takes the first 60,000 IPv4 and 15,000 IPv6
// prefixes; FWDD_FULLTABLE=1 takes them all (about a minute on a quiet
// machine, mostly the kernel's own ip -batch).
func TestLCPMirrorFullTable(t *testing.T) {
	path := fullTablePath(t)
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	all, err := parsePrefixes(context.Background(), path, fh)
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The marker routes, one per family, go in last: the only routes via
	// their gateways, and no table prefix overlaps them (the table's are
	// left out), so the workers' view answers with a marker's gateway only
	// once the marker itself is in, and the events being in order,
	// everything before it. (Probing a table prefix with its own gateway
	// is not enough: a less specific table route with the same gateway,
	// already in, answers for it while it and others are still on their
	// way.)
	mark4 := netip.MustParsePrefix("198.19.255.0/24")
	mark6 := netip.MustParsePrefix("2001:2:0:ff00::/56")
	const gw4, gwMark4 = "198.18.0.2", "198.18.0.3"
	const gw6, gwMark6 = "2001:2::2", "2001:2::3"
	var v4, v6 []netip.Prefix
	for _, p := range all {
		if p.Overlaps(mark4) || p.Overlaps(mark6) {
			continue
		}
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	all = nil
	switch {
	case mirrorRace:
		// Under the race detector: the mechanics, not the timing.
		v4, v6 = v4[:15000], v6[:5000]
	case os.Getenv("FWDD_FULLTABLE") == "":
		v4, v6 = v4[:60000], v6[:15000]
	}
	e := newLCPEnv(t, lcpConfig)
	v := e.view()

	write := func(name string, ps []netip.Prefix, gw string, mark netip.Prefix, gwMark string) string {
		f := filepath.Join(t.TempDir(), name)
		w, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		bw := bufio.NewWriterSize(w, 1<<20)
		for _, p := range ps {
			fmt.Fprintf(bw, "route replace %s via %s dev e0\n", p, gw)
		}
		fmt.Fprintf(bw, "route replace %s via %s dev e0\n", mark, gwMark)
		bw.Flush()
		w.Close()
		return f
	}
	f4 := write("v4", v4, gw4, mark4, gwMark4)
	f6 := write("v6", v6, gw6, mark6, gwMark6)

	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)

	start := time.Now()
	ipBatch := func(fam, f string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ip", "-n", e.ns, fam, "-batch", f).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s -batch: %v\n%s", fam, err, out)
		}
	}
	ipBatch("-4", f4)
	ipBatch("-6", f6)
	held := time.Now() // the kernel holds every route
	marked := func(p netip.Prefix, gw string) bool {
		nh := v.lookup(lastAddr(p))
		if nh == fib.NoRoute {
			return false
		}
		h := v.f.Load().NextHop(nh)
		return h.Kind == fib.KindGateway && h.Addr == netip.MustParseAddr(gw)
	}
	deadline := held.Add(30 * time.Second)
	for !(marked(mark4, gwMark4) && marked(mark6, gwMark6)) {
		if time.Now().After(deadline) {
			t.Fatalf("fwdd's FIB did not get the last routes 30 s after the kernel held them")
		}
		time.Sleep(time.Millisecond)
	}
	visible := time.Now()
	lag := visible.Sub(held)
	n := len(v4) + len(v6)
	t.Logf("%d IPv4 + %d IPv6 routes: kernel held them after %v (ip -batch), fwdd's workers saw the last %v later; ingest %.0f routes/s",
		len(v4), len(v6), held.Sub(start).Round(time.Millisecond), lag.Round(time.Millisecond), float64(n)/visible.Sub(start).Seconds())
	if lag > 2*time.Second && !mirrorRace {
		t.Logf("NOTE: above the 2 s target (a loaded machine?)")
	}

	// Exactly the kernel's table (the markers included): counts, every
	// prefix, and a sample of lookups. The markers being in, a missing
	// route is a lost one, not a late one.
	var k4, k6 int
	var missing []netip.Prefix
	var memFIB [2]int
	if err := e.d.do(func(s *stack) {
		rs, _ := s.fibs.Routes(0)
		conn := s.lcpConnected(s.connected)
		for _, r := range rs {
			if s.lcpIsKernel(r, conn) {
				if r.Prefix.Addr().Is4() {
					k4++
				} else {
					k6++
				}
			}
		}
		if k4 != len(v4)+1 || k6 != len(v6)+1 {
			for _, p := range append(append(slices.Clip(v4), v6...), mark4, mark6) {
				if _, ok, _ := s.fibs.RouteExact(0, p); !ok && len(missing) < 20 {
					missing = append(missing, p)
				}
			}
		}
		memFIB[0], memFIB[1] = s.fibs.Load().MemStats(0)
	}); err != nil {
		t.Fatal(err)
	}
	if k4 != len(v4)+1 || k6 != len(v6)+1 {
		t.Errorf("fwdd has %d IPv4 + %d IPv6 kernel routes, the kernel %d + %d; missing (at most 20): %v",
			k4, k6, len(v4)+1, len(v6)+1, missing)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		p := v4[rng.IntN(len(v4))]
		if rng.IntN(4) == 0 {
			p = v6[rng.IntN(len(v6))]
		}
		if v.lookup(p.Addr()) == fib.NoRoute || v.lookup(lastAddr(p)) == fib.NoRoute {
			t.Fatalf("%s: no route in fwdd", p)
		}
	}

	// Memory: the heap grew by about what the FIB needs.
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	grew := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	t.Logf("heap grew %.1f MB for %d routes (%.1f B/route); FIB lookup structures %.1f MB (IPv4) + %.1f MB (IPv6)",
		float64(grew)/1e6, n, float64(grew)/float64(n), float64(memFIB[0])/1e6, float64(memFIB[1])/1e6)
	// Baseline: the same routes in a bare fib.FIBs (RIB and lookup
	// structure, nothing else), built in this process.
	runtime.GC()
	var b0, b1 runtime.MemStats
	runtime.ReadMemStats(&b0)
	bf, _ := fib.New(fib.Config{FIBs: 1})
	nh, _ := bf.AddNextHop(fib.NextHop{Kind: fib.KindGateway, Port: 0, Addr: netip.MustParseAddr("198.18.0.2")})
	cs := make([]fib.Change, 0, n)
	for _, p := range append(slices.Clip(v4), v6...) {
		cs = append(cs, fib.Change{Op: fib.OpAdd, Prefix: p, NextHop: nh})
	}
	if err := bf.Apply(cs); err != nil {
		t.Fatal(err)
	}
	cs = nil
	runtime.GC()
	runtime.ReadMemStats(&b1)
	base := int64(b1.HeapAlloc) - int64(b0.HeapAlloc)
	runtime.KeepAlive(bf)
	t.Logf("a bare fib.FIBs with the same routes: %.1f MB (%.1f B/route); mirrored/bare = %.2f",
		float64(base)/1e6, float64(base)/float64(n), float64(grew)/float64(base))
	if float64(grew) > 1.5*float64(base)+8e6 {
		t.Errorf("the mirrored table costs %.1f MB, a bare FIB %.1f MB: the mirror keeps per-route state", float64(grew)/1e6, float64(base)/1e6)
	}

	// A forced full resync (what an overrun triggers) of the whole table:
	// the dump's ingest rate, and nothing changes.
	var last0, last string
	e.d.do(func(s *stack) { last0 = s.lcpm.st.LastDump; s.lcpm.m.Resync("test") })
	rs0 := time.Now()
	testnet.Eventually(t, 60*time.Second, "resync done", func() bool {
		e.d.do(func(s *stack) { last = s.lcpm.st.LastDump })
		return last != last0 && strings.Contains(last, "(test,")
	})
	t.Logf("full resync of %d routes: %v (%.0f routes/s); %s", n, time.Since(rs0).Round(time.Millisecond), float64(n)/time.Since(rs0).Seconds(), last)
	if v.lookup(v4[len(v4)-1].Addr()) == fib.NoRoute {
		t.Error("the resync lost routes")
	}

	// Withdrawing it all empties fwdd's FIB of kernel routes again (one
	// table flush: a single message per route).
	e.n.In(e.ns, "ip", "-4", "route", "flush", "proto", "boot")
	e.n.In(e.ns, "ip", "-6", "route", "flush", "proto", "boot")
	testnet.Eventually(t, 30*time.Second, "routes withdrawn", func() bool {
		return v.lookup(v4[len(v4)-1].Addr()) == fib.NoRoute && v.lookup(v6[len(v6)-1].Addr()) == fib.NoRoute
	})
}

// BenchmarkLCPMirrorLag adds /32 routes to the kernel at 10,000 per second
// (netlink, one route per message, as a routing daemon does) and measures
// the lag from the kernel's acknowledgement to the route being in the
// snapshot the workers load. Run it with -benchtime=1x (each run sends
// 30,000 routes); it reports p50, p99 and max lag and the rate reached.
//
// Baseline in the same run: the kernel's own time to take one route (the
// sender's RouteAdd call, netlink request to acknowledgement). The "max"
// sub-benchmark sends as fast as one netlink socket goes, for the
// mirror's ingest rate.
func BenchmarkLCPMirrorLag(b *testing.B) {
	for _, rate := range []int{10000, 0} {
		name := "rate=" + fmt.Sprint(rate)
		if rate == 0 {
			name = "rate=max"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				benchLag(b, rate, 30000)
			}
		})
	}
}

func benchLag(b *testing.B, rate, total int) {
	n := testnet.New(b)
	ns := n.NS("fw")
	dir := b.TempDir()
	conf := filepath.Join(dir, "fwdd.conf")
	if err := os.WriteFile(conf, []byte(lcpConfig), 0o644); err != nil {
		b.Fatal(err)
	}
	// FWDD_MIRROR_COALESCE (a duration, e.g. 2ms) sets the mirror's
	// Coalesce: the hand-over before 2026-11-30 (2 ms) against the
	// default (none: each batch as soon as the mirror has drained what is
	// ready), in one run.
	var coalesce time.Duration
	if v := os.Getenv("FWDD_MIRROR_COALESCE"); v != "" {
		c, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("FWDD_MIRROR_COALESCE=%q: %v", v, err)
		}
		coalesce = c
	}
	// FWDD_LAG_CTL_RT=PRIO runs the process's threads SCHED_FIFO at PRIO
	// as fwdd -ctl-rt does (fwd.ControlRT; the worker returns to ordinary
	// scheduling), except the sender's, which stands for the routing
	// daemon, another process at ordinary priority.
	ctlRT := 0
	if v := os.Getenv("FWDD_LAG_CTL_RT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 99 {
			b.Fatalf("FWDD_LAG_CTL_RT=%q: want a priority from 1 to 99", v)
		}
		if err := fwd.ControlRT(p); err != nil {
			b.Skipf("FWDD_LAG_CTL_RT: %v", err)
		}
		defer func() { _ = fwd.ControlRT(0) }()
		ctlRT = p
	}
	d, err := startQuiet(conf, testnet.Path(ns), coalesce, ctlRT)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Shutdown()
	testnet.Eventually(b, 10*time.Second, "address on e0", func() bool {
		out, _ := n.TryIn(ns, "ip", "addr", "show", "dev", "e0")
		return strings.Contains(out, "198.18.0.1/24")
	})
	var f *fib.FIBs
	var rd *fib.Reader // the poller reads like a worker (see fibView)
	d.do(func(s *stack) { f = s.fibs; rd = s.eng.FIBReaders().NewReader() })
	defer rd.Close()
	h, err := netns.GetFromPath(testnet.Path(ns))
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		b.Fatal(err)
	}
	defer nh.Close()
	link, err := nh.LinkByName("e0")
	if err != nil {
		b.Fatal(err)
	}
	// added[i] is when the kernel acknowledged route i, in ns since begin
	// plus one (0: not yet): stored and loaded atomically, since the
	// poller reads it while the sender writes (a time.Time read while it
	// is written can be torn: a lag of seconds, seen until 2026-11-30).
	added := make([]atomic.Int64, total)
	seen := make([]time.Duration, total)
	call := make([]time.Duration, total)
	addr := func(i int) uint32 { return 198<<24 | 19<<16 | uint32(i) } // 198.19.0.0/16
	done := make(chan error, 1)
	cpu0 := processCPU()
	begin := time.Now()
	go func() {
		if ctlRT > 0 {
			// The routing daemon's stand-in at ordinary scheduling; the
			// thread ends with the goroutine (still locked).
			runtime.LockOSThread()
			attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}
			if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
				done <- err
				return
			}
		}
		gw := net.ParseIP("198.18.0.2")
		for i := range total {
			// Pace: route i is due at begin + i/rate.
			if rate > 0 {
				if d := time.Until(begin.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
					time.Sleep(d)
				}
			}
			t0 := time.Now()
			ip := make(net.IP, 4)
			binary.BigEndian.PutUint32(ip, addr(i))
			err := nh.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}, Gw: gw})
			if err != nil {
				done <- err
				return
			}
			now := time.Now()
			added[i].Store(int64(now.Sub(begin)) + 1)
			call[i] = now.Sub(t0)
		}
		done <- nil
	}()
	// The poller looks every 50 µs. By default it waits for a timerfd
	// that expires every 50 µs, through the netpoller, as fwdd's control
	// goroutine waits for netlink: until 2026-11-30 it slept with
	// time.Sleep(50 µs), which Go turns into ~1 ms on an idle machine
	// (its timers wait in epoll_wait with millisecond timeouts), so the
	// quiet p50 was the poller's granularity, not the mirror's
	// (FWDD_LAG_POLL=sleep for that poller, =spin to spin instead).
	pollMode := os.Getenv("FWDD_LAG_POLL")
	var tick *os.File
	switch pollMode {
	case "sleep", "spin":
	case "", "timer":
		pollMode = "timer"
		fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
		if err != nil {
			b.Fatalf("timerfd_create: %v", err)
		}
		tick = os.NewFile(uintptr(fd), "timerfd")
		defer tick.Close()
		iv := unix.NsecToTimespec(int64(50 * time.Microsecond))
		if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: iv, Value: iv}, nil); err != nil {
			b.Fatalf("timerfd_settime: %v", err)
		}
	default:
		b.Fatalf("FWDD_LAG_POLL=%q: want timer (default), sleep or spin", pollMode)
	}
	var expiries [8]byte
	// The poller: the oldest routes not yet seen, in order.
	next := 0
	var sendErr error
	sent := false
	deadline := time.Now().Add(time.Duration(total/max(rate, 1000)+30) * time.Second)
	for next < total {
		if !sent {
			select {
			case sendErr = <-done:
				sent = true
				if sendErr != nil {
					b.Fatal(sendErr)
				}
			default:
			}
		}
		rd.Online()
		s := f.Load()
		for next < total && added[next].Load() != 0 && s.Lookup4(0, addr(next)) != fib.NoRoute {
			seen[next] = time.Since(begin) - time.Duration(added[next].Load()-1)
			next++
		}
		rd.Offline()
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d routes seen", next, total)
		}
		switch pollMode {
		case "timer":
			if _, err := tick.Read(expiries[:]); err != nil {
				b.Fatalf("timerfd read: %v", err)
			}
		case "spin":
			// Look again after 50 µs of spinning, as a busy worker would.
			for t := time.Now(); time.Since(t) < 50*time.Microsecond; {
				runtime.Gosched()
			}
		default:
			time.Sleep(50 * time.Microsecond)
		}
	}
	elapsed := time.Since(begin)
	cpu := processCPU() - cpu0
	if !sent {
		<-done
	}
	// A route found before added[i] was stored (the poller saw the
	// route before the sender's clock read) counts as 0.
	for i := range seen {
		if seen[i] < 0 {
			seen[i] = 0
		}
	}
	slices.Sort(seen)
	p := func(q float64) float64 { return float64(seen[int(q*float64(len(seen)-1))].Microseconds()) }
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
	b.ReportMetric(float64(seen[len(seen)-1].Microseconds()), "max-µs")
	b.ReportMetric(float64(total)/elapsed.Seconds(), "routes/s")
	slices.Sort(call)
	kp := func(q float64) float64 { return float64(call[int(q*float64(len(call)-1))].Microseconds()) }
	b.ReportMetric(kp(0.50), "kernel-p50-µs")
	b.ReportMetric(kp(0.99), "kernel-p99-µs")
	// The process's CPU time per route (fwdd, its worker, the sender and
	// the poller, which are the same in every run): what the hand-over
	// policy costs.
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "process-cpu-µs/route")
	var st lcpStats
	d.do(func(s *stack) { st = s.lcpm.st; st.Mirror = s.lcpm.m.Stats() })
	b.Logf("poller %s, control threads SCHED_FIFO %d (0: ordinary); rate %d/s (0: max), %d routes in %v: lag p50 %.0f µs p99 %.0f µs max %v (kernel's RouteAdd p50 %.0f µs p99 %.0f µs); %d batches (%.1f routes/batch), waited %d, overruns %d",
		pollMode, ctlRT, rate, total, elapsed.Round(time.Millisecond), p(0.5), p(0.99), seen[len(seen)-1], kp(0.5), kp(0.99), st.Batches, float64(st.Events)/float64(max(st.Batches, 1)), st.Mirror.Coalesced, st.Mirror.Overruns)
}

// startQuiet starts fwdd with config file conf in namespace ns, logging
// nothing, with the netlink mirror's Coalesce set to coalesce.
func startQuiet(conf, ns string, coalesce time.Duration, ctlRT int) (*Daemon, error) {
	return Start(Options{
		ConfigFile: conf, NetNS: ns,
		Engine: fwd.Config{Workers: 1, PoolSize: 2048, CheckedPools: true, ControlRT: ctlRT},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		mirror: func(c *nlmirror.Config) { c.Coalesce = coalesce },
	})
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
