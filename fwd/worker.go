package fwd

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"golang.org/x/sys/unix"
)

// Burst is the number of packets a worker asks each receive queue for: 64,
// as the AF_XDP driver's burst (afxdp.Burst), txq's per-port buffer
// (txq.BurstSize) and the FIB's lockstep batch, so that a full ring is
// taken, looked up and sent in one go. Against 32 it cut the pipeline
// benchmarks by 5 % (IPv4) and 5-7 % (IPv6): per-burst costs (snapshot
// loads, counter flushes, txq's enter/exit, the FIB batch set-up) are paid
// half as often and twice as many lookups overlap (BENCHMARKS.md, fwd).
const Burst = 64

// PollMode says what an idle worker does.
type PollMode uint8

const (
	// PollAdaptive (default) spins while traffic flows and, once no
	// packet came for Config.IdleSpin, waits in poll(2) on its queues (or
	// sleeps briefly when a driver has no descriptor), so an idle router
	// does not burn a core.
	PollAdaptive PollMode = iota
	// PollBusy spins forever, like DPDK: lowest latency, one core per
	// worker at 100 %.
	PollBusy
)

func (m PollMode) String() string {
	if m == PollBusy {
		return "busy"
	}
	return "adaptive"
}

// ParsePollMode parses "busy" or "adaptive".
func ParsePollMode(s string) (PollMode, error) {
	switch s {
	case "busy":
		return PollBusy, nil
	case "adaptive", "":
		return PollAdaptive, nil
	}
	return 0, fmt.Errorf("poll mode %q: want busy or adaptive", s)
}

// rxQueue is one receive queue a worker polls.
type rxQueue struct {
	port   pmd.Port
	portID uint16
	queue  int
	fd     int // pmd.Poller descriptor or -1
}

// workerQueues is the immutable set of queues a worker polls, published by
// the engine (control side) and loaded by the worker once per iteration.
type workerQueues struct {
	rx  []rxQueue
	fds []unix.PollFd // the pollable subset, for idle waits
	all bool          // every queue is pollable
}

// Worker is one poll-mode worker: a goroutine locked to an OS thread,
// optionally pinned to a CPU, owning a set of receive queues, its own mbuf
// cache, transmit state and counters. Nothing it writes per packet is
// shared with another worker.
type Worker struct {
	id    int
	cpu   int // -1: not pinned
	e     *Engine
	cache *mbuf.Cache

	queues atomic.Pointer[workerQueues]

	// epoch counts loop iterations: the engine's grace periods wait for it
	// to move (or for offline to be set) before freeing what workers might
	// still see. Written by the worker only.
	epoch   atomic.Uint64
	offline atomic.Bool // set while the worker sleeps or has stopped
	// fr is the worker's registration with the FIB sets' reader set
	// (Engine.FIBReaders): online while the worker runs and is awake, a
	// quiescent point at the end of every iteration (where epoch moves),
	// so that the FIBs reuse what the worker has left.
	fr *fib.Reader

	// load counts the worker's receive polls (RxBurst calls), those that
	// found packets, and the packets: written by the worker only, once
	// per iteration; read by show workers, fwdctl top and the metrics.
	load workerLoad

	stop    atomic.Bool
	done    chan struct{}
	started bool

	// evfd is an eventfd in the worker's poll set: whoever gives a
	// waiting worker work (packets in the transmit rings it owns, a new
	// queue set, stop) writes it. sleeping is set from just before the
	// worker's last look for work until it polls again; producers publish
	// their work first and read sleeping second, so with sequentially
	// consistent atomics either the worker sees the work or the producer
	// sees it sleeping and wakes it.
	evfd     int
	sleeping atomic.Bool

	pl pipeline
}

// workerLoad is a worker's poll counters (single writer: the worker).
type workerLoad struct {
	polls, busy, packets atomic.Uint64
	stalls               stallCounters // busy mode only
}

func (l *workerLoad) add(polls, busy, packets int) {
	if polls == 0 {
		return
	}
	l.polls.Store(l.polls.Load() + uint64(polls))
	if busy > 0 {
		l.busy.Store(l.busy.Load() + uint64(busy))
		l.packets.Store(l.packets.Load() + uint64(packets))
	}
}

