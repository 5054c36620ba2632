package fib

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime/metrics"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Attribution of late changes in BenchmarkChurnPinned: for every change
// visible later than 1 ms after it was due, whose was the delay? The
// writer samples, at most once a millisecond and always when it wakes late,
// what the kernel says about the process's threads other than the reader
// (the control goroutine's, the GC's and the runtime's, all on the control
// CPU) and about the control CPU:
//
//   - run delay: the time those threads spent runnable but waiting for the
//     CPU (/proc/self/task/TID/schedstat, field 2);
//   - their CPU time (field 1): what our own process ran meanwhile (GC
//     workers, the writer itself);
//   - the control CPU's steal time (/proc/stat, the VM's host running
//     something else instead of this virtual CPU; the kernel reports it
//     in 10 ms ticks, so it shows on long delays only). /proc/stat's busy
//     and idle ticks are not used: they are sampled at the scheduler's
//     tick, which runs in phase with the benchmark's 100 µs timer, and
//     showed a third of our threads' own CPU time;
//   - the reader's run delay (the worker's CPU taken by something else);
//   - GC cycles completed.
//
// A late batch's delay is split into due→Apply (the wait for the writer to
// run), Apply (the FIB's CPU) and Apply→visible (the reader's next burst),
// and the wait is classified over the samples that bracket it (classOf).

// attribSample is one sample; the counters are cumulative since the
// sampler started (no pointers: kept off the heap).
type attribSample struct {
	t        time.Duration // since the churn benchmark's base
	runDelay int64         // ns, the threads other than the reader's
	cpu      int64         // ns, same threads
	steal    int64         // ticks (USER_HZ) of the control CPU
	rdelay   int64         // ns, the reader's run delay
	gcs      uint64
}

type attribThread struct {
	tid          int
	fd           int
	cpu0, delay0 int64 // at discovery
	cpu, delay   int64 // last read
}

// attrib is the writer's sampler. Not safe for concurrent use: only the
// writer goroutine calls sample.
type attrib struct {
	reader   int // the reader's thread, not counted with the others
	rfd      int // its schedstat
	threads  []attribThread
	stat     int    // /proc/stat
	cpuLine  []byte // "cpu1 " (the control CPU) or "cpu  " (all)
	samples  []attribSample
	buf      [4096]byte
	ms       []metrics.Sample
	lastScan time.Duration
	cost     time.Duration // wall time spent sampling
	n        int
}

// newAttrib starts sampling the process's threads but reader and the
// control CPU cpu (-1: all CPUs), with room for n samples.
func newAttrib(tb testing.TB, reader, cpu, n int) *attrib {
	fd, err := unix.Open("/proc/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Skipf("attribution: %v", err)
	}
	rfd, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/schedstat", reader), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Skipf("attribution: %v", err)
	}
	a := &attrib{reader: reader, rfd: rfd, stat: fd, samples: offHeap[attribSample](tb, n)[:0],
		ms: []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}}
	if cpu >= 0 {
		a.cpuLine = fmt.Appendf(nil, "cpu%d ", cpu)
	} else {
		a.cpuLine = []byte("cpu  ")
	}
	tb.Cleanup(a.close)
	a.scan()
	return a
}

func (a *attrib) close() {
	for _, t := range a.threads {
		unix.Close(t.fd)
	}
	a.threads = nil
	if a.stat >= 0 {
		unix.Close(a.stat)
		unix.Close(a.rfd)
		a.stat = -1
	}
}

