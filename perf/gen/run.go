package gen

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Transmit back ends.
const (
	BackendAFPacket = "afpacket" // TPACKET_V2 TX ring, PACKET_QDISC_BYPASS
	BackendMmsg     = "mmsg"     // AF_PACKET sendmmsg, PACKET_QDISC_BYPASS
	BackendLive     = "live"     // BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES
	BackendXDP      = "xdp"      // receive side: counting XDP sink program
	BackendTC       = "tc"       // receive side: counting tcx ingress program
)

// TxConfig configures a transmit run.
type TxConfig struct {
	Dev      string
	Backend  string
	Spec     Spec
	Workers  int           // sockets/threads (default 1)
	CPUs     []int         // worker i is pinned to CPUs[i%len(CPUs)]; none = unpinned
	Rate     float64       // total packets/s over all workers; 0 = flat out
	Duration time.Duration // stop after this long (0 = until Count or ctx)
	Count    uint64        // stop after this many packets in total (0 = no limit)
	Batch    int           // frames per kick (default 64)
	NoBypass bool          // go through the qdisc (AF_PACKET)
	XDPMode  string        // afxdp: auto (default), copy or zerocopy
	// NoTimestamps leaves the stamps' send time 0 (live back end): the
	// sink takes no latency samples, and each frame costs the generator
	// less (no clock read). Sequence numbers are kept.
	NoTimestamps bool
	// StampEvery (live back end; a power of two, 0 or 1 = every frame)
	// writes the send time only into frames whose sequence number is a
	// multiple of it; the others carry 0, count for loss and order at the
	// sink and give no latency sample. Reading the clock is the live
	// program's dearest step, so sampling keeps the rate near the bare
	// loop's while every latency sample stays exact.
	StampEvery int
	// Progress, if set, is called about once per second from a monitor goroutine.
	Progress func(Progress)
}

// Progress is a once-per-second report.
type Progress struct {
	Elapsed time.Duration
	Packets uint64  // total so far (sent or received)
	Bytes   uint64  // L2 bytes without FCS
	PPS     float64 // over the last interval
	Extra   string  // back-end specific (loss so far, ...)
}

// Latency is a latency summary in microseconds.
type Latency struct {
	Samples uint64  `json:"samples"`
	MinUS   float64 `json:"min_us"`
	MeanUS  float64 `json:"mean_us"`
	P50US   float64 `json:"p50_us"`
	P90US   float64 `json:"p90_us"`
	P99US   float64 `json:"p99_us"`
	P999US  float64 `json:"p999_us"`
	MaxUS   float64 `json:"max_us"`
}

// Summary is the result of a run (transmit or receive).
type Summary struct {
	Mode      string   `json:"mode"` // "tx" or "rx"
	Backend   string   `json:"backend"`
	Dev       string   `json:"dev"`
	Family    string   `json:"family,omitempty"`
	Sizes     []int    `json:"sizes,omitempty"`
	Flows     int      `json:"flows,omitempty"`
	Workers   int      `json:"workers"`
	Seconds   float64  `json:"seconds"`
	Packets   uint64   `json:"packets"` // sent (tx) or received (rx)
	Bytes     uint64   `json:"bytes"`   // L2 bytes without FCS
	MPPS      float64  `json:"mpps"`
	Gbps      float64  `json:"gbps"` // L2 incl. FCS; L1 adds 20 B/frame
	GbpsL1    float64  `json:"gbps_l1"`
	Errors    uint64   `json:"errors,omitempty"`
	Unique    uint64   `json:"unique,omitempty"`
	Expected  uint64   `json:"expected,omitempty"`
	Lost      uint64   `json:"lost,omitempty"`
	LossPct   float64  `json:"loss_pct"`
	Dups      uint64   `json:"dups,omitempty"`
	Reorder   uint64   `json:"reorder,omitempty"`
	Late      uint64   `json:"late,omitempty"`
	Foreign   uint64   `json:"foreign,omitempty"` // frames without a stamp
	RingDrops uint64   `json:"ring_drops,omitempty"`
	Latency   *Latency `json:"latency,omitempty"`
}

func (s *Summary) finish() {
	if s.Seconds > 0 {
		s.MPPS = float64(s.Packets) / s.Seconds / 1e6
		s.Gbps = float64(s.Bytes+FCSLen*s.Packets) * 8 / s.Seconds / 1e9
		s.GbpsL1 = float64(s.Bytes+(FCSLen+20)*s.Packets) * 8 / s.Seconds / 1e9
	}
}

