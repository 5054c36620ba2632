package fib

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gaissmai/bart"
)

// The benchmark fixture: the full table in FIBs and in bart, and 1M probes
// per family, each a random address inside a random prefix of the table.
var benchOnce struct {
	sync.Once
	f        *FIBs
	bt       *bart.Table[uint32]
	p4       []uint32
	a4       []netip.Addr
	p6       [][16]byte
	a6       []netip.Addr
	n4, n6   int
	loadTime time.Duration
}

const nProbes = 1 << 20

func fixture(b *testing.B) {
	v4, v6 := fullTable(b)
	benchOnce.Do(func() {
		f := newWithNH(b, 1)
		cs := append(adds(0, v4), adds(0, v6)...)
		t0 := time.Now()
		if err := f.Apply(cs); err != nil {
			b.Fatal(err)
		}
		benchOnce.loadTime = time.Since(t0)
		bt := new(bart.Table[uint32])
		for _, c := range cs {
			bt.Insert(c.Prefix, c.NextHop)
		}
		rng := rand.New(rand.NewPCG(42, 42))
		for range nProbes {
			a := randIn(rng, v4[rng.IntN(len(v4))])
			benchOnce.a4 = append(benchOnce.a4, a)
			benchOnce.p4 = append(benchOnce.p4, u32(a))
			a = randIn(rng, v6[rng.IntN(len(v6))])
			benchOnce.a6 = append(benchOnce.a6, a)
			benchOnce.p6 = append(benchOnce.p6, a.As16())
		}
		benchOnce.f, benchOnce.bt = f, bt
		benchOnce.n4, benchOnce.n6 = len(v4), len(v6)
	})
	if benchOnce.f == nil {
		b.Fatal("fixture failed")
	}
}

