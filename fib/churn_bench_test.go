package fib

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The churn benchmarks: a reader looks up continuously while a writer
// applies 10k route changes per second to the full table, as fwdd's
// control goroutine does for the routing daemons (nlmirror), and they
// measure when each change becomes visible to the reader.

// procStart is about when the process started (package initialisation),
// so that the churn benchmark can say when its churn phase began on the
// clock of GODEBUG=gctrace=1's lines.
var procStart = time.Now()

// churnResult is what runChurn measures.
type churnResult struct {
	idle, busy   float64       // lookups/s without and with changes
	writerCPU    time.Duration // CPU time of the writer during the churn phase
	p50, p99, mx time.Duration
	p999         time.Duration
	ap50, ap99   time.Duration // from Apply called to visible
	// CPU time of the writer's thread per Apply call (batch): what a
	// batch costs without the waits for a CPU on a loaded machine.
	cp50, cp99, cmx time.Duration
	// Wall time per Apply call; the p99 of the parts of the latency from
	// due: due to Apply called (pacing and waiting), Apply, Apply returned
	// to visible (the reader's next burst).
	wp99, qp99, pp99 time.Duration
	within1ms        float64 // share of changes visible within 1 ms of due
	changes          int
	batches          int
	// What the churn phase cost the Go heap: bytes allocated (by the FIB;
	// the benchmark's own bookkeeping is preallocated) and GC cycles
	// completed during it.
	allocBytes uint64
	gcs        uint64
	// late describes the batches whose changes were visible latest.
	late  []string
	start time.Duration // when the churn phase started, since the process did
	// Attribution (pinned fwdd writer only, see churn_attrib_test.go):
	// changes visible later than 1 ms by class, and the window's totals.
	lateBy  [numLate]int
	attrib  string
	samples int
}

// churnOpts places the churn benchmark's threads.
type churnOpts struct {
	// pin puts the reader's thread on CPU 0. With the fwdd writer (the
	// default) every other thread of the process goes to CPU 1, as
	// fwd.ReserveCPUs does for fwdd's worker CPUs (fwdd -cpus): the
	// control goroutine, the GC's workers and the runtime's other threads
	// share the CPUs that no worker has. With spin, the writer's thread is
	// pinned to CPU 1 instead and nothing else is moved.
	pin bool
	// fifoReader runs the reader's thread SCHED_FIFO (priority 1), like a
	// worker under fwdd -rt, so that other processes cannot take its CPU
	// (root only). A reader spinning at FIFO priority exhausts the
	// kernel's RT budget (sched_rt_runtime_us, 95 %) and gets every RT
	// thread throttled for the rest of the period, so it rests 50 µs
	// every ~1 ms.
	fifoReader bool
	// spin selects the writer of the benchmarks until 2026-11-30: a
	// thread locked to the writer goroutine that polls for due changes
	// every 20 µs with a raw nanosleep(2) (rawSleep), which the Go
	// scheduler never sees, so the thread keeps its P while it sleeps and
	// the runtime takes it for a goroutine running without a break: the
	// GC's workers get no P (GOMAXPROCS 2: the reader holds the other) and
	// sysmon preempts the writer every 10 ms, which hands its P over
	// through ordinary-priority threads. fwdd's control goroutine does
	// none of this. With fifoWriter the writer's thread also runs
	// SCHED_FIFO.
	//
	// The default writer is fwdd's: an ordinary goroutine (not locked, at
	// ordinary priority) that waits in the Go scheduler's netpoller for
	// the kernel to say that changes are due: a timerfd that expires at
	// every change's due time, as a netlink socket becomes readable when a
	// routing daemon's change arrives.
	spin, fifoWriter bool
	// sched are the scheduling attributes of every thread but the
	// reader's (FIB_CHURN_NICE, FIB_CHURN_SLICE; pin without spin only).
	sched schedOpts
}

