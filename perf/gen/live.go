package gen

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/fwdd/fwdd/perf/xdpprog"
)

// liveCallTime is how long a BPF_PROG_RUN call of a size pattern (IMIX)
// sends for before the next size takes over: long enough that the kernel's
// fixed cost per call (an RCU grace period when it destroys the call's page
// pool: 15-25 ms asleep measured here) is a few per cent.
const liveCallTime = 300 * time.Millisecond

// liveBatch is the kernel batch (frames per page-pool refill and flush).
const liveBatch = 64

// liveGen is the BPF_PROG_RUN live-frames generator: one XDP program per
// frame size and stream, run from pinned threads. Flat out with one frame
// size a worker makes a single call for the whole run (or for Count frames)
// and stops it at the deadline with a signal, so the kernel's fixed cost
// per call is paid once.
type liveGen struct {
	ifindex int
	b       *Builder
	pass    link.Link
	// callStart and callEnd, if set (tests), are told the repeat count
	// of every call before it and the kernel's time per frame after it.
	callStart func(repeat uint32)
	callEnd   func(perFrame time.Duration)
}

func newLiveGen(cfg TxConfig, b *Builder) (*liveGen, error) {
	idx, err := ifIndex(cfg.Dev)
	if err != nil {
		return nil, err
	}
	lg := &liveGen{ifindex: idx, b: b}
	// XDP_TX needs an XDP program on the device itself.
	pp, err := xdpprog.Pass()
	if err != nil {
		return nil, err
	}
	lg.pass, err = xdpprog.Attach(pp, idx)
	pp.Close()
	if err != nil {
		return nil, fmt.Errorf("live frames on %s: %w", cfg.Dev, err)
	}
	return lg, nil
}

func (lg *liveGen) close() {
	if lg.pass != nil {
		lg.pass.Close()
	}
}

// LiveTXSpec describes template i's frames for stream to the live-frames
// program (perf/xdpprog.NewLiveTX): offsets and, per flow, the addresses,
// source port and checksum words that Build writes for it. With state nil
// the program gets a state map of its own.
// timeEvery is passed on as LiveTXSpec.TimeEvery.
func (b *Builder) LiveTXSpec(i int, stream uint8, noTime bool, timeEvery int, state *ebpf.Map) xdpprog.LiveTXSpec {
	t := b.tmpl[i]
	s := xdpprog.LiveTXSpec{StampOff: b.l4 + udpLen, UDPOff: b.l4, SrcLoOff: b.srcOff, State: state, NoTime: noTime,
		TimeEvery: timeEvery, Flows: make([]xdpprog.LiveFlow, b.flows)}
	if !b.spec.IPv6 {
		s.IPSumOff = ethLen + 10
	}
	for f := range s.Flows {
		srcLo := b.srcLo + uint16(uint64(f)%uint64(b.spec.SrcAddrs))
		dstLo := b.dstLo + uint16(uint64(f)%uint64(b.spec.DstAddrs))
		sport := b.spec.SrcPort + uint16(f)
		vs := uint32(srcLo) + uint32(dstLo)
		lf := xdpprog.LiveFlow{SrcLo: srcLo, DstLo: dstLo, SrcPort: sport,
			UDPSum: t.udpSum + vs + uint32(sport) + uint32(StampMagic)<<8 + uint32(stream)}
		if !b.spec.IPv6 {
			lf.IPSum = ^fold(t.ipSum + vs)
		}
		s.Flows[f] = lf
	}
	return s
}

