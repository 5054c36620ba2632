package gen

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/fwdd/fwdd/perf/xdpprog"
)

// liveBatch is the kernel batch (frames per page-pool refill and flush).
const liveBatch = 64

// liveGen is the BPF_PROG_RUN live-frames generator: one XDP program per
// stream, run from pinned threads. A worker makes a single call for the
// whole run (Count frames, or until ctx ends it with a signal; paced runs
// too, the program paces), so the kernel's fixed cost per call (15-30 ms
// asleep here: the call adds the program to the XDP dispatcher and removes
// it, each a synchronize_rcu) is paid once.
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

// LiveTXSpec describes the stream's frames to the live-frames program
// (perf/xdpprog.NewLiveTX): offsets, the size pattern and, per size and
// flow, the addresses, source port and checksum words that Build writes.
// Run the program on LiveFrame(stream); timeEvery is passed on as
// LiveTXSpec.TimeEvery.
func (b *Builder) LiveTXSpec(stream uint8, noTime bool, timeEvery int) xdpprog.LiveTXSpec {
	s := xdpprog.LiveTXSpec{StampOff: b.l4 + udpLen, UDPOff: b.l4, SrcLoOff: b.srcOff, NoTime: noTime,
		TimeEvery: timeEvery, Flows: make([][]xdpprog.LiveFlow, len(b.tmpl))}
	if b.spec.IPv6 {
		s.L3LenOff, s.L3LenBase = ethLen+4, b.l4
	} else {
		s.IPSumOff = ethLen + 10
		s.L3LenOff, s.L3LenBase = ethLen+2, ethLen
	}
	if len(b.tmpl) > 1 {
		for _, t := range b.tmpl {
			s.Lens = append(s.Lens, len(t.frame))
		}
	}
	for i, t := range b.tmpl {
		fl := make([]xdpprog.LiveFlow, b.flows)
		for f := range fl {
			srcLo := b.srcLo + uint16(uint64(f)%uint64(b.spec.SrcAddrs))
			dstLo := b.dstLo + uint16(uint64(f)%uint64(b.spec.DstAddrs))
			sport := b.spec.SrcPort + uint16(f)
			vs := uint32(srcLo) + uint32(dstLo)
			lf := xdpprog.LiveFlow{SrcLo: srcLo, DstLo: dstLo, SrcPort: sport,
				UDPSum: t.udpSum + vs + uint32(sport) + uint32(StampMagic)<<8 + uint32(stream)}
			if !b.spec.IPv6 {
				lf.IPSum = ^fold(t.ipSum + vs)
			}
			fl[f] = lf
		}
		s.Flows[i] = fl
	}
	return s
}

// LiveFrame returns the frame to run the live-frames program on: the
// template of the longest size (every shorter one is a prefix of it but for
// the lengths and checksums, which the program writes).
func (b *Builder) LiveFrame(stream uint8) []byte {
	longest := 0
	for i, t := range b.tmpl {
		if len(t.frame) > len(b.tmpl[longest].frame) {
			longest = i
		}
	}
	return b.Template(longest, stream)
}

// patternBytes returns the bytes of frames seq0 .. seq1-1 of the size
// pattern (lens per entry, total their sum).
func patternBytes(lens []uint64, total, seq0, seq1 uint64) uint64 {
	n := uint64(len(lens))
	if n == 1 {
		return (seq1 - seq0) * lens[0]
	}
	var by uint64
	for ; seq0 < seq1 && seq0%n != 0; seq0++ {
		by += lens[seq0%n]
	}
	by += (seq1 - seq0) / n * total
	for s := seq1 - (seq1-seq0)%n; s < seq1; s++ {
		by += lens[s%n]
	}
	return by
}

// worker runs live frames for one stream: one program for the whole size
// pattern (frames interleaved as Build would). Flat out, one BPF_PROG_RUN
// call sends everything (Count frames, or until ctx ends it with a signal).
func (lg *liveGen) worker(ctx context.Context, cfg TxConfig, stream uint8, count uint64, rate float64,
	c *txCounters, ready chan<- error) error {
	ls := lg.b.LiveTXSpec(stream, cfg.NoTimestamps, cfg.StampEvery)
	ls.Rate, ls.Burst = rate, cfg.Batch
	prog, err := xdpprog.NewLiveTX(ls)
	if err != nil {
		ready <- err
		return err
	}
	defer prog.Close()
	frame := lg.b.LiveFrame(stream)
	var lens []uint64
	var total uint64
	for _, t := range lg.b.tmpl {
		lens = append(lens, uint64(len(t.frame)))
		total += uint64(len(t.frame))
	}
	seq0, err := prog.Seq()
	if err == nil && rate > 0 && count > 0 {
		// A paced run spins through drops: its repeat count is not its
		// frame count, the program's limit is.
		err = prog.SetLimit(seq0 + count)
	}
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

	// Everything in one call (the repeat count is 32 bits: a loop), ended
	// by the count or by a signal when ctx ends. Paced, the program drops
	// iterations until a frame is due and stops at the limit, which the
	// watcher polls for.
	paced := rate > 0

	// The watcher interrupts the running call when ctx ends (deadline or
	// cancel) or a paced run reached its count: the kernel checks for a
	// pending signal between batches. It signals again every millisecond
	// in case one landed between two calls, until the worker has returned.
	// SIGURG is the Go runtime's preemption signal; a spurious one is
	// ignored (other signals to this thread, such as SIGPROF when
	// profiling, end calls early too: the loop then makes another). It also
	// publishes the progress of the long call from the sequence counter.
	stop, watchDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watchDone)
		period := 200 * time.Millisecond
		if paced && count > 0 {
			period = time.Millisecond
		}
		tick := time.NewTicker(period)
		defer tick.Stop()
		var last time.Time
		interrupt := func() {
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
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				s, err := prog.Seq()
				if err != nil {
					continue
				}
				if paced && count > 0 && s-seq0 >= count {
					interrupt()
					return
				}
				if now.Sub(last) >= 200*time.Millisecond {
					last = now
					// Never backwards past the worker's own store.
					if v, old := s-seq0, c.pkts.Load(); v > old && c.pkts.CompareAndSwap(old, v) {
						c.bytes.Store(patternBytes(lens, total, seq0, s))
					}
				}
			case <-ctx.Done():
				interrupt()
				return
			}
		}
	}()
	var pk uint64
	defer func() {
		close(stop)
		<-watchDone
		c.pkts.Store(pk)
		c.bytes.Store(patternBytes(lens, total, seq0, seq0+pk))
	}()
	for {
		if ctx.Err() != nil {
			return nil
		}
		n := uint64(math.MaxUint32)
		if count > 0 {
			if pk >= count {
				return nil
			}
			if !paced {
				n = min(n, count-pk)
			}
		}
		if lg.callStart != nil {
			lg.callStart(uint32(n))
		}
		ran, perFrame, _, err := prog.Run(frame, lg.ifindex, uint32(n), liveBatch)
		if err != nil {
			return err
		}
		if lg.callEnd != nil {
			lg.callEnd(perFrame)
		}
		// An interrupted call sent part of n: count what the program
		// really stamped. After a signal the loop checks ctx again.
		pk += ran
		c.pkts.Store(pk)
		c.bytes.Store(patternBytes(lens, total, seq0, seq0+pk))
	}
}