// worker counters, written by one worker, read by the monitor.
type txCounters struct {
	pkts  atomic.Uint64
	bytes atomic.Uint64
	errs  atomic.Uint64
	_     [40]byte
}

// monoClock gives CLOCK_MONOTONIC ns through Go's vDSO-backed monotonic
// clock: one clock_gettime at start, time.Since afterwards.
type monoClock struct {
	base  time.Time
	mono0 int64
}

func newMonoClock() monoClock { return monoClock{base: time.Now(), mono0: monoNow()} }

func (c monoClock) now() int64 { return c.mono0 + int64(time.Since(c.base)) }

// Transmit runs the generator until Duration, Count or ctx ends it.
func Transmit(ctx context.Context, cfg TxConfig) (*Summary, error) {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.Workers > 255 {
		return nil, fmt.Errorf("%w: at most 255 workers", ErrSpec)
	}
	if cfg.Batch < 1 {
		cfg.Batch = 64
	}
	if cfg.Backend == "" {
		cfg.Backend = BackendAFPacket
	}
	if cfg.StampEvery < 0 || cfg.StampEvery&(cfg.StampEvery-1) != 0 || cfg.StampEvery > 1<<30 {
		return nil, fmt.Errorf("%w: stamp interval %d is not a power of two (1, 2, 4, ... 2^30)", ErrSpec, cfg.StampEvery)
	}
	b, err := NewBuilder(cfg.Spec)
	if err != nil {
		return nil, err
	}
	spec := b.Spec()
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	ctrs := make([]txCounters, cfg.Workers)
	var per, perRate = make([]uint64, cfg.Workers), cfg.Rate / float64(cfg.Workers)
	for i := range per {
		if cfg.Count > 0 {
			per[i] = cfg.Count / uint64(cfg.Workers)
			if uint64(i) < cfg.Count%uint64(cfg.Workers) {
				per[i]++
			}
		}
	}
	var start func(i int, ready chan<- error) func() error
	switch cfg.Backend {
	case BackendAFPacket:
		start = func(i int, ready chan<- error) func() error {
			return func() error { return afpTxWorker(ctx, cfg, spec, uint8(i), per[i], perRate, &ctrs[i], ready) }
		}
	case BackendMmsg:
		start = func(i int, ready chan<- error) func() error {
			return func() error { return mmsgTxWorker(ctx, cfg, spec, uint8(i), per[i], perRate, &ctrs[i], ready) }
		}
	case BackendAFXDP:
		start = func(i int, ready chan<- error) func() error {
			return func() error { return afxdpTxWorker(ctx, cfg, spec, uint8(i), per[i], perRate, &ctrs[i], ready) }
		}
	case BackendLive:
		lv, err := newLiveGen(cfg, b)
		if err != nil {
			return nil, err
		}
		defer lv.close()
		start = func(i int, ready chan<- error) func() error {
			return func() error { return lv.worker(ctx, cfg, uint8(i), per[i], perRate, &ctrs[i], ready) }
		}
	default:
		return nil, fmt.Errorf("%w: unknown transmit back end %q (afpacket, mmsg, afxdp, live)", ErrSpec, cfg.Backend)
	}
	errs := make([]error, cfg.Workers)
	var wg sync.WaitGroup
	ready := make(chan error, cfg.Workers)
	for i := 0; i < cfg.Workers; i++ {
		wg.Add(1)
		fn := start(i, ready)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if len(cfg.CPUs) > 0 {
				if err := pinThread(cfg.CPUs[i%len(cfg.CPUs)]); err != nil {
					errs[i] = err
					ready <- err
					return
				}
			}
			errs[i] = fn()
		}()
	}
	// Wait for every worker to be set up before the clock starts.
	for i := 0; i < cfg.Workers; i++ {
		if err := <-ready; err != nil {
			wg.Wait()
			return nil, err
		}
	}
	t0 := time.Now()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	sum := func() (p, by, e uint64) {
		for i := range ctrs {
			p += ctrs[i].pkts.Load()
			by += ctrs[i].bytes.Load()
			e += ctrs[i].errs.Load()
		}
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastP uint64
	lastT := t0
loop:
	for {
		select {
		case <-done:
			break loop
		case now := <-tick.C:
			p, by, _ := sum()
			if cfg.Progress != nil {
				cfg.Progress(Progress{Elapsed: now.Sub(t0), Packets: p, Bytes: by,
					PPS: float64(p-lastP) / now.Sub(lastT).Seconds()})
			}
			lastP, lastT = p, now
		}
	}
	el := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p, by, e := sum()
	s := &Summary{Mode: "tx", Backend: cfg.Backend, Dev: cfg.Dev, Family: family(spec.IPv6), Sizes: spec.Sizes,
		Flows: spec.Flows, Workers: cfg.Workers, Seconds: el.Seconds(), Packets: p, Bytes: by, Errors: e}
	s.finish()
	return s, nil
}

