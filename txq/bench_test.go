package txq

import (
	"syscall"
	"testing"
	"time"

	"github.com/fwdd/fwdd/mbuf"
)

// Benchmarks are per packet, bursts of 32 allocated from a worker cache and
// freed by the fake device into the owner's cache, as a null driver would.
// Each has a baseline sub-benchmark that moves the same bursts with the
// same caches straight through the fake port's TxBurst, so "txq" minus
// "baseline" is the cost of this package.

const benchBurst = 32

type benchEnv struct {
	tbl    *Table
	pool   *mbuf.Pool
	caches []*mbuf.Cache
	s      []*Sender
	port   *fakePort
}

func newBenchEnv(b *testing.B, workers, nq int) *benchEnv {
	b.Helper()
	pool, err := mbuf.NewPool(mbuf.Config{Name: "bench", Count: 8192})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pool.Close() })
	tbl, err := New(Config{Workers: workers, Pools: []*mbuf.Pool{pool}, MaxPorts: 4})
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{tbl: tbl, pool: pool}
	for w := range workers {
		c := pool.NewCache()
		s, err := tbl.NewSender(w, c)
		if err != nil {
			b.Fatal(err)
		}
		e.caches = append(e.caches, c)
		e.s = append(e.s, s)
	}
	e.port = newFakePort(nq, -1, []*mbuf.Pool{pool})
	e.port.record = false
	e.port.caches = e.caches[:nq] // queue q is polled by worker q
	if err := tbl.Add(1, PortConfig{Port: e.port, RingSize: 1024}); err != nil {
		b.Fatal(err)
	}
	return e
}

// fill allocates a burst from c with 64-byte packets over 1024 flows.
func fill(b *testing.B, c *mbuf.Cache, ms []*mbuf.Mbuf, flow *uint32) {
	if c.Alloc(ms) != len(ms) {
		b.Fatal("pool exhausted")
	}
	for _, m := range ms {
		m.SetLen(64)
		m.Hash = *flow * 2654435761
		*flow = (*flow + 1) & 1023
	}
}

func BenchmarkTransmitOwnQueue(b *testing.B) {
	b.Run("txq", func(b *testing.B) {
		e := newBenchEnv(b, 1, 1)
		var ms [benchBurst]*mbuf.Mbuf
		var flow uint32
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuNow()
		for i := 0; i < b.N; i += benchBurst {
			fill(b, e.caches[0], ms[:], &flow)
			e.s[0].Transmit(1, ms[:])
			e.s[0].Flush()
			e.s[0].Drain()
		}
		report(b, cpu0)
	})
	b.Run("baseline", func(b *testing.B) {
		e := newBenchEnv(b, 1, 1)
		var ms [benchBurst]*mbuf.Mbuf
		var flow uint32
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuNow()
		for i := 0; i < b.N; i += benchBurst {
			fill(b, e.caches[0], ms[:], &flow)
			e.port.TxBurst(0, ms[:])
		}
		report(b, cpu0)
	})
}

// BenchmarkTransmitViaRing: worker nq (no queue of its own) transmits; the
// owners drain their rings. One goroutine plays every worker in turn, so
// the figure is the CPU cost of the ring path, without cross-core cache
// traffic (see BenchmarkTransmitViaRingParallel for that).
func BenchmarkTransmitViaRing(b *testing.B) {
	for _, nq := range []int{1, 2} {
		name := map[int]string{1: "1queue", 2: "2queues"}[nq]
		b.Run("txq-"+name, func(b *testing.B) {
			e := newBenchEnv(b, nq+1, nq)
			var ms [benchBurst]*mbuf.Mbuf
			var flow uint32
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuNow()
			for i := 0; i < b.N; i += benchBurst {
				fill(b, e.caches[nq], ms[:], &flow)
				e.s[nq].Transmit(1, ms[:])
				e.s[nq].Flush()
				for q := range nq {
					e.s[q].Drain()
				}
			}
			report(b, cpu0)
		})
		b.Run("baseline-"+name, func(b *testing.B) {
			e := newBenchEnv(b, nq+1, nq)
			var ms [benchBurst]*mbuf.Mbuf
			var flow uint32
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuNow()
			for i := 0; i < b.N; i += benchBurst {
				fill(b, e.caches[nq], ms[:], &flow)
				// Same queue choice and frees, no ring.
				if nq == 1 {
					e.port.TxBurst(0, ms[:])
					continue
				}
				// Group by queue the simple way, one TxBurst per queue.
				for q := range uint32(nq) {
					var g [benchBurst]*mbuf.Mbuf
					k := 0
					for _, m := range ms {
						if m.Hash%uint32(nq) == q {
							g[k] = m
							k++
						}
					}
					e.port.TxBurst(int(q), g[:k])
				}
			}
			report(b, cpu0)
		})
	}
}

// report adds Mpps (wall clock) and cpu-ns/op: the process's CPU time per
// packet, which, unlike ns/op, does not grow when the benchmark is
// descheduled on a shared machine (these benchmarks run one goroutine).
func report(b *testing.B, cpu0 time.Duration) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s/1e6, "Mpps")
	}
	b.ReportMetric(float64(cpuNow()-cpu0)/float64(b.N), "cpu-ns/op")
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
