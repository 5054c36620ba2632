// Package ring provides fixed-capacity lockless FIFO rings with burst
// operations, after FreeBSD's buf_ring and DPDK's rte_ring.
//
// A Ring[T] is typed with generics (no interface boxing) and made in one of
// four modes: SPSC, MPSC, SPMC, MPMC. Names state the contract:
//
//   - EnqueueBulk / DequeueBulk move all of the slice or nothing;
//   - EnqueueBurst / DequeueBurst move as much as fits and return the count;
//   - PeekBurst / Advance / PutBack let a single consumer look at elements,
//     hand some to a device and consume only those (FreeBSD drbr).
//
// Invariants:
//   - capacity is a power of two; the four indexes are free-running uint32
//     values masked on access, so arithmetic wraps safely through 2^32;
//   - producer and consumer fields sit on separate, padded cache lines;
//     a single producer (consumer) caches the opposite tail and reloads it only
//     when the cached value is insufficient, so one burst touches the shared
//     line at most once, and publishes with a single release store; its own
//     copy of its tail and the cached opposite tail live on a private line,
//     so it never reads back the line the other side polls;
//   - tails are published with release stores and read with acquire loads
//     (sync/atomic); on amd64 the release store is a plain MOV in assembly
//     (release_amd64.s), which x86-TSO makes a release, instead of
//     sync/atomic's XCHG; under -race and elsewhere it is sync/atomic's Store;
//   - enqueue shortfalls are counted (Refused, Failures), readable while
//     producers run: atomic adds with several producers, plain increments
//     published with release stores by a single producer (their only
//     writer). Nothing else is counted on the fast path.
//
// Elements are copied in and out. Rings of mbufs carry *mbuf.Mbuf values whose
// target lives outside the Go heap (see package mbuf and docs/ring.md for the
// measurement behind that choice), so the garbage collector has no work to do
// for them.
package ring