// rawSleep sleeps in nanosleep(2) without telling the Go scheduler: the
// thread keeps its P, so it does not wait for one when it wakes (with
// syscall.Nanosleep the P is handed off and, when the GC's workers hold
// the others, getting one back can take milliseconds on a loaded machine).
func rawSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// setAffinity pins the calling thread to cpu (all CPUs if cpu < 0).
func setAffinity(tid, cpu int) error {
	var set unix.CPUSet
	if cpu >= 0 {
		set.Set(cpu)
	} else {
		for i := range runtime.NumCPU() {
			set.Set(i)
		}
	}
	return unix.SchedSetaffinity(tid, &set)
}

// allThreads pins every thread of the process to cpu (all CPUs if cpu <
// 0); see fwd.ReserveCPUs.
func allThreads(tb testing.TB, cpu int) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		tb.Fatal(err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := setAffinity(tid, cpu); err != nil && !errors.Is(err, unix.ESRCH) {
			tb.Fatalf("sched_setaffinity thread %d: %v", tid, err)
		}
	}
}

// place pins the calling (locked) thread to cpu, SCHED_FIFO if fifo.
func place(tb testing.TB, cpu int, fifo bool) {
	if err := setAffinity(0, cpu); err != nil {
		tb.Fatalf("sched_setaffinity: %v", err)
	}
	if fifo {
		prio := int32(1)
		if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, 1 /* SCHED_FIFO */, uintptr(unsafe.Pointer(&prio))); e != 0 {
			tb.Skipf("SCHED_FIFO: %v", e)
		}
	}
}

// unplace undoes place for the calling thread (before it is unlocked).
func unplace(fifo bool) {
	if fifo {
		prio := int32(0)
		syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, 0 /* SCHED_OTHER */, uintptr(unsafe.Pointer(&prio)))
	}
	var set unix.CPUSet
	for i := range runtime.NumCPU() {
		set.Set(i)
	}
	_ = unix.SchedSetaffinity(0, &set)
}

// cprefix is a prefix without pointers. A netip.Prefix holds one (its
// address's zone handle), so a list of a full table in netip.Prefix is
// 40 MB for the GC to scan in every cycle; fwdd keeps no such list (the
// FIB is the only per-route store), so neither does the churn benchmark.
type cprefix struct {
	a    [16]byte
	bits int8
	is4  bool
}

func toC(p netip.Prefix) cprefix {
	return cprefix{a: p.Addr().As16(), bits: int8(p.Bits()), is4: p.Addr().Is4()}
}

func (c cprefix) prefix() netip.Prefix {
	if c.is4 {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(c.a[12:])), int(c.bits))
	}
	return netip.PrefixFrom(netip.AddrFrom16(c.a), int(c.bits))
}

// batchRec is what the churn benchmark records of one batch (times since
// the start of runChurn; no pointers: see offHeap).
type batchRec struct {
	due    time.Duration // when the batch's first change was due
	a0, a1 time.Duration // Apply called, returned
	cpu    time.Duration // CPU time of the writer's thread in Apply
	gen    uint64        // the generation of the snapshot it published
	gcs    uint64        // GC cycles completed before Apply was called
	n      int           // changes
}

