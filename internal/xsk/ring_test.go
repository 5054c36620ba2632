package xsk

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeRing is ring memory in the Go heap: what the kernel would mmap.
type fakeRing[T slot] struct {
	prod, cons, flags atomic.Uint32
	slots             []T
}

func newFakeRing[T slot](n int, start uint32) *fakeRing[T] {
	r := &fakeRing[T]{slots: make([]T, n)}
	r.prod.Store(start)
	r.cons.Store(start)
	return r
}

// user-side views and the simulated kernel's view of the same memory.
func (r *fakeRing[T]) producer() prodRing[T] { return newProdRing(&r.prod, &r.cons, &r.flags, r.slots) }
func (r *fakeRing[T]) consumer() consRing[T] { return newConsRing(&r.prod, &r.cons, &r.flags, r.slots) }

func TestProdConsTable(t *testing.T) {
	for _, tc := range []struct {
		name        string
		size        int
		start       uint32
		produce     int // first burst
		wantProd    int
		consume     int
		wantCons    int
		produce2    int
		wantProd2   int
		wantOutst   uint32
		wantFreeEnd uint32
	}{
		{"fits", 8, 0, 5, 5, 5, 5, 3, 3, 3, 5},
		{"full", 8, 0, 12, 8, 0, 0, 1, 0, 8, 0},
		{"partial consume", 8, 0, 8, 8, 3, 3, 5, 3, 8, 0},
		{"wrap uint32", 8, 0xFFFFFFFC, 7, 7, 6, 6, 7, 7, 8, 0},
		{"empty bursts", 4, 100, 0, 0, 0, 0, 0, 0, 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newFakeRing[uint64](tc.size, tc.start)
			p, k := mem.producer(), mem.consumer()
			in := make([]uint64, max(tc.produce, tc.produce2))
			for i := range in {
				in[i] = uint64(i + 1)
			}
			if got := p.produce(in[:tc.produce]); got != tc.wantProd {
				t.Fatalf("produce = %d, want %d", got, tc.wantProd)
			}
			out := make([]uint64, tc.consume)
			if got := k.consume(out); got != tc.wantCons {
				t.Fatalf("consume = %d, want %d", got, tc.wantCons)
			}
			for i := range tc.wantCons {
				if out[i] != uint64(i+1) {
					t.Fatalf("slot %d = %d, want %d", i, out[i], i+1)
				}
			}
			if got := p.produce(in[:tc.produce2]); got != tc.wantProd2 {
				t.Fatalf("second produce = %d, want %d", got, tc.wantProd2)
			}
			if got := p.outstanding(); got != tc.wantOutst {
				t.Fatalf("outstanding = %d, want %d", got, tc.wantOutst)
			}
			if got := p.free(uint32(tc.size)); got != tc.wantFreeEnd {
				t.Fatalf("free = %d, want %d", got, tc.wantFreeEnd)
			}
		})
	}
}

// TestRingConcurrentDifferential runs a producer and a consumer (standing
// in for the kernel) on two goroutines with random burst sizes and checks
// the consumed sequence is exactly the produced one (a naive reference: a
// counter). Run with -race: the slots are plain memory ordered only by the
// atomic indexes.
func TestRingConcurrentDifferential(t *testing.T) {
	total := uint64(100000)
	if testing.Short() || raceEnabled {
		total = 20000
	}
	for _, size := range []int{1, 2, 64, 2048} {
		mem := newFakeRing[Desc](size, 0xFFFFFF00)
		p, k := mem.producer(), mem.consumer()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(1, uint64(size)))
			buf := make([]Desc, 97)
			next := uint64(0)
			for next < total {
				b := buf[:1+rng.IntN(len(buf))]
				for i := range b {
					b[i] = Desc{Addr: next + uint64(i), Len: uint32(next+uint64(i)) ^ 0x5a5a}
				}
				k := p.produce(b)
				if k == 0 {
					runtime.Gosched() // ring full: let the consumer run
				}
				next += uint64(k)
			}
		}()
		var bad atomic.Value
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(2, uint64(size)))
			buf := make([]Desc, 61)
			want := uint64(0)
			for want < total {
				n := k.consume(buf[:1+rng.IntN(len(buf))])
				if n == 0 {
					runtime.Gosched()
				}
				for _, d := range buf[:n] {
					if d.Addr != want || d.Len != uint32(want)^0x5a5a {
						bad.CompareAndSwap(nil, d)
						return
					}
					want++
				}
			}
		}()
		wg.Wait()
		if v := bad.Load(); v != nil {
			t.Fatalf("size %d: out-of-order or torn slot %+v", size, v)
		}
	}
}

// fakeSocket builds a Socket over Go memory, with a simulated kernel.
type fakeSocket struct {
	s          *Socket
	fill, comp *fakeRing[uint64]
	rx, tx     *fakeRing[Desc]
	kfill      consRing[uint64] // kernel's views
	kcomp      prodRing[uint64]
	krx        prodRing[Desc]
	ktx        consRing[Desc]
}

