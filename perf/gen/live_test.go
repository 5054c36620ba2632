package gen

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/perf/xdpprog"
	"github.com/fwdd/fwdd/pmd"
)

// TestLiveTransmit runs the live back end on a veth pair into a counting
// XDP sink: a count-bound run sends exactly its count (one call) and the
// sink sees every frame and byte, for one size and for IMIX (one program,
// frames cut per seq); a flat-out run with a duration and one cancelled
// through its context both end (a signal interrupts the single long call)
// and report what they sent; a stamp interval that is no power of two is
// refused. A paced count-bound run sends its count at no more than its
// rate.
func TestLiveTransmit(t *testing.T) {
	testenv.Root(t, "namespaces, veth, BPF")
	n := testnet.New(t)
	ns := n.NS("lt")
	a, peer := n.Name("lta"), n.Name("ltb")
	n.Veth(ns, a, ns, peer)
	var sink *xdpprog.Sink
	err := pmd.InNetNS(testnet.Path(ns), func() error {
		pidx, err := ifIndex(peer)
		if err != nil {
			return err
		}
		if sink, err = xdpprog.NewSink(); err != nil {
			return err
		}
		l, err := xdpprog.Attach(sink.Prog, pidx)
		if err != nil {
			sink.Close()
			return err
		}
		t.Cleanup(func() { l.Close(); sink.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
		SrcIP: netip.MustParseAddr("198.18.0.2"), DstIP: netip.MustParseAddr("198.19.128.1"),
		SrcPort: 4000, DstPort: 9, Flows: 64, DstAddrs: 4, Sizes: []int{64}}
	bld, err := NewBuilder(spec)
	if err != nil {
		t.Fatal(err)
	}
	// One worker on the thread inside the namespace (Transmit's worker
	// threads would not be: the kernel resolves the ifindex in the
	// calling thread's namespace), as Transmit runs it.
	tx := func(ctx context.Context, cfg TxConfig) (*Summary, error) {
		cfg.Dev, cfg.Backend, cfg.Spec = a, BackendLive, spec
		if cfg.Duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
			defer cancel()
		}
		sum := &Summary{}
		err := pmd.InNetNS(testnet.Path(ns), func() error {
			lg, err := newLiveGen(cfg, bld)
			if err != nil {
				return err
			}
			defer lg.close()
			var c txCounters
			t0 := time.Now()
			err = lg.worker(ctx, cfg, 0, cfg.Count, cfg.Rate, &c, make(chan error, 1))
			sum.Seconds, sum.Packets, sum.Bytes = time.Since(t0).Seconds(), c.pkts.Load(), c.bytes.Load()
			return err
		})
		return sum, err
	}
	sinkCount := func() xdpprog.Counters {
		c, err := sink.Read()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Frames the veth could not queue to its peer (its XDP ring full while
	// the peer's NAPI waits for the CPU): a loaded machine may lose some,
	// and the checks below then account for them instead of failing.
	xmitErrs := func() uint64 {
		var sum uint64
		for _, l := range strings.Split(n.In(ns, "ethtool", "-S", a), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
			if ok && strings.HasPrefix(k, "tx_queue_") && strings.HasSuffix(k, "_xdp_xmit_errors") {
				x, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				if err != nil {
					t.Fatalf("ethtool -S %s: %q", a, l)
				}
				sum += x
			}
		}
		return sum
	}
	// checkSink waits (with a deadline) until the sink has counted every
	// frame sent but those the veth could not queue, then checks the
	// counts (and the bytes when nothing was lost).
	checkSink := func(what string, before xdpprog.Counters, errs0, frames, bytes uint64) {
		t.Helper()
		var got xdpprog.Counters
		var lost uint64
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, lost = sinkCount(), xmitErrs()-errs0
			if got.Packets-before.Packets+lost >= frames || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if lost > 0 {
			t.Logf("%s: the veth could not queue %d of %d frames (machine loaded); bytes not checked", what, lost, frames)
		}
		if got.Packets-before.Packets+lost != frames || (lost == 0 && got.Bytes-before.Bytes != bytes) {
			t.Fatalf("%s: sink counted %d frames, %d bytes, veth lost %d; sent %d frames, %d bytes", what,
				got.Packets-before.Packets, got.Bytes-before.Bytes, lost, frames, bytes)
		}
	}

	const count = 100000
	for _, sizes := range [][]int{{64}, IMIX()} {
		spec.Sizes = sizes
		bld, err = NewBuilder(spec)
		if err != nil {
			t.Fatal(err)
		}
		before, errs0 := sinkCount(), xmitErrs()
		sum, err := tx(context.Background(), TxConfig{Count: count, StampEvery: 16})
		if err != nil {
			t.Fatal(err)
		}
		var wantBytes uint64
		for seq := uint64(0); seq < count; seq++ {
			wantBytes += uint64(sizes[seq%uint64(len(sizes))] - FCSLen)
		}
		if sum.Packets != count || sum.Bytes != wantBytes {
			t.Fatalf("sizes %v: count-bound run sent %d frames, %d bytes; want %d, %d", sizes, sum.Packets, sum.Bytes, count, wantBytes)
		}
		checkSink(fmt.Sprintf("sizes %v", sizes), before, errs0, count, wantBytes)
	}

	// Paced, count-bound: the program drops iterations until a frame is
	// due and stops at the limit; the watcher ends the call. It cannot
	// be faster than the rate allows (less the 64-frame burst).
	before, errs0 := sinkCount(), xmitErrs()
	sum, err := tx(context.Background(), TxConfig{Count: 20000, Rate: 100000, Batch: 64, StampEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Packets != 20000 || sum.Seconds < float64(20000-64-1)/100000 || sum.Seconds > 60 {
		t.Fatalf("paced run: %d frames in %.3f s, want 20000 in about 0.2 s", sum.Packets, sum.Seconds)
	}
	checkSink("paced", before, errs0, 20000, sum.Bytes)

	// Without the signal these runs would each last a call of 2^32-1
	// frames (many minutes); the bound below is far above any load.
	sum, err = tx(context.Background(), TxConfig{Duration: 200 * time.Millisecond, NoTimestamps: true}) // IMIX (the last builder)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Packets == 0 || sum.Seconds > 60 {
		t.Fatalf("200 ms flat-out run: %d frames in %.1f s", sum.Packets, sum.Seconds)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	sum, err = tx(ctx, TxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Packets == 0 || sum.Seconds > 60 {
		t.Fatalf("cancelled run: %d frames in %.1f s", sum.Packets, sum.Seconds)
	}

	if _, err := Transmit(context.Background(), TxConfig{Dev: a, Backend: BackendLive, Spec: spec, Count: 10, StampEvery: 3}); !errors.Is(err, ErrSpec) {
		t.Fatalf("stamp interval 3: err %v, want ErrSpec", err)
	}
}

func TestPatternBytes(t *testing.T) {
	lens := []uint64{60, 590, 60, 1514}
	var total uint64
	for _, l := range lens {
		total += l
	}
	for _, tc := range [][2]uint64{{0, 0}, {0, 1}, {0, 4}, {0, 9}, {1, 2}, {3, 4}, {3, 13}, {5, 5}, {7, 100}, {1<<40 + 3, 1<<40 + 17}} {
		var want uint64
		for s := tc[0]; s < tc[1]; s++ {
			want += lens[s%4]
		}
		if got := patternBytes(lens, total, tc[0], tc[1]); got != want {
			t.Errorf("patternBytes(%d, %d) = %d, want %d", tc[0], tc[1], got, want)
		}
	}
	if got := patternBytes([]uint64{60}, 60, 5, 8); got != 180 {
		t.Errorf("one size: %d, want 180", got)
	}
}