// scan adds the threads started since the last scan.
func (a *attrib) scan() {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, e := range tasks {
		tid, err := strconv.Atoi(e.Name())
		if err != nil || tid == a.reader || slices.ContainsFunc(a.threads, func(t attribThread) bool { return t.tid == tid }) {
			continue
		}
		fd, err := unix.Open("/proc/self/task/"+e.Name()+"/schedstat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		t := attribThread{tid: tid, fd: fd}
		if c, d, ok := a.readThread(fd); ok {
			t.cpu0, t.delay0, t.cpu, t.delay = c, d, c, d
		}
		a.threads = append(a.threads, t)
	}
}

// readThread reads a schedstat file: CPU time and run delay in ns.
func (a *attrib) readThread(fd int) (cpu, delay int64, ok bool) {
	n, err := unix.Pread(fd, a.buf[:], 0)
	if err != nil || n <= 0 {
		return 0, 0, false
	}
	f := bytes.Fields(a.buf[:n])
	if len(f) < 2 {
		return 0, 0, false
	}
	c, err1 := strconv.ParseInt(string(f[0]), 10, 64)
	d, err2 := strconv.ParseInt(string(f[1]), 10, 64)
	return c, d, err1 == nil && err2 == nil
}

// stealTicks reads the control CPU's steal ticks.
func (a *attrib) stealTicks() int64 {
	n, err := unix.Pread(a.stat, a.buf[:], 0)
	if err != nil || n <= 0 {
		return 0
	}
	b := a.buf[:n]
	i := bytes.Index(b, a.cpuLine)
	if i < 0 {
		return 0
	}
	b = b[i+len(a.cpuLine):]
	if j := bytes.IndexByte(b, '\n'); j >= 0 {
		b = b[:j]
	}
	f := bytes.Fields(b)
	if len(f) < 8 {
		return 0
	}
	// user nice system idle iowait irq softirq steal
	x, _ := strconv.ParseInt(string(f[7]), 10, 64)
	return x
}

// sample records the counters at now (since base), at most once per
// millisecond unless force.
func (a *attrib) sample(now time.Duration, force bool) {
	if len(a.samples) > 0 && !force && now-a.samples[len(a.samples)-1].t < time.Millisecond {
		return
	}
	if len(a.samples) == cap(a.samples) {
		return
	}
	t0 := time.Now()
	if now-a.lastScan > time.Second {
		a.scan()
		a.lastScan = now
	}
	s := attribSample{t: now}
	for i := range a.threads {
		t := &a.threads[i]
		if c, d, ok := a.readThread(t.fd); ok {
			t.cpu, t.delay = c, d
		}
		s.cpu += t.cpu - t.cpu0
		s.runDelay += t.delay - t.delay0
	}
	s.steal = a.stealTicks()
	if _, d, ok := a.readThread(a.rfd); ok {
		s.rdelay = d
	}
	metrics.Read(a.ms)
	s.gcs = a.ms[0].Value.Uint64()
	a.samples = append(a.samples, s)
	a.cost += time.Since(t0)
	a.n++
}

// before returns the index of the last sample at or before t (-1: none).
func (a *attrib) before(t time.Duration) int {
	i, _ := slices.BinarySearchFunc(a.samples, t+1, func(s attribSample, t time.Duration) int {
		switch {
		case s.t < t:
			return -1
		case s.t > t:
			return 1
		}
		return 0
	})
	return i - 1
}

// The classes of a late change, by what took most of its delay.
const (
	lateApply    = iota // Apply took most of the delay (the FIB's CPU: ours)
	lateOurCPU          // our own threads ran (GC cycle or ≥ half the wait of our CPU)
	lateReader          // Apply→visible took most: the reader (worker) did not run
	lateRunDelay        // our threads were runnable but the CPU ran something else (≥ half the wait)
	lateSteal           // the host ran something else instead of the control CPU (steal ticks)
	lateAsleep          // none of the above: no thread of ours ran or waited half the wait to run (ftrace: see BENCHMARKS.md)
	lateUnknown         // no samples bracket the wait
	numLate
)

var lateNames = [numLate]string{"Apply (ours)", "our threads ran: GC/runtime (ours)", "the reader (worker) was not run (its CPU: not ours)", "runnable, CPU ran other tasks (not ours)", "host steal (not ours)", "unexplained by the samples: no thread of ours ran or waited half the wait", "not sampled"}

// lateParts is what the samples say about one wait.
type lateParts struct {
	span           time.Duration // the samples' interval
	runDelay, cpu  time.Duration
	steal          time.Duration // from ticks
	rdelay         time.Duration // the reader's run delay
	gcs            uint64
	class          int
	wait, apply, r time.Duration
}

func (p lateParts) String() string {
	return fmt.Sprintf("over %v sampled: run delay %v, our CPU %v, steal %v, reader's run delay %v, GC cycles %d => %s",
		p.span.Round(time.Microsecond), p.runDelay.Round(time.Microsecond), p.cpu.Round(time.Microsecond),
		p.steal, p.rdelay.Round(time.Microsecond), p.gcs, lateNames[p.class])
}

// tick is the length of a /proc/stat tick (USER_HZ is 100 on Linux).
const tick = 10 * time.Millisecond

// classOf attributes a late batch: due, Apply called and returned, seen.
func (a *attrib) classOf(due, a0, a1, seen time.Duration) lateParts {
	p := lateParts{wait: a0 - due, apply: a1 - a0, r: seen - a1, class: lateUnknown}
	switch {
	case p.r > p.wait && p.r > p.apply:
		p.class = lateReader
		// Bracket Apply→visible instead.
		due, a0 = a1, seen
	case p.apply > p.wait:
		p.class = lateApply
	}
	i, j := a.before(due), a.before(a0)
	if i < 0 || j <= i {
		return p
	}
	s0, s1 := a.samples[i], a.samples[j]
	p.span = s1.t - s0.t
	p.runDelay = time.Duration(s1.runDelay - s0.runDelay)
	p.cpu = time.Duration(s1.cpu - s0.cpu)
	p.steal = time.Duration(s1.steal-s0.steal) * tick
	p.rdelay = time.Duration(s1.rdelay - s0.rdelay)
	p.gcs = s1.gcs - s0.gcs
	if p.class != lateUnknown {
		return p
	}
	switch {
	case p.gcs > 0 || p.cpu >= p.wait/2:
		p.class = lateOurCPU
	case p.runDelay >= p.wait/2:
		p.class = lateRunDelay
	case p.steal > 0:
		p.class = lateSteal
	default:
		p.class = lateAsleep
	}
	return p
}

// window returns the totals between the first and last samples.
func (a *attrib) window() (span, runDelay, cpu, steal, rdelay time.Duration) {
	if len(a.samples) < 2 {
		return
	}
	s0, s1 := a.samples[0], a.samples[len(a.samples)-1]
	return s1.t - s0.t, time.Duration(s1.runDelay - s0.runDelay), time.Duration(s1.cpu - s0.cpu),
		time.Duration(s1.steal-s0.steal) * tick, time.Duration(s1.rdelay - s0.rdelay)
}

// schedOpts are the scheduling attributes the churn benchmarks give every
// thread but the reader's: FIB_CHURN_NICE (a nice value) and
// FIB_CHURN_SLICE (the EEVDF time slice the threads ask for, Linux ≥
// 6.12, 100µs..100ms), like fwdd -ctl-nice and -ctl-slice.
//
// FIB_CHURN_GROUP_NICE sets the nice value of the process's scheduling
// group instead: with autogroup (kernel.sched_autogroup_enabled=1, a group
// per session) the scheduler shares a CPU between groups first, by the
// group's weight, and a thread's nice value weighs only against the
// threads of its own group (the same holds for cgroups' cpu.weight).
//
// FIB_CHURN_CTL_FIFO=PRIO runs those threads SCHED_FIFO at PRIO instead.
type schedOpts struct {
	fifo            int
	nice, groupNice int
	group           bool
	slice           time.Duration
}

func churnSched(tb testing.TB) schedOpts {
	var o schedOpts
	if v := os.Getenv("FIB_CHURN_NICE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -20 || n > 19 {
			tb.Fatalf("FIB_CHURN_NICE=%q: want -20..19", v)
		}
		o.nice = n
	}
	if v := os.Getenv("FIB_CHURN_CTL_FIFO"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 99 {
			tb.Fatalf("FIB_CHURN_CTL_FIFO=%q: want 1..99", v)
		}
		o.fifo = n
	}
	if v := os.Getenv("FIB_CHURN_GROUP_NICE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -20 || n > 19 {
			tb.Fatalf("FIB_CHURN_GROUP_NICE=%q: want -20..19", v)
		}
		o.groupNice, o.group = n, true
	}
	if v := os.Getenv("FIB_CHURN_SLICE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			tb.Fatalf("FIB_CHURN_SLICE=%q: want a duration such as 100us", v)
		}
		o.slice = d
	}
	return o
}

