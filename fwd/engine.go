package fwd

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/lltable"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"golang.org/x/sys/unix"
)

// Config sizes an engine. Zero values take the defaults.
type Config struct {
	// Workers is the number of poll-mode workers. Default: the number of
	// CPUs in CPUs, or 1.
	Workers int
	// CPUs pins worker i to CPUs[i % len(CPUs)]. Empty: no pinning.
	CPUs []int
	// AllowedCPUs are the CPUs workers may be pinned to. Default: the
	// calling thread's affinity. ReserveCPUs narrows every thread's
	// affinity to the CPUs the workers leave, so whoever called it passes
	// the set it returned.
	AllowedCPUs []int
	// PollMode: adaptive (default) or busy.
	PollMode PollMode
	// IdleSpin is how long an adaptive worker keeps polling after the
	// last packet before it waits in poll(2). Default 200µs: while packets
	// keep arriving at least every IdleSpin (5 kpps and up) the worker never
	// sleeps, so it pays no wake-up latency; an idle worker wakes once per
	// poll timeout and goes straight back to sleep.
	IdleSpin time.Duration
	// IdleTimeout bounds how long a waiting adaptive worker sleeps when
	// nothing is pending. Whoever gives it work wakes it (its eventfd), so
	// this only caps a lost wake-up. Default 50ms: 20 wake-ups a second
	// when idle.
	IdleTimeout time.Duration
	// RTPriority, if not 0, runs every worker's thread SCHED_FIFO at this
	// priority (1-99), so that ordinary threads on its CPU cannot delay it
	// (the kernel's NAPI threads get the same treatment from operators).
	// A busy-polling worker then never yields its CPU: pin it to a CPU of
	// its own. Failing to set it is logged, not fatal.
	RTPriority int
	// Nice, if not 0, is every worker thread's nice value (-20..19), for
	// workers at ordinary scheduling (it is ignored under RTPriority). A
	// busy-polling worker never sleeps, so an ordinary thread waking on its
	// CPU takes the CPU for a time slice (milliseconds) at once; at -20 the
	// worker weighs about 87 times as much as a nice-0 thread, which then
	// gets a short turn now and then instead, and the kernel's deferred
	// work (ksoftirqd, kworkers) still runs, unlike under SCHED_FIFO.
	// Failing to set it is logged, not fatal.
	Nice int
	// ControlRT says that ControlRT(ControlRT) gave the process's threads
	// SCHED_FIFO at this priority before the workers started: a worker's
	// thread, which inherits it, then returns to ordinary scheduling
	// (at Nice) unless RTPriority asks for SCHED_FIFO itself.
	ControlRT int
	// PoolSize is the number of mbufs per worker pool (the UMEM of that
	// worker's AF_XDP sockets). Default 16384.
	PoolSize int
	// BufSize is the mbuf buffer size. Default mbuf.DefaultBufSize.
	BufSize int
	// CheckedPools turns on mbuf ownership checks (tests).
	CheckedPools bool
	// Neigh configures the neighbour table (limits, timers); its Stack and
	// Pool are filled in by the engine.
	Neigh lltable.Config
}

// WithDefaults returns c with the defaults filled in, as New does (for
// checks made before an engine exists: fwdd -check).
func (c Config) WithDefaults() Config {
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = max(1, len(c.CPUs))
	}
	if c.IdleSpin <= 0 {
		c.IdleSpin = 200 * time.Microsecond
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 50 * time.Millisecond
	}
	if c.PoolSize <= 0 {
		c.PoolSize = 16384
	}
	if c.BufSize <= 0 {
		c.BufSize = mbuf.DefaultBufSize
	}
}

// Engine is one dataplane instance (a vnet): its workers, their pools, the
// ports they poll and the snapshots they read. Control-side methods
// (AttachPort, DetachPort, Publish*, Start, Stop) must be called from one
// goroutine at a time: the control goroutine.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	pools   []*mbuf.Pool
	workers []*Worker

	// wake is signalled (non-blocking, once per burst at most) when a
	// worker handed something to the control plane (through the neighbour
	// table's rings).
	wake chan struct{}
	// hashSeed seeds the flow hash (per engine, so that neighbours running
	// fwdd do not polarise ECMP).
	hashSeed uint64
	// ctl is the control goroutine's own pipeline.
	ctl *ctlPath
	// shared is the drivers' per-stack state (pmd.Config.Shared).
	shared *pmd.Shared

	mu      sync.Mutex // guards ports and running for control-side callers
	ports   map[uint16]pmd.Port
	stacked map[uint16]pmd.Stacked // the ports of ports that are pmd.Stacked
	running bool

	dp *dataplane
	// fibReaders are the workers' registrations with the FIB sets
	// (fib.Config.Readers): one fib.Reader per worker, so that the FIBs
	// reuse the snapshot memory the workers have left (FIBReaders).
	fibReaders *fib.Readers
}

