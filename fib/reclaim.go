package fib

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Reuse of snapshot memory: quiescent-state-based reclamation (QSBR).
//
// A batch replaces some parts of the published structure: the table
// headers (tab4, tab6) of the FIBs it changed, the dir and IPv6 header
// pages it changed (copy on write), the list of header pages, the
// snapshot's table lists, and, in a collection step, a segment. Without
// Readers they become garbage for the Go collector (~4-6 KiB per
// single-change batch): at 10k changes/s that is a GC cycle every few
// seconds, and each cycle delays the control goroutine by several ms.
// With Readers, the writer keeps them instead and reuses their memory for
// later batches once no reader can still be reading them.
//
// The protocol. Readers has an epoch, advanced by the writer (the control
// goroutine) right after each publication. Each Reader has one word on a
// cache line of its own: 0 while it is offline, otherwise the epoch it
// read at its last quiescent point. A reader reaches a quiescent point
// (Quiesce) when it holds nothing it loaded from a snapshot before: a
// worker does at the end of every loop iteration, and loads the snapshot
// afresh (once per burst) after it. A part replaced by the publication
// followed by epoch e is tagged e; the writer reuses it only when every
// online Reader's word is >= e. Such a reader read epoch e or later, which
// the writer stored after publishing the snapshot without the part, so
// every snapshot it loads from then on is that one or newer; and before
// its quiescent point it dropped everything older. A reader that is
// offline when the writer looks goes online (Online) with a sequentially
// consistent store before it loads anything, so it too only loads
// snapshots published before the writer looked. Nothing is ever waited
// for: what no reader has passed yet stays in the queue, and the writer
// allocates meanwhile (the queue is bounded: beyond that the Go collector
// takes the oldest parts).
//
// Readers write only their own word (per iteration: a load of the shared
// epoch, which changes once per publication, and a plain store on amd64);
// the writer reads all words once per Apply.

// Readers is the set of goroutines that read the snapshots of one or more
// FIBs sets which reuse memory (Config.Readers): normally one per stack,
// made by the engine, with one Reader per worker. Its methods may be
// called from any goroutine.
type Readers struct {
	epoch atomic.Uint64 // starts at 1; advanced by writers only
	mu    sync.Mutex    // serialises NewReader and Close
	list  atomic.Pointer[[]*Reader]
}

// NewReaders returns an empty reader set.
func NewReaders() *Readers {
	d := &Readers{}
	d.epoch.Store(1)
	d.list.Store(&[]*Reader{})
	return d
}

// Reader is one goroutine's registration in a Readers. While it is online
// the writers do not reuse what it may still read; it must reach a
// quiescent point (Quiesce) often, or go offline, or the writers fall back
// to allocating (and the Go collector) for everything.
//
// A Reader belongs to one goroutine. The contract, for every FIBs of its
// Readers: call Online before loading a snapshot; load snapshots with
// FIBs.Load only while online; call Quiesce only when no pointer obtained
// from a snapshot loaded before it (a Snapshot, a next hop) will be read
// again; call Offline before sleeping or blocking for long, after the
// last read.
type Reader struct {
	_    [64]byte
	seen atomic.Uint64 // 0: offline; else the epoch read at the last quiescent point
	_    [56]byte
	d    *Readers
}

// NewReader registers a reader; it starts offline.
func (d *Readers) NewReader() *Reader {
	r := &Reader{d: d}
	d.mu.Lock()
	l := append(slices.Clone(*d.list.Load()), r)
	d.list.Store(&l)
	d.mu.Unlock()
	return r
}

// Close takes r offline and out of its set for good.
func (r *Reader) Close() {
	r.Offline()
	d := r.d
	d.mu.Lock()
	l := slices.DeleteFunc(slices.Clone(*d.list.Load()), func(x *Reader) bool { return x == r })
	d.list.Store(&l)
	d.mu.Unlock()
}

// Online marks r as reading: after it returns, snapshots may be loaded.
// Its store is sequentially consistent, so a writer that still saw r
// offline published everything it may reuse before r loads anything.
func (r *Reader) Online() { r.seen.Store(r.d.epoch.Load()) }

// Offline marks r as not reading: writers ignore it until Online. Call it
// after the last read of a snapshot, before sleeping.
func (r *Reader) Offline() { r.seen.Store(0) }