// offHeap returns a zeroed slice of n pointer-free T in memory mapped
// outside the Go heap, unmapped when tb ends. The churn benchmark keeps its
// big records there (the table it draws changes from, the probes, the
// reader's sightings: 40 MB), so that the heap the GC paces itself by and
// marks is the FIB's, as in fwdd (whose packets are in mapped mbuf memory
// too), and not inflated by the benchmark's bookkeeping, which would make
// GC cycles rarer.
func offHeap[T any](tb testing.TB, n int) []T {
	var t T
	b, err := syscall.Mmap(-1, 0, max(n*int(unsafe.Sizeof(t)), 1), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		tb.Fatalf("mmap: %v", err)
	}
	tb.Cleanup(func() { _ = syscall.Munmap(b) })
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// sight is the reader's record of a snapshot it loaded for the first
// time: the snapshot's generation and when, since base. Nothing in it
// points at the snapshot: the benchmark keeps no snapshot alive (until
// 2026-11-30 it kept every one it published, 50 MB/s of live heap for the
// GC to mark, which fwdd, whose old snapshots are garbage at once, does
// not have).
type sight struct {
	gen uint64
	t   time.Duration
}

// runChurn measures one reader looking up continuously (IPv4 batches of
// 64), first idle for d, then for d while the writer applies rate route
// changes per second (deletes and re-adds of random table prefixes, both
// families in proportion, applied in batches of whatever is due). Change
// k (from 1) is due at k/rate after the start; it is visible when the
// reader first loads a snapshot that contains it. Its latency counts from
// the time it was due (so it includes the wait for the writer to wake and
// run), and, separately, from the time the writer called Apply with it.
func runChurn(tb testing.TB, f *FIBs, all []cprefix, probes []uint32, rate int, d time.Duration, o churnOpts) churnResult {
	var stop atomic.Bool
	var readerTid atomic.Int32
	var at *attrib
	base := time.Now()
	sights := offHeap[sight](tb, 1<<20)[:0]
	reader := func() (n int) {
		if o.pin {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			place(tb, 0, o.fifoReader)
			defer unplace(o.fifoReader)
			readerTid.Store(int32(unix.Gettid()))
		}
		// A worker's registration with the FIBs' reader set, as in fwdd
		// (fwd.Engine.FIBReaders): online while it runs, a quiescent
		// point after every burst (fwd's workers: every loop iteration).
		var rd *Reader
		if f.rc != nil {
			rd = f.rc.d.NewReader()
			defer rd.Close()
			rd.Online()
		}
		var out [64]uint32
		var last *Snapshot
		rest := time.Now()
		for i := 0; !stop.Load(); i += 64 {
			if rd != nil {
				rd.Quiesce()
			}
			s := f.Load()
			if s != last {
				if len(sights) < cap(sights) {
					sights = append(sights, sight{s.Generation(), time.Since(base)})
				}
				last = s
			}
			j := i & (len(probes) - 1)
			s.Lookup4Batch(0, probes[j:j+64], out[:])
			n += 64
			if o.fifoReader && i&(64*256-1) == 0 {
				// Stay inside the RT budget: 50 µs of sleep every ~1 ms.
				if now := time.Now(); now.Sub(rest) > time.Millisecond {
					rawSleep(50 * time.Microsecond)
					rest = now
				}
			}
		}
		return n
	}
	// The per-batch records are preallocated off the heap (for more
	// batches than there can be changes), so that the benchmark's
	// bookkeeping makes no garbage during the churn phase and adds nothing
	// to the heap: the heap figures are the FIB's.
	nmax := int(d.Seconds()*float64(rate)) + 1024
	recs := offHeap[batchRec](tb, nmax)[:0]
	csBuf := make([]Change, 0, 4096)
	ms := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	var alloc0, gc0 uint64
	var wcpu time.Duration
	var t0 time.Time
	run := func(write bool) float64 {
		if o.spin {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if o.pin {
				place(tb, 1, o.fifoWriter)
				defer unplace(o.fifoWriter)
			}
			c0 := threadCPU()
			defer func() { wcpu = threadCPU() - c0 }()
		} else if o.pin {
			// fwdd -cpus: CPU 0 is the worker's, everything else runs on
			// CPU 1 (the reader's thread moves itself to CPU 0).
			runtime.GOMAXPROCS(runtime.GOMAXPROCS(0)) // as fwd.ReserveCPUs
			allThreads(tb, 1)
			defer allThreads(tb, -1)
		}
		// The kernel's signal that changes are due (fwdd mode): a
		// non-blocking timerfd, so os.File waits for it in the netpoller.
		var tf *os.File
		if write && !o.spin {
			fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
			if err != nil {
				tb.Fatalf("timerfd_create: %v", err)
			}
			tf = os.NewFile(uintptr(fd), "timerfd")
			defer tf.Close()
		}
		stop.Store(false)
		sights = sights[:0]
		done := make(chan int)
		recs = recs[:0]
		t0 = time.Now()
		readerTid.Store(0)
		go func() { done <- reader() }()
		if o.pin && !o.spin {
			// The reader's thread is the worker's; the others are the
			// control CPU's: give them o.sched and sample them.
			tid := 0
			for dl := time.Now().Add(10 * time.Second); tid == 0; tid = int(readerTid.Load()) {
				if time.Now().After(dl) {
					tb.Fatal("the reader did not start")
				}
				time.Sleep(100 * time.Microsecond)
			}
			if o.sched.set() {
				applySched(tb, o.sched, tid)
				defer applySched(tb, schedOpts{}, tid)
			}
			if o.sched.group {
				defer setGroupNice(tb, o.sched.groupNice)()
			}
			if write {
				at = newAttrib(tb, tid, 1, int(d.Seconds()*2000)+4096)
			}
		}
		rng := rand.New(rand.NewPCG(9, 9))
		deleted := make([]bool, len(all))
		applied := 0
		metrics.Read(ms)
		alloc0, gc0 = ms[0].Value.Uint64(), ms[1].Value.Uint64()
		if tf != nil {
			iv := unix.NsecToTimespec(int64(time.Second) / int64(rate))
			if err := unix.TimerfdSettime(int(tf.Fd()), 0, &unix.ItimerSpec{Interval: iv, Value: iv}, nil); err != nil {
				tb.Fatalf("timerfd_settime: %v", err)
			}
		}
		var tick [8]byte
		for time.Since(t0) < d {
			if !write {
				time.Sleep(time.Millisecond)
				continue
			}
			el := time.Since(t0)
			want := int(el.Seconds() * float64(rate))
			if want <= applied {
				if tf != nil {
					if _, err := tf.Read(tick[:]); err != nil {
						tb.Fatalf("timerfd read: %v", err)
					}
				} else {
					rawSleep(20 * time.Microsecond)
				}
				continue
			}
			if at != nil {
				// Sample at most once a millisecond, and whenever the
				// first change due was due more than 0.5 ms ago.
				due := time.Duration(float64(applied+1) / float64(rate) * 1e9)
				at.sample(time.Since(base), el-due > time.Millisecond/2)
			}
			cs := csBuf[:0]
			for range want - applied {
				i := rng.IntN(len(all))
				p := all[i].prefix()
				if deleted[i] {
					cs = append(cs, Change{Op: OpAdd, Prefix: p, NextHop: nhOf(p)})
				} else {
					cs = append(cs, Change{Op: OpDelete, Prefix: p})
				}
				deleted[i] = !deleted[i]
			}
			metrics.Read(ms[1:])
			r := batchRec{gcs: ms[1].Value.Uint64(), n: len(cs),
				due: t0.Add(time.Duration(float64(applied+1) / float64(rate) * 1e9)).Sub(base)}
			if !o.spin {
				// Only to read the thread's CPU time for this Apply.
				runtime.LockOSThread()
			}
			r.a0 = time.Since(base)
			c := threadCPU()
			if err := f.Apply(cs); err != nil {
				tb.Fatal(err)
			}
			r.cpu = threadCPU() - c
			r.a1 = time.Since(base)
			if !o.spin {
				runtime.UnlockOSThread()
			}
			r.gen = f.Load().Generation()
			if len(recs) == cap(recs) {
				tb.Fatal("more batches than changes")
			}
			recs = append(recs, r)
			csBuf = cs[:0]
			applied = want
		}
		stop.Store(true)
		n := <-done
		el := time.Since(t0)
		if write {
			metrics.Read(ms)
			alloc0, gc0 = ms[0].Value.Uint64()-alloc0, ms[1].Value.Uint64()-gc0
			if !o.spin {
				for _, r := range recs {
					wcpu += r.cpu
				}
			}
		}
		// Restore the table.
		var cs []Change
		for i, del := range deleted {
			if del {
				p := all[i].prefix()
				cs = append(cs, Change{Op: OpAdd, Prefix: p, NextHop: nhOf(p)})
			}
		}
		if err := f.Apply(cs); err != nil {
			tb.Fatal(err)
		}
		return float64(n) / el.Seconds()
	}
	var r churnResult
	r.idle = run(false)
	r.busy = run(true)
	r.writerCPU = wcpu
	r.allocBytes, r.gcs = alloc0, gc0
	r.start = t0.Sub(procStart)
	// Latency: for batch k, the first sighting of its snapshot or a later
	// one.
	var lat, alat, wl, ql, pl []time.Duration
	type lateBatch struct {
		k   int
		lat time.Duration
	}
	var worst []lateBatch
	si := 0
	var applyCPU []time.Duration
	for k, b := range recs {
		for si < len(sights) && sights[si].gen < b.gen {
			si++
		}
		if si == len(sights) {
			break // not seen before the reader stopped
		}
		seen := sights[si].t
		if at != nil && seen-b.due > time.Millisecond {
			r.lateBy[at.classOf(b.due, b.a0, b.a1, seen).class] += b.n
		}
		// The batch's first change was due at b.due; later ones of the
		// same batch were due later, so this is the worst of the batch.
		for range b.n {
			lat = append(lat, seen-b.due)
			alat = append(alat, seen-b.a0)
			ql = append(ql, b.a0-b.due)
			pl = append(pl, seen-b.a1)
		}
		wl = append(wl, b.a1-b.a0)
		applyCPU = append(applyCPU, b.cpu)
		r.changes += b.n
		worst = append(worst, lateBatch{k, seen - b.due})
	}
	r.batches = len(recs)
	slices.SortFunc(worst, func(x, y lateBatch) int { return int(y.lat - x.lat) })
	for _, w := range worst[:min(len(worst), 12)] {
		b := recs[w.k]
		gcs := "-"
		if w.k+1 < len(recs) {
			gcs = fmt.Sprint(recs[w.k+1].gcs - b.gcs)
		}
		l := fmt.Sprintf("batch %d at %v: %d changes visible %v after due: due->Apply %v, Apply %v (cpu %v), Apply returned->visible %v; GC cycles ended by the next batch %s",
			w.k, (b.due - t0.Sub(base)).Round(time.Microsecond), b.n, w.lat, b.a0-b.due, b.a1-b.a0, b.cpu, w.lat-(b.a1-b.due), gcs)
		if at != nil {
			l += "; " + at.classOf(b.due, b.a0, b.a1, b.due+w.lat).String()
		}
		r.late = append(r.late, l)
	}
	if at != nil {
		span, rd, cpu, steal, rdelay := at.window()
		r.samples = at.n
		r.attrib = fmt.Sprintf("control CPU over %v: run delay of our threads %v, their CPU %v, steal %v (ticks); the reader's run delay %v; %d samples cost %v",
			span.Round(time.Millisecond), rd.Round(time.Microsecond), cpu.Round(time.Microsecond), steal, rdelay.Round(time.Microsecond), at.n, at.cost.Round(time.Microsecond))
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		n, _ := slices.BinarySearch(lat, time.Millisecond+1)
		r.within1ms = float64(n) / float64(len(lat))
		r.p50 = lat[len(lat)/2]
		r.p99 = lat[len(lat)*99/100]
		r.p999 = lat[len(lat)*999/1000]
		r.mx = lat[len(lat)-1]
		slices.Sort(alat)
		r.ap50 = alat[len(alat)/2]
		r.ap99 = alat[len(alat)*99/100]
		slices.Sort(ql)
		slices.Sort(pl)
		slices.Sort(wl)
		r.qp99, r.pp99, r.wp99 = ql[len(ql)*99/100], pl[len(pl)*99/100], wl[len(wl)*99/100]
	}
	if len(applyCPU) > 0 {
		slices.Sort(applyCPU)
		r.cp50 = applyCPU[len(applyCPU)/2]
		r.cp99 = applyCPU[len(applyCPU)*99/100]
		r.cmx = applyCPU[len(applyCPU)-1]
	}
	return r
}

// churnProbes returns the fixture's IPv4 probes (the same draws, see
// fixture) without building the rest of the fixture: the churn benchmark's
// process holds what fwdd holds, the FIB, and not the lookup benchmarks'
// bart table and netip.Addr probes (hundreds of MB for the GC to mark).
func churnProbes(v4, v6 []netip.Prefix) []uint32 {
	if benchOnce.p4 != nil {
		return benchOnce.p4
	}
	rng := rand.New(rand.NewPCG(42, 42))
	p4 := make([]uint32, 0, nProbes)
	for range nProbes {
		p4 = append(p4, u32(randIn(rng, v4[rng.IntN(len(v4))])))
		randIn(rng, v6[rng.IntN(len(v6))])
	}
	return p4
}

// BenchmarkChurn: lookup rate while the writer applies 10k changes/s, and
// the change-to-visible latency. Threads where the scheduler puts them;
// FIB_CHURN_WRITER=spin selects the old writer (churnOpts.spin).
func BenchmarkChurn(b *testing.B) {
	benchChurn(b, churnOpts{spin: os.Getenv("FIB_CHURN_WRITER") == "spin"})
}

// BenchmarkChurnPinned: the same with the reader on CPU 0 and everything
// else on CPU 1, like fwdd -cpus 0 (see churnOpts); with FIB_CHURN_FIFO
// set to reader or both the reader's thread also runs SCHED_FIFO, like
// fwdd -rt, so that it gets its CPU when it wants it (a dedicated core).
// FIB_CHURN_WRITER=spin selects the old writer (churnOpts.spin), pinned to
// CPU 1, SCHED_FIFO too with FIB_CHURN_FIFO=writer or both.
// FIB_CHURN_SECONDS sets the length of each phase (default 1).
// FIB_CHURN_RECLAIM=off runs the FIBs without Readers (churnReaders).
// FIB_CHURN_CTL_FIFO=PRIO runs every thread but the reader's SCHED_FIFO,
// as fwdd -ctl-rt PRIO does; FIB_CHURN_NICE, FIB_CHURN_GROUP_NICE and
// FIB_CHURN_SLICE are the ordinary-scheduling alternatives (schedOpts). With
// the fwdd writer, every change visible later than 1 ms is attributed
// (churn_attrib_test.go): the log has the classes and the window's run
// delay, CPU and steal, and %-late-ours / %-late-not-ours split the late
// changes.
func BenchmarkChurnPinned(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs 2 CPUs")
	}
	fifo := os.Getenv("FIB_CHURN_FIFO")
	o := churnOpts{pin: true, spin: os.Getenv("FIB_CHURN_WRITER") == "spin",
		fifoReader: fifo == "reader" || fifo == "both"}
	o.fifoWriter = o.spin && (fifo == "writer" || fifo == "both")
	if !o.spin {
		o.sched = churnSched(b)
	}
	if !o.spin && (fifo == "writer" || fifo == "both") {
		b.Log("FIB_CHURN_FIFO: the writer is fwdd's control goroutine, at ordinary priority like fwdd's; SCHED_FIFO applies to the reader (FIB_CHURN_WRITER=spin for a FIFO writer)")
	}
	benchChurn(b, o)
}