// threadCPU is the CPU time of the calling thread. The machine these
// benchmarks run on is shared and often overloaded, so the benchmarks also
// report lookups per second of CPU time of the benchmark thread (locked to
// it), which excludes the time the thread waits for a CPU.
// It reads CLOCK_THREAD_CPUTIME_ID, which is exact (getrusage's split into
// user and system time is sampled at clock ticks).
func threadCPU() time.Duration {
	var ts syscall.Timespec
	_, _, _ = syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3 /* CLOCK_THREAD_CPUTIME_ID */, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// startRate locks the thread and resets the timer; reportRate reports the
// wall-clock and CPU-time rates of n lookups since.
func startRate(b *testing.B) time.Duration {
	runtime.LockOSThread()
	b.ResetTimer()
	return threadCPU()
}

func reportRate(b *testing.B, n int, cpu0 time.Duration) {
	cpu := threadCPU() - cpu0
	runtime.UnlockOSThread()
	ns := float64(b.Elapsed().Nanoseconds()) / float64(n)
	b.ReportMetric(ns, "ns/lookup")
	b.ReportMetric(1e9/ns, "lookups/s")
	b.ReportMetric(float64(n)/cpu.Seconds(), "cpu-lookups/s")
}

var sink uint32

func BenchmarkLookup4Batch(b *testing.B) {
	fixture(b)
	s := benchOnce.f.Load()
	v4, _ := s.MemStats(0)
	var out [64]uint32
	p := benchOnce.p4
	n := 0
	cpu0 := startRate(b)
	for i := 0; i < b.N; i += 64 {
		j := (i) & (nProbes - 1)
		s.Lookup4Batch(0, p[j:j+64], out[:])
		n += 64
	}
	sink += out[0]
	reportRate(b, n, cpu0)
	b.ReportMetric(float64(v4)/float64(benchOnce.n4), "B/prefix")
}

func BenchmarkLookup4(b *testing.B) {
	fixture(b)
	s := benchOnce.f.Load()
	p := benchOnce.p4
	var x uint32
	cpu0 := startRate(b)
	for i := 0; i < b.N; i++ {
		x += s.Lookup4(0, p[i&(nProbes-1)])
	}
	sink += x
	reportRate(b, b.N, cpu0)
}

func BenchmarkBartLookup4(b *testing.B) {
	fixture(b)
	t := benchOnce.bt
	p := benchOnce.a4
	var x uint32
	cpu0 := startRate(b)
	for i := 0; i < b.N; i++ {
		v, _ := t.Lookup(p[i&(nProbes-1)])
		x += v
	}
	sink += x
	reportRate(b, b.N, cpu0)
}

func BenchmarkLookup6Batch(b *testing.B) {
	fixture(b)
	s := benchOnce.f.Load()
	_, v6 := s.MemStats(0)
	var out [64]uint32
	p := benchOnce.p6
	n := 0
	cpu0 := startRate(b)
	for i := 0; i < b.N; i += 64 {
		j := i & (nProbes - 1)
		s.Lookup6Batch(0, p[j:j+64], out[:])
		n += 64
	}
	sink += out[0]
	reportRate(b, n, cpu0)
	b.ReportMetric(float64(v6)/float64(benchOnce.n6), "B/prefix")
}

// BenchmarkLookup6BatchCached is BenchmarkLookup6Batch over the same 64
// probes again and again, all in cache: the instructions' share of a
// lookup, without the waits for memory.
func BenchmarkLookup6BatchCached(b *testing.B) {
	fixture(b)
	s := benchOnce.f.Load()
	var out [64]uint32
	p := benchOnce.p6[:64]
	n := 0
	cpu0 := startRate(b)
	for i := 0; i < b.N; i += 64 {
		s.Lookup6Batch(0, p, out[:])
		n += 64
	}
	sink += out[0]
	reportRate(b, n, cpu0)
}

func BenchmarkLookup6(b *testing.B) {
	fixture(b)
	s := benchOnce.f.Load()
	p := benchOnce.p6
	var x uint32
	cpu0 := startRate(b)
	for i := 0; i < b.N; i++ {
		x += s.Lookup6(0, &p[i&(nProbes-1)])
	}
	sink += x
	reportRate(b, b.N, cpu0)
}

func BenchmarkBartLookup6(b *testing.B) {
	fixture(b)
	t := benchOnce.bt
	p := benchOnce.a6
	var x uint32
	cpu0 := startRate(b)
	for i := 0; i < b.N; i++ {
		v, _ := t.Lookup(p[i&(nProbes-1)])
		x += v
	}
	sink += x
	reportRate(b, b.N, cpu0)
}

// BenchmarkLoad loads the full table (both families) into a new FIBs in
// one batch.
func BenchmarkLoad(b *testing.B) {
	v4, v6 := fullTable(b)
	cs := append(adds(0, v4), adds(0, v6)...)
	for b.Loop() {
		f := newWithNH(b, 1)
		if err := f.Apply(cs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/load")
}

// churnResult is what runChurn measures.
type churnResult struct {
	idle, busy   float64       // lookups/s without and with changes
	writerCPU    time.Duration // CPU time of the writer thread during the churn phase
	p50, p99, mx time.Duration
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
}

// churnOpts places the churn benchmark's threads.
type churnOpts struct {
	// pin puts the reader's thread on CPU 0 and the writer's on CPU 1.
	// (Either way the writer paces itself with nanosleep(2) on its own
	// thread, rawSleep: time.Sleep wakes through the Go scheduler, ~1 ms
	// late here, which set the p50 of the latency until 2026-11-30.)
	pin bool
	// fifoWriter (fifoReader) also runs the writer's (reader's) thread
	// SCHED_FIFO (priority 1), so that other processes cannot take its CPU
	// (root only). A reader spinning at FIFO priority exhausts the
	// kernel's RT budget (sched_rt_runtime_us, 95 %) and gets every RT
	// thread throttled for the rest of the period.
	fifoWriter, fifoReader bool
}

// rawSleep sleeps in nanosleep(2) without telling the Go scheduler: the
// thread keeps its P, so it does not wait for one when it wakes (with
// syscall.Nanosleep the P is handed off and, when the GC's workers hold
// the others, getting one back can take milliseconds on a loaded machine).
func rawSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// place applies o to the calling (locked) thread, which runs on cpu.
func (o churnOpts) place(tb testing.TB, cpu int) {
	fifo := cpu == 1 && o.fifoWriter || cpu == 0 && o.fifoReader
	if !o.pin {
		return
	}
	var mask [16]uint64
	mask[cpu/64] = 1 << (cpu % 64)
	if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask))); e != 0 {
		tb.Fatalf("sched_setaffinity: %v", e)
	}
	if fifo {
		prio := int32(1)
		if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, 1 /* SCHED_FIFO */, uintptr(unsafe.Pointer(&prio))); e != 0 {
			tb.Skipf("SCHED_FIFO: %v", e)
		}
	}
}

