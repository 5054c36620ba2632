package xsk

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Desc is an RX or TX descriptor, struct xdp_desc: Addr is the offset of the
// packet's first byte in the UMEM (chunk base + headroom for RX), Len its
// length, Options zero.
type Desc = unix.XDPDesc

// slot is what a ring carries: a UMEM address (fill and completion rings) or
// a descriptor (RX and TX rings).
type slot interface{ uint64 | Desc }

// prodRing is a ring this process produces into and the kernel consumes
// from: the fill ring and the TX ring.
//
// Who writes what:
//   - *prod is written by us only (release store, once per burst) and read
//     by the kernel.
//   - *cons is written by the kernel only; we read it with an acquire load,
//     and only when cachedCons says the ring looks too full for the burst.
//   - *flags is written by the kernel (XDP_RING_NEED_WAKEUP); we read it.
//   - the slots between cons and prod belong to the kernel; the slots from
//     prod to cons+size belong to us and are written with plain stores before
//     the release store of *prod publishes them.
//
// Indexes are free-running uint32, masked on access.
type prodRing[T slot] struct {
	prod       *atomic.Uint32
	cons       *atomic.Uint32
	flags      *atomic.Uint32
	slots      []T
	mask       uint32
	size       uint32
	cachedProd uint32 // == *prod: we are its only writer
	cachedCons uint32 // last value of *cons we loaded
}

func newProdRing[T slot](prod, cons, flags *atomic.Uint32, slots []T) prodRing[T] {
	p := prod.Load()
	return prodRing[T]{
		prod: prod, cons: cons, flags: flags, slots: slots,
		mask: uint32(len(slots) - 1), size: uint32(len(slots)),
		cachedProd: p, cachedCons: cons.Load(),
	}
}

// free returns how many slots can be produced without overwriting slots the
// kernel has not consumed yet, refreshing the cached consumer index (one
// acquire load) only when the cached view has fewer than want free.
func (r *prodRing[T]) free(want uint32) uint32 {
	n := r.size - (r.cachedProd - r.cachedCons)
	if n >= want {
		return n
	}
	r.cachedCons = r.cons.Load()
	return r.size - (r.cachedProd - r.cachedCons)
}

// produce copies the longest prefix of in that fits and publishes it with
// one release store. It returns the number of slots produced.
func (r *prodRing[T]) produce(in []T) int {
	if len(in) == 0 || r.slots == nil {
		return 0
	}
	n := r.free(uint32(len(in)))
	if n > uint32(len(in)) {
		n = uint32(len(in))
	}
	p := r.cachedProd
	for i := uint32(0); i < n; i++ {
		r.slots[(p+i)&r.mask] = in[i]
	}
	r.cachedProd = p + n
	r.prod.Store(r.cachedProd)
	return int(n)
}

// outstanding returns how many produced slots the kernel has not consumed.
func (r *prodRing[T]) outstanding() uint32 {
	r.cachedCons = r.cons.Load()
	return r.cachedProd - r.cachedCons
}

func (r *prodRing[T]) needWakeup() bool {
	return r.flags != nil && r.flags.Load()&unix.XDP_RING_NEED_WAKEUP != 0
}

// consRing is a ring the kernel produces into and this process consumes
// from: the completion ring and the RX ring.
//
// Who writes what:
//   - *prod is written by the kernel only; we read it with an acquire load,
//     and only when cachedProd says fewer than the wanted entries are ready.
//   - *cons is written by us only (release store, once per burst) and read
//     by the kernel; the release store hands the consumed slots back.
//   - the slots between cons and prod are ours to read once the acquire load
//     of *prod has seen them.
type consRing[T slot] struct {
	prod       *atomic.Uint32
	cons       *atomic.Uint32
	flags      *atomic.Uint32
	slots      []T
	mask       uint32
	cachedProd uint32 // last value of *prod we loaded
	cachedCons uint32 // == *cons: we are its only writer
}

func newConsRing[T slot](prod, cons, flags *atomic.Uint32, slots []T) consRing[T] {
	return consRing[T]{
		prod: prod, cons: cons, flags: flags, slots: slots,
		mask:       uint32(len(slots) - 1),
		cachedProd: prod.Load(), cachedCons: cons.Load(),
	}
}

// ready returns how many entries can be consumed, refreshing the cached
// producer index (one acquire load) only when fewer than want are known.
func (r *consRing[T]) ready(want uint32) uint32 {
	n := r.cachedProd - r.cachedCons
	if n >= want {
		return n
	}
	r.cachedProd = r.prod.Load()
	return r.cachedProd - r.cachedCons
}

// consume copies up to len(out) entries into out and releases their slots
// with one release store. It returns the number consumed.
func (r *consRing[T]) consume(out []T) int {
	if len(out) == 0 || r.slots == nil {
		return 0
	}
	n := r.ready(uint32(len(out)))
	if n > uint32(len(out)) {
		n = uint32(len(out))
	}
	if n == 0 {
		return 0
	}
	c := r.cachedCons
	for i := uint32(0); i < n; i++ {
		out[i] = r.slots[(c+i)&r.mask]
	}
	r.cachedCons = c + n
	r.cons.Store(r.cachedCons)
	return int(n)
}
