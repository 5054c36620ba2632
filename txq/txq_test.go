package txq

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/mbuf"
)

type env struct {
	pool   *mbuf.Pool
	caches []*mbuf.Cache
	tbl    *Table
	s      []*Sender
}

func newEnv(t *testing.T, workers int) *env {
	t.Helper()
	e := &env{pool: newPool(t, 0, 4096)}
	tbl, err := New(Config{Workers: workers, Pools: []*mbuf.Pool{e.pool}, MaxPorts: 8})
	if err != nil {
		t.Fatal(err)
	}
	e.tbl = tbl
	for w := range workers {
		c := e.pool.NewCache()
		s, err := tbl.NewSender(w, c)
		if err != nil {
			t.Fatal(err)
		}
		e.caches = append(e.caches, c)
		e.s = append(e.s, s)
	}
	return e
}

func (e *env) add(t *testing.T, id uint16, p *fakePort, ring, backlog int) {
	t.Helper()
	if err := e.tbl.Add(id, PortConfig{Port: p, RingSize: ring, Backlog: backlog}); err != nil {
		t.Fatal(err)
	}
}

// teardown removes every port, flushes it and checks that every mbuf is
// back in the pool.
func (e *env) teardown(t *testing.T, ids ...uint16) int {
	t.Helper()
	for _, s := range e.s {
		s.Flush()
	}
	freed := 0
	for _, id := range ids {
		if err := e.tbl.Remove(id); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := e.tbl.Synchronize(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		n, err := e.tbl.Flush(id)
		if err != nil {
			t.Fatal(err)
		}
		freed += n
	}
	if n := inUse(e.pool); n != 0 {
		t.Errorf("%d mbufs still in use after Flush", n)
	}
	return freed
}

func TestOwnQueue(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     []int // Transmit calls in one burst
		calls int   // TxBurst calls expected
	}{
		{"one burst", []int{10}, 1},
		{"several transmits, one TxBurst", []int{5, 7, 1}, 1},
		{"buffer fills: early send", []int{100}, 2},
		{"exactly BurstSize", []int{BurstSize}, 1},
		{"empty", []int{0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 1)
			p := newFakePort(1, -1, []*mbuf.Pool{e.pool})
			e.add(t, 3, p, 0, 0)
			seq := uint32(0)
			for _, n := range tc.n {
				e.s[0].Transmit(3, allocN(t, e.caches[0], n, seq, nil))
				seq += uint32(n)
			}
			if seq < BurstSize && len(p.got[0]) != 0 {
				t.Fatal("sent before Flush")
			}
			e.s[0].Flush()
			if got := p.seqs(0); !slices.Equal(got, seqRange(0, seq)) {
				t.Fatalf("sent %v, want 0..%d in order", got, seq)
			}
			if p.calls[0] != tc.calls {
				t.Errorf("%d TxBurst calls, want %d", p.calls[0], tc.calls)
			}
			st := e.tbl.Stats(3)
			if st != (Stats{SentPackets: uint64(seq), SentBytes: 64 * uint64(seq)}) {
				t.Errorf("stats %+v", st)
			}
			e.teardown(t, 3)
		})
	}
}

func TestTransmitOne(t *testing.T) {
	e := newEnv(t, 1)
	p := newFakePort(1, -1, []*mbuf.Pool{e.pool})
	e.add(t, 0, p, 0, 0)
	for _, m := range allocN(t, e.caches[0], 70, 0, nil) {
		e.s[0].TransmitOne(0, m)
	}
	e.s[0].TransmitOne(5, allocN(t, e.caches[0], 1, 0, nil)[0]) // no port 5
	e.s[0].Flush()
	if got := p.seqs(0); !slices.Equal(got, seqRange(0, 70)) {
		t.Fatalf("sent %v", got)
	}
	if st := e.tbl.Stats(5); st.DropPortGone != 1 {
		t.Errorf("port 5 stats %+v", st)
	}
	e.teardown(t, 0)
}

