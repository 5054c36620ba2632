package fwd

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A busy-polling worker's latency tail is made of the moments it does not
// run: its thread parked by the Go runtime, another thread on its CPU,
// interrupts and the hypervisor. The worker measures them itself: the time
// between the starts of two loop iterations of which the first was light
// (fewer than stallLight packets: an empty poll takes well under a
// microsecond, a packet a few) is a stall when it reaches StallMin. For
// each stall the worker reads its thread's context switch counts
// (getrusage(RUSAGE_THREAD), one system call per stall, none otherwise) to
// tell the causes apart. Heavier iterations are not timed: how long a big
// burst takes is work, not a stall.

// stallLight is the most packets an iteration may carry for the gap to
// the next one to be timed: well under StallMin of work.
const stallLight = 4

// StallMin is the shortest gap counted as a stall.
const StallMin = 20 * time.Microsecond

// stallClasses are the stall length classes: at least 20 µs, 100 µs, 1 ms.
const stallClasses = 3

// stallClass returns the class of a gap of at least StallMin.
func stallClass(gap time.Duration) int {
	switch {
	case gap >= time.Millisecond:
		return 2
	case gap >= 100*time.Microsecond:
		return 1
	}
	return 0
}

// Stall causes, from the thread's context switches during the gap.
const (
	stallParked    = iota // voluntary: the Go runtime parked the thread
	stallPreempted        // involuntary: the kernel ran another thread
	stallOther            // neither: interrupts, softirqs, the hypervisor
	stallCauses
)

// stallCause tells a gap's cause from the thread's voluntary and
// involuntary context switch counts before and after it. A busy poller
// never sleeps on its own, so a voluntary switch is the runtime parking it
// (a preemption request from sysmon or the garbage collector: its thread
// waits until another thread hands its P back).
func stallCause(vol0, invol0, vol1, invol1 int64) int {
	switch {
	case vol1 != vol0:
		return stallParked
	case invol1 != invol0:
		return stallPreempted
	}
	return stallOther
}

// stallCounters are a worker's stall counts (single writer: the worker).
type stallCounters struct {
	n [stallCauses][stallClasses]atomic.Uint64
	// pkts counts the packets the polls after a stall found until one
	// came back empty, by the stall's class: packets that arrived during
	// it and waited (and the few that came while the backlog drained).
	pkts [stallClasses]atomic.Uint64
	max  atomic.Int64 // longest stall, ns
	// vol and invol are the thread's switch counts after the last stall
	// (worker only).
	vol, invol int64
}

// start reads the thread's switch counts (the worker calls it once, on
// its own thread, before polling).
func (s *stallCounters) start() {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) == nil {
		s.vol, s.invol = ru.Nvcsw, ru.Nivcsw
	}
}

// note counts a gap of at least StallMin and returns its class.
func (s *stallCounters) note(gap time.Duration) int {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		ru.Nvcsw, ru.Nivcsw = s.vol, s.invol
	}
	class := stallClass(gap)
	c := &s.n[stallCause(s.vol, s.invol, ru.Nvcsw, ru.Nivcsw)][class]
	c.Store(c.Load() + 1)
	s.vol, s.invol = ru.Nvcsw, ru.Nivcsw
	if int64(gap) > s.max.Load() {
		s.max.Store(int64(gap))
	}
	return class
}

// waited counts packets found by a poll after a stall of the given class,
// before the worker's polls came back empty again.
func (s *stallCounters) waited(class, packets int) {
	if packets > 0 {
		c := &s.pkts[class]
		c.Store(c.Load() + uint64(packets))
	}
}

// Stalls are a busy worker's stalls since it started: gaps of at least
// 20 µs, 100 µs and 1 ms (index 0, 1, 2; a gap counts in its longest class
// only) between two polls, by cause. Adaptive workers do not count them
// (they sleep on purpose).
type Stalls struct {
	// Parked: the Go runtime parked the worker's thread (it preempts a
	// goroutine that ran 10 ms without rescheduling; the locked thread
	// then waits for another thread to hand its P back), or a
	// stop-the-world.
	Parked [stallClasses]uint64 `json:"parked"`
	// Preempted: the kernel ran another thread on the worker's CPU.
	Preempted [stallClasses]uint64 `json:"preempted"`
	// Other: neither; interrupts, softirq work, the hypervisor.
	Other [stallClasses]uint64 `json:"other"`
	// Packets are the packets the polls after a stall of each class found
	// until one came back empty: they arrived during it (or while its
	// backlog drained) and waited. Against all the packets the worker
	// received they say how much of a latency tail its stalls make.
	Packets [stallClasses]uint64 `json:"packets"`
	// Max is the longest stall.
	Max time.Duration `json:"max_ns"`
}

func (s *stallCounters) load() Stalls {
	var out Stalls
	for i := range stallClasses {
		out.Parked[i] = s.n[stallParked][i].Load()
		out.Preempted[i] = s.n[stallPreempted][i].Load()
		out.Other[i] = s.n[stallOther][i].Load()
		out.Packets[i] = s.pkts[i].Load()
	}
	out.Max = time.Duration(s.max.Load())
	return out
}
