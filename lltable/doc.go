// Package lltable holds fwdd's neighbour tables: ARP (RFC 826) for IPv4
// and NDP (RFC 4861) for IPv6, kept apart from the FIB after FreeBSD's
// lltable split, and resolved on the control side after grout.
//
// # What it owns
//
// One Table per stack holds the entries of every port, keyed by (port,
// address) and shared by every FIB. Entries are created on demand for a
// next hop (a gateway or a directly connected destination) when a packet
// misses, or learned from requests aimed at us; never as routes. Static
// entries are added by the CLI and never expire.
//
// # Who writes what
//
//   - The control goroutine owns the Table: every state change, every
//     timer, every transmitted request and answer, and publication. All
//     Table methods except NewReader are for that goroutine only, one at a
//     time. The Stack callbacks are called synchronously from them.
//   - Workers own one Reader each. They load the Snapshot once per burst
//     (Reader.Load) and look up by (port, IPv4 uint32) or (port, [16]byte)
//     in open-addressing hash tables: no map, no lock, no allocation. A miss
//     goes to the control goroutine through an MPSC ring (Reader.Miss4/6,
//     the target tagged in the mbuf's headroom); ARP and NDP frames through
//     another (Reader.Input). Full rings free the mbuf and count.
//   - Usage feedback for STALE -> DELAY (RFC 4861 §7.3.3): a lookup that
//     hits a STALE entry (flag in the slot) stores the snapshot generation
//     into the Reader's own marks array (grown by the control goroutine as
//     entry ids grow, published whole), only if the mark is older: each
//     worker writes an entry's mark at most once per published snapshot and
//     never a line another worker writes. The control goroutine reads the
//     marks every UseScanInterval, and when a STALE entry's GC timer fires.
//
// # Wiring it into a stack
//
// The stack implements Stack (Transmit, Free, Unreachable), gives a Pool
// for requests, declares ports with SetPort (MAC and addresses with their
// prefixes) and calls Poll from its control loop (when woken, and at
// least every ~100 ms: timers have 1 s granularity). Workers reach the
// control goroutine either through the table's own rings (Reader.Miss4,
// Reader.Miss6, Reader.Input) or through the stack's punt ring, the control
// goroutine then calling Table.Resolve(m, port, target) and Table.Input(m)
// itself. Either way the frame starts at its Ethernet header and ownership
// moves to the table.
//
// # State machine (both families)
//
//	miss            -> INCOMPLETE: broadcast ARP / multicast NS, every
//	                   RetransTimer, MaxMulticastSolicit times; packets held
//	                   (HoldLen per entry, oldest dropped; MaxHeld in all)
//	answer          -> REACHABLE (solicited NA, ARP reply to us) or STALE
//	                   (unsolicited: NA without S, NS/ARP request from it);
//	                   held packets leave in order
//	no answer       -> FAILED: held packets to Stack.Unreachable; new misses
//	                   answered the same way for FailedTime, then deleted
//	ReachableTime   REACHABLE -> STALE (uniform in [0.5, 1.5] x base)
//	used            STALE -> DELAY; DelayFirstProbe later -> PROBE: unicast
//	                   requests every RetransTimer, MaxUnicastSolicit times,
//	                   then FAILED (Linux's choice; RFC 4861 allows deletion)
//	StaleTime       unused STALE -> deleted
//
// Neighbor Advertisements follow §7.2.5 (override flag, Router flag kept);
// ARP follows RFC 826's merge: an existing entry is updated by any valid
// ARP from its address, a new one is created only by a request for one of
// our addresses. Like Linux, a request (ARP request, or NS with a source
// link-layer option) creates an entry only for a source a neighbour of
// that port can have: unicast, not ours, inside one of the port's
// prefixes, not an IPv4 subnet's network or broadcast address; others are
// answered and counted (not_on_link). Such an entry starts STALE and goes
// through DELAY and PROBE when used, like any other, so a spoofed MAC is
// verified by unicast probes. Frames claiming our MAC or our addresses are
// refused and counted as conflicts.
//
// # Held packets
//
// Once resolved, the table rewrites their Ethernet header itself
// (destination the neighbour's MAC, source the port's, any 802.1Q tag
// removed, as fwd/ does) and hands the finished frames to Stack.Transmit,
// in arrival order. Requests and answers are built from Config.Pool
// through a cache owned by the control goroutine.
//
// # Limits
//
// MaxEntries, MaxPerPort, HoldLen, MaxHeld (changeable at run time with
// SetLimits), one request per RetransTimer per entry and RequestsPerSecond
// over the table. At MaxPerPort or MaxEntries a new entry first evicts the
// entry of that port (of any port, for MaxEntries) that has been STALE and
// unused, or FAILED, the longest (Linux's forced GC at gc_thresh3; each
// port keeps its STALE and FAILED entries in a list in the order they
// entered that state, so the choice costs O(1) but for used entries met on
// the way, which go DELAY). Entries being resolved, in use or static are
// never evicted. Only when nothing is evictable is the entry refused. So a
// flood of requests from spoofed on-link sources churns unused entries but
// never locks out a neighbour we need. What is refused or evicted is
// counted (Counters); an unresolvable flood costs at most MaxEntries small
// entries, MaxHeld mbufs and RequestsPerSecond frames.
//
// No package-level mutable state: several Tables live in one process.
package lltable
