package gen

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/perf/xdpprog"
)

// RxConfig configures a receive (sink) run.
type RxConfig struct {
	Dev      string
	Backend  string // "afpacket" (checks stamps) or "xdp" (counts only, fastest)
	Workers  int    // AF_PACKET sockets in a fanout group (default 1)
	CPUs     []int
	Duration time.Duration // 0 = until ctx
	// Ready, if set, is called once the sink is receiving.
	Ready    func()
	Progress func(Progress)
}

// rxWorker is one receiving socket's state; only its goroutine writes it
// until the run ends.
type rxWorker struct {
	seq     [256]SeqTracker
	hist    Histogram
	foreign uint64
	pkts    atomic.Uint64
	bytes   atomic.Uint64
	drops   uint64
}

// settleQuiet is how long a stopping sink must see no new frame before it
// reports: frames already on the wire (a veth peer's NAPI queue, an
// AF_PACKET block the kernel retires after rxRetireMS) are still counted.
// settleMax bounds the wait under a sender that does not stop.
const (
	settleQuiet = 20 * time.Millisecond
	settleMax   = time.Second
)

// Receive runs a sink until Duration or ctx ends it. When it ends, the sink
// keeps counting until no frame has arrived for settleQuiet (at most
// settleMax), so what was sent before the stop is not reported lost.
func Receive(ctx context.Context, cfg RxConfig) (*Summary, error) {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	switch cfg.Backend {
	case "", BackendAFPacket:
		return receiveAFPacket(ctx, cfg)
	case BackendXDP, BackendTC:
		return receiveXDP(ctx, cfg)
	}
	return nil, fmt.Errorf("%w: unknown receive back end %q (afpacket, xdp)", ErrSpec, cfg.Backend)
}