func family(v6 bool) string {
	if v6 {
		return "ipv6"
	}
	return "ipv4"
}

// afpTxWorker is one AF_PACKET TX ring. It signals ready once set up.
func afpTxWorker(ctx context.Context, cfg TxConfig, spec Spec, stream uint8, count uint64, rate float64,
	c *txCounters, ready chan<- error) error {
	b, err := NewBuilder(spec)
	if err != nil {
		ready <- err
		return err
	}
	r, err := newTxRing(cfg.Dev, !cfg.NoBypass)
	if err != nil {
		ready <- err
		return err
	}
	defer r.close()
	ready <- nil
	clk := newMonoClock()
	lim := NewLimiter(rate, cfg.Batch)
	var seq, pk, by uint64
	batch := cfg.Batch
	done := ctx.Done()
	for iter := 0; ; iter++ {
		if iter&63 == 0 {
			select {
			case <-done:
				_ = r.kick()
				return nil
			default:
			}
		}
		n := batch
		if count > 0 {
			if seq >= count {
				_ = r.kick()
				return nil
			}
			if rem := count - seq; rem < uint64(n) {
				n = int(rem)
			}
		}
		now := clk.now()
		if rate > 0 {
			var wait time.Duration
			n, wait = lim.Grant(now, n)
			if n == 0 {
				_ = r.kick()
				if wait > 200*time.Microsecond {
					time.Sleep(wait - 100*time.Microsecond)
				} else {
					runtime.Gosched()
				}
				continue
			}
		}
		ts := uint64(now)
		sent := 0
		for ; sent < n; sent++ {
			slot := r.slot()
			if slot == nil {
				break
			}
			l := b.Build(slot, stream, seq, ts)
			r.commit(l)
			seq++
			pk++
			by += uint64(l)
		}
		if err := r.kick(); err != nil {
			c.errs.Add(1)
		}
		c.pkts.Store(pk)
		c.bytes.Store(by)
		if sent < n {
			// Ring full: the kernel still owns the oldest frames.
			runtime.Gosched()
		}
	}
}

// mmsgTxWorker is one AF_PACKET socket sending with sendmmsg.
func mmsgTxWorker(ctx context.Context, cfg TxConfig, spec Spec, stream uint8, count uint64, rate float64,
	c *txCounters, ready chan<- error) error {
	b, err := NewBuilder(spec)
	if err != nil {
		ready <- err
		return err
	}
	m, err := newMmsgTx(cfg.Dev, !cfg.NoBypass, cfg.Batch)
	if err != nil {
		ready <- err
		return err
	}
	defer m.close()
	ready <- nil
	clk := newMonoClock()
	lim := NewLimiter(rate, cfg.Batch)
	lens := make([]int, cfg.Batch)
	var seq, pk, by uint64
	done := ctx.Done()
	for iter := 0; ; iter++ {
		if iter&63 == 0 {
			select {
			case <-done:
				return nil
			default:
			}
		}
		n := cfg.Batch
		if count > 0 {
			if seq >= count {
				return nil
			}
			if rem := count - seq; rem < uint64(n) {
				n = int(rem)
			}
		}
		now := clk.now()
		if rate > 0 {
			var wait time.Duration
			n, wait = lim.Grant(now, n)
			if n == 0 {
				if wait > 200*time.Microsecond {
					time.Sleep(wait - 100*time.Microsecond)
				} else {
					runtime.Gosched()
				}
				continue
			}
		}
		for i := 0; i < n; i++ {
			lens[i] = b.Build(m.bufs[i], stream, seq+uint64(i), uint64(now))
		}
		k, err := m.send(lens[:n])
		if err != nil {
			c.errs.Add(1)
		}
		for i := 0; i < k; i++ {
			by += uint64(lens[i])
		}
		// Frames the kernel did not take are rebuilt with the same
		// sequence numbers next time.
		seq += uint64(k)
		pk += uint64(k)
		c.pkts.Store(pk)
		c.bytes.Store(by)
		if k < n {
			runtime.Gosched()
		}
	}
}
