// Package null is the "null" poll-mode driver, after DPDK's net_null: RX
// produces a configured stream of template packets (internal/pktgen), TX
// frees what it is given and counts it. It serves unit tests and the
// pipeline benchmarks as a port with no device behind it.
//
// Each queue owns an mbuf.Cache of its pool (Config.Pool(q)); RxBurst
// allocates through it and copies one template frame into each mbuf (the
// copy stands for a NIC filling a buffer), TxBurst frees mbufs of that pool
// back into the same cache and mbufs of other pools to their own pool
// (Config.Pools[m.PoolID()]). A queue's RX and TX share one owner, as
// pmd.Port requires, so the cache has one writer. Counters are per queue,
// single-writer, updated once per burst.
//
// Close flushes the queue caches back to their pools; the port holds no
// mbufs otherwise.
package null
