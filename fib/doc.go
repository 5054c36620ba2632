// Package fib holds the forwarding tables of one stack: a configurable
// number of FIBs (FreeBSD's setfib), each with an IPv4 and an IPv6
// longest-prefix-match table, and the next-hop objects routes point at.
//
// # What it owns
//
//   - Next hops (gateway, connected, local, blackhole, reject, ECMP groups),
//     addressed by dense uint32 ids that index a slice in the snapshot.
//     Id 0 is NoRoute, the result of every miss.
//   - Per FIB and family an editable RIB (maps of prefixes per region,
//     control side only) and an immutable lookup structure rebuilt from it
//     incrementally: a direct table on the top 16 bits, in 256 pages, and
//     range tables (sorted range starts with a bitmap or bucket index for
//     IPv4, tab4.go, and a block summary for IPv6) below it; big IPv6 tables
//     carry a rank index (bitmaps of their range starts with counts,
//     rank.go) instead of the summary, so that most IPv6 lookups need no
//     search. docs/fib.md explains the algorithm and its costs.
//
// # Who writes what
//
// Only the control goroutine calls the FIBs methods that change or read
// the RIB (AddNextHop, Apply, Routes, RouteGet). Apply validates a whole
// batch first (nothing is applied if any change is bad), applies it to the
// RIB, rebuilds only the range tables, dir pages and IPv6 headers the batch
// touched (copy on write; new range tables are appended past the end of
// the current segment of a segmented arena, which published snapshots
// never read; a big table whose changes lie inside one prefix is patched
// rather than re-swept, patch.go, for IPv6 L2 tables patch6.go), moves a
// bounded number of live tables out of the segment being collected
// (seg.go), and publishes one new Snapshot with atomic.Pointer. Segment
// memory is mapped outside the Go heap and unmapped (or pooled) by a
// cleanup once no snapshot lists it.
//
// Workers call FIBs.Load once per burst and use the Snapshot lookups
// (Lookup4Batch, Lookup6Batch, Lookup4, Lookup6, Select): no locks, no
// allocations, no interface calls. A Snapshot is never modified while a
// reader may hold it. Without Config.Readers the Go garbage collector frees
// it when no one holds it. With Readers (fwd's engine: one Reader per
// worker) the writer reuses the parts a batch replaced (table headers, dir
// and header pages, lists, segments) once every online Reader has reported
// a quiescent point after their replacement (reclaim.go); each worker
// writes only its own Reader's cache line, and the writer never waits.
//
// # Invariants
//
//   - A published Snapshot, its dir pages, header pages and segment lists
//     are immutable, and so is every segment up to the fill it had when the
//     snapshot was published (its dir entries and headers point only
//     there; segments are listed at full length, the writer fills them
//     further).
//   - A range table never straddles two segments; a collection step moves
//     at most twice the entries its batch put (at least an eighth of a
//     segment), unless an arena's garbage exceeds its live entries plus four
//     segments.
//   - Every snapshot that lists a segment holds its segMem; lookups keep
//     their table alive to their last read of segment memory.
//   - Every range table starts with a range at key 0.
//   - In an IPv4 range table with a bucket index, the range of every key in
//     bucket j lies in the window of 2^rounds ranges (clamped to the table)
//     from bucket[j]; with a bitmap index, every range starts at a unit's
//     first key and the count words count the set bits before them, less
//     one (tab4.go); with a two-level one, the first-level range of a sub
//     unit (a unit where a range starts off its first key) has value index
//     subLeaf and the distance to its sub-table's index, the unit after it
//     has a first-level range, and no other range has value index subLeaf
//     (t.nh[subLeaf] is subMark, no route's id); exactly the dir entries of
//     tables with a bitmap index carry popFlag. A table takes at most
//     tableBound4(n, extra4) entries for a region of n prefixes. Every IPv4 dir entry names a segment of the
//     snapshot's list. A rank index counts
//     at most one range start per slot (L2: per /48 slot of a group that
//     is not deep; a deep group's starts are searched by key, l2Rank).
//   - An IPv6 header page holds the packed form (hdr.pack) of the writer's
//     header of each id; an L2 table with a rank index starts with it, and
//     its counts are offsets from the table's start (rank.go).
//   - Next-hop ids in routes are never 0 and below 2^31; an IPv4 table holds
//     at most 65534 distinct next-hop ids (16-bit range values; index 1 is subLeaf).
//   - An IPv4 batch lookup's block state (blk4, Scratch4) holds no Go
//     pointers, and each stage writes what it reads before reading it, so
//     a worker's scratch is reused without zeroing (tab4.go). Its AVX-512
//     stages (lookup4_amd64.s) do what the Go code they replace does on
//     the same block state; the Go stages stay the fallback.
//   - On CPUs with AVX-512 the IPv6 batch lookup's stages run eight lanes
//     a step (lookup6_amd64.s); each stores exactly what the Go stage of
//     the same name stores for the lanes below the block's count, and no
//     lane at or past it is read through (masked gathers).
//   - A FIB's table of one family holds at most MaxPrefixes prefixes and an
//     IPv6 /32 at most MaxDeepPrefixes prefixes longer than /32; Apply
//     refuses a batch that would exceed them (ErrCapacity) before changing
//     anything, so no arena runs out of segments and no table outgrows
//     one (capacity.go).
//   - Connected changes apply to every FIB; a plain delete removes the route
//     from one FIB only.
//   - With Readers, a replaced part is reused only when every online Reader's
//     epoch is at least the one the writer stored right after publishing the
//     snapshot without it; every goroutine but the control goroutine reads
//     snapshots only through a Reader, and the control goroutine does not
//     read a snapshot loaded before an Apply after it (next hops excepted).
//
// Anchors: FreeBSD DXR (direct table + range table) and fib_algo; DPDK
// rte_fib (RIB/FIB split, bulk lookups returning next-hop ids).
package fib
