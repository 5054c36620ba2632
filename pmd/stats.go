package pmd

import "sync/atomic"

// QueueStats are one queue's counters.
type QueueStats struct {
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	RxDrops   uint64 `json:"rx_drops"`  // dropped before we saw them (ring full, no buffer)
	RxErrors  uint64 `json:"rx_errors"` // malformed descriptors, device errors
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxDrops   uint64 `json:"tx_drops"` // accepted but could not be sent
	TxErrors  uint64 `json:"tx_errors"`
	// Copies counts packets a driver had to copy between memories.
	Copies uint64 `json:"copies"`
}

// Add adds o to s.
func (s *QueueStats) Add(o QueueStats) {
	s.RxPackets += o.RxPackets
	s.RxBytes += o.RxBytes
	s.RxDrops += o.RxDrops
	s.RxErrors += o.RxErrors
	s.TxPackets += o.TxPackets
	s.TxBytes += o.TxBytes
	s.TxDrops += o.TxDrops
	s.TxErrors += o.TxErrors
	s.Copies += o.Copies
}

// Counter is a single-writer counter readable from other goroutines: the
// owner Adds, readers Load. Add is a load and a plain store (see
// counter_norace.go), not an atomic store: on amd64 sync/atomic's Store is
// an XCHG, a locked instruction that drains the store buffer, and a worker
// updates several counters per burst. Update it once per burst, not per
// packet.
type Counter struct{ v atomic.Uint64 }

// Load returns the value.
func (c *Counter) Load() uint64 { return c.v.Load() }

// QueueCounters are the live counters a driver keeps per queue, each written
// only by the queue's owner. Padded so that two queues' counters never share
// a cache line.
type QueueCounters struct {
	RxPackets, RxBytes, RxDrops, RxErrors Counter
	TxPackets, TxBytes, TxDrops, TxErrors Counter
	Copies                                Counter
	_                                     [56]byte
}

// Snapshot reads the counters.
func (q *QueueCounters) Snapshot() QueueStats {
	return QueueStats{
		RxPackets: q.RxPackets.Load(), RxBytes: q.RxBytes.Load(), RxDrops: q.RxDrops.Load(), RxErrors: q.RxErrors.Load(),
		TxPackets: q.TxPackets.Load(), TxBytes: q.TxBytes.Load(), TxDrops: q.TxDrops.Load(), TxErrors: q.TxErrors.Load(),
		Copies: q.Copies.Load(),
	}
}

// Snapshots reads a slice of queue counters.
func Snapshots(qs []QueueCounters) []QueueStats {
	out := make([]QueueStats, len(qs))
	for i := range qs {
		out[i] = qs[i].Snapshot()
	}
	return out
}