func receiveXDP(ctx context.Context, cfg RxConfig) (*Summary, error) {
	idx, err := ifIndex(cfg.Dev)
	if err != nil {
		return nil, err
	}
	newSink, attach := xdpprog.NewSink, xdpprog.Attach
	if cfg.Backend == BackendTC {
		newSink, attach = xdpprog.NewTCSink, xdpprog.AttachTCIngress
	}
	s, err := newSink()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	l, err := attach(s.Prog, idx)
	if err != nil {
		return nil, fmt.Errorf("%s sink on %s: %w", cfg.Backend, cfg.Dev, err)
	}
	defer l.Close()
	t0 := time.Now()
	if cfg.Ready != nil {
		cfg.Ready()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last xdpprog.Counters
	lastT := t0
	for {
		select {
		case <-ctx.Done():
			c, err := s.Read()
			if err != nil {
				return nil, err
			}
			for end := time.Now().Add(settleMax); time.Now().Before(end); {
				time.Sleep(settleQuiet)
				n, err := s.Read()
				if err != nil {
					return nil, err
				}
				if n.Packets == c.Packets {
					break
				}
				c = n
			}
			el := time.Since(t0)
			sum := &Summary{Mode: "rx", Backend: cfg.Backend, Dev: cfg.Dev, Workers: 1, Seconds: el.Seconds(),
				Packets: c.Packets, Bytes: c.Bytes}
			sum.finish()
			return sum, nil
		case now := <-tick.C:
			c, err := s.Read()
			if err != nil {
				return nil, err
			}
			if cfg.Progress != nil {
				cfg.Progress(Progress{Elapsed: now.Sub(t0), Packets: c.Packets, Bytes: c.Bytes,
					PPS: float64(c.Packets-last.Packets) / now.Sub(lastT).Seconds()})
			}
			last, lastT = c, now
		}
	}
}

func receiveAFPacket(ctx context.Context, cfg RxConfig) (*Summary, error) {
	rings := make([]*rxRing, cfg.Workers)
	defer func() {
		for _, r := range rings {
			if r != nil {
				r.close()
			}
		}
	}()
	fan := 0
	if cfg.Workers > 1 {
		fan = int(time.Now().UnixNano()&0x7fff) + 1
	}
	for i := range rings {
		r, err := newRxRing(cfg.Dev, fan)
		if err != nil {
			return nil, err
		}
		rings[i] = r
	}
	ws := make([]rxWorker, cfg.Workers)
	// CLOCK_REALTIME − CLOCK_MONOTONIC, to turn kernel receive stamps into
	// the monotonic clock the sender stamps with.
	off := realNow() - monoNow()
	var wg sync.WaitGroup
	errs := make([]error, cfg.Workers)
	done := ctx.Done()
	for i := range rings {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if len(cfg.CPUs) > 0 {
				if err := pinThread(cfg.CPUs[i%len(cfg.CPUs)]); err != nil {
					errs[i] = err
					return
				}
			}
			w, r := &ws[i], rings[i]
			var pk, by uint64
			fn := func(f []byte, rxReal int64) {
				pk++
				by += uint64(len(f))
				st, ok := ParseStamp(f)
				if !ok {
					w.foreign++
					return
				}
				w.seq[st.Stream].Observe(st.Seq)
				if st.TS != 0 {
					// The clock offset is read once at start (two clock
					// reads apart): sub-µs latencies can come out slightly
					// negative; count them as 0.
					lat := rxReal - off - int64(st.TS)
					w.hist.Record(uint64(max(lat, 0)))
				}
			}
			for {
				select {
				case <-done:
					// Settle: read until a poll longer than the
					// block retire timeout finds nothing.
					for end := time.Now().Add(settleMax); time.Now().Before(end); {
						n, err := r.next(int(settleQuiet/time.Millisecond), fn)
						if err != nil {
							errs[i] = err
							break
						}
						if n == 0 {
							break
						}
					}
					w.pkts.Store(pk)
					w.bytes.Store(by)
					w.drops = r.drops()
					return
				default:
				}
				if _, err := r.next(50, fn); err != nil {
					errs[i] = err
					return
				}
				w.pkts.Store(pk)
				w.bytes.Store(by)
			}
		}(i)
	}
	t0 := time.Now()
	if cfg.Ready != nil {
		cfg.Ready()
	}
	fin := make(chan struct{})
	go func() { wg.Wait(); close(fin) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastP uint64
	lastT := t0
loop:
	for {
		select {
		case <-fin:
			break loop
		case now := <-tick.C:
			var p, by uint64
			for i := range ws {
				p += ws[i].pkts.Load()
				by += ws[i].bytes.Load()
			}
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
	s := &Summary{Mode: "rx", Backend: BackendAFPacket, Dev: cfg.Dev, Workers: cfg.Workers, Seconds: el.Seconds()}
	var h Histogram
	// Streams may be split over fanout sockets; merge per stream first.
	var merged [256]SeqTracker
	var any [256]bool
	for i := range ws {
		w := &ws[i]
		s.Packets += w.pkts.Load()
		s.Bytes += w.bytes.Load()
		s.Foreign += w.foreign
		s.RingDrops += w.drops
		h.Add(&w.hist)
		for k := range w.seq {
			if w.seq[k].Received > 0 {
				if any[k] {
					// Fanout hashes by flow, so one stream can reach several
					// sockets: sum counts, widen the span.
					m, t := &merged[k], &w.seq[k]
					m.Received += t.Received
					m.Unique += t.Unique
					m.Dups += t.Dups
					m.Reorder += t.Reorder
					m.Late += t.Late
					if t.first < m.first {
						m.first = t.first
					}
					if t.next > m.next {
						m.next = t.next
					}
				} else {
					merged[k], any[k] = w.seq[k], true
				}
			}
		}
	}
	for k := range merged {
		if !any[k] {
			continue
		}
		m := &merged[k]
		s.Unique += m.Unique
		s.Expected += m.Expected()
		s.Lost += m.Lost()
		s.Dups += m.Dups
		s.Reorder += m.Reorder
		s.Late += m.Late
	}
	if s.Expected > 0 {
		s.LossPct = 100 * float64(s.Lost) / float64(s.Expected)
	}
	if h.Count() > 0 {
		us := func(v uint64) float64 { return float64(v) / 1e3 }
		s.Latency = &Latency{Samples: h.Count(), MinUS: us(h.min), MeanUS: h.Mean() / 1e3,
			P50US: us(h.Quantile(0.5)), P90US: us(h.Quantile(0.9)), P99US: us(h.Quantile(0.99)),
			P999US: us(h.Quantile(0.999)), MaxUS: us(h.max)}
	}
	s.finish()
	return s, nil
}