// unplace undoes place for the calling thread (before it is unlocked).
func (o churnOpts) unplace() {
	if !o.pin {
		return
	}
	if o.fifoWriter || o.fifoReader {
		prio := int32(0)
		syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, 0 /* SCHED_OTHER */, uintptr(unsafe.Pointer(&prio)))
	}
	var mask [16]uint64
	for i := range runtime.NumCPU() {
		mask[i/64] |= 1 << (i % 64)
	}
	syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
}

// runChurn measures one reader looking up continuously (IPv4 batches of
// 64), first idle for d, then for d while the writer applies rate route
// changes per second (deletes and re-adds of random table prefixes, both
// families in proportion, applied in batches of whatever is due). A change
// is visible when the reader first loads a snapshot that contains it; its
// latency counts from the time it was due (which includes the writer's
// pacing: it polls every 20 µs with nanosleep), and, separately, from the time the
// writer called Apply with it.
func runChurn(tb testing.TB, f *FIBs, all []netip.Prefix, probes []uint32, rate int, d time.Duration, o churnOpts) churnResult {
	var stop atomic.Bool
	type sight struct {
		s *Snapshot
		t time.Time
	}
	sights := make([]sight, 0, 1<<20)
	reader := func() (n int) {
		if o.pin {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			o.place(tb, 0)
			defer o.unplace()
		}
		var out [64]uint32
		var last *Snapshot
		rest := time.Now()
		for i := 0; !stop.Load(); i += 64 {
			s := f.Load()
			if s != last {
				if len(sights) < cap(sights) {
					sights = append(sights, sight{s, time.Now()})
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
	var wcpu time.Duration
	var applied0, applied1 []time.Time // Apply start and end per batch
	var applyCPU []time.Duration
	run := func(write bool) (float64, []*Snapshot, []time.Time, []int) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		o.place(tb, 1)
		defer o.unplace()
		c0 := threadCPU()
		defer func() { wcpu = threadCPU() - c0 }()
		stop.Store(false)
		sights = sights[:0]
		done := make(chan int)
		t0 := time.Now()
		go func() { done <- reader() }()
		var pubs []*Snapshot
		var due []time.Time // due time of the first change of each batch
		var cnt []int       // changes per batch
		rng := rand.New(rand.NewPCG(9, 9))
		present := make(map[netip.Prefix]bool)
		applied := 0
		for time.Since(t0) < d {
			if !write {
				time.Sleep(time.Millisecond)
				continue
			}
			el := time.Since(t0)
			want := int(el.Seconds() * float64(rate))
			if want <= applied {
				rawSleep(20 * time.Microsecond)
				continue
			}
			cs := make([]Change, 0, want-applied)
			for range want - applied {
				p := all[rng.IntN(len(all))]
				if present[p] {
					cs = append(cs, Change{Op: OpAdd, Prefix: p, NextHop: nhOf(p)})
					present[p] = false
				} else {
					cs = append(cs, Change{Op: OpDelete, Prefix: p})
					present[p] = true
				}
			}
			ta := time.Now()
			c := threadCPU()
			if err := f.Apply(cs); err != nil {
				tb.Fatal(err)
			}
			applyCPU = append(applyCPU, threadCPU()-c)
			applied0 = append(applied0, ta)
			applied1 = append(applied1, time.Now())
			pubs = append(pubs, f.Load())
			due = append(due, t0.Add(time.Duration(float64(applied+1)/float64(rate)*1e9)))
			cnt = append(cnt, len(cs))
			applied = want
		}
		stop.Store(true)
		n := <-done
		el := time.Since(t0)
		// Restore the table.
		var cs []Change
		for p, deleted := range present {
			if deleted {
				cs = append(cs, Change{Op: OpAdd, Prefix: p, NextHop: nhOf(p)})
			}
		}
		if err := f.Apply(cs); err != nil {
			tb.Fatal(err)
		}
		return float64(n) / el.Seconds(), pubs, due, cnt
	}
	var r churnResult
	r.idle, _, _, _ = run(false)
	var pubs []*Snapshot
	var due []time.Time
	var cnt []int
	r.busy, pubs, due, cnt = run(true)
	r.writerCPU = wcpu
	// Latency: for batch k, the first sighting of snapshot k or later.
	idx := make(map[*Snapshot]int, len(pubs))
	for k, s := range pubs {
		idx[s] = k
	}
	var lat, alat, wl, ql, pl []time.Duration
	si := 0
	for k := range pubs {
		for si < len(sights) {
			if j, ok := idx[sights[si].s]; ok && j >= k {
				break
			}
			si++
		}
		if si == len(sights) {
			break // not seen before the reader stopped
		}
		// The batch's first change was due at due[k]; later ones of the
		// same batch were due later, so this is the worst of the batch.
		for range cnt[k] {
			lat = append(lat, sights[si].t.Sub(due[k]))
			alat = append(alat, sights[si].t.Sub(applied0[k]))
			ql = append(ql, applied0[k].Sub(due[k]))
			pl = append(pl, sights[si].t.Sub(applied1[k]))
		}
		wl = append(wl, applied1[k].Sub(applied0[k]))
		r.changes += cnt[k]
	}
	r.batches = len(pubs)
	if len(lat) > 0 {
		slices.Sort(lat)
		n, _ := slices.BinarySearch(lat, time.Millisecond+1)
		r.within1ms = float64(n) / float64(len(lat))
		r.p50 = lat[len(lat)/2]
		r.p99 = lat[len(lat)*99/100]
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

// BenchmarkChurn: lookup rate while the writer applies 10k changes/s, and
// the change-to-visible latency. Threads where the scheduler puts them.
func BenchmarkChurn(b *testing.B) { benchChurn(b, churnOpts{}) }

// BenchmarkChurnPinned: the same with the reader on CPU 0 and the writer
// on CPU 1, pacing with nanosleep(2) (see churnOpts); with FIB_CHURN_FIFO
// set to writer, reader or both in the environment also SCHED_FIFO for
// those threads, so that they get their CPUs when they want them (like
// dedicated cores).
func BenchmarkChurnPinned(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs 2 CPUs")
	}
	fifo := os.Getenv("FIB_CHURN_FIFO")
	benchChurn(b, churnOpts{pin: true, fifoWriter: fifo == "writer" || fifo == "both", fifoReader: fifo == "reader" || fifo == "both"})
}

func benchChurn(b *testing.B, o churnOpts) {
	v4, v6 := fullTable(b)
	fixture(b)
	f := newWithNH(b, 1)
	if err := f.Apply(append(adds(0, v4), adds(0, v6)...)); err != nil {
		b.Fatal(err)
	}
	all := append(append([]netip.Prefix(nil), v4...), v6...)
	var r churnResult
	for b.Loop() {
		r = runChurn(b, f, all, benchOnce.p4, 10000, time.Second, o)
	}
	b.ReportMetric(r.idle, "idle-lookups/s")
	b.ReportMetric(r.busy, "churn-lookups/s")
	b.ReportMetric(r.busy/r.idle*100, "%-of-idle")
	b.ReportMetric(r.within1ms*100, "%-visible-within-1ms")
	b.ReportMetric(float64(r.p50.Microseconds()), "p50-visible-µs")
	b.ReportMetric(float64(r.p99.Microseconds()), "p99-visible-µs")
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
}

var _ = binary.BigEndian