func TestForeignQueueViaRing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		workers int
		nq      int
		from    int
	}{
		{"one queue, worker 1", 2, 1, 1},
		{"two queues, worker 2", 3, 2, 2},
		{"three queues, worker 3", 4, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.workers)
			p := newFakePort(tc.nq, -1, []*mbuf.Pool{e.pool})
			e.add(t, 1, p, 64, 0)
			hash := func(i int) uint32 { return uint32(i * 7) }
			const n = 40
			e.s[tc.from].Transmit(1, allocN(t, e.caches[tc.from], n, 0, hash))
			e.s[tc.from].Flush()
			for q := range tc.nq {
				if len(p.got[q]) != 0 {
					t.Fatal("a non-owner called TxBurst")
				}
			}
			if e.tbl.Queued(1) != n {
				t.Fatalf("%d in rings, want %d", e.tbl.Queued(1), n)
			}
			for q := range tc.nq {
				e.s[q].Drain()
			}
			for q := range tc.nq {
				var want []pkt
				for i := range n {
					if hash(i)%uint32(tc.nq) == uint32(q) {
						want = append(want, pkt{hash(i), uint32(i)})
					}
				}
				if !slices.Equal(p.got[q], want) {
					t.Errorf("queue %d got %v, want %v", q, p.got[q], want)
				}
				if p.calls[q] != 1 {
					t.Errorf("queue %d: %d TxBurst calls, want 1", q, p.calls[q])
				}
			}
			if st := e.tbl.Stats(1); st.SentPackets != n || st.Drops() != 0 {
				t.Errorf("stats %+v", st)
			}
			e.teardown(t, 1)
		})
	}
}

// TestPartialAcceptance: the device takes k packets per call; the rest must
// stay queued and leave later, in order, on both paths.
func TestPartialAcceptance(t *testing.T) {
	for _, tc := range []struct {
		name string
		from int // sending worker; worker 0 owns the only queue
		k    int
	}{
		{"own queue k=3", 0, 3},
		{"own queue k=0 then all", 0, 0},
		{"ring k=3", 1, 3},
		{"ring k=0 then all", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 2)
			p := newFakePort(1, tc.k, []*mbuf.Pool{e.pool})
			e.add(t, 0, p, 256, 256)
			s := e.s[tc.from]
			seq := uint32(0)
			for range 5 {
				s.Transmit(0, allocN(t, e.caches[tc.from], 10, seq, nil))
				seq += 10
				s.Flush()
				e.s[0].Drain()
			}
			if tc.k == 0 {
				if len(p.got[0]) != 0 {
					t.Fatal("refusing port got packets")
				}
				p.limit.Store(-1)
			}
			for i := 0; i < 100 && len(p.got[0]) < int(seq); i++ {
				e.s[0].Drain()
			}
			if got := p.seqs(0); !slices.Equal(got, seqRange(0, seq)) {
				t.Fatalf("sent %v, want 0..%d in order", got, seq)
			}
			if st := e.tbl.Stats(0); st.SentPackets != uint64(seq) || st.Drops() != 0 {
				t.Errorf("stats %+v", st)
			}
			e.teardown(t, 0)
		})
	}
}

// TestDropsCounted: what does not fit is freed and counted, by reason.
func TestDropsCounted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		from    int
		ring    int
		backlog int
		n       int
		want    Stats
		queued  int // left in backlog or ring, freed by Flush
	}{
		{"backlog overflow", 0, 8, 8, 20, Stats{DropBacklogFull: 12}, 8},
		{"backlog exact", 0, 8, 20, 20, Stats{}, 20},
		{"ring full", 1, 8, 8, 20, Stats{DropRingFull: 12}, 8},
		{"ring exact", 1, 32, 8, 20, Stats{}, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 2)
			p := newFakePort(1, 0, []*mbuf.Pool{e.pool})
			e.add(t, 0, p, tc.ring, tc.backlog)
			e.s[tc.from].Transmit(0, allocN(t, e.caches[tc.from], tc.n, 0, nil))
			e.s[tc.from].Flush()
			e.s[0].Drain()
			if st := e.tbl.Stats(0); st != tc.want {
				t.Errorf("stats %+v, want %+v", st, tc.want)
			}
			if n := inUse(e.pool); n != tc.queued {
				t.Errorf("%d mbufs in use, want %d (dropped ones must be freed)", n, tc.queued)
			}
			if freed := e.teardown(t, 0); freed != tc.queued {
				t.Errorf("Flush freed %d, want %d", freed, tc.queued)
			}
		})
	}
}

func TestPortGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   uint16
		prep func(e *env)
	}{
		{"never added", 2, func(*env) {}},
		{"beyond MaxPorts", 9999, func(*env) {}},
		{"removed", 1, func(e *env) {
			if err := e.tbl.Remove(1); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 1)
			p := newFakePort(1, -1, []*mbuf.Pool{e.pool})
			e.add(t, 1, p, 0, 0)
			tc.prep(e)
			e.s[0].Transmit(tc.id, allocN(t, e.caches[0], 5, 0, nil))
			e.s[0].Flush()
			if st := e.tbl.Stats(tc.id); st != (Stats{DropPortGone: 5}) {
				t.Errorf("stats %+v", st)
			}
			if n := inUse(e.pool); n != 0 {
				t.Errorf("%d in use", n)
			}
		})
	}
}

// TestFlushPrecondition: Flush refuses while a worker may still use the
// port, and works once it has finished its burst.
func TestFlushPrecondition(t *testing.T) {
	e := newEnv(t, 2)
	p := newFakePort(1, 0, []*mbuf.Pool{e.pool})
	e.add(t, 0, p, 16, 16)
	if _, err := e.tbl.Flush(0); !errors.Is(err, ErrInUse) {
		t.Fatalf("Flush of a live port: %v, want ErrInUse", err)
	}
	if _, err := e.tbl.Flush(5); !errors.Is(err, ErrPort) {
		t.Fatalf("Flush of an unknown port: %v, want ErrPort", err)
	}
	// Worker 1 is mid-burst with the port in its snapshot.
	e.s[1].Transmit(0, allocN(t, e.caches[1], 4, 0, nil))
	if err := e.tbl.Remove(0); err != nil {
		t.Fatal(err)
	}
	if err := e.tbl.Add(0, PortConfig{Port: p}); !errors.Is(err, ErrPortBusy) {
		t.Fatalf("Add before Flush: %v, want ErrPortBusy", err)
	}
	if _, err := e.tbl.Flush(0); !errors.Is(err, ErrInUse) {
		t.Fatalf("Flush while a worker is in a burst: %v, want ErrInUse", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := e.tbl.Synchronize(ctx); err == nil {
		t.Fatal("Synchronize returned while a worker is in a burst")
	}
	e.s[1].Flush() // ends the burst: the 4 packets reach the ring
	// An idle worker 0 does not hold up the grace period.
	if err := e.tbl.Synchronize(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, err := e.tbl.Flush(0)
	if err != nil || n != 4 {
		t.Fatalf("Flush = %d, %v; want 4", n, err)
	}
	if n := inUse(e.pool); n != 0 {
		t.Errorf("%d in use", n)
	}
	if err := e.tbl.Add(0, PortConfig{Port: p}); err != nil {
		t.Fatalf("Add after Flush: %v", err)
	}
	// A worker in a new burst (which loaded the new snapshot) does not
	// block a grace period for an older removal.
	e.s[1].Transmit(0, allocN(t, e.caches[1], 1, 0, nil))
	if err := e.tbl.Remove(0); err != nil {
		t.Fatal(err)
	}
	e.s[1].Flush()
	e.s[0].Transmit(7, allocN(t, e.caches[0], 1, 0, nil)) // in a burst, new snapshot
	if n, err := e.tbl.Flush(0); err != nil || n != 1 {
		t.Fatalf("Flush = %d, %v; want 1", n, err)
	}
	e.s[0].Flush()
}

// TestFlushReturnsEverything: mbufs of two pools spread over rings and
// backlogs of several queues all go back to their own pool.
func TestFlushReturnsEverything(t *testing.T) {
	p0, p1 := newPool(t, 0, 1024), newPool(t, 1, 1024)
	pools := []*mbuf.Pool{p0, p1}
	tbl, err := New(Config{Workers: 3, Pools: pools, MaxPorts: 4})
	if err != nil {
		t.Fatal(err)
	}
	c0, c1 := p0.NewCache(), p1.NewCache()
	caches := []*mbuf.Cache{c0, c1, p0.NewCache()}
	var ss []*Sender
	for w := range 3 {
		s, err := tbl.NewSender(w, caches[w])
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	port := newFakePort(2, 1, pools)
	if err := tbl.Add(2, PortConfig{Port: port, RingSize: 32, Backlog: 16}); err != nil {
		t.Fatal(err)
	}
	before := inUse(p0, p1)
	hash := func(i int) uint32 { return uint32(i) }
	for round := range 3 {
		for w, s := range ss {
			// Each worker sends mbufs of both pools.
			ms := append(allocN(t, c0, 20, 0, hash), allocN(t, c1, 20, 0, hash)...)
			s.Transmit(2, ms)
			s.Flush()
			if round == 0 && w == 2 {
				ss[0].Drain()
			}
		}
	}
	st := tbl.Stats(2)
	queued := inUse(p0, p1) - before
	if queued == 0 || st.Drops() == 0 {
		t.Fatalf("test does not fill rings and backlogs: queued %d, stats %+v", queued, st)
	}
	if err := tbl.Remove(2); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Synchronize(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, err := tbl.Flush(2)
	if err != nil || n != queued {
		t.Fatalf("Flush = %d, %v; want %d", n, err, queued)
	}
	if got := uint64(3*3*40) - st.SentPackets - st.Drops(); got != uint64(n) {
		t.Errorf("transmitted - sent - dropped = %d, flushed %d", got, n)
	}
	if n := inUse(p0, p1); n != before {
		t.Errorf("in use %d after Flush, %d before", n, before)
	}
	if tbl.Leaked() != 0 {
		t.Errorf("leaked %d", tbl.Leaked())
	}
}

func TestConfigErrors(t *testing.T) {
	pool := newPool(t, 0, 64)
	other := newPool(t, 3, 64)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Workers: 0, Pools: []*mbuf.Pool{pool}}, "workers"},
		{Config{Workers: 1}, "no mbuf pools"},
		{Config{Workers: 1, Pools: []*mbuf.Pool{other}}, "indexed by mbuf.PoolID"},
		{Config{Workers: 1, Pools: []*mbuf.Pool{pool}, MaxPorts: -1}, "max ports"},
	} {
		if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	tbl, err := New(Config{Workers: 2, Pools: []*mbuf.Pool{pool}, MaxPorts: 4})
	if err != nil {
		t.Fatal(err)
	}
	fp := newFakePort(1, -1, nil)
	for _, tc := range []struct {
		id   uint16
		pc   PortConfig
		want string
	}{
		{0, PortConfig{}, "no driver"},
		{4, PortConfig{Port: fp}, "max ports"},
		{0, PortConfig{Port: newFakePort(0, -1, nil)}, "TX queues"},
		{0, PortConfig{Port: fp, RingSize: 100}, "ring size"},
		{0, PortConfig{Port: fp, Backlog: -1}, "backlog"},
	} {
		if err := tbl.Add(tc.id, tc.pc); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Add(%d, %+v) = %v, want %q", tc.id, tc.pc, err, tc.want)
		}
	}
	if err := tbl.Add(0, PortConfig{Port: fp}); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Add(0, PortConfig{Port: fp}); !errors.Is(err, ErrPortBusy) {
		t.Errorf("duplicate Add: %v", err)
	}
	if err := tbl.Remove(1); !errors.Is(err, ErrPort) {
		t.Errorf("Remove of unknown: %v", err)
	}
	if _, err := tbl.NewSender(2, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("NewSender out of range: %v", err)
	}
	if _, err := tbl.NewSender(0, other.NewCache()); !errors.Is(err, ErrConfig) {
		t.Errorf("NewSender with a foreign cache: %v", err)
	}
	s, err := tbl.NewSender(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.NewSender(0, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("second NewSender: %v", err)
	}
	s.Close()
	if _, err := tbl.NewSender(0, nil); err != nil {
		t.Errorf("NewSender after Close: %v", err)
	}
}

// TestUnownedQueues: with more TX queues than workers, queues >= workers are
// never used.
func TestUnownedQueues(t *testing.T) {
	e := newEnv(t, 2)
	p := newFakePort(4, -1, []*mbuf.Pool{e.pool})
	e.add(t, 0, p, 0, 0)
	for w := range 2 {
		e.s[w].Transmit(0, allocN(t, e.caches[w], 10, 0, func(i int) uint32 { return uint32(i) }))
		e.s[w].Flush()
		e.s[w].Drain()
	}
	want := []int{10, 10, 0, 0}
	for q, n := range want {
		if len(p.got[q]) != n {
			t.Errorf("queue %d got %d, want %d", q, len(p.got[q]), n)
		}
	}
	e.teardown(t, 0)
}

// TestZeroAllocs: the per-burst paths (own queue, ring, partial acceptance
// with backlog, drops) allocate nothing.
func TestZeroAllocs(t *testing.T) {
	e := newEnv(t, 2)
	own := newFakePort(1, -1, []*mbuf.Pool{e.pool})
	own.record = false
	own.caches = e.caches[:1]
	half := newFakePort(1, -1, []*mbuf.Pool{e.pool})
	half.record = false
	half.caches = e.caches[:1]
	half.accept = func(q, n int) int { return n / 2 }
	e.add(t, 0, own, 1024, 0)
	e.add(t, 1, half, 64, 32)
	var ms [32]*mbuf.Mbuf
	for _, tc := range []struct {
		name string
		from int
		port uint16
		one  bool // TransmitOne per packet
	}{
		{"own queue", 0, 0, false},
		{"via ring", 1, 0, false},
		{"partial, backlog, drops", 0, 1, false},
		{"partial via ring, drops", 1, 1, false},
		{"port gone", 0, 5, false},
		{"TransmitOne via ring", 1, 0, true},
		{"TransmitOne port gone", 1, 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.caches[tc.from]
			run := func() {
				n := c.Alloc(ms[:])
				for i := range ms[:n] {
					ms[i].SetLen(60)
					ms[i].Hash = uint32(i)
				}
				if tc.one {
					for _, m := range ms[:n] {
						e.s[tc.from].TransmitOne(tc.port, m)
					}
				} else {
					e.s[tc.from].Transmit(tc.port, ms[:n])
				}
				e.s[tc.from].Flush()
				e.s[0].Drain()
				e.s[1].Drain()
			}
			for range 100 {
				run()
			}
			if a := testing.AllocsPerRun(500, run); a != 0 {
				t.Fatalf("%v allocations per burst, want 0", a)
			}
		})
	}
	e.teardown(t, 0, 1)
}

// TestFastmod checks fastmod against the % operator.
func TestFastmod(t *testing.T) {
	xs := []uint32{0, 1, 2, 3, 7, 63, 64, 65, 1<<16 - 1, 1 << 16, 1<<31 - 1, 1 << 31, 1<<32 - 1, 2654435761}
	for x := uint32(0); x < 1<<32-1<<26; x += 1<<26 + 12345 {
		xs = append(xs, x)
	}
	for _, d := range []uint32{1, 2, 3, 5, 7, 8, 12, 63, 64, 100, 1<<16 - 1, 1 << 16} {
		f := newFastmod(d)
		for _, x := range xs {
			if got, want := f.mod(x), x%d; got != want {
				t.Fatalf("%d %% %d = %d, want %d", x, d, got, want)
			}
		}
	}
}

func TestCloseKeepsCounters(t *testing.T) {
	e := newEnv(t, 1)
	p := newFakePort(1, 2, []*mbuf.Pool{e.pool})
	e.add(t, 0, p, 0, 4)
	e.s[0].Transmit(0, allocN(t, e.caches[0], 10, 0, nil)) // 2 sent, 4 backlog, 4 dropped
	e.s[0].Transmit(6, allocN(t, e.caches[0], 1, 0, nil))  // gone
	e.s[0].Close()
	want := Stats{SentPackets: 2, SentBytes: 128, DropBacklogFull: 4}
	if st := e.tbl.Stats(0); st != want {
		t.Errorf("after Close: %+v, want %+v", st, want)
	}
	if st := e.tbl.Stats(6); st.DropPortGone != 1 {
		t.Errorf("port 6 after Close: %+v", st)
	}
	e.s = nil
	if n := e.teardown(t, 0); n != 4 {
		t.Errorf("flushed %d, want 4", n)
	}
	want.Flushed = 4
	if st := e.tbl.Stats(0); st != want {
		t.Errorf("after Flush: %+v, want %+v", st, want)
	}
}

// TestWakeAndPending: a Sender that publishes into a queue's ring calls
// Config.Wake with the queue's owner, once per enqueue (not per packet),
// and the owner's Pending says whether its rings or backlogs still hold
// packets.
func TestWakeAndPending(t *testing.T) {
	pool := newPool(t, 0, 4096)
	var woken []int
	tbl, err := New(Config{Workers: 3, Pools: []*mbuf.Pool{pool}, MaxPorts: 8, Wake: func(owner int) { woken = append(woken, owner) }})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{pool: pool, tbl: tbl}
	for w := range 3 {
		c := pool.NewCache()
		s, err := tbl.NewSender(w, c)
		if err != nil {
			t.Fatal(err)
		}
		e.caches, e.s = append(e.caches, c), append(e.s, s)
	}
	p := newFakePort(2, -1, []*mbuf.Pool{pool}) // queues 0 and 1; worker 2 uses the rings
	e.add(t, 1, p, 64, 64)
	if e.s[0].Pending() || e.s[1].Pending() {
		t.Fatal("pending before anything was sent")
	}
	// Flow hashes 0 and 1 go to queues 0 and 1: one wake-up each for 20 packets.
	e.s[2].Transmit(1, allocN(t, e.caches[2], 20, 0, func(i int) uint32 { return uint32(i % 2) }))
	e.s[2].Flush()
	slices.Sort(woken)
	if !slices.Equal(woken, []int{0, 1}) {
		t.Fatalf("woken %v, want [0 1] (each owner once)", woken)
	}
	if !e.s[0].Pending() || !e.s[1].Pending() {
		t.Fatal("owners do not see the packets in their rings as pending")
	}
	e.s[0].Drain()
	e.s[1].Drain()
	if e.s[0].Pending() || e.s[1].Pending() {
		t.Fatal("still pending after Drain")
	}
	// The owner's own queue never wakes anyone.
	woken = woken[:0]
	e.s[0].Transmit(1, allocN(t, e.caches[0], 5, 100, func(int) uint32 { return 0 }))
	e.s[0].Flush()
	if len(woken) != 0 {
		t.Fatalf("own-queue transmit woke %v", woken)
	}
	// A device refusing everything leaves a backlog: pending.
	p.limit.Store(0)
	e.s[0].Transmit(1, allocN(t, e.caches[0], 5, 200, func(int) uint32 { return 0 }))
	e.s[0].Flush()
	e.s[0].Drain()
	if !e.s[0].Pending() {
		t.Fatal("a refused burst in the backlog is not pending")
	}
	p.limit.Store(-1)
	e.s[0].Drain()
	e.teardown(t, 1)
}
