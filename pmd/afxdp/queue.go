package afxdp

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/fwdd/fwdd/internal/xsk"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"golang.org/x/sys/unix"
)

// queue is one RX/TX queue pair: its socket, the pool (UMEM) it uses, a
// per-queue mbuf cache, scratch arrays and the set of mbufs the kernel holds.
// Only the queue's poller touches it (pmd contract), so nothing here is
// shared: counters are single-writer.
type queue struct {
	s      *xsk.Socket
	pool   *mbuf.Pool
	cache  *mbuf.Cache
	c      *pmd.QueueCounters
	pools  []*mbuf.Pool
	portID uint16
	qid    uint16
	fillLo int // refill when the fill ring has more than this many free slots

	// inKernel has bit i set while mbuf i of pool is owned by the kernel
	// (on the fill ring, in the driver, or on the TX ring until completed).
	// It lets Close give every one of them back, and catches a descriptor
	// the kernel should not have returned (counted in RxErrors).
	inKernel []uint64

	descs  [Burst]xsk.Desc
	addrs  [Burst]uint64
	ms     [Burst]*mbuf.Mbuf
	copied [Burst]*mbuf.Mbuf // originals of packets copied into our pool
	copyAt [Burst]int        // their index in the burst
	sent   [Burst]*mbuf.Mbuf // what went on the TX ring (original or copy)
}

func (q *queue) init(s *xsk.Socket, pool *mbuf.Pool, c *pmd.QueueCounters, port, qid uint16, pools []*mbuf.Pool) {
	q.s, q.pool, q.c, q.portID, q.qid, q.pools = s, pool, c, port, qid, pools
	q.cache = pool.NewCache()
	q.inKernel = make([]uint64, (pool.Count()+63)/64)
	q.fillLo = Burst
}

func (q *queue) mark(i uint32) { q.inKernel[i>>6] |= 1 << (i & 63) }
func (q *queue) unmark(i uint32) bool {
	w, b := &q.inKernel[i>>6], uint64(1)<<(i&63)
	had := *w&b != 0
	*w &^= b
	return had
}

// refill gives the kernel fresh mbufs for receiving, a burst at a time,
// while the fill ring has room.
func (q *queue) refill() {
	for q.s.FillFree() >= q.fillLo {
		n := q.cache.Alloc(q.ms[:])
		if n == 0 {
			// Pool exhausted: the fill ring runs dry and the kernel counts
			// the drops (XDP_STATISTICS rx_fill_ring_empty_descs).
			return
		}
		for i, m := range q.ms[:n] {
			q.addrs[i] = q.pool.Addr(m)
			q.mark(m.Index())
		}
		k := q.s.Fill(q.addrs[:n])
		if k < n {
			for _, m := range q.ms[k:n] {
				q.unmark(m.Index())
			}
			q.cache.Free(q.ms[k:n])
			return
		}
	}
}

func (q *queue) rxBurst(ms []*mbuf.Mbuf) int {
	if q.s == nil {
		return 0
	}
	want := min(len(ms), Burst)
	n := q.s.Receive(q.descs[:want])
	var bytes uint64
	k := 0
	for _, d := range q.descs[:n] {
		m := q.pool.ByAddr(d.Addr)
		if m == nil || !q.unmark(m.Index()) {
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
	q.refill()
	if err := q.s.WakeupRx(); err != nil {
		q.c.RxErrors.Add(1)
	}
	if n == 0 {
		q.complete() // idle: collect TX completions too
	}
	return k
}

func (q *queue) freeOne(m *mbuf.Mbuf) {
	q.copied[0] = m
	q.cache.Free(q.copied[:1])
}

// complete takes transmitted frames back from the completion ring and frees
// their mbufs to the queue's cache.
func (q *queue) complete() {
	for {
		n := q.s.Complete(q.addrs[:])
		if n == 0 {
			return
		}
		k := 0
		for _, a := range q.addrs[:n] {
			m := q.pool.ByAddr(a)
			if m == nil || !q.unmark(m.Index()) {
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

func (q *queue) txBurst(ms []*mbuf.Mbuf) int {
	if q.s == nil {
		return 0
	}
	q.complete()
	n := min(len(ms), Burst, q.s.TxFree())
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
		q.mark(m.Index())
		bytes += uint64(m.Len())
	}
	// k == i: i is bounded by TxFree and we are the ring's only producer.
	// Should the kernel disagree, the caller keeps ms[k:] and our copies of
	// them go back to our cache.
	k := q.s.Transmit(q.descs[:i])
	for j := k; j < i; j++ {
		q.unmark(q.sent[j].Index())
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
	if err := q.s.FlushTx(); err != nil {
		q.c.TxErrors.Add(1)
	}
	return k
}

// close unregisters nothing (the program is closed first), closes the
// socket and frees every mbuf the kernel held.
func (q *queue) close() error {
	if q.s == nil {
		return nil
	}
	err := q.s.Close()
	q.s = nil
	for w, set := range q.inKernel {
		for set != 0 {
			b := set & -set
			set &^= b
			i := uint32(w*64 + bits.TrailingZeros64(b))
			q.ms[0] = q.pool.ByIndex(i)
			q.cache.Free(q.ms[:1])
		}
		q.inKernel[w] = 0
	}
	q.cache.Flush()
	if err != nil && !errors.Is(err, unix.EBADF) {
		return fmt.Errorf("queue %d: %w", q.qid, err)
	}
	return nil
}
