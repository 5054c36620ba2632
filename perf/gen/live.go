package gen

import (
	"context"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/fwdd/fwdd/perf/xdpprog"
)

// liveCallTime is how long a flat-out BPF_PROG_RUN call should send for:
// long enough that the kernel's fixed cost per call (15-20 ms measured
// here) is a few per cent, short enough to stop close to the deadline.
const liveCallTime = 300 * time.Millisecond

// liveGen is the BPF_PROG_RUN live-frames generator: one XDP program per
// frame size, run in chunks from pinned threads. Flows vary the UDP source
// port only (addresses are those of flow 0).
type liveGen struct {
	ifindex int
	progs   []*xdpprog.LiveTX
	frames  [][]byte // template per size and stream: frames[size*256+stream] built lazily
	b       *Builder
	pass    link.Link
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
	for _, p := range lg.progs {
		p.Close()
	}
	if lg.pass != nil {
		lg.pass.Close()
	}
}

// worker runs live frames for one stream. Packets of a size pattern are
// sent in runs per size (a chunk per size in turn), not interleaved.
func (lg *liveGen) worker(ctx context.Context, cfg TxConfig, stream uint8, count uint64, rate float64,
	c *txCounters, ready chan<- error) error {
	spec := lg.b.Spec()
	type sz struct {
		prog  *xdpprog.LiveTX
		frame []byte
	}
	var sizes []sz
	var seqMap *ebpf.Map
	for i := range spec.Sizes {
		p, err := xdpprog.NewLiveTX(xdpprog.LiveTXSpec{
			StampOff: StampOffset(spec.IPv6), UDPOff: StampOffset(spec.IPv6) - udpLen,
			Flows: spec.Flows, BasePort: spec.SrcPort, PartialSum: lg.b.PartialUDPSum(i, stream),
			SeqMap: seqMap, NoTime: cfg.NoTimestamps,
		})
		if err != nil {
			ready <- err
			return err
		}
		defer p.Close()
		seqMap = p.Map
		sizes = append(sizes, sz{p, lg.b.Template(i, stream)})
	}
	ready <- nil
	// Chunk: about 10 ms of packets at the target rate. Flat out, a chunk
	// of about liveCallTime: every BPF_PROG_RUN call costs a fixed setup
	// and teardown in the kernel (measured 15-20 ms on a 2-vCPU VM, as
	// long as 64 Ki frames take), during which nothing is sent.
	chunk := uint64(1 << 16)
	adaptive := rate <= 0
	deadline, hasDeadline := ctx.Deadline()
	if rate > 0 {
		chunk = uint64(rate / 100)
		if chunk < 1 {
			chunk = 1
		}
		if chunk > 1<<16 {
			chunk = 1 << 16
		}
	}
	lim := NewLimiter(rate, int(chunk))
	clk := newMonoClock()
	var pk, by uint64
	var perNs float64 // frames per ns of the last flat-out call
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		default:
		}
		n := chunk
		if count > 0 {
			if pk >= count {
				return nil
			}
			if count-pk < n {
				n = count - pk
			}
		}
		if rate > 0 {
			g, wait := lim.Grant(clk.now(), int(n))
			if g == 0 {
				// Sleep until a whole chunk is due: a run per packet
				// would cost a syscall each.
				time.Sleep(wait + time.Duration(float64(n-1)/rate*1e9))
				continue
			}
			n = uint64(g)
		}
		if adaptive && hasDeadline {
			// Do not run past the end by more than a call's setup: the
			// last chunk is what the measured rate sends in the time left.
			if left := time.Until(deadline); left <= 0 {
				return nil
			} else if perNs > 0 {
				n = min(n, max(uint64(float64(left.Nanoseconds())*perNs), 64))
			}
		}
		s := sizes[i%len(sizes)]
		t0 := clk.now()
		ran, err := s.prog.Run(s.frame, lg.ifindex, uint32(n), 64)
		if err != nil {
			return err
		}
		if adaptive {
			if d := clk.now() - t0; d > 0 && ran > 0 {
				perNs = float64(ran) / float64(d)
				chunk = uint64(min(max(perNs*float64(liveCallTime.Nanoseconds()), 1<<16), 1<<24))
			}
		}
		// The kernel may run the program more often than asked (an
		// interrupted batch runs again): count what it really sent.
		pk += ran
		by += ran * uint64(len(s.frame))
		c.pkts.Store(pk)
		c.bytes.Store(by)
	}
}
