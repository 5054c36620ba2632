package afxdp

import (
	"math/bits"
	"sync/atomic"

	"github.com/fwdd/fwdd/internal/xsk"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
)

// qsock is one attachment of a queue: its socket and the set of mbufs the
// kernel holds through it. Published to the poller by queue.cur.
type qsock struct {
	s *xsk.Socket
	// inKernel has bit i set while mbuf i of the pool is owned by the kernel
	// (on the fill ring, in the driver, on the TX ring until completed).
	// Releasing the socket gives exactly those back; a descriptor the kernel
	// should not have returned is counted (Rx/TxErrors), never freed twice.
	inKernel []uint64
}

func (st *qsock) mark(i uint32) { st.inKernel[i>>6] |= 1 << (i & 63) }

func (st *qsock) unmark(i uint32) bool {
	w, b := &st.inKernel[i>>6], uint64(1)<<(i&63)
	had := *w&b != 0
	*w &^= b
	return had
}

// queue is one RX/TX queue pair. cur and busy are shared between the poller
// and the control side (attach/detach); everything after the padding is the
// poller's alone (the pmd contract: one poller per queue), except at attach
// and release, which run while cur is nil and the poller is out of its burst.
type queue struct {
	cur  atomic.Pointer[qsock]
	busy atomic.Uint32
	_    [52]byte

	umem   *xsk.Umem
	pool   *mbuf.Pool
	cache  *mbuf.Cache
	c      *pmd.QueueCounters
	pools  []*mbuf.Pool
	portID uint16
	qid    uint16

	region []byte // the pool's memory: the UMEM the descriptors point into
	touch  byte   // what touchFrames read last (kept so that its loads stay)

	descs  [Burst]xsk.Desc
	addrs  [Burst]uint64
	ms     [Burst]*mbuf.Mbuf
	sent   [Burst]*mbuf.Mbuf // what went on the TX ring (original or copy)
	copied [Burst]*mbuf.Mbuf // originals of packets copied into our pool
	copyAt [Burst]int        // their index in the burst
}

func (q *queue) init(u *xsk.Umem, pool *mbuf.Pool, c *pmd.QueueCounters, port, qid uint16, pools []*mbuf.Pool) {
	q.umem, q.pool, q.c, q.portID, q.qid, q.pools = u, pool, c, port, qid, pools
	q.cache = pool.NewCache()
	q.region = pool.Region()
}

// prime fills a new socket's fill ring from the pool's shared ring (control
// side: the poller's cache is not ours to use).
func (q *queue) prime(st *qsock) {
	ms := make([]*mbuf.Mbuf, Burst)
	addrs := make([]uint64, Burst)
	for st.s.FillFree() >= Burst {
		n := q.pool.Alloc(ms)
		for i, m := range ms[:n] {
			addrs[i] = q.pool.Addr(m)
			st.mark(m.Index())
		}
		k := st.s.Fill(addrs[:n])
		for _, m := range ms[k:n] {
			st.unmark(m.Index())
		}
		if k < n {
			q.pool.Free(ms[k:n])
		}
		if n < Burst || k < n {
			return
		}
	}
}

// release closes st's socket and gives every mbuf the kernel held back to
// the pool's shared ring (control side).
func (q *queue) release(st *qsock) {
	if err := st.s.Close(); err != nil {
		q.c.TxErrors.Add(1)
	}
	var one [1]*mbuf.Mbuf
	for w, set := range st.inKernel {
		for set != 0 {
			b := set & -set
			set &^= b
			one[0] = q.pool.ByIndex(uint32(w*64 + bits.TrailingZeros64(b)))
			q.pool.Free(one[:])
		}
		st.inKernel[w] = 0
	}
}

func (q *queue) rxBurst(ms []*mbuf.Mbuf) int {
	q.busy.Store(1)
	st := q.cur.Load()
	if st == nil {
		q.busy.Store(0)
		return 0
	}
	n := q.rx(st, ms)
	q.busy.Store(0)
	return n
}

func (q *queue) txBurst(ms []*mbuf.Mbuf) int {
	q.busy.Store(1)
	st := q.cur.Load()
	if st == nil {
		q.busy.Store(0)
		return 0
	}
	n := q.tx(st, ms)
	q.busy.Store(0)
	return n
}

// refill gives the kernel fresh mbufs for receiving, a burst at a time,
// while the fill ring has room.
func (q *queue) refill(st *qsock) {
	for st.s.FillFree() >= Burst {
		n := q.cache.Alloc(q.ms[:])
		if n == 0 {
			// Pool exhausted: the fill ring runs dry and the kernel counts
			// the drops (XDP_STATISTICS rx_fill_ring_empty_descs).
			return
		}
		for i, m := range q.ms[:n] {
			q.addrs[i] = q.pool.Addr(m)
			st.mark(m.Index())
		}
		k := st.s.Fill(q.addrs[:n])
		if k < n {
			for _, m := range q.ms[k:n] {
				st.unmark(m.Index())
			}
			q.cache.Free(q.ms[k:n])
			return
		}
	}
}

