package ring

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

func TestNewSize(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
	}{
		{0, false}, {-1, false}, {3, false}, {1, true}, {2, true}, {1024, true}, {MaxSize, true}, {MaxSize * 2, false},
	} {
		if tc.size > 1<<20 && tc.ok {
			continue // do not allocate a gigantic ring in a unit test
		}
		_, err := New[int](tc.size, SPSC)
		if (err == nil) != tc.ok {
			t.Errorf("New(%d) err=%v, want ok=%v", tc.size, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrSize) {
			t.Errorf("New(%d) err=%v, want ErrSize", tc.size, err)
		}
	}
	if _, err := New[int](8, Mode(9)); err == nil {
		t.Error("New with unknown mode: want error")
	}
}

func seq(from, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = from + i
	}
	return s
}

func TestBulkAndBurst(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPSC, SPMC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			r, _ := New[int](8, mode)
			if n := r.EnqueueBulk(seq(0, 9)); n != 0 {
				t.Fatalf("bulk 9 into 8: got %d want 0", n)
			}
			if n := r.EnqueueBulk(seq(0, 5)); n != 5 {
				t.Fatalf("bulk 5: got %d", n)
			}
			if n := r.EnqueueBulk(seq(5, 4)); n != 0 {
				t.Fatalf("bulk 4 into 3 free: got %d want 0", n)
			}
			if n := r.EnqueueBurst(seq(5, 4)); n != 3 {
				t.Fatalf("burst 4 into 3 free: got %d want 3", n)
			}
			if r.Len() != 8 {
				t.Fatalf("Len %d want 8", r.Len())
			}
			if r.Refused() != 9+4+1 || r.Failures() != 3 {
				t.Fatalf("Refused=%d Failures=%d, want 14, 3", r.Refused(), r.Failures())
			}
			dst := make([]int, 10)
			if n := r.DequeueBulk(dst[:9]); n != 0 {
				t.Fatalf("dequeue bulk 9 of 8: %d", n)
			}
			if n := r.DequeueBulk(dst[:3]); n != 3 || dst[0] != 0 || dst[2] != 2 {
				t.Fatalf("dequeue bulk 3: n=%d %v", n, dst[:3])
			}
			if n := r.DequeueBurst(dst); n != 5 {
				t.Fatalf("dequeue burst: %d want 5", n)
			}
			for i, v := range dst[:5] {
				if v != 3+i {
					t.Fatalf("order: %v", dst[:5])
				}
			}
			if n := r.DequeueBurst(dst); n != 0 {
				t.Fatalf("empty ring gave %d", n)
			}
			if !r.Enqueue(42) {
				t.Fatal("single enqueue failed")
			}
			if v, ok := r.Dequeue(); !ok || v != 42 {
				t.Fatalf("single dequeue %v %v", v, ok)
			}
			if _, ok := r.Dequeue(); ok {
				t.Fatal("dequeue from empty ring succeeded")
			}
			if r.EnqueueBurst(nil) != 0 || r.DequeueBurst(nil) != 0 {
				t.Fatal("empty slices must move nothing")
			}
		})
	}
}

// TestWrapAround runs the indexes through 2^32 in every mode, with bursts that
// straddle the end of the slot array.
func TestWrapAround(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPSC, SPMC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			r, err := newAt[int](16, mode, ^uint32(0)-40)
			if err != nil {
				t.Fatal(err)
			}
			next, want := 0, 0
			dst := make([]int, 7)
			for round := 0; round < 100; round++ {
				n := r.EnqueueBurst(seq(next, 5+round%7))
				next += n
				k := r.DequeueBurst(dst[:1+round%7])
				for _, v := range dst[:k] {
					if v != want {
						t.Fatalf("round %d: got %d want %d (head %d)", round, v, want, atomic.LoadUint32(&r.consTail))
					}
					want++
				}
				if r.Len() < 0 || r.Len() > r.Cap() {
					t.Fatalf("Len %d out of range", r.Len())
				}
			}
			if atomic.LoadUint32(&r.prodTail) > 1000 {
				t.Fatalf("indexes did not wrap: %d", atomic.LoadUint32(&r.prodTail))
			}
		})
	}
}

func TestPeekAdvancePutBack(t *testing.T) {
	r, _ := newAt[int](8, MPSC, ^uint32(0)-2)
	r.EnqueueBulk(seq(10, 6))
	peek := make([]int, 4)
	if n := r.PeekBurst(peek); n != 4 || peek[0] != 10 || peek[3] != 13 {
		t.Fatalf("peek: %d %v", n, peek)
	}
	// The "device" takes two; the third was modified and is put back.
	r.Advance(2)
	r.PutBack(0, 99)
	if r.Len() != 4 {
		t.Fatalf("Len %d want 4", r.Len())
	}
	dst := make([]int, 8)
	n := r.DequeueBurst(dst)
	if n != 4 || dst[0] != 99 || dst[1] != 13 || dst[3] != 15 {
		t.Fatalf("after putback: %v", dst[:n])
	}
	r.Advance(5) // more than available: clamps
	if r.Len() != 0 {
		t.Fatalf("Len %d", r.Len())
	}
	mc, _ := New[int](8, MPMC)
	mc.EnqueueBulk(seq(0, 3))
	if mc.PeekBurst(peek) != 0 {
		t.Fatal("peek on a multi-consumer ring must refuse")
	}
}

// TestStressMPSC: several producers, one consumer, under -race: no loss, no
// duplication, per-producer order.
func TestStressMPSC(t *testing.T) { stress(t, MPSC, 4, 1) }

