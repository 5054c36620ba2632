// Package mbuf provides packet buffers (rte_mbuf, FreeBSD mbuf) and the
// fixed pool they come from (rte_mempool).
//
// A Pool owns Count buffers of BufSize bytes in one memory region: buffer i
// starts at offset i*BufSize, so a buffer's offset in the region is known and
// the region can be an AF_XDP UMEM (Pool.Addr, Pool.DataAddr, Pool.ByAddr
// convert between mbufs and UMEM addresses). The region and the Mbuf
// metadata are mmap'd outside the Go heap: *Mbuf pointers are stable, never
// scanned, and cost the garbage collector nothing to carry through rings.
//
// Allocation: a shared MPMC ring of free mbufs, and a per-worker Cache in
// front of it that refills and flushes in bulk. Alloc calls take a slice
// and return how many mbufs they placed; exhaustion returns fewer, is
// counted, and never blocks or panics. Creation succeeds completely or fails
// cleanly.
//
// Fresh mbufs start their data at Config.Headroom less 0 to 3 cache lines,
// by buffer (Pool.Fresh, StaggerLines): with buffers a power of two apart,
// one fixed offset would put every header in the same few L1 cache sets.
//
// Ownership: one goroutine owns an mbuf at a time; whoever frees it gives it
// up for good. Pools made with Config.Checked panic on double free and on
// freeing an mbuf of another pool, and poison freed data; built with the
// mbufcheck tag (as `make test` does) they also panic when a free mbuf's
// data is touched. Checked mode is a test aid, off in production.
//
// Per-packet metadata (input port and queue, FIB, flow hash, flags, parser
// offsets, next hop) are typed fields of Mbuf; the struct is one 64-byte
// cache line, checked by a test.
package mbuf
