package txq

import (
	"fmt"
	"sync/atomic"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
)

// Sender is one worker's transmit side. It is owned by that worker's
// goroutine: Transmit, TransmitOne, Flush, Drain and Close must not be called
// concurrently. Its counters are readable from any goroutine (Table.Stats).
//
// A burst is everything between the first Transmit (or Drain) and the Flush
// that ends it: the Sender loads the Table's snapshot once at the start of a
// burst and keeps it until Flush; between bursts it holds no snapshot and no
// mbuf, which is what makes the worker quiescent for Table.Flush.
type Sender struct {
	t     *Table
	w     int
	cache *mbuf.Cache
	pools []*mbuf.Pool

	snap *snapshot // non-nil inside a burst

	bufs   []portBuf // index = port id: l3fwd's TX buffer per port
	dirty  []uint16  // ports with a non-empty buffer this burst
	qcount []int     // len workers: counting sort of foreign packets by queue
	sorted [BurstSize]*mbuf.Mbuf
	peek   [BurstSize]*mbuf.Mbuf
	one    [1]*mbuf.Mbuf
	qs     [BurstSize]uint16 // target queue of each packet in sendForeign

	ctr    []portCounters // len maxPorts+1; the last one counts ids >= maxPorts
	leaked pmd.Counter

	_ [128]byte
	// state counts burst edges: odd inside a burst, even between bursts.
	// Written by the owner at the start and end of every burst (the
	// per-worker quiescent counter), read by the control plane.
	state atomic.Uint64
	_     [128]byte
}

type portBuf struct {
	n     int
	dirty bool
	ms    [BurstSize]*mbuf.Mbuf
}

// portCounters are one worker's counters for one port, single writer.
type portCounters struct {
	sentPackets, sentBytes          pmd.Counter
	ringFull, backlogFull, portGone pmd.Counter
}

// Stats are transmit counters of a port (summed over workers by Table.Stats).
type Stats struct {
	// SentPackets/SentBytes: accepted by the device (TxBurst).
	SentPackets uint64 `json:"sent_packets"`
	SentBytes   uint64 `json:"sent_bytes"`
	// DropRingFull: a non-owner worker found the queue's MPSC ring full.
	DropRingFull uint64 `json:"drop_ring_full"`
	// DropBacklogFull: the device refused them and the owner's backlog was
	// full.
	DropBacklogFull uint64 `json:"drop_backlog_full"`
	// DropPortGone: transmitted to a port id not in the table.
	DropPortGone uint64 `json:"drop_port_gone"`
	// Flushed: freed by Table.Flush (if_qflush) after the port was removed.
	Flushed uint64 `json:"flushed"`
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.SentPackets += o.SentPackets
	s.SentBytes += o.SentBytes
	s.DropRingFull += o.DropRingFull
	s.DropBacklogFull += o.DropBacklogFull
	s.DropPortGone += o.DropPortGone
	s.Flushed += o.Flushed
}

// Drops returns the sum of the drop counters.
func (s Stats) Drops() uint64 { return s.DropRingFull + s.DropBacklogFull + s.DropPortGone }

func (c *portCounters) snapshot() Stats {
	return Stats{
		SentPackets: c.sentPackets.Load(), SentBytes: c.sentBytes.Load(),
		DropRingFull: c.ringFull.Load(), DropBacklogFull: c.backlogFull.Load(), DropPortGone: c.portGone.Load(),
	}
}

