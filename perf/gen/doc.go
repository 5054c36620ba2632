// Package gen is fwdd's traffic generator and sink (cmd/fwdgen is its
// command line).
//
// It owns: the packet builder (Builder: IPv4/IPv6 UDP frames from per-size
// templates, flows varying the UDP source port and the low 16 bits of the
// addresses, checksums updated incrementally from precomputed partial sums);
// the payload stamp (magic, stream, sequence number, CLOCK_MONOTONIC send
// time); the transmit back ends (AF_PACKET TPACKET_V2 TX ring with
// PACKET_QDISC_BYPASS, one socket per worker; BPF_PROG_RUN live frames via
// perf/xdpprog, one call per run, ended by a signal to the worker's thread); the receive side (AF_PACKET TPACKET_V3 ring checking
// stamps: SeqTracker for loss/reorder/duplicates, Histogram for latency;
// or a BPF counter via perf/xdpprog); and the rate Limiter.
//
// Invariants: each worker goroutine is locked to its OS thread and owns its
// socket, ring, Builder, Limiter and trackers; it publishes only its
// counters (atomics, one writer). The TX/RX rings are shared with the
// kernel: their status words are read and written with sync/atomic only,
// all in afpacket_linux.go (the package's only use of unsafe). A live
// worker's watcher goroutine is the one other writer of its packet counter
// (progress during the single long call; compare-and-swap, never
// backwards) and signals only the worker's own thread, until the worker
// has returned. Sizes are Ethernet frame sizes including the 4-byte FCS.
// Per packet, Build does a template copy and a few stores: no allocation.
//
// Anchors: trafgen/pktgen (TX ring, bypass), DPDK testpmd's txonly stream
// (template + per-packet patch), RFC 2544 (frame sizes, throughput).
package gen
