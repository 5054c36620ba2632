// Package txq is fwdd's if_transmit layer: between the forwarding pipeline
// and the drivers, it turns "send these packets out of port P" into TxBurst
// calls on the right TX queue, after FreeBSD's if_transmit/drbr and DPDK
// l3fwd's per-port TX buffers.
//
// # Model
//
// N workers (ids 0..N-1) each own a Sender. A port has T TX queues. Worker w
// owns queue w of every port with T > w and calls TxBurst on it directly,
// without locking. A worker with no queue of its own on a port (w >= T)
// picks queue Hash % T (mbuf.Hash, whether or not FlagHashValid is set) and
// hands the packets to that queue's MPSC ring (FreeBSD drbr); the queue's
// owner drains the ring in Sender.Drain. Since such a worker exists only
// when T < N, every queue it can pick has an owner. Queues q >= N (T > N)
// have no owner and are never used: configure T <= N to use them all.
// Rings are made only for ports with T < N.
//
// # Per burst
//
//	s.Transmit(port, ms) ...   // any number of times: buffered per port, [BurstSize]
//	s.Flush()                  // end of burst: one TxBurst (own queue) or one
//	                           // ring enqueue per target queue, per port
//	s.Drain()                  // every poll iteration, idle too: backlogs, rings
//
// Transmit always takes ownership (drbr_enqueue): what cannot be queued is
// freed and counted, never handed back. The device may accept only a prefix
// of a burst: on the owner's direct path the rest goes to a per-queue
// backlog (owner-private FIFO, bounded by PortConfig.Backlog, beyond which
// packets are dropped as DropBacklogFull); while the backlog is non-empty
// new packets queue behind it, so order is kept. Packets that came through
// the ring stay in the ring when refused (PeekBurst/Advance, drbr_peek and
// drbr_advance) and are retried first next time; a full ring refuses new
// packets at the producer (DropRingFull). Per-flow order holds because one
// flow from one worker always takes the same path to the same queue and
// every stage is FIFO (the counting sort by queue is stable).
//
// Freed mbufs go back to their own pool (mbuf.PoolID indexes Config.Pools):
// to the worker's Cache when the pool matches, else with Pool.Free.
//
// # Snapshots and grace periods
//
// The control plane (Add, Remove, Flush, Synchronize, Stats; one goroutine
// or several, serialised by a mutex never taken on the fast path) publishes
// immutable snapshots through an atomic.Pointer. A Sender loads the
// snapshot once at the start of a burst (its first Transmit or Drain) and
// drops it in Flush. It counts burst edges in one atomic (odd inside a
// burst, even between bursts), one store at each edge: that is the
// per-worker quiescent counter.
//
// Table.Flush (if_qflush) frees everything queued for a removed port. IT
// MUST RUN ONLY AFTER NO WORKER TOUCHES THE PORT: Remove, then a grace
// period, then Flush. Flush checks the Senders' states and refuses with
// ErrInUse (freeing nothing) when a Sender that was inside a burst when the
// port was removed has not left that burst yet; Synchronize waits for
// exactly that condition. The engine's own grace period (every worker finished a poll
// iteration, which calls Sender.Flush and Drain) satisfies it too. For a
// link going down: Remove, grace period, Flush; Add again on link up.
//
// # Who writes what
//
//   - Table snapshot, txPort/txQueue set-up: the control plane.
//   - Sender (buffers, counters, state): its worker only; counters are
//     pmd.Counter (single writer, atomic load+store), updated once per
//     TxBurst or drop, read and summed by Table.Stats.
//   - txQueue backlog: the queue's owner only; Table.Flush after a grace
//     period.
//   - txQueue ring: producers are non-owner workers, the consumer is the
//     owner; Table.Flush after a grace period.
//
// Hot path: no allocation, lock, map, channel or defer; one TxBurst
// interface call per queue per burst (plus one per backlog retry). Proven by
// TestZeroAllocs.
package txq
