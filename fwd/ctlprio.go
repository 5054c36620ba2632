package fwd

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ControlRT runs every thread of the process SCHED_FIFO at prio (1-99), or
// at ordinary scheduling (SCHED_OTHER at the thread's nice value) with prio
// 0 (every thread, workers under Config.RTPriority included: it undoes
// ControlRT for a process whose workers have stopped, or one that could
// not complete it). The threads the Go runtime creates later inherit it from the thread
// that creates them, so it holds for the control goroutine wherever the
// runtime schedules it: the control goroutine, the netlink mirror's
// reader, the netpoller that wakes them and the garbage collector's
// workers all run ahead of the ordinary processes that share their CPUs.
//
// Why: a route change reaches the workers when the control goroutine has
// applied it, so its latency is first the wait for a CPU to run that
// goroutine. With fwdd's threads at ordinary priority, any busy process
// on the CPUs the workers leave (a compiler, the routing daemon itself)
// holds the CPU for its time slice (milliseconds) while the control
// goroutine waits; nice values do not help across processes in different
// scheduling groups (autogroup sessions, cgroups with the cpu controller:
// the CPU is shared between the groups first). BENCHMARKS.md, "FIB under
// churn, third pass", has the measurements.
//
// Call it once per process, before the workers start, and pass prio as
// Config.ControlRT so that each worker's thread returns to ordinary
// scheduling unless Config.RTPriority gives it SCHED_FIFO itself. Give the
// workers their own CPUs (ReserveCPUs): a SCHED_FIFO thread is not
// preempted by ordinary ones, and the kernel lets ordinary threads have a
// CPU only 5 % of the time (sched_rt_runtime_us) while real-time ones want
// it. It is a process-wide setting, not an engine's. Threads that exit
// meanwhile are skipped; the first other failure is returned (EPERM
// without CAP_SYS_NICE or an RLIMIT_RTPRIO of at least prio).
func ControlRT(prio int) error {
	if prio < 0 || prio > 99 {
		return fmt.Errorf("control threads' SCHED_FIFO priority %d: want 1-99, or 0 for ordinary scheduling", prio)
	}
	// A thread created meanwhile by one not yet changed inherits the old
	// policy and may be missing from the listing: go over the threads
	// again until a pass changes none (threads created by changed ones
	// inherit the new policy, so this ends).
	for pass := 0; ; pass++ {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("control threads' priority: %w", err)
		}
		changed := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if a, err := unix.SchedGetAttr(tid, 0); err == nil && pass > 0 && policyIs(a, prio) {
				continue
			}
			// Back to ordinary scheduling (prio 0) at the thread's nice value.
			if err := setPolicy(tid, prio, threadNice(tid)); err != nil {
				if errors.Is(err, unix.ESRCH) {
					continue
				}
				return fmt.Errorf("control threads' priority: thread %d: %w", tid, err)
			}
			changed++
		}
		if pass > 0 && changed == 0 {
			return nil
		}
		if pass == 100 {
			return fmt.Errorf("control threads' priority: threads keep appearing at the old policy after %d passes", pass)
		}
	}
}

// policyIs reports whether a thread's attributes are SCHED_FIFO at prio, or
// ordinary scheduling for prio 0.
func policyIs(a *unix.SchedAttr, prio int) bool {
	if prio > 0 {
		return a.Policy == unix.SCHED_FIFO && a.Priority == uint32(prio)
	}
	return a.Policy == unix.SCHED_NORMAL
}

// setPolicy runs thread tid (0: the calling one) SCHED_FIFO at prio, or
// SCHED_OTHER at nice when prio is 0.
func setPolicy(tid, prio, nice int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Nice: int32(nice)}
	if prio > 0 {
		attr = unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
	}
	if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
		return fmt.Errorf("sched_setattr: %w", err)
	}
	return nil
}

// threadNice returns the nice value of thread tid (0: the calling one), 0
// if it cannot be read.
func threadNice(tid int) int {
	n, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return 0
	}
	return 20 - n // the system call returns 20 - nice
}
