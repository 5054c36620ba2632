package mbuf

import (
	"sync"
	"testing"
)

const benchBurst = 32

func reportPerMbuf(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s/1e6, "Mmbuf/s")
	}
}

// BenchmarkPoolBurst32: a worker's cache gets 32 mbufs then puts them back.
// ns/op is per mbuf.
func BenchmarkPoolBurst32(b *testing.B) {
	p, err := NewPool(Config{Count: 8192, CacheSize: 256})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	c := p.NewCache()
	ms := make([]*Mbuf, benchBurst)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += benchBurst {
		n := c.Alloc(ms)
		c.Free(ms[:n])
	}
	b.StopTimer()
	reportPerMbuf(b)
}

type syncPoolBuf struct {
	data [2048]byte
	off  int
}

// BenchmarkSyncPool: the baseline, one Get and one Put of a 2 KiB buffer per
// op.
func BenchmarkSyncPool(b *testing.B) {
	pool := sync.Pool{New: func() any { return new(syncPoolBuf) }}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := pool.Get().(*syncPoolBuf)
		x.off = 256
		pool.Put(x)
	}
	b.StopTimer()
	reportPerMbuf(b)
}

// BenchmarkSyncPoolBurst32: sync.Pool used in bursts of 32 (32 Gets, then
// 32 Puts), the closest like-for-like to BenchmarkPoolBurst32.
func BenchmarkSyncPoolBurst32(b *testing.B) {
	pool := sync.Pool{New: func() any { return new(syncPoolBuf) }}
	var xs [benchBurst]*syncPoolBuf
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += benchBurst {
		for k := range xs {
			xs[k] = pool.Get().(*syncPoolBuf)
		}
		for k := range xs {
			pool.Put(xs[k])
		}
	}
	b.StopTimer()
	reportPerMbuf(b)
}