func (q *queue) rx(st *qsock, ms []*mbuf.Mbuf) int {
	want := min(len(ms), Burst)
	n := st.s.Receive(q.descs[:want])
	q.touch = touchFrames(q.region, q.descs[:n])
	var bytes uint64
	k := 0
	for _, d := range q.descs[:n] {
		m := q.pool.ByAddr(d.Addr)
		if m == nil || !st.unmark(m.Index()) {
			q.c.RxErrors.Add(1)
			continue
		}
		off := d.Addr - q.pool.Addr(m)
		if !m.SetData(int(off), int(d.Len)) {
			q.c.RxErrors.Add(1)
			q.freeOne(m)
			continue
		}
		m.Port, m.Queue = q.portID, q.qid
		ms[k] = m
		k++
		bytes += uint64(d.Len)
	}
	if k > 0 {
		q.c.RxPackets.Add(uint64(k))
		q.c.RxBytes.Add(bytes)
	}
	q.refill(st)
	if err := st.s.WakeupRx(); err != nil {
		q.c.RxErrors.Add(1)
	}
	if n == 0 {
		q.complete(st) // idle: collect TX completions too
	}
	return k
}

// touchFrames loads the first byte of every frame of descs from region
// (addresses outside it are skipped: rx counts them) and returns their sum.
//
// The kernel wrote these frames on another CPU, so their first cache lines
// are in none of this CPU's caches, and the parse that follows would wait
// for each miss in turn: ~45 ns a packet on a quiet veth rig, 75-100 under
// load, the worker's largest user-space cost (BENCHMARKS.md, "Issue 13,
// item 3, third pass"). In a loop with nothing else in it the loads are
// independent, so the core has many misses in flight at once and the
// burst pays for about one. (A PREFETCHT0 loop in assembly measured no
// better and is not portable.)
func touchFrames(region []byte, descs []xsk.Desc) byte {
	var t byte
	for _, d := range descs {
		if d.Addr < uint64(len(region)) {
			t += region[d.Addr]
		}
	}
	return t
}

func (q *queue) freeOne(m *mbuf.Mbuf) {
	var one [1]*mbuf.Mbuf
	one[0] = m
	q.cache.Free(one[:])
}

// complete takes transmitted frames back from the completion ring and frees
// their mbufs to the queue's cache.
func (q *queue) complete(st *qsock) {
	for {
		n := st.s.Complete(q.addrs[:])
		if n == 0 {
			return
		}
		k := 0
		for _, a := range q.addrs[:n] {
			m := q.pool.ByAddr(a)
			if m == nil || !st.unmark(m.Index()) {
				q.c.TxErrors.Add(1)
				continue
			}
			q.ms[k] = m
			k++
		}
		q.cache.Free(q.ms[:k])
		if n < len(q.addrs) {
			return
		}
	}
}

func (q *queue) tx(st *qsock, ms []*mbuf.Mbuf) int {
	q.complete(st)
	n := min(len(ms), Burst, st.s.TxFree())
	var bytes uint64
	nc := 0 // packets copied from another pool's memory
	i := 0
	for ; i < n; i++ {
		m := ms[i]
		if !q.pool.Contains(m) {
			// Another pool's memory is not in this UMEM: copy once into an
			// mbuf of ours and count it.
			var one [1]*mbuf.Mbuf
			if q.cache.Alloc(one[:]) == 0 {
				break
			}
			c := one[0]
			if !c.SetData(c.Offset(), m.Len()) {
				q.cache.Free(one[:])
				break
			}
			copy(c.Data(), m.Data())
			c.Flags = m.Flags | mbuf.FlagCopied
			q.copied[nc], q.copyAt[nc] = m, i
			nc++
			m = c
		}
		q.sent[i] = m
		q.descs[i] = xsk.Desc{Addr: q.pool.DataAddr(m), Len: uint32(m.Len())}
		st.mark(m.Index())
		bytes += uint64(m.Len())
	}
	// k == i: i is bounded by TxFree and we are the ring's only producer.
	// Should the kernel disagree, the caller keeps ms[k:] and our copies of
	// them go back to our cache.
	k := st.s.Transmit(q.descs[:i])
	for j := k; j < i; j++ {
		st.unmark(q.sent[j].Index())
		bytes -= uint64(q.sent[j].Len())
		if q.sent[j] != ms[j] {
			q.freeOne(q.sent[j])
		}
	}
	copies := 0
	for j := range nc {
		if q.copyAt[j] >= k {
			continue
		}
		copies++
		m := q.copied[j]
		if id := int(m.PoolID()); id < len(q.pools) && q.pools[id] != nil && q.pools[id].Contains(m) {
			q.pools[id].Free(q.copied[j : j+1])
		} else {
			q.c.TxErrors.Add(1) // an mbuf of no pool of this stack: not ours to free
		}
	}
	if copies > 0 {
		q.c.Copies.Add(uint64(copies))
	}
	if k > 0 {
		q.c.TxPackets.Add(uint64(k))
		q.c.TxBytes.Add(bytes)
	}
	if err := st.s.FlushTx(); err != nil {
		q.c.TxErrors.Add(1)
	}
	return k
}