// Load is a worker's poll counters since it started.
type Load struct {
	Worker int `json:"worker"`
	CPU    int `json:"cpu"` // -1: not pinned
	// Polls are receive polls (one RxBurst on one queue); BusyPolls those
	// that returned packets; Packets the packets they returned.
	Polls     uint64 `json:"polls"`
	BusyPolls uint64 `json:"busy_polls"`
	Packets   uint64 `json:"packets"`
	// Stalls are a busy worker's gaps between polls by length and cause
	// (all zero in adaptive mode).
	Stalls Stalls `json:"stalls"`
}

// Load returns the worker's poll counters.
func (w *Worker) Load() Load {
	return Load{Worker: w.id, CPU: w.cpu, Polls: w.load.polls.Load(), BusyPolls: w.load.busy.Load(), Packets: w.load.packets.Load(),
		Stalls: w.load.stalls.load()}
}

// ID returns the worker's index.
func (w *Worker) ID() int { return w.id }

// CPU returns the CPU the worker is pinned to, or -1.
func (w *Worker) CPU() int { return w.cpu }

func (w *Worker) run() {
	defer close(w.done)
	// Locked for good: the goroutine exits with the thread still locked,
	// so the runtime ends the thread instead of handing a thread pinned to
	// a worker CPU (and SCHED_FIFO with -rt) to other goroutines.
	runtime.LockOSThread()
	if w.cpu >= 0 {
		var set unix.CPUSet
		set.Set(w.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			w.e.log.Warn("worker: cannot pin to CPU, running unpinned", "worker", w.id, "cpu", w.cpu, "err", err)
		}
	}
	if prio := w.e.cfg.RTPriority; prio > 0 {
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			w.e.log.Warn("worker: cannot run SCHED_FIFO, keeping ordinary scheduling", "worker", w.id, "priority", prio, "err", err)
		}
	}
	if nice := w.e.cfg.Nice; nice != 0 && w.e.cfg.RTPriority <= 0 {
		// PRIO_PROCESS with who 0 is the calling thread on Linux.
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, nice); err != nil {
			w.e.log.Warn("worker: cannot set its nice value, keeping the process's", "worker", w.id, "nice", nice, "err", err)
		}
	}
	if w.e.cfg.ControlRT > 0 && w.e.cfg.RTPriority <= 0 {
		// The thread inherited the control threads' SCHED_FIFO (ControlRT):
		// a busy worker must not hold its CPU at real-time priority unasked.
		nice := w.e.cfg.Nice
		if nice == 0 {
			nice = threadNice(0)
		}
		if err := setPolicy(0, 0, nice); err != nil {
			w.e.log.Warn("worker: cannot return to ordinary scheduling from the control threads' SCHED_FIFO", "worker", w.id, "err", err)
		}
	}
	mode := w.e.cfg.PollMode
	spin := w.e.cfg.IdleSpin
	// idleSince is when the current run of empty polls began (idle: the
	// last poll found nothing); slept says the worker has waited since the
	// last packet, so an empty poll after a wake-up waits again at once
	// instead of spinning another IdleSpin.
	var idleSince time.Time
	idle, slept := false, false
	// Busy mode times each iteration that follows a light one (stall.go):
	// last is when that light iteration started.
	var last time.Time
	timed := false
	stalled := -1 // the class of the stall whose backlog the worker is on
	if mode == PollBusy {
		w.load.stalls.start()
	}
	w.fr.Online()
	for !w.stop.Load() {
		if mode == PollBusy {
			now := time.Now()
			if gap := now.Sub(last); timed && gap >= StallMin {
				stalled = w.load.stalls.note(gap)
				now = time.Now() // the next gap leaves out getrusage
			}
			last = now
		}
		q := w.queues.Load()
		got, busy := 0, 0
		for i := range q.rx {
			rq := &q.rx[i]
			n := rq.port.RxBurst(rq.queue, w.pl.rx[:])
			if n > 0 {
				w.pl.receive(rq.portID, rq.queue, w.pl.rx[:n])
				got += n
				busy++
			}
		}
		w.pl.idle()
		w.load.add(len(q.rx), busy, got)
		w.epoch.Store(w.epoch.Load() + 1)
		w.fr.Quiesce() // nothing loaded in this iteration is read again
		if stalled >= 0 {
			// Until a poll comes back empty the worker is working off
			// what piled up during the stall (a burst per poll).
			w.load.stalls.waited(stalled, got)
			if got == 0 {
				stalled = -1
			}
		}
		if got > 0 || mode == PollBusy {
			idle, slept = false, false
			timed = got < stallLight
			continue
		}
		// The clock is read on empty polls only (a vDSO call, no
		// allocation): they cost nothing to anyone.
		if !idle {
			idle, idleSince = true, time.Now()
		}
		if !slept && time.Since(idleSince) < spin {
			continue
		}
		w.wait(q)
		slept = true
	}
	w.pl.shutdown()
	w.fr.Offline()
	w.offline.Store(true)
}

