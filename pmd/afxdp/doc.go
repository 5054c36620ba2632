// Package afxdp is fwdd's AF_XDP poll-mode driver ("afxdp"), built on
// internal/xsk: one AF_XDP socket per queue, the interface's XDP program
// redirecting queue q to socket q, and the UMEM being the mbuf pool of the
// queue's worker.
//
// Arguments (pmd key=value): dev=IF (required), queues=N (default: the
// device's channel count), mode=auto|copy|zerocopy (default auto: the kernel
// tries zero-copy, falls back to copy; Info.Mode and the open log line say
// which), xdpmode=auto|native|generic, busypoll=USECS (preferred busy
// polling, 0 = off), ring=SLOTS (each of the four rings, default 2048).
//
// # Memory and ownership
//
// Each mbuf pool serves as one UMEM (xsk.Umem over Pool.Region, chunk =
// BufSize, mbuf i = chunk i, Pool.Addr/DataAddr/ByAddr convert). Every socket
// whose queue uses that pool, on any port, shares it (XDP_SHARED_UMEM), so a
// packet received on port A and sent on port B by the same worker keeps its
// buffer: TxBurst puts Pool.DataAddr(m) on B's TX ring, no byte is copied.
// An mbuf of another pool is copied once into one of ours, flagged
// mbuf.FlagCopied and counted in QueueStats.Copies. (In copy mode the kernel
// itself copies between the UMEM and its skbs; Info.Mode says "copy".)
//
// The kernel owns an mbuf from Fill (or Transmit) until Receive (or
// Complete) returns its address; each queue keeps a bitmap of those mbufs,
// so that Close gives every one back to the pool, and so that an address the
// kernel should not have returned is counted (RxErrors/TxErrors) instead of
// corrupting the pool.
//
// # Hot path
//
// RxBurst: Receive up to Burst descriptors, map each to its mbuf and set
// its data window, Port and Queue; refill the fill ring from the queue's
// mbuf.Cache in bursts; kick RX only if the kernel asks (need_wakeup) or
// busy polling is on. TxBurst: reap completions into the cache, put a
// prefix of the burst on the TX ring (bounded by its free space), one
// sendto only if the kernel set need_wakeup on the TX ring. No allocation,
// lock, map or interface call per packet; counters are updated per burst.
//
// # Link state
//
// The port follows its interface by name through pmd/linkmon: when it goes
// down or disappears, the sockets are unpublished (the poller's RxBurst and
// TxBurst then return 0), closed, and every mbuf the kernel held goes back
// to the pool; when it is up again (re-created: new ifindex), the program
// and sockets are attached anew. Link reports the last reconciled state. The
// poller and the control side meet through one atomic pointer and a busy
// flag per queue (as in pmd/afpacket).
package afxdp
