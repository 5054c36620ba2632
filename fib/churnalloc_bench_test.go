package fib

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"testing"
)

// BenchmarkChurnAlloc applies single-change batches (the size of most of
// BenchmarkChurnPinned's batches at 10k changes/s) of random full-table
// deletes and re-adds, both families, to a loaded FIBs, and reports the
// heap bytes and objects allocated per change and the GC cycles: the
// garbage steady-state churn makes. The load is not measured (and not
// profiled: -memprofile shows the churn only).
func BenchmarkChurnAlloc(b *testing.B) {
	v4, v6 := fullTable(b)
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 0
	f := newWithNH(b, 1)
	if err := f.Apply(append(adds(0, v4), adds(0, v6)...)); err != nil {
		b.Fatal(err)
	}
	all := append(append([]netip.Prefix(nil), v4...), v6...)
	present := make(map[netip.Prefix]bool)
	rng := rand.New(rand.NewPCG(9, 9))
	cs := make([]Change, 1)
	next := func() {
		p := all[rng.IntN(len(all))]
		if present[p] {
			cs[0] = Change{Op: OpAdd, Prefix: p, NextHop: nhOf(p)}
		} else {
			cs[0] = Change{Op: OpDelete, Prefix: p}
		}
		present[p] = !present[p]
	}
	// Warm up: the first changes grow scratch buffers and the map.
	for range 20000 {
		next()
		if err := f.Apply(cs); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.MemProfileRate = rate
	ms := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/allocs:objects"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(ms)
	b0, o0, g0 := ms[0].Value.Uint64(), ms[1].Value.Uint64(), ms[2].Value.Uint64()
	n := 0
	for b.Loop() {
		next()
		if err := f.Apply(cs); err != nil {
			b.Fatal(err)
		}
		n++
	}
	metrics.Read(ms)
	b.ReportMetric(float64(ms[0].Value.Uint64()-b0)/float64(n), "heap-B/change")
	b.ReportMetric(float64(ms[1].Value.Uint64()-o0)/float64(n), "heap-objs/change")
	b.ReportMetric(float64(ms[2].Value.Uint64()-g0), "gc-cycles")
}
