package fib

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
)

// BenchmarkChurnAlloc applies single-change batches (the size of most of
// BenchmarkChurnPinned's batches at 10k changes/s) of random full-table
// deletes and re-adds, both families, to a loaded FIBs, and reports the
// heap bytes and objects allocated per change and the GC cycles: the
// garbage steady-state churn makes. The load is not measured (and not
// profiled: -memprofile shows the churn only). Like fwdd, the FIBs reuse
// the memory of replaced snapshot parts for a reader set (Config.Readers;
// one reader, quiescing after every batch as a worker's iteration does);
// FIB_CHURN_RECLAIM=off measures without (every replaced part is garbage).
func BenchmarkChurnAlloc(b *testing.B) {
	v4, v6 := fullTable(b)
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 0
	d := churnReaders()
	f := newReclaiming(b, 1, d)
	quiesce := func() {}
	if d != nil {
		rd := d.NewReader()
		defer rd.Close()
		rd.Online()
		quiesce = rd.Quiesce
	}
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
		quiesce()
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
		quiesce()
		n++
	}
	metrics.Read(ms)
	b.ReportMetric(float64(ms[0].Value.Uint64()-b0)/float64(n), "heap-B/change")
	b.ReportMetric(float64(ms[1].Value.Uint64()-o0)/float64(n), "heap-objs/change")
	b.ReportMetric(float64(ms[2].Value.Uint64()-g0), "gc-cycles")
}

// churnReaders returns the reader set the churn benchmarks' FIBs reuse
// memory for, as fwdd's do (fwd.Engine.FIBReaders), or nil with
// FIB_CHURN_RECLAIM=off (the FIB before 2026-11-30: every replaced
// snapshot part left to the garbage collector).
func churnReaders() *Readers {
	if os.Getenv("FIB_CHURN_RECLAIM") == "off" {
		return nil
	}
	return NewReaders()
}
