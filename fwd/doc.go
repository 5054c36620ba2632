// Package fwd is the router itself: the poll-mode workers and the
// forwarding pipeline between RxBurst and TxBurst.
//
// An Engine is one dataplane instance (a vnet): its workers, one mbuf pool
// per worker (the UMEM of that worker's AF_XDP sockets), the ports they
// poll, the transmit table (txq), the neighbour table (lltable), the FIB set
// (fib) and the State the control plane publishes. Several engines can run
// in one process; nothing here is package-level.
//
// Workers: goroutines locked to OS threads, optionally pinned to CPUs;
// receive queue q of every port belongs to worker q % workers. A worker
// polls its queues, runs each burst through the pipeline, flushes and drains
// its transmit queues, and when idle either spins (PollBusy) or waits in
// poll(2) on its queues (PollAdaptive). Each worker owns its scratch arrays,
// its mbuf cache and its counters; nothing it writes per packet is shared.
//
// The pipeline, per burst (pipeline.go):
//
//  1. classify and validate (fwd/pkt): Ethernet, one 802.1Q tag, IPv4, IPv6
//     (RFC 1812 5.2.2, RFC 8200), ARP; every refusal counted by reason
//     (QinQ, 0x88a8, is refused: parse_qinq). Stacked ports (pmd.Stacked,
//     stacked.go): a lagg member's burst is the lagg's (dropped while the
//     member is not collecting; slow-protocol frames go to the lagg's
//     control ring), and a tagged frame is its VLAN sub-interface's, its
//     tag removed (one table read per tagged packet); a tag with no
//     sub-interface is dropped (drop_unknown_vlan), never routed as if
//     untagged;
//  2. ARP and neighbour discovery go to the neighbour table's ring; IP
//     packets not addressed to the port's MAC are dropped;
//  3. FIB selection: the port's FIB, then the classifier rules in order
//     (setfib, count, drop; per-rule hit counters per worker);
//  4. one batch FIB lookup per run of packets sharing a FIB; ECMP member by
//     flow hash;
//  5. per packet: local delivery (echo answered), no route / reject (ICMP
//     unreachable), blackhole, TTL (ICMP time exceeded, RFC 1624 update),
//     MTU (ICMP fragmentation needed / packet too big, or fragmentation;
//     errors are decided before the TTL is decremented, so they quote the
//     packet as it arrived),
//     neighbour (a miss goes to the control plane, which holds the packet),
//     MAC rewrite, txq. The common case (gateway or connected next hop,
//     port up, TTL left, within the MTU) is staged over the burst: each
//     worker keeps its next hops resolved by next-hop id (adj.go: port,
//     MTU, neighbour, the rewritten Ethernet addresses as two words),
//     derived from the burst's State, FIB and neighbour snapshots and
//     dropped when any of them changes; runs of packets for one port go
//     to txq in one call, in arrival order with the other packets. A port
//     that spreads by a flow hash (pmd.TxHasher: a loadbalance or lacp
//     lagg) gets it computed here, in the same call as the TTL decrement,
//     while the header is at hand (mbuf.FlagTxHash; the adjacency keeps
//     the hash's lane after the new Ethernet header): one hash per
//     packet, also txq's. An IPv6 packet's hop limit is read in step 1,
//     with its destination, while its header is in cache: the staged
//     path tests that copy and only stores the new value, with the MACs;
//  6. packets we generated (ICMP errors, echo replies) are routed after the
//     burst in the FIB of the packet they answer.
//
// Invariants: no allocation, lock, channel, map, defer or interface call per
// packet (interface calls per burst: RxBurst, TxBurst); snapshots (State
// with its FIB set, neighbours, txq ports) are loaded once per burst; the
// State and the FIB set are published together (Engine.Publish), and a
// packet whose FIB is not in the set is dropped (drop_fib_missing), never
// looked up; fragments of a datagram are sent together, right after it is
// fragmented, or not at all; counters are plain
// per-burst counts flushed into the worker's atomics once per burst and
// summed on read. The control plane changes anything only by publishing a
// new snapshot and, before freeing what workers might still see, waiting
// for a grace period (Engine.Synchronize: every worker finished an
// iteration or is idle). The FIB sets made for the engine
// (fib.Config.Readers = Engine.FIBReaders) reuse the snapshot memory the
// workers have left without waiting: each worker holds a fib.Reader, online
// while it runs, reporting a quiescent point at the end of every loop
// iteration and offline while it sleeps; no other goroutine of the engine
// but the control goroutine reads FIB snapshots.
//
// Punt (punt.go): on a port with a kernel interface (package lcp), the
// host-bound packets the steps above would drop (for our addresses but not
// an echo request, link-local multicast and broadcast, IPv6 link-local)
// and a copy of ARP/NDP go to the worker's lcp.Producer instead, flushed
// into its bounded ring once per burst (overflow dropped and counted).
// Transit packets never do.
//
// The control goroutine's own small pipeline (ctlpath.go) transmits what
// the neighbour table builds and answers packets whose neighbour failed.
package fwd