func (o schedOpts) set() bool { return o.nice != 0 || o.slice != 0 || o.group || o.fifo != 0 }

// setGroupNice sets the autogroup's nice value and returns a function that
// restores the one before.
func setGroupNice(tb testing.TB, n int) func() {
	const f = "/proc/self/autogroup"
	b, err := os.ReadFile(f)
	if err != nil {
		tb.Skipf("autogroup: %v", err)
	}
	old := 0
	if i := bytes.LastIndex(b, []byte("nice ")); i >= 0 {
		old, _ = strconv.Atoi(string(bytes.TrimSpace(b[i+5:])))
	}
	if err := os.WriteFile(f, []byte(strconv.Itoa(n)), 0); err != nil {
		tb.Fatalf("autogroup nice %d: %v", n, err)
	}
	return func() { _ = os.WriteFile(f, []byte(strconv.Itoa(old)), 0) }
}

// applySched gives every thread of the process but skip o's attributes
// (the default ones with a zero o).
func applySched(tb testing.TB, o schedOpts, skip int) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range tasks {
		tid, err := strconv.Atoi(e.Name())
		if err != nil || tid == skip {
			continue
		}
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Nice: int32(o.nice), Runtime: uint64(o.slice)}
		if o.fifo > 0 {
			attr = unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(o.fifo)}
		}
		if err := unix.SchedSetAttr(tid, &attr, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			tb.Fatalf("sched_setattr thread %d (nice %d, slice %v): %v", tid, o.nice, o.slice, err)
		}
	}
}
