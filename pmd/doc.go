// Package pmd defines fwdd's poll-mode driver layer: one burst interface for
// all packet I/O (Port), drivers registered by name and opened from key=value
// arguments (like DPDK devargs), and the port table (ifindex -> port).
//
// Drivers live in sub-packages and register themselves in init:
//
//	pmd/afxdp     AF_XDP sockets; the UMEM is an mbuf pool's region (main driver)
//	pmd/afpacket  TPACKET memory-mapped rings (fallback without XDP)
//	pmd/null      RX makes template packets, TX frees (tests, benchmarks)
//	pmd/ringpmd   two ports back to back in memory through package ring
//
// Adding a driver changes nothing elsewhere: import it for its side effect.
// Virtual ports (lagg) are drivers too.
//
// Contracts:
//   - RxBurst fills a caller slice and hands over ownership of what it
//     returns; TxBurst takes ownership of the prefix it accepts, the caller
//     keeps the rest (free or retry). Neither blocks nor allocates.
//   - a queue has one poller at a time; different queues run in parallel.
//   - counters are per queue, single-writer (QueueCounters), summed on read.
//   - Open succeeds completely or releases everything; Close releases every
//     mbuf the port still holds and is idempotent.
//
// The driver table is written only from init functions; everything else is
// per instance (Table, ports), so several stacks can run in one process.
package pmd
