// Package xsk is a bare AF_XDP socket and ring library on golang.org/x/sys/unix,
// independent of the rest of fwdd (like gVisor's pkg/xdp, which is kept apart
// from its link endpoint adapter). pmd/afxdp builds the fwdd driver on it.
//
// # What it owns
//
//   - Umem: the bookkeeping of a caller-owned, page-aligned memory region cut
//     into equal chunks (aligned mode). The caller (the mbuf pool) owns the
//     memory and decides which chunk is where; this package never allocates
//     or tracks chunks. The first socket opened registers the region with
//     the kernel (XDP_UMEM_REG); the others share it (XDP_SHARED_UMEM), each
//     with its own fill and completion ring, on any interface and queue.
//   - Socket: one AF_XDP socket bound to (interface, queue) with four
//     mmap'd rings and burst methods over them: Fill (fill ring), Complete
//     (completion ring), Receive (RX ring), Transmit (TX ring), plus the
//     kicks FlushTx and WakeupRx, which make a system call only when the
//     kernel asks for one (need_wakeup, on by default) or busy polling is on.
//   - Program: the XDP program of one interface (built with cilium/ebpf's
//     asm, named ProgramName) and its XSKMAP; attached with a bpf_link,
//     native mode first, generic as fallback. A stale fwdd program found at
//     start is replaced; anyone else's is left alone (ErrForeignProgram).
//   - QueueCount: the device's queue count from ethtool channels
//     (SIOCETHTOOL ETHTOOL_GCHANNELS).
//
// # Rings: who writes what
//
// Each ring is a power-of-two array of slots with a producer and a consumer
// index, free-running uint32s masked on access, in memory shared with the
// kernel. Every index access is a sync/atomic load or store (Go's atomics are
// sequentially consistent, hence at least acquire loads and release stores);
// slots are plain memory whose ownership moves with the indexes.
//
//	ring        producer (writes prod, slots)   consumer (writes cons)
//	fill        this process (Fill)             kernel
//	completion  kernel                          this process (Complete)
//	RX          kernel                          this process (Receive)
//	TX          this process (Transmit)         kernel
//
// The flags word of each ring is written by the kernel only
// (XDP_RING_NEED_WAKEUP). Each side keeps a private copy of its own index
// and a cached copy of the opposite one, refreshed (one acquire load) only
// when the cache says the burst does not fit; a burst then writes its slots
// and publishes them with one release store. Nothing on these paths
// allocates, locks or blocks.
//
// # Invariants
//
//   - A chunk is owned by exactly one party at a time: the caller, the
//     kernel through the fill ring (until Receive returns it), or the kernel
//     through a TX ring (until Complete returns it). Transmit and Fill take
//     ownership of the prefix they accept and return its length; the caller
//     keeps the rest. Any socket of a Umem may transmit a chunk received on
//     another: that is how forwarding between ports hands over descriptors
//     without copying.
//   - The sockets sharing a Umem share its mode: zero-copy or copy is chosen
//     by the first socket (ModeAuto: the kernel tries zero-copy and falls
//     back to copy); Socket.ZeroCopy reports it.
//   - The burst methods of one Socket are called by one goroutine at a time.
//   - The datapath returns counts; kick errors (ENETDOWN, ENXIO when the
//     interface is down or gone) are returned by FlushTx/WakeupRx as a
//     unix.Errno without allocating and remembered in Socket.Err. Setup
//     errors wrap a sentinel (ErrInvalidConfig, ErrNotSupported, ErrBusy,
//     ErrForeignProgram, ErrClosed) and say what to do.
//
// # Files
//
// sys.go holds every unsafe conversion and raw system call, each with why it
// is safe; ring.go is the ring logic in plain Go (tested against a simulated
// kernel); socket.go, umem.go and program.go are setup and the burst API.
//
// Anchors: gVisor pkg/xdp (rings documented by writer, cached indexes),
// libxdp xsk.h (need_wakeup, shared UMEM), DPDK net_af_xdp (kick policy).
package xsk
