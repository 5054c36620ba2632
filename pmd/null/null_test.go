package null

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/internal/pktgen"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
)

func newPool(t testing.TB, id uint16, count int, checked bool) *mbuf.Pool {
	t.Helper()
	p, err := mbuf.NewPool(mbuf.Config{Name: "t", ID: id, Count: count, CacheSize: min(64, count), Checked: checked})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestArgs(t *testing.T) {
	pool := newPool(t, 0, 256, true)
	for _, tc := range []struct {
		args, err string
	}{
		{"", ""},
		{"size=1518,flows=100,proto=ipv6,queues=4", ""},
		{"dmac=02:aa:bb:cc:dd:ee,smac=02:00:00:00:00:09,src=198.18.1.1,dst=198.19.2.2,sport=5,dport=7", ""},
		{"proto=ipv6,src=2001:2::5,dst=2001:2:0:9::1", ""},
		{"size=63", "argument size: \"63\""},
		{"size=1519", "[64, 1518]"},
		{"flows=0", "flows"},
		{"flows=1000000,size=1518", "more than 33554432"},
		{"proto=ipx", "want one of ipv4, ipv6"},
		{"dmac=zz", "want a unicast MAC address"},
		{"src=nope", "want an IP address"},
		{"src=2001:2::1", "set proto=ipv6"},
		{"queues=0", "queues"},
		{"bogus=1", "argument bogus: unknown"},
	} {
		a, err := pmd.ParseArgs(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		p, err := pmd.Open(pmd.Config{Name: "p0", Driver: "null", Args: a, Pools: []*mbuf.Pool{pool}})
		if tc.err == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.args, err)
				continue
			}
			p.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "port p0: ") {
			t.Errorf("%q: err %v, want one containing %q", tc.args, err, tc.err)
		}
	}
	small, err := mbuf.NewPool(mbuf.Config{Count: 8, BufSize: 512, CacheSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if _, err := pmd.Open(pmd.Config{Name: "p0", Driver: "null", Args: pmd.Args{"size": "512"}, Pools: []*mbuf.Pool{small}}); err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Errorf("frame larger than the buffer: %v", err)
	}
}

