// Package capture copies frames the dataplane receives and transmits into
// bounded per-worker rings, for fwdctl capture (pcap/pcapng over the
// control socket).
//
// A Session is armed by the control plane for one port and direction. The
// workers (and the control goroutine's own pipeline, which has the last
// ring) call Session.Rx with each received burst and Session.Tx with each
// burst about to be transmitted; both copy the matching frames (up to the
// snap length) into the caller's own ring and never wait: when the ring
// is full the frame is dropped and counted in the ring's drop counter.
// One reader goroutine (Session.Read) drains the rings and writes pcap or
// pcapng (Writer, with gopacket/pcapgo).
//
// Invariants:
//   - Each ring is single-producer (its worker) single-consumer (the
//     reader): free-running indexes masked on access, producer and consumer
//     on separate cache lines, one release store per burst.
//   - The workers never block, allocate or write a shared cache line: the
//     drop and copy counters are the ring's own (single writer).
//   - Nothing is package-level: sessions are per daemon (vnet).
//   - Stop makes Rx/Tx no-ops at once; the control plane unpublishes the
//     session and waits for a grace period before the reader lets go of
//     the rings.
//
// Anchors: DPDK's pdump (a ring per queue, copies, drops counted), VPP's
// pcap trace, FreeBSD's bpf buffers (the capturer copies, the reader is
// slow independently).
package capture