// TestStressMPMC: several producers and consumers: no loss, no duplication,
// per-producer order within each consumer's view.
func TestStressMPMC(t *testing.T) { stress(t, MPMC, 3, 2) }

func TestStressSPSC(t *testing.T) { stress(t, SPSC, 1, 1) }

func stress(t *testing.T, mode Mode, producers, consumers int) {
	perProducer := 200000
	if testing.Short() || raceEnabled {
		perProducer = 20000
	}
	r, _ := newAt[uint64](64, mode, ^uint32(0)-1000)
	var wg sync.WaitGroup
	// Each producer counts what the ring refused it; the ring's counters
	// must add up to the same (plain single-writer stores in SP mode,
	// atomic adds in MP mode).
	refused := make([]uint64, producers)
	failures := make([]uint64, producers)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p uint64) {
			defer wg.Done()
			buf := make([]uint64, 0, 32)
			for i := 0; i < perProducer; {
				buf = buf[:0]
				for k := 0; k < 1+i%32 && i+k < perProducer; k++ {
					buf = append(buf, p<<32|uint64(i+k))
				}
				var n int
				if i%2 == 0 {
					n = r.EnqueueBurst(buf)
				} else {
					n = r.EnqueueBulk(buf)
				}
				if n < len(buf) {
					refused[p] += uint64(len(buf) - n)
					failures[p]++
				}
				if n == 0 {
					runtime.Gosched()
				}
				i += n
			}
		}(uint64(p))
	}
	seen := make([][]bool, producers)
	for p := range seen {
		seen[p] = make([]bool, perProducer)
	}
	var mu sync.Mutex
	total := producers * perProducer
	got := 0
	var cwg sync.WaitGroup
	errs := make(chan string, 1)
	for c := 0; c < consumers; c++ {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			last := make([]int, producers)
			for i := range last {
				last[i] = -1
			}
			dst := make([]uint64, 32)
			for {
				mu.Lock()
				done := got >= total
				mu.Unlock()
				if done {
					return
				}
				n := r.DequeueBurst(dst[:1+len(dst)%7])
				if n == 0 {
					runtime.Gosched()
					continue
				}
				mu.Lock()
				for _, v := range dst[:n] {
					p, i := int(v>>32), int(v&0xffffffff)
					if seen[p][i] {
						select {
						case errs <- "duplicate":
						default:
						}
					}
					seen[p][i] = true
					if i <= last[p] {
						select {
						case errs <- "out of order":
						default:
						}
					}
					last[p] = i
				}
				got += n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	cwg.Wait()
	select {
	case e := <-errs:
		t.Fatal(e)
	default:
	}
	for p := range seen {
		for i, ok := range seen[p] {
			if !ok {
				t.Fatalf("producer %d element %d lost", p, i)
			}
		}
	}
	if r.Len() != 0 {
		t.Fatalf("ring not empty: %d", r.Len())
	}
	var wantRefused, wantFailures uint64
	for p := range refused {
		wantRefused += refused[p]
		wantFailures += failures[p]
	}
	if r.Refused() != wantRefused || r.Failures() != wantFailures {
		t.Fatalf("Refused=%d Failures=%d, producers counted %d, %d", r.Refused(), r.Failures(), wantRefused, wantFailures)
	}
}

// TestLayout: producer and consumer indexes on separate cache-line pairs,
// away from the read-only fields and the counters, and the counters 64-bit
// aligned for sync/atomic on 32-bit platforms.
func TestLayout(t *testing.T) {
	var r Ring[uint64]
	pair := func(off uintptr) uintptr { return off / cacheLine }
	groups := [][]uintptr{
		{unsafe.Offsetof(r.prodHead), unsafe.Offsetof(r.prodTail)},
		{unsafe.Offsetof(r.prodNext), unsafe.Offsetof(r.prodCachedConsTail)},
		{unsafe.Offsetof(r.consHead), unsafe.Offsetof(r.consTail)},
		{unsafe.Offsetof(r.consNext), unsafe.Offsetof(r.consCachedProdTail)},
		{unsafe.Offsetof(r.slots), unsafe.Offsetof(r.mode)},
		{unsafe.Offsetof(r.refused), unsafe.Offsetof(r.failures)},
	}
	seen := map[uintptr]int{}
	for i, g := range groups {
		for _, off := range g {
			if pair(off) != pair(g[0]) {
				t.Fatalf("group %d straddles a cache-line pair: offsets %v", i, g)
			}
		}
		if j, ok := seen[pair(g[0])]; ok {
			t.Fatalf("groups %d and %d share a cache-line pair", j, i)
		}
		seen[pair(g[0])] = i
	}
	if unsafe.Offsetof(r.refused)%8 != 0 || unsafe.Offsetof(r.failures)%8 != 0 {
		t.Fatal("counters not 64-bit aligned")
	}
}

func TestZeroAllocs(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPSC, SPMC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) { testZeroAllocs(t, mode) })
	}
}

func testZeroAllocs(t *testing.T, mode Mode) {
	r, _ := New[*int](64, mode)
	x := 1
	src := make([]*int, 32)
	for i := range src {
		src[i] = &x
	}
	dst := make([]*int, 32)
	allocs := testing.AllocsPerRun(1000, func() {
		r.EnqueueBurst(src)
		r.DequeueBurst(dst)
		r.EnqueueBulk(src)
		r.PeekBurst(dst)
		r.Advance(32)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per burst, want 0", allocs)
	}
}
