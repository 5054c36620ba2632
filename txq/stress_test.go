package txq

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwdd/fwdd/mbuf"
)

// TestStress: three workers transmit to four ports, most of them through
// each other's queues, while the devices accept varying prefixes and the
// control plane removes, flushes and re-adds one port in a loop. Checks: no
// loss beyond counted drops (generated = sent + dropped + flushed), no
// duplicates, per-flow order, every mbuf back in its pool. Run with -race.
func TestStress(t *testing.T) {
	const workers, flows, nports = 3, 16, 4
	iters := 1500
	if raceEnabled || testing.Short() {
		iters = 500
	}
	pools := make([]*mbuf.Pool, workers)
	for w := range pools {
		pools[w] = newPool(t, uint16(w), 2048)
	}
	tbl, err := New(Config{Workers: workers, Pools: pools, MaxPorts: nports})
	if err != nil {
		t.Fatal(err)
	}
	// TX queues per port: 1 and 2 make workers use rings; 3 gives every
	// worker its own queue; port 3 (one queue) is removed and re-added.
	nqs := []int{1, 2, 3, 1}
	ports := make([]*fakePort, nports)
	for id, nq := range nqs {
		p := newFakePort(nq, -1, pools)
		p.accept = func(q, n int) int { // varying prefixes, 0 included
			c := p.calls[q]
			if c%4 == 0 {
				return n
			}
			return (c * 7) % (n + 1)
		}
		ports[id] = p
		if err := tbl.Add(uint16(id), PortConfig{Port: p, RingSize: 64, Backlog: 32}); err != nil {
			t.Fatal(err)
		}
	}
	caches := make([]*mbuf.Cache, workers)
	senders := make([]*Sender, workers)
	for w := range workers {
		caches[w] = pools[w].NewCache()
		if senders[w], err = tbl.NewSender(w, caches[w]); err != nil {
			t.Fatal(err)
		}
	}

	var generated atomic.Uint64
	var flushed atomic.Uint64
	var finished atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, c := senders[w], caches[w]
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var seq [flows]uint32
			var buf [48]*mbuf.Mbuf
			gen := uint64(0)
			for range iters {
				for range 1 + rng.IntN(3) {
					port := uint16(rng.IntN(nports))
					k := c.Alloc(buf[:1+rng.IntN(len(buf))])
					for _, m := range buf[:k] {
						f := rng.IntN(flows)
						m.Hash = uint32(w<<8 | f)
						m.NextHop = seq[f]
						seq[f]++
						m.SetLen(64 + f)
					}
					gen += uint64(k)
					s.Transmit(port, buf[:k])
				}
				s.Flush()
				s.Drain()
			}
			generated.Add(gen)
			// Keep serving owned queues until every worker is done.
			finished.Add(1)
			for finished.Load() < workers {
				s.Drain()
				runtime.Gosched()
			}
			s.Drain()
		}()
	}
	// The control plane: remove, grace period, flush, re-add port 3.
	cycles := 0
	ctl := make(chan struct{})
	go func() {
		defer close(ctl)
		for finished.Load() < workers {
			if err := tbl.Remove(3); err != nil {
				t.Error(err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := tbl.Synchronize(ctx)
			cancel()
			if err != nil {
				t.Error(err)
				return
			}
			n, err := tbl.Flush(3)
			if err != nil {
				t.Error(err)
				return
			}
			flushed.Add(uint64(n))
			if err := tbl.Add(3, PortConfig{Port: ports[3], RingSize: 64, Backlog: 32}); err != nil {
				t.Error(err)
				return
			}
			cycles++
			runtime.Gosched()
		}
	}()
	wg.Wait()
	<-ctl
	if t.Failed() {
		return
	}
	for id := range nports {
		if err := tbl.Remove(uint16(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tbl.Synchronize(context.Background()); err != nil {
		t.Fatal(err)
	}
	for id := range nports {
		n, err := tbl.Flush(uint16(id))
		if err != nil {
			t.Fatal(err)
		}
		flushed.Add(uint64(n))
	}

	var sent, dropped, recorded uint64
	var st Stats
	for id := range nports {
		s := tbl.Stats(uint16(id))
		st.Add(s)
		p := ports[id]
		// Per flow: one queue only, sequence strictly increasing, no
		// duplicates.
		seen := map[uint32]int{}
		last := map[uint32]uint32{}
		for q := range p.nq {
			recorded += uint64(len(p.got[q]))
			for _, x := range p.got[q] {
				if qq, ok := seen[x.hash]; ok && qq != q {
					t.Fatalf("port %d: flow %#x on queues %d and %d", id, x.hash, qq, q)
				}
				if l, ok := last[x.hash]; ok && x.seq <= l {
					t.Fatalf("port %d queue %d: flow %#x: seq %d after %d (reordered or duplicated)", id, q, x.hash, x.seq, l)
				}
				seen[x.hash] = q
				last[x.hash] = x.seq
			}
		}
	}
	sent, dropped = st.SentPackets, st.Drops()
	g := generated.Load()
	t.Logf("generated %d, sent %d, dropped %d (ring %d, backlog %d, gone %d), flushed %d, port 3 cycles %d",
		g, sent, dropped, st.DropRingFull, st.DropBacklogFull, st.DropPortGone, flushed.Load(), cycles)
	if st.Flushed != flushed.Load() {
		t.Errorf("Stats.Flushed %d, Flush returned %d", st.Flushed, flushed.Load())
	}
	if recorded != sent {
		t.Errorf("devices recorded %d, counters say %d sent", recorded, sent)
	}
	if g != sent+dropped+flushed.Load() {
		t.Errorf("generated %d != sent %d + dropped %d + flushed %d", g, sent, dropped, flushed.Load())
	}
	if st.DropRingFull == 0 || st.DropBacklogFull == 0 {
		t.Logf("warning: a drop path was not exercised: %+v", st)
	}
	for _, c := range caches {
		c.Flush()
	}
	for _, p := range pools {
		if s := p.Stats(); s.InUse != 0 {
			t.Errorf("pool %d: %d mbufs in use at the end", p.ID(), s.InUse)
		}
	}
	if tbl.Leaked() != 0 {
		t.Errorf("leaked %d", tbl.Leaked())
	}
}
