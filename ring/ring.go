package ring

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
)

// cacheLine is the padding unit between the producer's and the consumer's
// fields. 128 rather than 64 bytes: Intel's adjacent-line prefetcher pulls
// cache lines in pairs, so 64 bytes of padding still lets the two sides
// disturb each other.
const cacheLine = 128

// Mode says how many goroutines may enqueue and dequeue at once.
type Mode uint8

const (
	// SPSC: one producer and one consumer at a time.
	SPSC Mode = iota
	// MPSC: any number of producers, one consumer (FreeBSD buf_ring, drbr).
	MPSC
	// SPMC: one producer, any number of consumers.
	SPMC
	// MPMC: any number of producers and consumers (the mbuf pool's free ring).
	MPMC
)

func (m Mode) String() string {
	switch m {
	case SPSC:
		return "spsc"
	case MPSC:
		return "mpsc"
	case SPMC:
		return "spmc"
	case MPMC:
		return "mpmc"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// MaxSize is the largest capacity a ring may have. Indexes are free-running
// uint32 values; capacity must stay below half the index space so that
// "tail - head" is unambiguous.
const MaxSize = 1 << 30

// ErrSize is returned by New for a capacity that is not a power of two in
// [1, MaxSize].
var ErrSize = errors.New("ring: size must be a power of two between 1 and 2^30")

// Ring is a fixed-capacity FIFO of T with burst operations.
//
// Index scheme (after DPDK's rte_ring): four free-running uint32 indexes,
// masked on access. The producer side owns prodHead/prodTail, the consumer
// side consHead/consTail. A producer reserves slots by moving prodHead (a CAS
// in multi-producer mode), writes them, then publishes by moving prodTail
// (a release store) once every earlier producer has published. Consumers
// mirror this with consHead/consTail. Slots in [consTail, prodTail) hold
// elements; slots in [prodTail, consTail+capacity) are free. A
// single-producer (single-consumer) ring leaves prodHead (consHead) unused:
// its tail is both reservation and publication, one store per burst.
//
// In single-producer (single-consumer) mode the producer (consumer) caches
// the opposite side's tail and reads the shared line again only when the
// cached value does not show enough room (elements), so a burst touches the
// other side's cache line at most once. It also keeps its own copy of its
// tail: with that copy and the cached opposite tail on a line of their own,
// a single producer only ever writes its shared line (a store the core need
// not wait for) and never reads it back while the consumer holds it.
//
// Memory: dequeued slots keep a stale copy of their element until they are
// overwritten. For T holding heap pointers this keeps the referent reachable
// a little longer; it never makes it visible to a consumer again.
//
// Progress: multi-producer and multi-consumer modes are not lock-free in the
// strict sense: a producer that reserved slots and was descheduled before
// publishing delays later producers' publication (they spin, yielding the
// processor). This is rte_ring's trade-off; pin producers to threads.
type Ring[T any] struct {
	_ [cacheLine]byte

	// Producer side, shared: prodHead is written by producers (CAS, MP mode
	// only), prodTail by the producer that publishes (storeRelease32) and
	// read by consumers and, in MP mode, producers (sync/atomic loads).
	prodHead atomic.Uint32
	prodTail uint32
	_        [cacheLine - 8]byte

	// Producer side, private to the single producer (SP mode only):
	// prodNext equals prodTail (the producer's own copy), prodCachedConsTail
	// is consTail as last read.
	prodNext           uint32
	prodCachedConsTail uint32
	_                  [cacheLine - 8]byte

	// Consumer side, mirror of the producer side.
	consHead atomic.Uint32
	consTail uint32
	_        [cacheLine - 8]byte

	consNext           uint32
	consCachedProdTail uint32
	_                  [cacheLine - 8]byte

	// Read-only after New.
	slots []T
	mask  uint32
	size  uint32
	mp    bool
	mc    bool
	mode  Mode
	_     [cacheLine - 40]byte

	// Written by producers only when an enqueue falls short: with atomic
	// adds in multi-producer mode, by the single producer with
	// storeRelease64 otherwise; read with sync/atomic loads. 64-bit aligned
	// (the struct's size up to here is a multiple of 8; TestLayout).
	refused  uint64
	failures uint64
}

// New returns a ring with room for size elements, size a power of two.
func New[T any](size int, mode Mode) (*Ring[T], error) {
	return newAt[T](size, mode, 0)
}

// newAt starts all indexes at start; tests use it to cross the uint32 wrap.
func newAt[T any](size int, mode Mode, start uint32) (*Ring[T], error) {
	if size < 1 || size > MaxSize || size&(size-1) != 0 {
		return nil, fmt.Errorf("%w: got %d", ErrSize, size)
	}
	if mode > MPMC {
		return nil, fmt.Errorf("ring: unknown mode %d", mode)
	}
	r := &Ring[T]{
		slots: make([]T, size),
		mask:  uint32(size - 1),
		size:  uint32(size),
		mp:    mode == MPSC || mode == MPMC,
		mc:    mode == SPMC || mode == MPMC,
		mode:  mode,
	}
	r.prodHead.Store(start)
	atomic.StoreUint32(&r.prodTail, start)
	r.prodNext = start
	r.prodCachedConsTail = start
	r.consHead.Store(start)
	atomic.StoreUint32(&r.consTail, start)
	r.consNext = start
	r.consCachedProdTail = start
	return r, nil
}

// Cap returns the ring's capacity.
func (r *Ring[T]) Cap() int { return int(r.size) }

// Mode returns the mode the ring was made with.
func (r *Ring[T]) Mode() Mode { return r.mode }

// Len returns the number of elements published and not yet consumed. Racy by
// nature while producers or consumers run: use it for statistics only.
func (r *Ring[T]) Len() int {
	return int(atomic.LoadUint32(&r.prodTail) - atomic.LoadUint32(&r.consTail))
}

// Refused returns how many elements enqueue calls could not place because
// the ring was full. Safe to call while producers run.
func (r *Ring[T]) Refused() uint64 { return atomic.LoadUint64(&r.refused) }

// Failures returns how many enqueue calls placed fewer elements than asked.
// Safe to call while producers run.
func (r *Ring[T]) Failures() uint64 { return atomic.LoadUint64(&r.failures) }

// EnqueueBulk enqueues all of src or nothing. It returns len(src) or 0.
func (r *Ring[T]) EnqueueBulk(src []T) int { return r.enqueue(src, true) }

// EnqueueBurst enqueues as many leading elements of src as fit and returns
// how many it took; the caller still owns src[n:].
func (r *Ring[T]) EnqueueBurst(src []T) int { return r.enqueue(src, false) }

// Enqueue enqueues one element and reports whether it fit.
func (r *Ring[T]) Enqueue(v T) bool {
	a := [1]T{v}
	return r.enqueue(a[:], true) == 1
}

// DequeueBulk fills all of dst or nothing. It returns len(dst) or 0.
func (r *Ring[T]) DequeueBulk(dst []T) int { return r.dequeue(dst, true) }

// DequeueBurst fills as much of dst as there are elements and returns the
// count; dst[n:] is untouched.
func (r *Ring[T]) DequeueBurst(dst []T) int { return r.dequeue(dst, false) }

// Dequeue removes one element; ok is false when the ring is empty.
func (r *Ring[T]) Dequeue() (v T, ok bool) {
	var a [1]T
	ok = r.dequeue(a[:], true) == 1
	return a[0], ok
}

func (r *Ring[T]) enqueue(src []T, bulk bool) int {
	want := uint32(len(src))
	if want == 0 {
		return 0
	}
	if uint64(len(src)) > uint64(r.size) {
		if bulk {
			r.refuse(want)
			return 0
		}
		want = r.size
	}
	var head, n uint32
	if !r.mp {
		// Single producer: prodHead is not used; prodTail is ours alone
		// and prodNext is our copy of it.
		head = r.prodNext
		free := r.size + r.prodCachedConsTail - head
		if free < want {
			r.prodCachedConsTail = atomic.LoadUint32(&r.consTail)
			free = r.size + r.prodCachedConsTail - head
		}
		n = min(want, free)
		if n == 0 || (bulk && n < want) {
			r.refuse(uint32(len(src)))
			return 0
		}
	} else {
		for {
			head = r.prodHead.Load()
			free := r.size + atomic.LoadUint32(&r.consTail) - head
			n = min(want, free)
			if n == 0 || (bulk && n < want) {
				r.refuse(uint32(len(src)))
				return 0
			}
			if r.prodHead.CompareAndSwap(head, head+n) {
				break
			}
		}
	}
	r.copyIn(head, src[:n])
	if r.mp {
		// Publish in reservation order: wait for producers that reserved
		// before us.
		for spins := 0; atomic.LoadUint32(&r.prodTail) != head; spins++ {
			if spins&63 == 63 {
				runtime.Gosched()
			}
		}
	}
	storeRelease32(&r.prodTail, head+n)
	if !r.mp {
		r.prodNext = head + n
	}
	if n < uint32(len(src)) {
		r.refuse(uint32(len(src)) - n)
	}
	return int(n)
}

// refuse counts n elements of one enqueue call that did not fit. A single
// producer is the counters' only writer and needs no read-modify-write
// atomics (a LOCK XADD each on amd64): a producer retrying on a full ring
// comes here once per try.
func (r *Ring[T]) refuse(n uint32) {
	if r.mp {
		atomic.AddUint64(&r.refused, uint64(n))
		atomic.AddUint64(&r.failures, 1)
		return
	}
	storeRelease64(&r.refused, atomic.LoadUint64(&r.refused)+uint64(n))
	storeRelease64(&r.failures, atomic.LoadUint64(&r.failures)+1)
}

func (r *Ring[T]) dequeue(dst []T, bulk bool) int {
	want := uint32(min(len(dst), int(r.size)))
	if want == 0 {
		return 0
	}
	if bulk && uint64(len(dst)) > uint64(r.size) {
		return 0
	}
	var head, n uint32
	if !r.mc {
		// Single consumer: consHead is not used; consTail is ours alone
		// and consNext is our copy of it.
		head = r.consNext
		avail := r.consCachedProdTail - head
		if avail < want {
			r.consCachedProdTail = atomic.LoadUint32(&r.prodTail)
			avail = r.consCachedProdTail - head
		}
		n = min(want, avail)
		if n == 0 || (bulk && n < want) {
			return 0
		}
	} else {
		for {
			head = r.consHead.Load()
			avail := atomic.LoadUint32(&r.prodTail) - head
			n = min(want, avail)
			if n == 0 || (bulk && n < want) {
				return 0
			}
			if r.consHead.CompareAndSwap(head, head+n) {
				break
			}
		}
	}
	r.copyOut(head, dst[:n])
	if r.mc {
		for spins := 0; atomic.LoadUint32(&r.consTail) != head; spins++ {
			if spins&63 == 63 {
				runtime.Gosched()
			}
		}
	}
	storeRelease32(&r.consTail, head+n)
	if !r.mc {
		r.consNext = head + n
	}
	return int(n)
}

// PeekBurst copies up to len(dst) elements from the head of the ring into dst
// without consuming them and returns the count. Single-consumer rings only
// (it returns 0 on SPMC/MPMC rings). Follow it with Advance(k) for the k
// elements actually used; PutBack may replace peeked elements first. This is
// the drbr_peek/drbr_advance/drbr_putback pattern for a transmit queue whose
// device accepted only part of a burst.
func (r *Ring[T]) PeekBurst(dst []T) int {
	if r.mc || len(dst) == 0 {
		return 0
	}
	head := r.consNext
	avail := r.consCachedProdTail - head
	if avail < uint32(len(dst)) {
		r.consCachedProdTail = atomic.LoadUint32(&r.prodTail)
		avail = r.consCachedProdTail - head
	}
	n := min(uint32(len(dst)), avail)
	r.copyOut(head, dst[:n])
	return int(n)
}

// Advance consumes n elements previously seen with PeekBurst. n must not
// exceed the count PeekBurst returned. Single-consumer rings only.
func (r *Ring[T]) Advance(n int) {
	if r.mc || n <= 0 {
		return
	}
	head := r.consNext
	if avail := atomic.LoadUint32(&r.prodTail) - head; uint32(n) > avail {
		n = int(avail)
	}
	storeRelease32(&r.consTail, head+uint32(n))
	r.consNext = head + uint32(n)
}

// PutBack replaces the i-th element from the head (as seen by the last
// PeekBurst) with v, for a consumer that changed an element it could not
// consume yet. Single-consumer rings only; i must be below the count the last
// PeekBurst returned.
func (r *Ring[T]) PutBack(i int, v T) {
	if r.mc || i < 0 {
		return
	}
	head := r.consNext
	if uint32(i) >= atomic.LoadUint32(&r.prodTail)-head {
		return
	}
	r.slots[(head+uint32(i))&r.mask] = v
}

// copyIn writes src into the slots starting at index head, in at most two
// copies across the wrap point.
func (r *Ring[T]) copyIn(head uint32, src []T) {
	i := head & r.mask
	k := copy(r.slots[i:], src)
	if k < len(src) {
		copy(r.slots, src[k:])
	}
}

func (r *Ring[T]) copyOut(head uint32, dst []T) {
	i := head & r.mask
	end := i + uint32(len(dst))
	if end <= r.size {
		copy(dst, r.slots[i:end])
		return
	}
	k := copy(dst, r.slots[i:])
	copy(dst[k:], r.slots[:uint32(len(dst))-uint32(k)])
}