// worker runs live frames for one stream. Packets of a size pattern are
// sent in runs per size (a call of about liveCallTime per size in turn),
// not interleaved.
func (lg *liveGen) worker(ctx context.Context, cfg TxConfig, stream uint8, count uint64, rate float64,
	c *txCounters, ready chan<- error) error {
	spec := lg.b.Spec()
	type sz struct {
		prog  *xdpprog.LiveTX
		frame []byte
	}
	var sizes []sz
	var state *ebpf.Map
	for i := range spec.Sizes {
		p, err := xdpprog.NewLiveTX(lg.b.LiveTXSpec(i, stream, cfg.NoTimestamps, cfg.StampEvery, state))
		if err != nil {
			ready <- err
			return err
		}
		defer p.Close()
		state = p.State
		sizes = append(sizes, sz{p, lg.b.Template(i, stream)})
	}
	seq0, err := sizes[0].prog.Seq()
	if err != nil {
		ready <- err
		return err
	}
	// The watcher signals this thread: keep the goroutine on it (nested
	// with the caller's lock, if any).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	ready <- nil

	// Call sizes. Flat out with one size: everything in one call, ended by
	// a signal at the deadline. Flat out with a size pattern: a first call
	// of 64 Ki frames measures the rate, then calls of about liveCallTime.
	// Paced: calls of about 10 ms of frames at the rate; the bucket holds
	// 50 ms so that the kernel's fixed cost per call does not lower the rate.
	single := len(sizes) == 1
	adaptive := rate <= 0 && !single
	chunk := uint64(math.MaxUint32)
	if !single {
		chunk = 1 << 16
	}
	var lim *Limiter
	minChunk := uint64(1)
	if rate > 0 {
		minChunk = uint64(min(max(rate/100, 1), 1<<16))
		chunk = uint64(min(max(rate/20, float64(minChunk)), 1<<20))
		lim = NewLimiter(rate, int(chunk))
	}

	// The watcher interrupts the running call when ctx ends (deadline or
	// cancel): the kernel checks for a pending signal between batches. It
	// signals again every millisecond in case one landed between two calls,
	// until the worker has returned. SIGURG is the Go runtime's preemption
	// signal; a spurious one is ignored. With one size it also publishes
	// the progress of the long call from the sequence counter.
	stop, watchDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watchDone)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if s, err := sizes[0].prog.Seq(); single && err == nil {
					// Never backwards past the worker's own store.
					if v, old := s-seq0, c.pkts.Load(); v > old && c.pkts.CompareAndSwap(old, v) {
						c.bytes.Store(v * uint64(len(sizes[0].frame)))
					}
				}
			case <-ctx.Done():
				t := time.NewTimer(time.Millisecond)
				defer t.Stop()
				for {
					_ = unix.Tgkill(unix.Getpid(), tid, unix.SIGURG)
					select {
					case <-stop:
						return
					case <-t.C:
						t.Reset(time.Millisecond)
					}
				}
			}
		}
	}()
	var pk, by uint64
	defer func() {
		close(stop)
		<-watchDone
		c.pkts.Store(pk)
		c.bytes.Store(by)
	}()
	clk := newMonoClock()
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			return nil
		}
		n := chunk
		if count > 0 {
			if pk >= count {
				return nil
			}
			n = min(n, count-pk)
		}
		if lim != nil {
			g, wait := lim.Grant(clk.now(), int(n))
			if g == 0 {
				// Sleep until a whole minimum chunk is due: each call
				// costs the kernel's fixed setup.
				time.Sleep(wait + time.Duration(float64(min(n, minChunk)-1)/rate*1e9))
				continue
			}
			n = uint64(g)
		}
		s := sizes[i%len(sizes)]
		if lg.callStart != nil {
			lg.callStart(uint32(n))
		}
		t0 := clk.now()
		ran, perFrame, _, err := s.prog.Run(s.frame, lg.ifindex, uint32(n), liveBatch)
		if err != nil {
			return err
		}
		if lg.callEnd != nil {
			lg.callEnd(perFrame)
		}
		if adaptive {
			if d := clk.now() - t0; d > 0 && ran > 0 {
				perNs := float64(ran) / float64(d)
				chunk = uint64(min(max(perNs*float64(liveCallTime.Nanoseconds()), 1<<16), 1<<24))
			}
		}
		// An interrupted call sent part of n: count what the program
		// really stamped. After a signal the loop checks ctx again.
		pk += ran
		by += ran * uint64(len(s.frame))
		c.pkts.Store(pk)
		c.bytes.Store(by)
	}
}