func newFakeSocket(n int) *fakeSocket {
	f := &fakeSocket{
		fill: newFakeRing[uint64](n, 0), comp: newFakeRing[uint64](n, 0),
		rx: newFakeRing[Desc](n, 0), tx: newFakeRing[Desc](n, 0),
	}
	f.s = &Socket{fd: -1, wakeup: true,
		fill: f.fill.producer(), comp: f.comp.consumer(), rx: f.rx.consumer(), tx: f.tx.producer()}
	f.kfill, f.kcomp, f.krx, f.ktx = f.fill.consumer(), f.comp.producer(), f.rx.producer(), f.tx.consumer()
	return f
}

// TestBurstLoopAllocs drives a reflect loop (fill, kernel RX, Receive,
// Transmit, kernel TX and completion, Complete) and fails on any allocation.
func TestBurstLoopAllocs(t *testing.T) {
	f := newFakeSocket(256)
	s := f.s
	var addrs [64]uint64
	var descs [64]Desc
	var kaddrs [64]uint64
	var kdescs [64]Desc
	for i := range addrs {
		addrs[i] = uint64(i) * 4096
	}
	if n := s.Fill(addrs[:]); n != 64 {
		t.Fatalf("Fill = %d", n)
	}
	round := func() {
		// kernel: take fill entries, produce RX.
		n := f.kfill.consume(kaddrs[:])
		for i := range n {
			kdescs[i] = Desc{Addr: kaddrs[i] + 256, Len: 60}
		}
		f.krx.produce(kdescs[:n])
		// user: receive, reflect.
		m := s.Receive(descs[:])
		if s.Transmit(descs[:m]) != m {
			panic("tx full")
		}
		if err := s.FlushTx(); err != nil { // flag not set: no syscall
			panic(err)
		}
		// kernel: consume TX, complete.
		k := f.ktx.consume(kdescs[:])
		for i := range k {
			kaddrs[i] = kdescs[i].Addr &^ 4095
		}
		f.kcomp.produce(kaddrs[:k])
		// user: complete, refill.
		c := s.Complete(addrs[:])
		s.Fill(addrs[:c])
		if err := s.WakeupRx(); err != nil {
			panic(err)
		}
	}
	round()
	if a := testing.AllocsPerRun(1000, round); a != 0 {
		t.Fatalf("burst loop allocates %v times per round, want 0", a)
	}
	st, _ := s.Stats()
	if st.RxPackets == 0 || st.RxPackets != st.TxPackets || st.TxPackets != st.Completed || st.TxKicks != 0 || st.TxKicksSkipped == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestKickPolicy(t *testing.T) {
	f := newFakeSocket(8)
	s := f.s
	// Nothing outstanding: no kick, no skip.
	if err := s.FlushTx(); err != nil {
		t.Fatal(err)
	}
	s.Transmit([]Desc{{Addr: 0, Len: 60}})
	if err := s.FlushTx(); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(); st.TxKicks != 0 || st.TxKicksSkipped != 1 {
		t.Fatalf("without the flag: %+v", st)
	}
	// Flag set: FlushTx kicks; fd -1 makes sendto fail with EBADF, which is
	// reported, counted and remembered.
	f.tx.flags.Store(unix.XDP_RING_NEED_WAKEUP)
	if err := s.FlushTx(); err != unix.EBADF {
		t.Fatalf("FlushTx = %v, want EBADF", err)
	}
	if st, _ := s.Stats(); st.TxKicks != 1 || st.KickErrors != 1 {
		t.Fatalf("with the flag: %+v", st)
	}
	if s.Err() != unix.EBADF || !s.TxNeedsWakeup() {
		t.Fatalf("Err = %v", s.Err())
	}
	// RX: no flag, no busy poll: no syscall.
	if err := s.WakeupRx(); err != nil {
		t.Fatal(err)
	}
	f.fill.flags.Store(unix.XDP_RING_NEED_WAKEUP)
	if err := s.WakeupRx(); err != unix.EBADF {
		t.Fatalf("WakeupRx = %v, want EBADF", err)
	}
	// need_wakeup off: the flags are ignored and FlushTx always kicks.
	s.wakeup = false
	f.fill.flags.Store(unix.XDP_RING_NEED_WAKEUP)
	if s.FillNeedsWakeup() || s.WakeupRx() != nil {
		t.Fatal("need_wakeup off but WakeupRx kicked")
	}
}

func TestTxSkbBudget(t *testing.T) {
	for _, tc := range []struct {
		want int
		ring uint32
		out  int
	}{
		{0, 2048, 2048},    // default: the whole TX ring
		{-1, 2048, 0},      // kernel default
		{64, 2048, 64},     // as asked
		{8, 2048, 32},      // the kernel's minimum
		{4096, 2048, 2048}, // at most the ring
		{0, 16, 0},         // a ring below the minimum: leave it
	} {
		if got := txSkbBudget(tc.want, tc.ring); got != tc.out {
			t.Errorf("txSkbBudget(%d, %d) = %d, want %d", tc.want, tc.ring, got, tc.out)
		}
	}
}
