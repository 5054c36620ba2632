package ringpmd

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
)

func newPool(t testing.TB, id uint16, count int) *mbuf.Pool {
	t.Helper()
	p, err := mbuf.NewPool(mbuf.Config{Name: "t", ID: id, Count: count, CacheSize: min(64, count), Checked: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func cfg(name string, id uint16, args string, pools ...*mbuf.Pool) pmd.Config {
	a, err := pmd.ParseArgs(args)
	if err != nil {
		panic(err)
	}
	return pmd.Config{Name: name, ID: id, Driver: DriverName, Args: a, Pools: pools}
}

// fill allocates n mbufs holding distinct payloads "pkt-<i>".
func fill(t testing.TB, pool *mbuf.Pool, n, base int) []*mbuf.Mbuf {
	t.Helper()
	ms := make([]*mbuf.Mbuf, n)
	if pool.Alloc(ms) != n {
		t.Fatal("pool exhausted")
	}
	for i, m := range ms {
		copy(m.Append(64), payload(base+i))
	}
	return ms
}

func payload(i int) []byte {
	b := make([]byte, 64)
	copy(b, "pkt-")
	b[4], b[5] = byte(i>>8), byte(i)
	return b
}

func TestArgs(t *testing.T) {
	pool := newPool(t, 0, 64)
	for _, tc := range []struct{ args, err string }{
		{"", ""},
		{"queues=4,size=64,mac=02:00:00:00:00:05", ""},
		{"queues=0", "queues"},
		{"queues=65", "queues"},
		{"size=100", "power of two"},
		{"size=0", "want an integer"},
		{"mac=foo", "want a unicast MAC"},
		{"nope=1", "argument nope: unknown"},
		{"peer=l0", "pmd.Config.Shared"},
	} {
		p, err := pmd.Open(cfg("p0", 0, tc.args, pool))
		if tc.err == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.args, err)
			} else {
				p.Close()
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "port p0: ring: ") && !strings.HasPrefix(err.Error(), "port p0: driver ring") {
			t.Errorf("%q: err %v, want one containing %q", tc.args, err, tc.err)
		}
	}
	if _, _, err := NewPair(cfg("a", 0, "queues=2", pool), cfg("b", 1, "queues=3", pool)); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("mismatched pair: %v", err)
	}
}

// TestPair: frames cross both ways intact and in order, stamped with the
// receiving port and queue; counters and links agree; nothing leaks.
func TestPair(t *testing.T) {
	pool := newPool(t, 0, 512)
	a, b, err := NewPair(cfg("a", 1, "queues=2,size=64", pool), cfg("b", 2, "", pool))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Link().Up || !b.Link().Up || b.Info().RxQueues != 2 {
		t.Fatal("pair not up or queues not inherited", a.Link(), b.Info())
	}
	rx := make([]*mbuf.Mbuf, 64)
	for dir, pp := range [][2]*Port{{a, b}, {b, a}} {
		src, dst := pp[0], pp[1]
		ms := fill(t, pool, 10, dir*100)
		ms[0].Flags, ms[0].OutPort = mbuf.FlagUser, 9
		if n := src.TxBurst(1, ms); n != 10 {
			t.Fatalf("tx %d", n)
		}
		if dst.RxBurst(0, rx) != 0 {
			t.Fatal("queue 0 got queue 1's packets")
		}
		n := dst.RxBurst(1, rx)
		if n != 10 {
			t.Fatalf("rx %d", n)
		}
		for i, m := range rx[:n] {
			if !bytes.Equal(m.Data(), payload(dir*100+i)) || m.Port != dst.id || m.Queue != 1 || m.Flags != 0 || m.OutPort != 0 {
				t.Fatalf("dir %d pkt %d: wrong data or metadata %+v", dir, i, m)
			}
		}
		pool.Free(rx[:n])
		if s := src.Stats()[1]; s.TxPackets != 10 || s.TxBytes != 640 {
			t.Fatalf("tx stats %+v", s)
		}
		if s := dst.Stats()[1]; s.RxPackets != 10 || s.RxBytes != 640 {
			t.Fatalf("rx stats %+v", s)
		}
	}
	a.Close()
	if b.Link().Up || a.Link().Up {
		t.Fatal("link up after peer closed")
	}
	b.Close()
	b.Close()
	if s := pool.Stats(); s.InUse != 0 {
		t.Fatalf("leak %+v", s)
	}
}

// TestFullRing: TxBurst accepts what fits and the caller keeps the rest.
func TestFullRing(t *testing.T) {
	pool := newPool(t, 0, 256)
	a, b, err := NewPair(cfg("a", 1, "size=16", pool), cfg("b", 2, "", pool))
	if err != nil {
		t.Fatal(err)
	}
	ms := fill(t, pool, 20, 0)
	if n := a.TxBurst(0, ms); n != 16 {
		t.Fatalf("tx into a 16-slot ring accepted %d", n)
	}
	if n := a.TxBurst(0, ms[16:]); n != 0 {
		t.Fatalf("tx into a full ring accepted %d", n)
	}
	rx := make([]*mbuf.Mbuf, 5)
	if b.RxBurst(0, rx) != 5 {
		t.Fatal("rx")
	}
	pool.Free(rx)
	if n := a.TxBurst(0, ms[16:]); n != 4 {
		t.Fatalf("tx after room %d", n)
	}
	if s := a.Stats()[0]; s.TxPackets != 20 || s.TxBytes != 20*64 {
		t.Fatalf("%+v", s)
	}
	// Close with 15 mbufs in flight, the receiver first: the sender's
	// close (the last) frees them.
	b.Close()
	if s := pool.Stats(); s.InUse != 0 {
		t.Fatalf("receiver's close left %d in use", s.InUse)
	}
	more := fill(t, pool, 3, 0)
	if a.TxBurst(0, more) != 3 {
		t.Fatal("tx to a closed peer")
	}
	a.Close()
	if s := pool.Stats(); s.InUse != 0 {
		t.Fatalf("leak %+v", s)
	}
}