// New creates an engine: its pools (one per worker) and workers, not yet
// running. It succeeds completely or releases what it made.
func New(cfg Config, log *slog.Logger) (*Engine, error) {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	// The CPUs are checked against the process's affinity mask, not
	// against runtime.NumCPU (which counts the allowed CPUs, not their
	// numbers: under taskset -c 1 it is 1 while CPU 1 is the one allowed).
	var allowed unix.CPUSet
	err := unix.SchedGetaffinity(0, &allowed)
	if len(cfg.AllowedCPUs) > 0 {
		allowed.Zero()
		for _, c := range cfg.AllowedCPUs {
			if c >= 0 && c < len(allowed)*64 {
				allowed.Set(c)
			}
		}
		err = nil
	}
	if err == nil {
		for _, c := range cfg.CPUs {
			if c < 0 || c >= len(allowed)*64 || !allowed.IsSet(c) {
				return nil, fmt.Errorf("cpu %d is not available to this process (allowed: %s; see taskset or -cpus)", c, cpuList(&allowed))
			}
		}
	}
	e := &Engine{cfg: cfg, log: log, wake: make(chan struct{}, 1), ports: map[uint16]pmd.Port{}, stacked: map[uint16]pmd.Stacked{}, hashSeed: rand.Uint64(), shared: pmd.NewShared(),
		fibReaders: fib.NewReaders()}
	for i := 0; i < cfg.Workers; i++ {
		p, err := mbuf.NewPool(mbuf.Config{
			Name: fmt.Sprintf("worker%d", i), ID: uint16(i), Count: cfg.PoolSize,
			BufSize: cfg.BufSize, Checked: cfg.CheckedPools,
		})
		if err != nil {
			e.closePools()
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
		e.pools = append(e.pools, p)
	}
	dp, err := newDataplane(e)
	if err != nil {
		e.closePools()
		return nil, err
	}
	e.dp = dp
	for i := 0; i < cfg.Workers; i++ {
		cpu := -1
		if len(cfg.CPUs) > 0 {
			cpu = cfg.CPUs[i%len(cfg.CPUs)]
		}
		evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			e.closeWorkers()
			e.closePools()
			return nil, fmt.Errorf("worker %d: eventfd: %w", i, err)
		}
		w := &Worker{id: i, cpu: cpu, e: e, cache: e.pools[i].NewCache(), done: make(chan struct{}), evfd: evfd,
			fr: e.fibReaders.NewReader()}
		w.queues.Store(&workerQueues{})
		w.offline.Store(true)
		w.pl.w = w
		if err := w.pl.init(e, i, w.cache); err != nil {
			unix.Close(evfd)
			e.closeWorkers()
			e.closePools()
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
		e.workers = append(e.workers, w)
	}
	e.ctl = &ctlPath{e: e}
	e.ctl.pl.control = true
	if err := e.ctl.pl.init(e, cfg.Workers, e.pools[0].NewCache()); err != nil {
		e.closeWorkers()
		e.closePools()
		return nil, err
	}
	return e, nil
}

// FIBReaders returns the workers' reader set: pass it as fib.Config.Readers
// to every FIB set published to the engine (Publish, SetFIB), so that it
// reuses the snapshot memory the workers have left instead of leaving it to
// the garbage collector. Each worker reports a quiescent point at the end
// of every loop iteration and goes offline while it sleeps or is stopped;
// the control goroutine (which applies the changes) needs no Reader, and no
// other goroutine of the engine reads FIB snapshots. A FIB set made with
// these Readers must not be read by another goroutine without a Reader of
// its own (FIBReaders().NewReader()).
func (e *Engine) FIBReaders() *fib.Readers { return e.fibReaders }

// Shared returns the drivers' per-stack state, to pass in pmd.Config.
func (e *Engine) Shared() *pmd.Shared { return e.shared }

// Workers returns the engine's workers.
func (e *Engine) Workers() []*Worker { return e.workers }

// Pools returns the mbuf pools, indexed by pool id = worker id.
func (e *Engine) Pools() []*mbuf.Pool { return e.pools }

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// QueuePool maps a port's queue q to the pool of the worker that polls it.
func (e *Engine) QueuePool(q int) int { return q % len(e.workers) }

// Woken is signalled when a worker handed packets to the control plane:
// the control goroutine then polls the neighbour table.
func (e *Engine) Woken() <-chan struct{} { return e.wake }

// wakeWorker is txq's Config.Wake: it wakes the owner of a transmit queue
// that was given packets while it may be waiting.
func (e *Engine) wakeWorker(owner int) {
	if owner < len(e.workers) {
		e.workers[owner].wake()
	}
}

// Wake signals the control goroutine (non-blocking).
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Start launches the workers.
func (e *Engine) Start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running {
		return
	}
	e.running = true
	for _, w := range e.workers {
		w.offline.Store(false)
		w.started = true
		go w.run()
	}
}

