package fib

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
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
	sc := new(Scratch4) // a worker's (fwd's pipeline keeps one)
	p := benchOnce.p4
	n := 0
	cpu0 := startRate(b)
	for i := 0; i < b.N; i += 64 {
		j := (i) & (nProbes - 1)
		s.Lookup4BatchScratch(sc, 0, p[j:j+64], out[:])
		n += 64
	}
	sink += out[0]
	reportRate(b, n, cpu0)
	b.ReportMetric(float64(v4)/float64(benchOnce.n4), "B/prefix")
}

// BenchmarkLookup4BatchCached is BenchmarkLookup4Batch over the same 64
// probes again and again, all in cache: the instructions' share of a
// lookup, without the waits for memory.
func BenchmarkLookup4BatchCached(b *testing.B) {
	fixture(b)
	s := benchOnce.f.Load()
	sc := new(Scratch4)
	p := benchOnce.p4[:64]
	benchCached(b, func(out []uint32) { s.Lookup4BatchScratch(sc, 0, p, out) })
}

// benchCached runs lookup, a batch lookup of 64 probes into out, again
// and again, and reports the rate per probe.
func benchCached(b *testing.B, lookup func(out []uint32)) {
	var out [64]uint32
	n := 0
	cpu0 := startRate(b)
	for i := 0; i < b.N; i += 64 {
		lookup(out[:])
		n += 64
	}
	sink += out[0]
	reportRate(b, n, cpu0)
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
	sc := new(Scratch6) // a worker's (fwd's pipeline keeps one)
	p := benchOnce.p6
	n := 0
	cpu0 := startRate(b)
	for i := 0; i < b.N; i += 64 {
		j := i & (nProbes - 1)
		s.Lookup6BatchScratch(sc, 0, p[j:j+64], out[:])
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
	sc := new(Scratch6)
	p := benchOnce.p6[:64]
	benchCached(b, func(out []uint32) { s.Lookup6BatchScratch(sc, 0, p, out) })
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

var _ = binary.BigEndian
