package gen

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/perf/xdpprog"
	"github.com/fwdd/fwdd/pmd"
)

// TestLiveTransmit runs the live back end on a veth pair into a counting
// XDP sink: a count-bound run sends exactly its count (one call) and the
// sink sees every frame; a flat-out run with a duration and one cancelled
// through its context both end (a signal interrupts the single long call)
// and report what they sent; a stamp interval that is no power of two is
// refused.
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
			err = lg.worker(ctx, cfg, 0, cfg.Count, 0, &c, make(chan error, 1))
			sum.Seconds, sum.Packets = time.Since(t0).Seconds(), c.pkts.Load()
			return err
		})
		return sum, err
	}
	sinkCount := func() uint64 {
		c, err := sink.Read()
		if err != nil {
			t.Fatal(err)
		}
		return c.Packets
	}

	before := sinkCount()
	const count = 100000
	sum, err := tx(context.Background(), TxConfig{Count: count, StampEvery: 16})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Packets != count {
		t.Fatalf("count-bound run sent %d, want %d", sum.Packets, count)
	}
	deadline := time.Now().Add(10 * time.Second)
	for sinkCount()-before < count && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := sinkCount() - before; got != count {
		t.Fatalf("sink counted %d of %d", got, count)
	}

	// Without the signal these runs would each last a call of 2^32-1
	// frames (many minutes); the bound below is far above any load.
	sum, err = tx(context.Background(), TxConfig{Duration: 200 * time.Millisecond, NoTimestamps: true})
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
