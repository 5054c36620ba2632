// Package ringpmd is the "ring" poll-mode driver, after DPDK's net_ring:
// ports connected back to back in memory through package ring. What one
// port transmits on queue q its peer receives on queue q; nothing is
// copied, the mbuf itself moves (ownership passes with it).
//
// Pairs and the no-global-state rule. A pair is two ports sharing rings, so
// opening the second port must find the first. The driver registry passes
// only a pmd.Config, and this package keeps no package-level state, so the
// rendezvous lives in an instance object instead:
//
//   - NewPair(cfgA, cfgB) makes both ports at once (tests, benchmarks);
//   - a Hub, owned by the stack (one per stack, like the port table), opens
//     ports with the argument peer=NAME: the first Open of NAME creates the
//     pair and returns its first port, the second returns the other one.
//     Hub.Open has the signature of pmd.Driver.Open, so the stack's control
//     plane calls it for driver "ring" with a peer argument;
//   - the registered driver "ring" (pmd.Open) makes a loopback port, whose
//     transmit rings are its own receive rings; given peer=NAME it fails
//     with an error telling the caller to use the stack's Hub.
//
// Rings are SPSC: the producer of ring q is the owner of the sending
// port's queue q, the consumer the owner of the receiving port's queue q.
// A full ring makes TxBurst accept only what fits; the caller keeps the
// rest. A port's link is up while its peer is open (a loopback port is
// always up).
//
// Close frees the mbufs waiting in the port's receive rings (each to its
// pool by mbuf.PoolID through Config.Pools); the last port of a pair to
// close also frees what waits in the rings towards the port closed first,
// so nothing leaks whatever the order.
package ringpmd