func benchChurn(b *testing.B, o churnOpts) {
	v4, v6, err := readFullTable(b)
	if err != nil {
		b.Fatal(err)
	}
	probes := offHeap[uint32](b, nProbes)
	copy(probes, churnProbes(v4, v6))
	f := newReclaiming(b, 1, churnReaders()) // FIB_CHURN_RECLAIM=off: without
	if err := f.Apply(append(adds(0, v4), adds(0, v6)...)); err != nil {
		b.Fatal(err)
	}
	all := offHeap[cprefix](b, len(v4)+len(v6))[:0]
	for _, p := range v4 {
		all = append(all, toC(p))
	}
	for _, p := range v6 {
		all = append(all, toC(p))
	}
	v4, v6 = nil, nil
	d := churnWindow(b)
	// fwdd's GC target (fib.GCPercent), unless GOGC is set.
	if _, set := os.LookupEnv("GOGC"); !set {
		defer debug.SetGCPercent(debug.SetGCPercent(GCPercent))
	}
	runtime.GC() // the load's garbage, once, before measuring
	var r churnResult
	for b.Loop() {
		r = runChurn(b, f, all, probes, 10000, d, o)
	}
	b.Logf("churn phase started at %v of process time (gctrace's clock)", r.start)
	if o.sched.set() {
		b.Logf("threads but the reader's: nice %d, slice %v; group nice %d (set: %v)", o.sched.nice, o.sched.slice, o.sched.groupNice, o.sched.group)
	}
	for _, l := range r.late {
		b.Log(l)
	}
	if r.attrib != "" {
		b.Log(r.attrib)
		late, ours := 0, 0
		for c, n := range r.lateBy {
			late += n
			if c <= lateOurCPU {
				ours += n
			}
			if n > 0 {
				b.Logf("changes later than 1 ms: %d (%.3f %% of all) %s", n, float64(n)/float64(max(r.changes, 1))*100, lateNames[c])
			}
		}
		b.ReportMetric(float64(ours)/float64(max(r.changes, 1))*100, "%-late-ours")
		b.ReportMetric(float64(late-ours)/float64(max(r.changes, 1))*100, "%-late-not-ours")
	}
	b.ReportMetric(r.idle, "idle-lookups/s")
	b.ReportMetric(r.busy, "churn-lookups/s")
	b.ReportMetric(r.busy/r.idle*100, "%-of-idle")
	b.ReportMetric(r.within1ms*100, "%-visible-within-1ms")
	b.ReportMetric(float64(r.p50.Microseconds()), "p50-visible-µs")
	b.ReportMetric(float64(r.p99.Microseconds()), "p99-visible-µs")
	b.ReportMetric(float64(r.p999.Microseconds()), "p99.9-visible-µs")
	b.ReportMetric(float64(r.mx.Microseconds()), "max-visible-µs")
	b.ReportMetric(float64(r.ap50.Microseconds()), "p50-apply-visible-µs")
	b.ReportMetric(float64(r.ap99.Microseconds()), "p99-apply-visible-µs")
	b.ReportMetric(float64(r.qp99.Microseconds()), "p99-due-to-apply-µs")
	b.ReportMetric(float64(r.pp99.Microseconds()), "p99-applied-to-visible-µs")
	b.ReportMetric(float64(r.wp99.Microseconds()), "p99-apply-wall-µs")
	b.ReportMetric(float64(r.cp50.Microseconds()), "p50-apply-cpu-µs")
	b.ReportMetric(float64(r.cp99.Microseconds()), "p99-apply-cpu-µs")
	b.ReportMetric(float64(r.cmx.Microseconds()), "max-apply-cpu-µs")
	b.ReportMetric(float64(r.changes), "changes")
	b.ReportMetric(float64(r.writerCPU.Microseconds())/float64(max(r.changes, 1)), "writer-cpu-µs/change")
	b.ReportMetric(float64(r.allocBytes)/float64(max(r.changes, 1)), "heap-B/change")
	b.ReportMetric(float64(r.gcs), "gc-cycles")
}

