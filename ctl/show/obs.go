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
}

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
	_, err := fmt.Fprintf(w, "neighbours: %d (packets held waiting for resolution: %d)\n", r.Neighbours, r.NeighHeld)
	return err
}
