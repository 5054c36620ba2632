// Package afpacket is the "afpacket" poll-mode driver: AF_PACKET sockets
// with TPACKET_V2 memory-mapped RX and TX rings, the fallback for devices
// and kernels without (usable) XDP. It copies every frame once each way
// (counted as Copies and flagged mbuf.FlagCopied).
//
// One socket per queue, each with its own RX and TX ring; with several
// queues the sockets join one PACKET_FANOUT group (hash mode, defrag, with
// a kernel-assigned unique id) so the kernel spreads flows over them.
// PACKET_IGNORE_OUTGOING keeps our own transmissions out of RX;
// PACKET_QDISC_BYPASS (arg bypass, default on) skips the qdisc layer;
// PACKET_LOSS skips malformed TX frames instead of stalling the ring.
//
// Who writes what:
//   - ring frames: the kernel owns a frame until its status word says
//     TP_STATUS_USER (RX) or TP_STATUS_AVAILABLE (TX); status words and
//     lengths are read and written with sync/atomic only (sock.go, the only
//     file using unsafe and x/sys/unix);
//   - each queue's socket pointer is published by the control side (Open,
//     the link monitor's goroutine, Close) and loaded once per burst by the
//     queue's poller, who alone moves the ring cursors and writes the
//     queue's counters;
//   - before unmapping a socket it unpublished, the control side waits for
//     the queue's busy flag (set by the poller around each burst) to clear.
//
// Link state comes from package linkmon (netlink, in the port's netns): the
// sockets exist while the interface is present and up. When it goes down or
// is deleted the port releases its sockets and rings, reports Link{Up:
// false} (and Present: false if deleted), takes and drops transmitted
// bursts (TxDrops), and re-attaches when an interface of that name is up
// again, with a new ifindex if it was re-created.
//
// The driver holds no mbufs beyond each queue's mbuf.Cache (RX allocates
// through it, TX frees into it); Close flushes them.
package afpacket