// NewSender returns worker's Sender and registers it with the table (for
// Stats and grace periods). cache is the worker's mbuf cache (nil: free
// everything with Pool.Free); its pool must be one of the table's pools.
// One Sender per worker; Close it to register another.
func (t *Table) NewSender(worker int, cache *mbuf.Cache) (*Sender, error) {
	if worker < 0 || worker >= t.workers {
		return nil, fmt.Errorf("%w: worker %d out of range [0, %d)", ErrConfig, worker, t.workers)
	}
	if cache != nil {
		id := int(cache.Pool().ID())
		if id >= len(t.pools) || t.pools[id] != cache.Pool() {
			return nil, fmt.Errorf("%w: worker %d: cache of pool %q is not in the table's pools", ErrConfig, worker, cache.Pool().Name())
		}
	}
	s := &Sender{
		t:      t,
		w:      worker,
		cache:  cache,
		pools:  t.pools,
		bufs:   make([]portBuf, t.maxPorts),
		dirty:  make([]uint16, 0, t.maxPorts),
		qcount: make([]int, t.workers),
		ctr:    make([]portCounters, t.maxPorts+1),
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.senders[worker] != nil {
		return nil, fmt.Errorf("%w: worker %d has a Sender already (Close it first)", ErrConfig, worker)
	}
	t.senders[worker] = s
	return s, nil
}

// Worker returns the worker id.
func (s *Sender) Worker() int { return s.w }

// enter starts a burst: marks the Sender busy (state odd), then loads the
// snapshot. The order matters: a control plane that reads an even state
// after publishing knows the Sender's next load sees its snapshot
// (sync/atomic operations are sequentially consistent).
func (s *Sender) enter() *snapshot {
	if s.snap != nil {
		return s.snap
	}
	s.state.Store(s.state.Load() + 1)
	s.snap = s.t.snap.Load()
	return s.snap
}

// exit ends a burst (state even): the Sender holds no snapshot and no mbuf.
func (s *Sender) exit() {
	s.snap = nil
	s.state.Store(s.state.Load() + 1)
}

func (s *Sender) counters(port uint16) *portCounters {
	if int(port) < len(s.bufs) {
		return &s.ctr[port]
	}
	return &s.ctr[len(s.bufs)]
}

// Transmit queues ms for port and always takes ownership of every mbuf in
// ms (FreeBSD drbr_enqueue): what cannot be queued is freed and counted,
// never handed back. The caller may reuse the slice itself at once. Packets
// are buffered per port and sent by Flush, or earlier when BurstSize of them
// are waiting for the port. Owner goroutine only.
func (s *Sender) Transmit(port uint16, ms []*mbuf.Mbuf) {
	if len(ms) == 0 {
		return
	}
	sn := s.enter()
	if int(port) >= len(sn.ports) || sn.ports[port] == nil {
		s.drop(ms, &s.counters(port).portGone)
		return
	}
	b := &s.bufs[port]
	if !b.dirty {
		b.dirty = true
		s.dirty = append(s.dirty, port)
	}
	for {
		k := copy(b.ms[b.n:], ms)
		b.n += k
		ms = ms[k:]
		if len(ms) == 0 {
			return
		}
		s.flushPort(sn, port)
	}
}

// TransmitOne is Transmit of one mbuf, for pipelines that decide per packet.
func (s *Sender) TransmitOne(port uint16, m *mbuf.Mbuf) {
	sn := s.enter()
	if int(port) >= len(sn.ports) || sn.ports[port] == nil {
		s.one[0] = m
		s.drop(s.one[:], &s.counters(port).portGone)
		return
	}
	b := &s.bufs[port]
	if !b.dirty {
		b.dirty = true
		s.dirty = append(s.dirty, port)
	}
	if b.n == len(b.ms) {
		s.flushPort(sn, port)
	}
	b.ms[b.n] = m
	b.n++
}

// Flush ends a burst: it sends every port's buffer, one TxBurst on the
// worker's own queue of the port, or one ring enqueue per target queue when
// it has none, and releases the snapshot. Call it once at the end of each
// burst. Owner goroutine only.
func (s *Sender) Flush() {
	sn := s.snap
	if sn == nil {
		return
	}
	for _, id := range s.dirty {
		b := &s.bufs[id]
		b.dirty = false
		if b.n > 0 {
			s.flushPort(sn, id)
		}
	}
	s.dirty = s.dirty[:0]
	s.exit()
}

// Drain retries the backlogs and drains the MPSC rings of the queues this
// worker owns, handing them to the device. Call it every poll iteration,
// also when idle, after Flush. Owner goroutine only.
func (s *Sender) Drain() {
	inBurst := s.snap != nil
	sn := s.enter()
	for _, oq := range sn.owned[s.w] {
		if q := oq.q; q.blen() > 0 || q.ring != nil && q.ring.Len() > 0 {
			s.drainQueue(oq.port, q) // no call for an idle queue
		}
	}
	if !inBurst {
		s.exit()
	}
}

// Pending reports whether the queues this worker owns still hold packets:
// a backlog the device refused, or packets in their rings. A worker about
// to wait for work uses it to bound the wait (the device will take the
// backlog once it completes what it has). Owner goroutine only, between
// bursts (after Flush and Drain).
func (s *Sender) Pending() bool {
	sn := s.enter()
	pending := false
	for _, oq := range sn.owned[s.w] {
		q := oq.q
		if q.blen() > 0 || q.ring != nil && q.ring.Len() > 0 {
			pending = true
			break
		}
	}
	s.exit()
	return pending
}

// Close flushes what the Sender buffers and unregisters it, keeping its
// counters in the table's. The queues this worker owns are drained no more:
// remove and flush the ports (Table.Remove, Table.Flush) when workers stop.
// Owner goroutine, or any goroutine once the owner has stopped.
func (s *Sender) Close() {
	s.Flush()
	t := s.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.senders[s.w] != s {
		return
	}
	t.senders[s.w] = nil
	for i := range s.ctr {
		t.retired[i].Add(s.ctr[i].snapshot())
	}
	t.leaked += s.leaked.Load()
}

// Stats returns this worker's counters for port.
func (s *Sender) Stats(port uint16) Stats { return s.counters(port).snapshot() }

// flushPort sends port's buffer and empties it.
func (s *Sender) flushPort(sn *snapshot, id uint16) {
	b := &s.bufs[id]
	ms := b.ms[:b.n]
	b.n = 0
	p := sn.ports[id]
	c := &s.ctr[id]
	if tb := s.t.tap.Load(); tb != nil { // nil unless a capture is armed
		tb.t.Tx(s.w, id, ms)
	}
	if s.w < len(p.queues) {
		s.sendOwn(p, &p.queues[s.w], c, ms)
	} else {
		s.sendForeign(p, c, ms)
	}
}

// sendOwn transmits on the worker's own queue: backlog first (order), then
// ms; what the device refuses joins the backlog up to its bound.
func (s *Sender) sendOwn(p *txPort, q *txQueue, c *portCounters, ms []*mbuf.Mbuf) {
	if q.blen() > 0 {
		s.retryBacklog(p, q, c)
	}
	if q.blen() == 0 {
		ms = ms[s.tx(p, q.idx, c, ms):]
	}
	if len(ms) > 0 {
		if k := q.push(ms); k < len(ms) {
			s.drop(ms[k:], &c.backlogFull)
		}
	}
}

// sendForeign groups ms by target queue (flow hash % TX queues, a stable
// counting sort so that each flow keeps its order) and enqueues each group
// into that queue's MPSC ring; what does not fit is freed and counted.
// Only called when this worker has no queue on p, hence p.nq < workers and
// every target queue has an owner and a ring.
func (s *Sender) sendForeign(p *txPort, c *portCounters, ms []*mbuf.Mbuf) {
	if p.nq == 1 {
		s.enqueue(&p.queues[0], c, ms)
		return
	}
	cnt := s.qcount[:p.nq]
	clear(cnt)
	qs := s.qs[:len(ms)]
	for i, m := range ms {
		q := p.mod.mod(m.Hash)
		qs[i] = uint16(q)
		cnt[q]++
	}
	off := 0
	for q, k := range cnt {
		cnt[q] = off
		off += k
	}
	for i, m := range ms {
		q := qs[i]
		s.sorted[cnt[q]] = m
		cnt[q]++
	}
	start := 0
	for q, end := range cnt {
		if end > start {
			s.enqueue(&p.queues[q], c, s.sorted[start:end])
		}
		start = end
	}
}

func (s *Sender) enqueue(q *txQueue, c *portCounters, ms []*mbuf.Mbuf) {
	// The owner may send and free ms[:n] as soon as they are published:
	// only ms[n:] are still ours.
	n := q.ring.EnqueueBurst(ms)
	if n < len(ms) {
		s.drop(ms[n:], &c.ringFull)
	}
	// After the publish, so that an owner going to sleep either sees the
	// packets or is woken (see Config.Wake).
	if n > 0 && s.t.wake != nil {
		s.t.wake(q.idx)
	}
}

// retryBacklog hands the backlog to the device in bursts until it is empty
// or the device refuses.
func (s *Sender) retryBacklog(p *txPort, q *txQueue, c *portCounters) {
	for q.blen() > 0 {
		k := min(q.blen(), BurstSize)
		n := s.tx(p, q.idx, c, q.blog[q.head:q.head+k])
		q.pop(n)
		if n < k {
			return
		}
	}
}

// drainQueue serves one owned queue: the backlog first; then, only if the
// backlog is empty, the MPSC ring, peeking a burst and advancing past what
// the device accepted (drbr_peek/drbr_advance): refused packets stay at the
// ring's head, in order, and producers see the ring fill up.
func (s *Sender) drainQueue(p *txPort, q *txQueue) {
	c := &s.ctr[p.id]
	if q.blen() > 0 {
		s.retryBacklog(p, q, c)
		if q.blen() > 0 {
			return
		}
	}
	r := q.ring
	if r == nil {
		return
	}
	for budget := r.Cap(); budget > 0; {
		k := r.PeekBurst(s.peek[:])
		if k == 0 {
			return
		}
		n := s.tx(p, q.idx, c, s.peek[:k])
		r.Advance(n)
		if n < k {
			return
		}
		budget -= k
	}
}

// tx is the one interface call per queue per burst. It counts what the
// device accepted; bytes are summed before the call since the accepted
// mbufs are no longer ours afterwards.
func (s *Sender) tx(p *txPort, q int, c *portCounters, ms []*mbuf.Mbuf) int {
	var bytes uint64
	for _, m := range ms {
		bytes += uint64(m.Len())
	}
	n := p.dev.TxBurst(q, ms)
	if n <= 0 {
		return 0
	}
	if n > len(ms) { // a driver bug; do not trust it with more
		n = len(ms)
	}
	for _, m := range ms[n:] {
		bytes -= uint64(m.Len())
	}
	c.sentPackets.Add(uint64(n))
	c.sentBytes.Add(bytes)
	return n
}

// drop frees ms to their pools and counts them in ctr.
func (s *Sender) drop(ms []*mbuf.Mbuf, ctr *pmd.Counter) {
	ctr.Add(uint64(len(ms)))
	if k := freeTo(s.pools, s.cache, ms); k > 0 {
		s.leaked.Add(uint64(k))
	}
}
