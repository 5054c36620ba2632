// Package nlmirror is fwdd's netlink mirror: it follows the kernel's
// routes, addresses, interfaces and neighbours in fwdd's network namespace
// and hands them to the control goroutine, so that routing daemons that
// program Linux (BIRD, FRR, anything) drive fwdd unmodified.
//
// # What it owns
//
// One goroutine (Mirror.run) owns four netlink subscriptions (route,
// link, address, neighbour; github.com/vishvananda/netlink with error
// callbacks) and a dump socket; a second goroutine writes the addresses
// the control plane asks for (WriteAddr) to kernel interfaces. Nothing
// else: which table feeds which FIB, which interface is which port, and
// the routes themselves belong to the consumer (ctl/lcpmirror.go), and the
// FIB is the only per-route store.
//
// # Batches, never one message at a time
//
// Events are copied out of the netlink messages into plain values (Route,
// Link, Addr) and gathered into a Batch. The batch is offered to the
// consumer through an unbuffered channel, which hands it over only when
// the consumer waits for one, as soon as the mirror has taken every event
// the subscriptions have ready (or at MaxBatch entries; Config.Coalesce,
// if set, holds it that long after its first event instead); while the
// consumer works on a batch, events keep gathering in the next one. So
// the consumer sets the batch size: a route change the kernel announces
// alone reaches the FIB without waiting for a timer (until 2026-11-30
// every batch waited 2 ms, and Go timers cannot wait much less than 1 ms),
// and a full table arriving at tens of thousands of routes per second
// while the consumer applies the previous batch becomes few batches of
// many routes: a slow consumer gets bigger batches, not more of them. The
// mirror never waits for the consumer with events (only with a dump):
// beyond MaxPending gathered entries it drops them and takes a dump.
//
// # Dumps and resynchronisation
//
// The subscriptions are made first, then a dump is taken (links,
// addresses, then every route of every table, in DumpChunk batches);
// events that arrive meanwhile are applied after it, so the consumer
// converges whatever the interleaving. The dump's first batch has
// DumpFirst (its links and addresses are complete lists), its last
// DumpLast: the consumer then removes every kernel route the dump did not
// list (the sweep), so a resync leaves no stale route. A dump is taken at
// start, when a subscription fails (ENOBUFS: the kernel dropped messages;
// or any receive error: the subscription is made again), when the
// consumer falls MaxPending entries behind, when the kernel interrupts a
// dump (NLM_F_DUMP_INTR, taken again), and on Resync (the consumer asks
// when interfaces or the table map change: Linux drops the IPv4 routes of
// an interface going down without a message). Each is counted (Stats)
// and logged.
//
// # Translation
//
// Translate is a pure function from a kernel route and an Env (table ->
// FIB, ifindex -> port) to what fwdd installs; its doc and the table test
// give the rules: unicast via lcp interfaces -> gateway/connected/ECMP,
// blackhole -> blackhole, unreachable/prohibit -> reject, other types,
// the kernel's own interface-address routes, link-local and multicast
// destinations, unmapped tables and foreign interfaces are skipped with a
// Reason the consumer counts.
//
// # Neighbours
//
// The kernel's neighbour events are counted, not copied into lltable.
// fwdd's neighbour table learns from the same ARP and NDP packets the
// kernel does (lcp punts a copy of each to the kernel and keeps one), and
// resolves with its own timers and hold queue; seeding it from the kernel
// would give an entry two owners with different ideas of its state, and
// entries the kernel learned on foreign interfaces are no use to fwdd.
// A static kernel neighbour (ip neigh add ... permanent) is the one case
// it would help: use "neigh add" in fwdd for it.
//
// # Invariants
//
//   - One goroutine reads the subscriptions and writes the batch being
//     gathered; a batch handed over is the consumer's.
//   - Events are applied in the order the kernel sent them, after the dump
//     they follow.
//   - No package-level mutable state: several mirrors (one per network
//     namespace) can run in one process.
//
// Anchors: VPP linux-cp's netlink listener (batched, resync on overrun),
// FRR zebra's netlink reader, grout's FRR plugin.
package nlmirror
