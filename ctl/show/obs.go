package show

import (
	"fmt"
	"io"
)

// ---- workers: vppctl show runtime ----

// Worker is one worker's load. Polls are receive polls (one RxBurst on one
// queue); BusyPolls those that found packets.
type Worker struct {
	Worker    int    `json:"worker"`
	CPU       int    `json:"cpu"` // -1: not pinned
	Polls     uint64 `json:"polls"`
	BusyPolls uint64 `json:"busy_polls"`
	Packets   uint64 `json:"packets"`
	// Stalls are a busy-polling worker's gaps between polls of at least
	// 20 µs, 100 µs and 1 ms (each counted in its longest class) by cause:
	// its thread parked by the Go runtime, another thread on its CPU, or
	// neither (interrupts, the hypervisor); StallMaxNs the longest. Zero
	// for adaptive workers.
	StallsParked    [3]uint64 `json:"stalls_parked"`
	StallsPreempted [3]uint64 `json:"stalls_preempted"`
	StallsOther     [3]uint64 `json:"stalls_other"`
	// StallPackets are the packets that arrived during stalls of each
	// class (found by the polls after one until a poll came back empty):
	// they waited for it.
	StallPackets [3]uint64 `json:"stall_packets"`
	StallMaxNs   int64     `json:"stall_max_ns"`
}

// stalled reports whether the worker counted any stall.
func (w *Worker) stalled() bool { return w.StallMaxNs > 0 }

// Busy is the share of polls that found work, in percent.
func (w *Worker) Busy() float64 {
	if w.Polls == 0 {
		return 0
	}
	return 100 * float64(w.BusyPolls) / float64(w.Polls)
}

// PerPoll is packets per busy poll (VPP's vectors/call).
func (w *Worker) PerPoll() float64 {
	if w.BusyPolls == 0 {
		return 0
	}
	return float64(w.Packets) / float64(w.BusyPolls)
}

// Runtime is show workers' answer: the workers' load since start and the
// neighbour table's size.
type Runtime struct {
	Workers    []Worker `json:"workers"`
	Neighbours int      `json:"neighbours"`
	NeighHeld  int      `json:"neigh_held"`
}

// Workers writes one line per worker and the neighbour summary.
func Workers(w io.Writer, r *Runtime) error {
	tw := newTable(w, 2)
	fmt.Fprintf(tw, "Worker\tCPU\tPolls\tBusy polls\tBusy %%\tPackets\tPackets/poll\n")
	for _, x := range r.Workers {
		cpu := "-"
		if x.CPU >= 0 {
			cpu = fmt.Sprint(x.CPU)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%.1f\t%d\t%.2f\n", x.Worker, cpu, x.Polls, x.BusyPolls, x.Busy(), x.Packets, x.PerPoll())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range r.Workers {
		if !x.stalled() {
			continue
		}
		p, k, o, n := x.StallsParked, x.StallsPreempted, x.StallsOther, x.StallPackets
		if _, err := fmt.Fprintf(w, "worker %d stalls (>= 20us / 100us / 1ms): parked by the Go runtime %d/%d/%d, preempted %d/%d/%d, other %d/%d/%d; packets that waited in them %d/%d/%d; longest %.0fus\n",
			x.Worker, p[0], p[1], p[2], k[0], k[1], k[2], o[0], o[1], o[2], n[0], n[1], n[2], float64(x.StallMaxNs)/1e3); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "neighbours: %d (packets held waiting for resolution: %d)\n", r.Neighbours, r.NeighHeld)
	return err
}