func open(t testing.TB, args pmd.Args, pools ...*mbuf.Pool) *Port {
	t.Helper()
	p, err := Open(pmd.Config{Name: "p0", ID: 7, Driver: "null", Args: args, Pools: pools})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestRxTx: RX yields the template frames of every flow in turn, stamped
// with port and queue; TX frees them; the pool is whole after Close.
func TestRxTx(t *testing.T) {
	pool := newPool(t, 0, 512, true)
	before := pool.Stats()
	p := open(t, pmd.Args{"flows": "5", "size": "100", "queues": "2"}, pool)
	tmpl, err := pktgen.Build(pktgen.Config{Flows: 5, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	ms := make([]*mbuf.Mbuf, 32)
	flow := 0
	for round := 0; round < 10; round++ {
		n := p.RxBurst(1, ms)
		if n != 32 {
			t.Fatalf("rx %d", n)
		}
		for _, m := range ms[:n] {
			if !bytes.Equal(m.Data(), tmpl.Frame(flow)) || m.Port != 7 || m.Queue != 1 {
				t.Fatalf("round %d: wrong frame or stamp (port %d queue %d)", round, m.Port, m.Queue)
			}
			flow = (flow + 1) % 5
		}
		if got := p.TxBurst(0, ms[:n]); got != n {
			t.Fatalf("tx %d", got)
		}
	}
	s := p.Stats()
	if s[1].RxPackets != 320 || s[1].RxBytes != 32000 || s[0].TxPackets != 320 || s[0].TxBytes != 32000 || s[0].RxPackets != 0 {
		t.Fatalf("stats %+v", s)
	}
	if p.RxBurst(2, ms) != 0 || p.TxBurst(-1, ms) != 0 {
		t.Fatal("bad queue accepted")
	}
	p.Close()
	p.Close()
	if after := pool.Stats(); after.InUse != before.InUse || after.Cached != 0 {
		t.Fatalf("pool before %+v after %+v", before, after)
	}
}

// TestExhaustion: an empty pool gives short bursts, counted as RxDrops.
func TestExhaustion(t *testing.T) {
	pool := newPool(t, 0, 64, true)
	p := open(t, nil, pool)
	ms := make([]*mbuf.Mbuf, 100)
	n := p.RxBurst(0, ms)
	if n != 64 {
		t.Fatalf("rx %d, want the whole pool", n)
	}
	if p.RxBurst(0, ms[n:]) != 0 || p.Stats()[0].RxDrops != 36+36 {
		t.Fatalf("drops %d", p.Stats()[0].RxDrops)
	}
	p.TxBurst(0, ms[:n])
	p.Close()
	if s := pool.Stats(); s.InUse != 0 {
		t.Fatalf("leak: %+v", s)
	}
}

// TestForeignPools: TX frees each mbuf to its own pool by PoolID and
// refuses mbufs of pools the stack does not know.
func TestForeignPools(t *testing.T) {
	a, b := newPool(t, 0, 128, true), newPool(t, 1, 128, true)
	stray := newPool(t, 5, 16, true)
	p := open(t, pmd.Args{"queues": "2"}, a, b)
	ms := make([]*mbuf.Mbuf, 6)
	a.Alloc(ms[0:2])
	b.Alloc(ms[2:4])
	a.Alloc(ms[4:5])
	stray.Alloc(ms[5:6])
	if n := p.TxBurst(1, ms); n != 5 {
		t.Fatalf("tx %d, want 5 (the stray refused)", n)
	}
	if p.Stats()[1].TxErrors != 1 {
		t.Fatal("stray not counted")
	}
	stray.Free(ms[5:6])
	p.Close()
	for _, pl := range []*mbuf.Pool{a, b, stray} {
		if s := pl.Stats(); s.InUse != 0 {
			t.Fatalf("%+v", s)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	pool := newPool(t, 0, 1024, false)
	p := open(t, pmd.Args{"flows": "64"}, pool)
	ms := make([]*mbuf.Mbuf, 32)
	if a := testing.AllocsPerRun(1000, func() {
		n := p.RxBurst(0, ms)
		p.TxBurst(0, ms[:n])
	}); a != 0 {
		t.Fatalf("RxBurst+TxBurst allocate %v times per burst", a)
	}
}

// BenchmarkNullRxTx: per-packet cost of RxBurst+TxBurst of 64-byte frames,
// next to the baseline of copying the same bytes between the same buffers
// without the driver (alloc, copy, stamp, free by hand through a cache).
func BenchmarkNullRxTx(b *testing.B) {
	const burst = 32
	pool := newPool(b, 0, 4096, false)
	b.Run("driver", func(b *testing.B) {
		p := open(b, pmd.Args{"flows": "64"}, pool)
		ms := make([]*mbuf.Mbuf, burst)
		b.SetBytes(64)
		b.ResetTimer()
		for i := 0; i < b.N; i += burst {
			n := p.RxBurst(0, ms)
			p.TxBurst(0, ms[:n])
		}
	})
	b.Run("baseline-cache-copy", func(b *testing.B) {
		tmpl, _ := pktgen.Build(pktgen.Config{Flows: 64})
		c := pool.NewCache()
		defer c.Flush()
		ms := make([]*mbuf.Mbuf, burst)
		flow := 0
		b.SetBytes(64)
		b.ResetTimer()
		for i := 0; i < b.N; i += burst {
			n := c.Alloc(ms)
			for _, m := range ms[:n] {
				copy(m.Append(64), tmpl.Frame(flow))
				flow = (flow + 1) & 63
			}
			c.Free(ms[:n])
		}
	})
	b.Run("baseline-memcpy", func(b *testing.B) {
		tmpl, _ := pktgen.Build(pktgen.Config{Flows: 64})
		dst := make([]byte, 64*burst)
		flow := 0
		b.SetBytes(64)
		b.ResetTimer()
		for i := 0; i < b.N; i += burst {
			for k := 0; k < burst; k++ {
				copy(dst[k*64:k*64+64], tmpl.Frame(flow))
				flow = (flow + 1) & 63
			}
		}
	})
}

// FuzzArgs: no argument string makes Open panic or build huge templates.
func FuzzArgs(f *testing.F) {
	for _, s := range []string{"", "size=1518,flows=100,proto=ipv6", "src=198.18.0.1,dst=2001:2::1", "flows=1048576,size=64", "dmac=02:00:00:00:00:01,queues=64"} {
		f.Add(s)
	}
	pool := newPool(f, 0, 256, false)
	f.Fuzz(func(t *testing.T, s string) {
		a, err := pmd.ParseArgs(s)
		if err != nil {
			return
		}
		p, err := Open(pmd.Config{Name: "p0", Args: a, Pools: []*mbuf.Pool{pool}})
		if err == nil {
			ms := make([]*mbuf.Mbuf, 4)
			n := p.RxBurst(0, ms)
			p.TxBurst(0, ms[:n])
			p.Close()
		}
	})
}
