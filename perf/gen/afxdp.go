package gen

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fwdd/fwdd/internal/xsk"
)

// BackendAFXDP transmits through an AF_XDP socket per worker (TX ring only,
// need_wakeup), worker i on device queue i mod the device's queue count.
const BackendAFXDP = "afxdp"

const (
	xdpChunk  = 2048
	xdpChunks = 4096 // per worker: 8 MiB, twice the TX + completion rings
)

// xdpModes maps -xdp-mode names to xsk modes.

// afxdpTxWorker is one AF_XDP socket with its own UMEM. Frames are built in
// free chunks, handed to the TX ring, and their chunks come back through
// the completion ring.
func afxdpTxWorker(ctx context.Context, cfg TxConfig, spec Spec, stream uint8, count uint64, rate float64,
	c *txCounters, ready chan<- error) error {
	fail := func(err error) error { ready <- err; return err }
	b, err := NewBuilder(spec)
	if err != nil {
		return fail(err)
	}
	mode, ok := xsk.ParseMode(cfg.XDPMode)
	if cfg.XDPMode == "" || cfg.XDPMode == "zc" {
		mode, ok = xsk.ModeAuto, true
		if cfg.XDPMode == "zc" {
			mode = xsk.ModeZeroCopy
		}
	}
	if !ok {
		return fail(fmt.Errorf("%w: -xdp-mode %q (%s)", ErrSpec, cfg.XDPMode, strings.Join(xsk.ModeNames, ", ")))
	}
	idx, err := ifIndex(cfg.Dev)
	if err != nil {
		return fail(err)
	}
	queues, err := xsk.QueueCount(cfg.Dev)
	if err != nil || queues < 1 {
		queues = 1
	}
	// The region is private anonymous memory, page-aligned, never moved.
	region, err := unix.Mmap(-1, 0, xdpChunk*xdpChunks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return fail(fmt.Errorf("afxdp: UMEM region: %w", err))
	}
	defer unix.Munmap(region)
	um, err := xsk.NewUmem(region, xsk.UmemConfig{ChunkSize: xdpChunk})
	if err != nil {
		return fail(err)
	}
	s, err := um.NewSocket(xsk.SocketConfig{Ifindex: idx, Queue: int(stream) % queues, Mode: mode,
		FillSize: 64, RxSize: 64, TxSize: 2048, CompletionSize: 2048})
	if err != nil {
		return fail(fmt.Errorf("afxdp on %s queue %d: %w", cfg.Dev, int(stream)%queues, err))
	}
	defer s.Close()
	ready <- nil
	free := make([]uint64, 0, xdpChunks)
	for i := xdpChunks - 1; i >= 0; i-- {
		free = append(free, uint64(i*xdpChunk))
	}
	descs := make([]xsk.Desc, cfg.Batch)
	comp := make([]uint64, 2*cfg.Batch)
	clk := newMonoClock()
	lim := NewLimiter(rate, cfg.Batch)
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
		for {
			k := s.Complete(comp)
			free = append(free, comp[:k]...)
			if k < len(comp) {
				break
			}
		}
		n := cfg.Batch
		if count > 0 {
			if seq >= count {
				// Let the last frames leave before closing.
				for deadline := time.Now().Add(time.Second); s.TxPending() > 0 && time.Now().Before(deadline); {
					_ = s.FlushTx()
					runtime.Gosched()
				}
				return nil
			}
			if rem := count - seq; rem < uint64(n) {
				n = int(rem)
			}
		}
		if n > len(free) {
			n = len(free)
		}
		if f := s.TxFree(); n > f {
			n = f
		}
		now := clk.now()
		if rate > 0 && n > 0 {
			var wait time.Duration
			n, wait = lim.Grant(now, n)
			if n == 0 {
				_ = s.FlushTx()
				if wait > 200*time.Microsecond {
					time.Sleep(wait - 100*time.Microsecond)
				} else {
					runtime.Gosched()
				}
				continue
			}
		}
		var bytes uint64
		for i := 0; i < n; i++ {
			a := free[len(free)-1-i]
			l := b.Build(region[a:a+xdpChunk], stream, seq+uint64(i), uint64(now))
			descs[i] = xsk.Desc{Addr: a, Len: uint32(l)}
			bytes += uint64(l)
		}
		k := s.Transmit(descs[:n]) // n ≤ TxFree: all accepted
		free = free[:len(free)-k]
		if err := s.FlushTx(); err != nil {
			c.errs.Add(1)
		}
		seq += uint64(k)
		pk += uint64(k)
		by += bytes
		c.pkts.Store(pk)
		c.bytes.Store(by)
		if k == 0 {
			runtime.Gosched()
		}
	}
}