// wait blocks while there is no traffic: in poll(2) on the queues'
// descriptors and the worker's eventfd when every queue has a descriptor,
// else in a short sleep (the queues without one must be polled). The
// worker is offline (ignored by grace periods) while it waits.
func (w *Worker) wait(q *workerQueues) {
	w.sleeping.Store(true)
	w.pl.forget()
	// The last look: transmit rings and backlogs, after announcing the
	// sleep (see evfd).
	w.pl.idle()
	timeout := int(w.e.cfg.IdleTimeout / time.Millisecond) // Config.IdleTimeout
	if w.pl.tx.Pending() {
		timeout = 1 // the device refused a burst: retry soon
	}
	w.offline.Store(true)
	w.fr.Offline()
	if q.all && len(q.fds) > 0 {
		for i := range q.fds {
			q.fds[i].Revents = 0
		}
		_, _ = unix.Poll(q.fds, timeout)
		if ev := &q.fds[len(q.fds)-1]; ev.Fd == int32(w.evfd) && ev.Revents&unix.POLLIN != 0 {
			var b [8]byte
			_, _ = unix.Read(w.evfd, b[:])
		}
	} else {
		time.Sleep(200 * time.Microsecond)
	}
	w.fr.Online()
	w.offline.Store(false)
	w.sleeping.Store(false)
}

// wake makes a waiting worker poll again; it never blocks (the eventfd is
// non-blocking, and a counter that is already set stays set).
func (w *Worker) wake() {
	if w.sleeping.Load() && w.evfd >= 0 {
		b := [8]byte{1}
		_, _ = unix.Write(w.evfd, b[:])
	}
}

// ReserveCPUs keeps the process's other threads off the workers' CPUs: it
// sets the affinity of every thread of the process to the CPUs it may use
// minus cpus, so that the Go runtime's threads (the control goroutines,
// the garbage collector's workers, sysmon) and the threads they create
// later (a new thread inherits its creator's affinity; the runtime creates
// threads for locked goroutines from a template thread, never from a
// worker's) do not share a worker's CPU. A busy-polling worker at ordinary
// priority otherwise gives up its CPU for the scheduler's time slices to
// whatever else lands there, which is what a latency tail is made of. Each
// worker then pins its own thread (Config.CPUs).
//
// It first fixes GOMAXPROCS at its current value: since Go 1.25 the runtime
// recomputes it from the affinity of its monitor thread, which would then
// see only the CPUs left.
//
// It returns the CPUs the process could use before (pass them as
// Config.AllowedCPUs: the threads' affinity no longer shows them) and those
// left to the other threads; when cpus would leave none (or none are given)
// it changes nothing and returns rest empty. Call it once per process,
// before the workers start (cmd/fwdd does when -cpus is given); it is a
// process-wide setting, not an engine's.
func ReserveCPUs(cpus []int) (allowed []int, rest string, err error) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		return nil, "", fmt.Errorf("reserve worker CPUs: sched_getaffinity: %w", err)
	}
	for c := 0; c < len(all)*64; c++ {
		if all.IsSet(c) {
			allowed = append(allowed, c)
		}
	}
	if len(cpus) == 0 {
		return allowed, "", nil
	}
	left := all
	if r, err := reserve(&left, cpus); err != nil || r == "" {
		return allowed, r, err
	}
	return allowed, cpuList(&left), nil
}

// reserve removes cpus from rest and moves every thread of the process to
// what is left (if anything); it returns that set as a list, or "".
func reserve(rest *unix.CPUSet, cpus []int) (string, error) {
	for _, c := range cpus {
		if c >= 0 && c < len(rest)*64 {
			rest.Clear(c)
		}
	}
	if rest.Count() == 0 {
		return "", nil
	}
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return "", fmt.Errorf("reserve worker CPUs: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread that exited meanwhile answers ESRCH: nothing to move.
		if err := unix.SchedSetaffinity(tid, rest); err != nil && !errors.Is(err, unix.ESRCH) {
			return "", fmt.Errorf("reserve worker CPUs: thread %d: sched_setaffinity: %w", tid, err)
		}
	}
	return cpuList(rest), nil
}
