package gen

import (
	"context"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/perf/xdpprog"
	"github.com/fwdd/fwdd/pmd"
	"golang.org/x/sys/unix"
)

// BenchmarkLiveFrames compares fwdgen's live-frames back end with a bare
// BPF_PROG_RUN live-frames loop (a program that only returns XDP_TX, the
// same frame, the same chunk and batch sizes) on one pinned CPU, into an
// XDP_DROP sink on the veth peer. ns/op is per frame; the ratio bare/fwdgen
// is what issue 13's target (≥ 0.9×) is about.
func BenchmarkLiveFrames(b *testing.B) {
	testenv.Root(b, "namespaces, veth, BPF")
	n := testnet.New(b)
	ns := n.NS("lf")
	a, peer := n.Name("lfa"), n.Name("lfb")
	n.Veth(ns, a, ns, peer)
	var ifindex int
	inNS := func(f func() error) {
		b.Helper()
		if err := pmd.InNetNS(testnet.Path(ns), f); err != nil {
			b.Fatal(err)
		}
	}
	var sink *xdpprog.Sink
	inNS(func() error {
		idx, err := ifIndex(a)
		if err != nil {
			return err
		}
		ifindex = idx
		pidx, err := ifIndex(peer)
		if err != nil {
			return err
		}
		if sink, err = xdpprog.NewSink(); err != nil {
			return err
		}
		l, err := xdpprog.Attach(sink.Prog, pidx)
		if err != nil {
			return err
		}
		b.Cleanup(func() { l.Close(); sink.Close() })
		return nil
	})
	spec := Spec{SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
		SrcIP: netip.MustParseAddr("198.18.0.2"), DstIP: netip.MustParseAddr("198.19.128.1"),
		SrcPort: 4000, DstPort: 9, Flows: 64, Sizes: []int{64}}
	bld, err := NewBuilder(spec)
	if err != nil {
		b.Fatal(err)
	}
	frame := bld.Template(0, 0)

	for _, bare := range []struct {
		name  string
		chunk int
	}{{"bare", 1 << 16}, {"bare-1M", 1 << 20}} {
		b.Run(bare.name, func(b *testing.B) { benchBare(b, inNS, ifindex, frame, bare.chunk) })
	}
	for _, stamps := range []bool{true, false} {
		name := "fwdgen"
		if !stamps {
			name = "fwdgen-notime"
		}
		b.Run(name, func(b *testing.B) {
			inNS(func() error {
				if err := pinThread(0); err != nil {
					return err
				}
				lg, err := newLiveGen(TxConfig{Dev: a, NoTimestamps: !stamps}, bld)
				if err != nil {
					return err
				}
				defer lg.close()
				var c txCounters
				ready := make(chan error, 1)
				b.ResetTimer()
				err = lg.worker(context.Background(), TxConfig{Dev: a, NoTimestamps: !stamps}, 0, uint64(b.N), 0, &c, ready)
				b.StopTimer()
				return err
			})
		})
	}
}

// xdpMDForBench is struct xdp_md for BPF_PROG_RUN's context.
type xdpMDForBench struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// benchBare is the bare live-frames loop: a program that only returns
// XDP_TX, run chunk frames per BPF_PROG_RUN call.
func benchBare(b *testing.B, inNS func(func() error), ifindex int, frame []byte, chunkSize int) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 3 /* XDP_TX */), asm.Return()}})
	if err != nil {
		b.Fatal(err)
	}
	defer prog.Close()
	inNS(func() error {
		pass, err := xdpprog.Pass()
		if err != nil {
			return err
		}
		l, err := xdpprog.Attach(pass, ifindex)
		pass.Close()
		if err != nil {
			return err
		}
		defer l.Close()
		if err := pinThread(0); err != nil {
			return err
		}
		md := xdpMDForBench{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}
		b.ResetTimer()
		for left := b.N; left > 0; {
			chunk := min(left, chunkSize)
			if _, err := prog.Run(&ebpf.RunOptions{Data: frame, Repeat: uint32(chunk),
				Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, Context: md, BatchSize: 64}); err != nil {
				return err
			}
			left -= chunk
		}
		b.StopTimer()
		return nil
	})
}
