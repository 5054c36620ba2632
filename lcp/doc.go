// Package lcp gives fwdd ports a kernel interface each (linux-cp, after
// VPP's linux-cp and grout's TAP representors): a TAP device in fwdd's
// network namespace that carries the traffic the host itself must see, so
// that routing daemons (BIRD, FRR) and any other program run over it
// unmodified.
//
// What it owns: the TAP devices (one per port with "lcp NAME"), one bounded
// SPSC ring per worker carrying punted frames (fwd's workers are the
// producers), and the punt goroutine, which writes punted frames to the
// TAPs and transmits what the kernel sends on them out of the port,
// through its own txq.Sender.
//
// The two directions:
//
//   - Punt (port -> kernel). A worker decides per packet what is host-bound
//     (fwd/punt.go: packets for our addresses that the dataplane does not
//     answer, link-local multicast and broadcast, IPv6 link-local
//     destinations, a copy of ARP and NDP) and hands it to its Producer.
//     Producer.Punt buffers; Producer.Flush, once per burst, enqueues the
//     burst into the worker's ring (EnqueueBurst: what does not fit is freed
//     and counted as punt_drop) and wakes the punt goroutine only if it
//     sleeps. A worker never blocks and never allocates here.
//   - Inject (kernel -> port). The punt goroutine reads frames from the
//     TAPs (non-blocking descriptors, poll(2)) into mbufs of its own cache
//     and transmits them as they are, through txq; nothing is parsed or
//     routed. Transit traffic never goes through the kernel.
//
// Invariants and who writes what:
//
//   - Control side (Add, Remove, SetCarrier, SetMTU, Close; one goroutine
//     at a time, serialised by a mutex never taken by the punt path) creates
//     and configures TAPs and publishes an immutable table of them, indexed
//     by port id. A TAP is closed only after a grace period: the punt
//     goroutine has finished the iteration that might still use the old
//     table (its epoch moved).
//   - The punt goroutine alone reads the rings, reads and writes the TAP
//     descriptors and uses its mbuf cache and Sender.
//   - Counters: each Producer's (punt_drop per port) are written by its
//     worker only; the punt goroutine's (punted, injected, drops) by it
//     only; Stats sums them on read.
//   - A frame punted for a port whose TAP is gone is freed and counted.
//
// Limits: one TAP queue per port (no multiqueue TAP, no vnet header
// offloads): the kernel sees every punted frame through one write(2), which
// is plenty for routing protocols and the host's own TCP, not a second
// dataplane.
package lcp
