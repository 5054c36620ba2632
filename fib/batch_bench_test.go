package fib

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"slices"
	"syscall"
	"testing"
	"time"
)

// batchCost is what one Apply call cost and did.
type batchCost struct {
	cpu, wall          time.Duration
	gcs, faults        int
	swept, moved, segs int
	tables             int
	changes            int
}

// BenchmarkApplyBatches applies 5000 batches of 10 random full-table
// changes (deletes and re-adds, both families) on one locked thread with
// no reader, and attributes the cost of the slowest batches: CPU time of
// the thread (CLOCK_THREAD_CPUTIME_ID), wall time, GC mark assist time of
// the process and GC cycles during the batch, minor page faults of the
// thread, entries swept by rebuilds, entries moved by collection steps and
// segments started.
func BenchmarkApplyBatches(b *testing.B) {
	v4, v6 := fullTable(b)
	f := newWithNH(b, 1)
	if err := f.Apply(append(adds(0, v4), adds(0, v6)...)); err != nil {
		b.Fatal(err)
	}
	all := append(append([]netip.Prefix(nil), v4...), v6...)
	present := make(map[netip.Prefix]bool)
	rng := rand.New(rand.NewPCG(3, 4))
	// The runtime's assist CPU metric is only updated at the end of a
	// cycle, so a batch gets the GC cycles that ended during it; run with
	// GOGC=off to take the GC out altogether.
	ms := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	read := func() int {
		metrics.Read(ms)
		return int(ms[0].Value.Uint64())
	}
	faults := func() int {
		var ru syscall.Rusage
		_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
		return int(ru.Minflt)
	}
	work := func() (int, int, int, int) {
		f4, f6 := f.f4[0], f.f6[0]
		return f.sc.swept, f.sc.tables, f4.a.moved + f6.a16.moved + f6.a64.moved, f4.a.started + f6.a16.started + f6.a64.started
	}
	var costs []batchCost
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for b.Loop() {
		costs = costs[:0]
		for range 5000 {
			cs := make([]Change, 0, 10)
			for range 10 {
				p := all[rng.IntN(len(all))]
				if present[p] {
					cs = append(cs, Change{Op: OpAdd, Prefix: p, NextHop: nhOf(p)})
				} else {
					cs = append(cs, Change{Op: OpDelete, Prefix: p})
				}
				present[p] = !present[p]
			}
			g0 := read()
			s0, t0, m0, n0 := work()
			fl0 := faults()
			w0 := time.Now()
			c0 := threadCPU()
			if err := f.Apply(cs); err != nil {
				b.Fatal(err)
			}
			c := batchCost{cpu: threadCPU() - c0, wall: time.Since(w0), faults: faults() - fl0, changes: len(cs)}
			g1 := read()
			s1, t1, m1, n1 := work()
			c.gcs = g1 - g0
			c.swept, c.tables, c.moved, c.segs = s1-s0, t1-t0, m1-m0, n1-n0
			costs = append(costs, c)
		}
	}
	byCPU := slices.Clone(costs)
	slices.SortFunc(byCPU, func(x, y batchCost) int { return int(x.cpu - y.cpu) })
	q := func(s []batchCost, p float64) time.Duration { return s[min(len(s)-1, int(float64(len(s))*p))].cpu }
	b.ReportMetric(float64(q(byCPU, 0.5).Microseconds()), "p50-cpu-µs")
	b.ReportMetric(float64(q(byCPU, 0.99).Microseconds()), "p99-cpu-µs")
	b.ReportMetric(float64(q(byCPU, 0.999).Microseconds()), "p99.9-cpu-µs")
	b.ReportMetric(float64(byCPU[len(byCPU)-1].cpu.Microseconds()), "max-cpu-µs")
	byWall := slices.Clone(costs)
	slices.SortFunc(byWall, func(x, y batchCost) int { return int(x.wall - y.wall) })
	b.ReportMetric(float64(byWall[len(byWall)*99/100].wall.Microseconds()), "p99-wall-µs")
	b.ReportMetric(float64(byWall[len(byWall)-1].wall.Microseconds()), "max-wall-µs")
	var noGC []batchCost
	for _, c := range byCPU {
		if c.gcs == 0 {
			noGC = append(noGC, c)
		}
	}
	if len(noGC) > 0 {
		b.ReportMetric(float64(q(noGC, 0.99).Microseconds()), "p99-cpu-nogc-µs")
		b.ReportMetric(float64(noGC[len(noGC)-1].cpu.Microseconds()), "max-cpu-nogc-µs")
	}
	for _, c := range slices.Backward(byCPU[max(0, len(byCPU)-60):]) {
		b.Logf("batch: cpu %v wall %v | GC cycles ended %d, page faults %d | swept %d in %d tables, moved %d, segments started %d",
			c.cpu, c.wall, c.gcs, c.faults, c.swept, c.tables, c.moved, c.segs)
	}
}