// Quiesce reports a quiescent point: r holds nothing it loaded before
// (see Reader). An offline r goes online. It does not allocate; it is a
// load of the set's epoch and a store to r's own cache line.
func (r *Reader) Quiesce() {
	if r.seen.Load() == 0 {
		r.Online()
		return
	}
	storeSeen(&r.seen, r.d.epoch.Load())
}

// safe returns the newest epoch every online reader has passed: parts
// tagged with it or older may be reused.
func (d *Readers) safe() uint64 {
	m := d.epoch.Load()
	for _, r := range *d.list.Load() {
		if v := r.seen.Load(); v != 0 && v < m {
			m = v
		}
	}
	return m
}

// reclaim is the writer's store of replaced snapshot parts, per FIBs.
// A nil *reclaim (no Readers) retires nothing and reuses nothing.
type reclaim struct {
	d     *Readers
	dir   recycler[*dirPage]
	hdr   recycler[*hdrPage]
	t4    recycler[*tab4]
	t6    recycler[*tab6]
	v4    recycler[[]*tab4]
	v6    recycler[[]*tab6]
	hl    recycler[[]*hdrPage]
	segs  recycler[*segMem]
	epoch uint64 // the tag of the last publication (tests)
	// reused counts the parts taken from the free lists, allocs those
	// allocated because none was free (tests, benchmarks).
	reused, allocs int
}

func newReclaim(d *Readers) *reclaim {
	if d == nil {
		return nil
	}
	return &reclaim{d: d}
}

// Bounds: at most so many parts wait per kind (beyond, the oldest go to
// the Go collector) and so many are kept free. A full rebuild replaces
// all 256 dir pages of a family at once.
const (
	maxRetired = 4096
	maxFree    = 512
)

// recycler holds one kind of part: those replaced in the batch being
// built (pending, tagged when it is published), those waiting for the
// readers (q from h, tags ascending) and those free for reuse.
type recycler[T any] struct {
	pending []T
	q       []retired[T]
	h       int
	free    []T
}

type retired[T any] struct {
	tag uint64
	p   T
}

func (c *recycler[T]) retire(x T) { c.pending = append(c.pending, x) }

func (c *recycler[T]) tag(e uint64) {
	for i, x := range c.pending {
		c.q = append(c.q, retired[T]{e, x})
		var zero T
		c.pending[i] = zero
	}
	c.pending = c.pending[:0]
	if n := len(c.q) - c.h; n > maxRetired {
		clear(c.q[c.h : c.h+n-maxRetired])
		c.h += n - maxRetired
	}
}

// collect moves the parts every reader has passed to the free list
// (keep says whether one is worth keeping; the others are dropped).
func (c *recycler[T]) collect(safe uint64, keep func(T) bool) {
	for c.h < len(c.q) && c.q[c.h].tag <= safe {
		if p := c.q[c.h].p; len(c.free) < maxFree && (keep == nil || keep(p)) {
			c.free = append(c.free, p)
		}
		c.q[c.h] = retired[T]{}
		c.h++
	}
	if c.h == len(c.q) {
		c.q, c.h = c.q[:0], 0
	} else if c.h > 1024 && c.h > len(c.q)/2 {
		n := copy(c.q, c.q[c.h:])
		clear(c.q[n:])
		c.q, c.h = c.q[:n], 0
	}
}

func (c *recycler[T]) get() (T, bool) {
	var zero T
	n := len(c.free)
	if n == 0 {
		return zero, false
	}
	x := c.free[n-1]
	c.free[n-1] = zero
	c.free = c.free[:n-1]
	return x, true
}

// collect makes what every reader has passed reusable: once per Apply,
// before the batch is built.
func (rc *reclaim) collect() {
	if rc == nil {
		return
	}
	safe := rc.d.safe()
	rc.dir.collect(safe, nil)
	rc.hdr.collect(safe, nil)
	rc.t4.collect(safe, nil)
	rc.t6.collect(safe, nil)
	rc.v4.collect(safe, nil)
	rc.v6.collect(safe, nil)
	rc.hl.collect(safe, nil)
	// A collected segment goes back to its arena's pool of spare segments
	// at once; if the pool is full the Go collector's cleanup takes it as
	// without Readers.
	rc.segs.collect(safe, func(m *segMem) bool { m.pool(); return false })
}

