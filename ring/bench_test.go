package ring

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/fwdd/fwdd/internal/testenv"
	"golang.org/x/sys/unix"
)

const (
	benchRingSize = 1024
	benchBurst    = 32
)

// benchRing moves b.N elements from producers goroutines to the benchmark
// goroutine in bursts of 32. ns/op is per element.
func benchRing[T any](b *testing.B, mode Mode, producers int, mk func(i int) T) {
	r, err := New[T](benchRingSize, mode)
	if err != nil {
		b.Fatal(err)
	}
	src := make([]T, benchBurst)
	for i := range src {
		src[i] = mk(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N / producers
	for p := 0; p < producers; p++ {
		n := per
		if p == 0 {
			n += b.N % producers
		}
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			for n > 0 {
				k := r.EnqueueBurst(src[:min(n, benchBurst)])
				if k == 0 {
					runtime.Gosched()
				}
				n -= k
			}
		}(n)
	}
	dst := make([]T, benchBurst)
	for got := 0; got < b.N; {
		k := r.DequeueBurst(dst)
		if k == 0 {
			runtime.Gosched()
		}
		got += k
	}
	wg.Wait()
	b.StopTimer()
	reportRate(b)
}

func benchChan(b *testing.B, producers int) {
	c := make(chan uint64, benchRingSize)
	b.ReportAllocs()
	b.ResetTimer()
	per := b.N / producers
	for p := 0; p < producers; p++ {
		n := per
		if p == 0 {
			n += b.N % producers
		}
		go func(n int) {
			for i := 0; i < n; i++ {
				c <- uint64(i)
			}
		}(n)
	}
	for i := 0; i < b.N; i++ {
		<-c
	}
	b.StopTimer()
	reportRate(b)
}

func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s/1e6, "Melem/s")
	}
}

func BenchmarkRingSPSCBurst32(b *testing.B) {
	benchRing(b, SPSC, 1, func(i int) uint64 { return uint64(i) })
}

func BenchmarkRingMPSCBurst32(b *testing.B) {
	benchRing(b, MPSC, 2, func(i int) uint64 { return uint64(i) })
}

func BenchmarkChanSPSC(b *testing.B) { benchChan(b, 1) }

func BenchmarkChanMPSC(b *testing.B) { benchChan(b, 2) }

// The element-type study behind package mbuf's choice: the same SPSC ring
// carrying 32-bit indexes, pointers into the Go heap, and pointers into
// memory the Go heap does not own (an mmap'd region, as mbuf metadata is),
// each with a background goroutine that keeps the garbage collector running
// so that write barriers are on for a good part of the run.

type fakeMbuf struct{ a, b, c, d uint64 }

func withGCPressure(b *testing.B) func() {
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		var keep [][]byte
		for !stop.Load() {
			keep = append(keep, make([]byte, 64<<10))
			if len(keep) > 256 {
				keep = keep[:0]
			}
		}
	}()
	return func() { stop.Store(true); <-done }
}

func BenchmarkElemIndexGC(b *testing.B) {
	defer withGCPressure(b)()
	benchRing(b, SPSC, 1, func(i int) uint32 { return uint32(i) })
}

func BenchmarkElemHeapPtrGC(b *testing.B) {
	defer withGCPressure(b)()
	heap := make([]fakeMbuf, benchBurst)
	benchRing(b, SPSC, 1, func(i int) *fakeMbuf { return &heap[i] })
}

func BenchmarkElemOffHeapPtrGC(b *testing.B) {
	defer withGCPressure(b)()
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	testenv.Feature(b, err, "anonymous mmap")
	defer unix.Munmap(mem)
	// Safe: mem is page-aligned, outlives the benchmark, and holds no Go pointers.
	off := unsafe.Slice((*fakeMbuf)(unsafe.Pointer(&mem[0])), benchBurst)
	benchRing(b, SPSC, 1, func(i int) *fakeMbuf { return &off[i] })
}