// Stop stops the workers and waits for them. Ports stay attached.
func (e *Engine) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.running {
		return
	}
	for _, w := range e.workers {
		w.stop.Store(true)
		w.wake()
	}
	for _, w := range e.workers {
		if w.started {
			<-w.done
		}
	}
	e.running = false
}

// Close stops the workers, detaches every port (closing it) and releases
// the pools. The engine cannot be used afterwards.
func (e *Engine) Close() error {
	e.Stop()
	var errs []error
	for id := range e.portIDs() {
		if p := e.DetachPort(id); p != nil {
			if err := p.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	e.ctl.pl.shutdown()
	e.dp.close()
	e.closeWorkers()
	e.closePools()
	return errors.Join(errs...)
}

// cpuList renders a CPU set as "0-3,6".
func cpuList(s *unix.CPUSet) string {
	var parts []string
	for c := 0; c < len(s)*64; c++ {
		if !s.IsSet(c) {
			continue
		}
		e := c
		for e+1 < len(s)*64 && s.IsSet(e+1) {
			e++
		}
		if e == c {
			parts = append(parts, fmt.Sprint(c))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", c, e))
		}
		c = e
	}
	return strings.Join(parts, ",")
}

func (e *Engine) portIDs() map[uint16]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := map[uint16]bool{}
	for id := range e.ports {
		ids[id] = true
	}
	return ids
}

// FreeMbufs returns mbufs to their pools (any goroutine).
func (e *Engine) FreeMbufs(ms []*mbuf.Mbuf) {
	for i, m := range ms {
		e.pools[m.PoolID()].Free(ms[i : i+1])
	}
}

func (e *Engine) closePools() {
	for _, p := range e.pools {
		p.Close()
	}
}

// AttachPort makes the workers poll port p (id = its pmd.Config.ID): its
// receive queue q goes to worker q % workers, and its transmit queues are
// made known to every worker.
func (e *Engine) AttachPort(id uint16, p pmd.Port) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.ports[id]; dup {
		return fmt.Errorf("port id %d is attached already", id)
	}
	e.ports[id] = p
	if err := e.dp.addPort(id, p); err != nil {
		delete(e.ports, id)
		return err
	}
	if s, ok := p.(pmd.Stacked); ok {
		e.stacked[id] = s
	}
	if len(e.stacked) > 0 {
		e.rebindLocked()
	}
	e.publishQueuesLocked()
	return nil
}

// DetachPort stops polling the port, waits until no worker can touch it,
// flushes its transmit queues (every mbuf back to its pool) and returns it
// for the caller to close. It returns nil if no port has that id.
func (e *Engine) DetachPort(id uint16) pmd.Port {
	e.mu.Lock()
	p, ok := e.ports[id]
	if !ok {
		e.mu.Unlock()
		return nil
	}
	delete(e.ports, id)
	_, wasStacked := e.stacked[id]
	delete(e.stacked, id)
	if wasStacked || len(e.stacked) > 0 {
		e.rebindLocked()
	}
	e.publishQueuesLocked()
	e.dp.removePort(id)
	e.mu.Unlock()
	e.Synchronize()
	e.dp.flushPort(id)
	return p
}

// publishQueuesLocked gives every worker its new queue set.
func (e *Engine) publishQueuesLocked() {
	sets := make([]*workerQueues, len(e.workers))
	for i := range sets {
		sets[i] = &workerQueues{all: true}
	}
	for id, p := range e.ports {
		info := p.Info()
		poller, _ := p.(pmd.Poller)
		for q := 0; q < info.RxQueues; q++ {
			ws := sets[q%len(e.workers)]
			fd := -1
			if poller != nil {
				fd = poller.RxFD(q)
			}
			ws.rx = append(ws.rx, rxQueue{port: p, portID: id, queue: q, fd: fd})
			if fd >= 0 {
				ws.fds = append(ws.fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
			} else {
				ws.all = false
			}
		}
	}
	for i, w := range e.workers {
		if sets[i].all {
			// The worker's eventfd is always last (Worker.wait relies on it).
			sets[i].fds = append(sets[i].fds, unix.PollFd{Fd: int32(w.evfd), Events: unix.POLLIN})
		}
		w.queues.Store(sets[i])
		w.wake()
	}
}

// closeWorkers releases the workers' eventfds (workers stopped).
func (e *Engine) closeWorkers() {
	for _, w := range e.workers {
		if w.evfd >= 0 {
			unix.Close(w.evfd)
			w.evfd = -1
		}
	}
}

// Synchronize waits for a grace period: until every worker has finished
// the iteration it was in (its epoch moved) or is offline. After it
// returns, no worker holds a pointer loaded before the call (RCU's
// synchronize_rcu).
func (e *Engine) Synchronize() {
	start := make([]uint64, len(e.workers))
	for i, w := range e.workers {
		start[i] = w.epoch.Load()
	}
	for i, w := range e.workers {
		for spins := 0; !w.offline.Load() && w.epoch.Load() == start[i]; spins++ {
			if spins < 100 {
				runtime.Gosched()
			} else {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
}