// BenchmarkWakeFloor is BenchmarkChurnPinned's placement and wake-ups
// without the FIB: the reader spins on CPU 0 (SCHED_FIFO with
// FIB_CHURN_FIFO=reader or both), every other thread is on CPU 1, and the
// writer goroutine waits for the same timerfd (one expiry per change due
// at 10k/s) through the netpoller, but only notes how late it woke for each
// change due. It is the floor of the churn latency on this machine: the
// delays that a control goroutine which did nothing would see from the
// kernel's and the Go scheduler's wake-up, other processes on CPU 1 and the
// GC (there is none: it allocates nothing). The scheduling knobs of
// BenchmarkChurnPinned (FIB_CHURN_CTL_FIFO ...) apply to it too.
func BenchmarkWakeFloor(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs 2 CPUs")
	}
	fifo := os.Getenv("FIB_CHURN_FIFO")
	fifoReader := fifo == "reader" || fifo == "both"
	so := churnSched(b)
	d := churnWindow(b)
	const rate = 10000
	late := offHeap[time.Duration](b, int(d.Seconds()*rate)+1024)[:0]
	for b.Loop() {
		late = late[:0]
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
		allThreads(b, 1)
		var stop atomic.Bool
		var readerTid atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			place(b, 0, fifoReader)
			defer unplace(fifoReader)
			readerTid.Store(int32(unix.Gettid()))
			x := uint64(1)
			rest := time.Now()
			for i := 0; !stop.Load(); i++ {
				x = x*6364136223846793005 + 1442695040888963407
				if fifoReader && i&(1<<14-1) == 0 {
					if now := time.Now(); now.Sub(rest) > time.Millisecond {
						rawSleep(50 * time.Microsecond)
						rest = now
					}
				}
			}
			sink += uint32(x)
		}()
		if so.set() {
			tid := 0
			for dl := time.Now().Add(10 * time.Second); tid == 0; tid = int(readerTid.Load()) {
				if time.Now().After(dl) {
					b.Fatal("the reader did not start")
				}
				time.Sleep(100 * time.Microsecond)
			}
			applySched(b, so, tid)
			defer applySched(b, schedOpts{}, tid)
			if so.group {
				defer setGroupNice(b, so.groupNice)()
			}
		}
		fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
		if err != nil {
			b.Fatalf("timerfd_create: %v", err)
		}
		tf := os.NewFile(uintptr(fd), "timerfd")
		iv := unix.NsecToTimespec(int64(time.Second) / rate)
		t0 := time.Now()
		if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: iv, Value: iv}, nil); err != nil {
			b.Fatalf("timerfd_settime: %v", err)
		}
		seen := 0
		var tick [8]byte
		for time.Since(t0) < d {
			if _, err := tf.Read(tick[:]); err != nil {
				b.Fatalf("timerfd read: %v", err)
			}
			el := time.Since(t0)
			for due := int(el.Seconds() * rate); seen < due && len(late) < cap(late); seen++ {
				late = append(late, el-time.Duration(seen+1)*time.Second/rate)
			}
		}
		tf.Close()
		stop.Store(true)
		<-done
		allThreads(b, -1)
	}
	s := slices.Clone(late)
	slices.Sort(s)
	if len(s) == 0 {
		b.Fatal("no wake-ups")
	}
	n, _ := slices.BinarySearch(s, time.Millisecond+1)
	b.ReportMetric(float64(n)/float64(len(s))*100, "%-woken-within-1ms")
	b.ReportMetric(float64(s[len(s)/2].Microseconds()), "p50-late-µs")
	b.ReportMetric(float64(s[len(s)*99/100].Microseconds()), "p99-late-µs")
	b.ReportMetric(float64(s[len(s)*999/1000].Microseconds()), "p99.9-late-µs")
	b.ReportMetric(float64(s[len(s)-1].Microseconds()), "max-late-µs")
}

// churnWindow is the measured window: FIB_CHURN_SECONDS (whole seconds),
// one second by default.
func churnWindow(b *testing.B) time.Duration {
	v := os.Getenv("FIB_CHURN_SECONDS")
	if v == "" {
		return time.Second
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("FIB_CHURN_SECONDS=%q: want a whole number of seconds >= 1", v)
	}
	return time.Duration(n) * time.Second
}