// published tags what the batch replaced with the epoch that follows the
// publication of the snapshot without it (the writer calls it right after
// storing the snapshot).
func (rc *reclaim) published() {
	if rc == nil {
		return
	}
	e := rc.d.epoch.Add(1)
	rc.epoch = e
	rc.dir.tag(e)
	rc.hdr.tag(e)
	rc.t4.tag(e)
	rc.t6.tag(e)
	rc.v4.tag(e)
	rc.v6.tag(e)
	rc.hl.tag(e)
	rc.segs.tag(e)
}

// newDir returns a dir page to fill (contents undefined): a reused one if
// any is free.
func (rc *reclaim) newDir() *dirPage {
	if rc != nil {
		if p, ok := rc.dir.get(); ok {
			rc.reused++
			return p
		}
		rc.allocs++
	}
	return new(dirPage)
}

// retireDir hands over a dir page replaced in this batch.
func (rc *reclaim) retireDir(p *dirPage) {
	if rc != nil {
		rc.dir.retire(p)
	}
}

// newHdr returns a header page to fill (contents undefined).
func (rc *reclaim) newHdr() *hdrPage {
	if rc != nil {
		if p, ok := rc.hdr.get(); ok {
			rc.reused++
			return p
		}
		rc.allocs++
	}
	return new(hdrPage)
}

func (rc *reclaim) retireHdr(p *hdrPage) {
	if rc != nil {
		rc.hdr.retire(p)
	}
}

// hdrList returns a copy of the header page list l with room to append
// one page.
func (rc *reclaim) hdrList(l []*hdrPage) []*hdrPage {
	if rc != nil {
		for {
			s, ok := rc.hl.get()
			if !ok {
				break
			}
			if cap(s) > len(l) {
				rc.reused++
				return append(s[:0], l...)
			}
		}
		rc.allocs++
	}
	return append(make([]*hdrPage, 0, len(l)+len(l)/4+8), l...)
}

func (rc *reclaim) retireHdrList(l []*hdrPage) {
	if rc != nil && cap(l) > 0 {
		rc.hl.retire(l)
	}
}

// newTab4 returns a copy of t.
func (rc *reclaim) newTab4(t *tab4) *tab4 {
	if rc != nil {
		if p, ok := rc.t4.get(); ok {
			rc.reused++
			*p = *t
			return p
		}
		rc.allocs++
	}
	c := *t
	return &c
}

func (rc *reclaim) newTab6(t *tab6) *tab6 {
	if rc != nil {
		if p, ok := rc.t6.get(); ok {
			rc.reused++
			*p = *t
			return p
		}
		rc.allocs++
	}
	c := *t
	return &c
}

// cloneV4 returns a copy of a snapshot's IPv4 table list and retires l
// (every list of one FIBs has the same length).
func (rc *reclaim) cloneV4(l []*tab4) []*tab4 {
	if rc == nil {
		return slices.Clone(l)
	}
	rc.v4.retire(l)
	if s, ok := rc.v4.get(); ok && len(s) == len(l) {
		rc.reused++
		copy(s, l)
		return s
	}
	rc.allocs++
	return slices.Clone(l)
}

func (rc *reclaim) cloneV6(l []*tab6) []*tab6 {
	if rc == nil {
		return slices.Clone(l)
	}
	rc.v6.retire(l)
	if s, ok := rc.v6.get(); ok && len(s) == len(l) {
		rc.reused++
		copy(s, l)
		return s
	}
	rc.allocs++
	return slices.Clone(l)
}

// pool gives a dropped segment's memory back to its arena's pool of spare
// segments if the pool has room (and the segment is a normal one), ending
// the cleanup that would have done so once the Go collector found the
// segMem unreachable. Otherwise it leaves everything to that cleanup.
func (m *segMem) pool() {
	if m == nil || !m.m.normal || m.m.pool == nil {
		return
	}
	sp := &spareSeg{b: m.m.b}
	sp.stop = runtime.AddCleanup(sp, unmap, m.m.b)
	select {
	case m.m.pool <- sp:
		m.stop.Stop()
		m.m.maps.Add(-1)
		m.m = segMemory{}
	default:
		sp.stop.Stop()
	}
}

// ReuseStats returns how many replaced snapshot parts the FIBs reused and
// how many they allocated because none was free, since New (both 0
// without Readers). Control goroutine only; for tests and benchmarks.
func (f *FIBs) ReuseStats() (reused, allocated int) {
	if f.rc == nil {
		return 0, 0
	}
	return f.rc.reused, f.rc.allocs
}