func TestLoopAndBadQueue(t *testing.T) {
	pool := newPool(t, 0, 64)
	p, err := pmd.Open(cfg("lo", 3, "queues=2", pool))
	if err != nil {
		t.Fatal(err)
	}
	ms := fill(t, pool, 4, 0)
	if p.TxBurst(2, ms) != 0 || p.RxBurst(-1, ms) != 0 {
		t.Fatal("bad queue accepted")
	}
	if p.TxBurst(1, ms) != 4 || !p.Link().Up {
		t.Fatal("loop tx")
	}
	rx := make([]*mbuf.Mbuf, 8)
	if n := p.RxBurst(1, rx); n != 4 || rx[0].Port != 3 {
		t.Fatal("loop rx", n)
	}
	if p.TxBurst(0, rx[:4]) != 4 {
		t.Fatal("tx")
	}
	p.Close() // frees the 4 in flight
	if s := pool.Stats(); s.InUse != 0 {
		t.Fatalf("leak %+v", s)
	}
}

func TestHub(t *testing.T) {
	pool := newPool(t, 0, 64)
	h := NewHub()
	a, err := h.Open(cfg("a", 1, "peer=l0,queues=2", pool))
	if err != nil {
		t.Fatal(err)
	}
	if a.Link().Up || len(h.Waiting()) != 1 {
		t.Fatal("half a pair is up")
	}
	if _, err := h.Open(cfg("b", 2, "peer=l0,queues=1", pool)); err == nil || !strings.Contains(err.Error(), "port b: ring: queues=1 differs") {
		t.Fatalf("mismatch: %v", err)
	}
	b, err := h.Open(cfg("b", 2, "peer=l0", pool))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Link().Up || !b.Link().Up || len(h.Waiting()) != 0 {
		t.Fatal("pair not up")
	}
	ms := fill(t, pool, 2, 0)
	b.TxBurst(1, ms)
	if n := a.RxBurst(1, ms); n != 2 {
		t.Fatal("hub pair rx", n)
	}
	pool.Free(ms)
	// The name is free again; a half pair whose first port closed is
	// forgotten.
	c, _ := h.Open(cfg("c", 3, "peer=l0", pool))
	c.Close()
	d, _ := h.Open(cfg("d", 4, "peer=l0", pool))
	if d.Link().Up {
		t.Fatal("paired with a closed port")
	}
	if _, err := h.Open(cfg("e", 5, "peer=", pool)); err == nil {
		t.Fatal("empty peer accepted")
	}
	for _, p := range []pmd.Port{a, b, d} {
		p.Close()
	}
	if s := pool.Stats(); s.InUse != 0 {
		t.Fatalf("leak %+v", s)
	}
}

// TestConcurrent: one goroutine transmits on a, another receives on b;
// every packet arrives once, in order (run with -race).
func TestConcurrent(t *testing.T) {
	const total = 20000
	pool := newPool(t, 0, 1024)
	a, b, err := NewPair(cfg("a", 1, "size=64", pool), cfg("b", 2, "", pool))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := pool.NewCache()
		defer c.Flush()
		ms := make([]*mbuf.Mbuf, 32)
		seq := 0
		for seq < total {
			n := c.Alloc(ms[:min(32, total-seq)])
			for _, m := range ms[:n] {
				d := m.Append(8)
				d[0], d[1], d[2] = byte(seq>>16), byte(seq>>8), byte(seq)
				seq++
			}
			k := a.TxBurst(0, ms[:n])
			seq -= n - k
			c.Free(ms[k:n])
		}
	}()
	rx := make([]*mbuf.Mbuf, 32)
	c := pool.NewCache()
	defer c.Flush()
	for want := 0; want < total; {
		n := b.RxBurst(0, rx)
		for _, m := range rx[:n] {
			d := m.Data()
			if got := int(d[0])<<16 | int(d[1])<<8 | int(d[2]); got != want {
				t.Fatalf("got %d want %d", got, want)
			}
			want++
		}
		c.Free(rx[:n])
	}
	wg.Wait()
}

func TestZeroAllocs(t *testing.T) {
	pool := newPool(t, 0, 256)
	a, b, err := NewPair(cfg("a", 1, "", pool), cfg("b", 2, "", pool))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	ms := fill(t, pool, 32, 0)
	if n := testing.AllocsPerRun(1000, func() {
		a.TxBurst(0, ms)
		b.RxBurst(0, ms)
	}); n != 0 {
		t.Fatalf("TxBurst+RxBurst allocate %v per burst", n)
	}
	pool.Free(ms)
}

// BenchmarkRingPair: per-packet cost of TxBurst on one port plus RxBurst
// on its peer (bursts of 32).
func BenchmarkRingPair(b *testing.B) {
	pool2, _ := mbuf.NewPool(mbuf.Config{Count: 256, CacheSize: 64})
	defer pool2.Close()
	pa, pb, err := NewPair(cfg("a", 1, "", pool2), cfg("b", 2, "", pool2))
	if err != nil {
		b.Fatal(err)
	}
	defer pa.Close()
	defer pb.Close()
	ms := make([]*mbuf.Mbuf, 32)
	pool2.Alloc(ms)
	defer pool2.Free(ms)
	b.ResetTimer()
	for i := 0; i < b.N; i += 32 {
		pa.TxBurst(0, ms)
		pb.RxBurst(0, ms)
	}
}
