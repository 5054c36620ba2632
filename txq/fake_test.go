package txq

import (
	"sync/atomic"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
)

// fakePort is the test double for pmd.Port's transmit side. Per call each
// queue accepts at most limit packets (limit < 0: all; 0: none), or, when
// accept is set, what accept says. Accepted packets are recorded (if record)
// as (Hash, NextHop) pairs and then freed to their pool, or, if caches is
// set, to the queue's cache (single-goroutine benchmarks).
type fakePort struct {
	name   string
	nq     int
	limit  atomic.Int64
	accept func(q, n int) int
	record bool
	pools  []*mbuf.Pool
	caches []*mbuf.Cache

	got   [][]pkt // per queue; written by the queue's poller only
	calls []int
}

type pkt struct{ hash, seq uint32 }

var _ pmd.Port = (*fakePort)(nil)

func newFakePort(nq int, limit int, pools []*mbuf.Pool) *fakePort {
	p := &fakePort{name: "fake", nq: nq, record: true, pools: pools, got: make([][]pkt, nq), calls: make([]int, nq)}
	p.limit.Store(int64(limit))
	return p
}

func (p *fakePort) RxBurst(int, []*mbuf.Mbuf) int { return 0 }

func (p *fakePort) TxBurst(q int, ms []*mbuf.Mbuf) int {
	p.calls[q]++
	n := len(ms)
	if p.accept != nil {
		n = min(n, p.accept(q, n))
	} else if l := int(p.limit.Load()); l >= 0 {
		n = min(n, l)
	}
	if p.record {
		for _, m := range ms[:n] {
			p.got[q] = append(p.got[q], pkt{m.Hash, m.NextHop})
		}
	}
	if p.caches != nil {
		p.caches[q].Free(ms[:n])
	} else {
		for i, m := range ms[:n] {
			p.pools[m.PoolID()].Free(ms[i : i+1])
		}
	}
	return n
}

func (p *fakePort) Info() pmd.Info {
	return pmd.Info{Name: p.name, Driver: "fake", TxQueues: p.nq, RxQueues: p.nq}
}
func (p *fakePort) Link() pmd.Link          { return pmd.Link{Up: true, Present: true} }
func (p *fakePort) Stats() []pmd.QueueStats { return nil }
func (p *fakePort) Close() error            { return nil }
func (p *fakePort) seqs(q int) (out []uint32) {
	for _, x := range p.got[q] {
		out = append(out, x.seq)
	}
	return out
}

func newPool(tb testing.TB, id uint16, count int) *mbuf.Pool {
	tb.Helper()
	p, err := mbuf.NewPool(mbuf.Config{Name: "t", ID: id, Count: count, CacheSize: 32, Checked: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// allocN allocates n mbufs of 64 bytes; mbuf i gets NextHop seq0+i and Hash
// hash(i).
func allocN(tb testing.TB, c *mbuf.Cache, n int, seq0 uint32, hash func(i int) uint32) []*mbuf.Mbuf {
	tb.Helper()
	ms := make([]*mbuf.Mbuf, n)
	if got := c.Alloc(ms); got != n {
		tb.Fatalf("alloc %d of %d", got, n)
	}
	for i, m := range ms {
		m.SetLen(64)
		m.NextHop = seq0 + uint32(i)
		if hash != nil {
			m.Hash = hash(i)
		}
	}
	return ms
}

func inUse(ps ...*mbuf.Pool) int {
	n := 0
	for _, p := range ps {
		n += p.Stats().InUse
	}
	return n
}

func seqRange(a, b uint32) []uint32 {
	var out []uint32
	for i := a; i < b; i++ {
		out = append(out, i)
	}
	return out
}
