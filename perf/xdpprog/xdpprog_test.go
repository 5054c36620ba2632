package xdpprog_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/perf/gen"
	"github.com/fwdd/fwdd/perf/xdpprog"
)

func needBPF(t *testing.T) {
	t.Helper()
	testenv.Root(t, "load BPF programs")
}

func run(t *testing.T, p *ebpf.Program, in []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(in)+256)
	opts := &ebpf.RunOptions{Data: in, DataOut: out}
	ret, err := p.Run(opts)
	if err != nil {
		t.Fatalf("BPF_PROG_RUN: %v", err)
	}
	return ret, opts.DataOut
}

func spec(v6 bool, size, flows int) gen.Spec {
	s := gen.Spec{IPv6: v6, SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
		SrcPort: 4000, DstPort: 9, Flows: flows, Sizes: []int{size}}
	if v6 {
		s.SrcIP, s.DstIP = netip.MustParseAddr("2001:2::2"), netip.MustParseAddr("2001:2:0:8000::1")
	} else {
		s.SrcIP, s.DstIP = netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.19.128.1")
	}
	return s
}

func TestForwarder(t *testing.T) {
	needBPF(t)
	src, dst := [6]byte{0xa, 1, 2, 3, 4, 5}, [6]byte{0xb, 6, 7, 8, 9, 10}
	p, err := xdpprog.Forwarder(1, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b, _ := gen.NewBuilder(spec(false, 64, 1))
	f := b.Template(0, 0)
	ret, out := run(t, p, f)
	if ret != 4 { // XDP_REDIRECT
		t.Fatalf("return %d, want XDP_REDIRECT (4)", ret)
	}
	if !bytes.Equal(out[0:6], dst[:]) || !bytes.Equal(out[6:12], src[:]) || !bytes.Equal(out[12:len(f)], f[12:]) {
		t.Fatalf("rewritten frame % x", out[:len(f)])
	}
	// (BPF_PROG_RUN refuses frames shorter than an Ethernet header, so the
	// program's runt check cannot be exercised here.)
}

func TestSinks(t *testing.T) {
	needBPF(t)
	for _, tc := range []struct {
		name       string
		newSink    func() (*xdpprog.Sink, error)
		pass, drop uint32
	}{
		{"xdp", xdpprog.NewSink, 2, 1},
		{"tc", xdpprog.NewTCSink, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.newSink()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			b4, _ := gen.NewBuilder(spec(false, 64, 1))
			b6, _ := gen.NewBuilder(spec(true, 100, 1))
			f4, f6 := b4.Template(0, 0), b6.Template(0, 0)
			arp := make([]byte, 60)
			binary.BigEndian.PutUint16(arp[12:], 0x0806)
			tcp := append([]byte(nil), f4...)
			tcp[23] = 6
			var want uint64
			for _, c := range []struct {
				f    []byte
				ret  uint32
				size uint64
			}{{f4, tc.drop, 60}, {f6, tc.drop, 96}, {arp, tc.pass, 0}, {tcp, tc.pass, 0}, {f4, tc.drop, 60}} {
				ret, _ := run(t, s.Prog, c.f)
				if ret != c.ret {
					t.Fatalf("frame type %x proto %d: return %d, want %d", c.f[12:14], c.f[23], ret, c.ret)
				}
				want += c.size
			}
			got, err := s.Read()
			if err != nil {
				t.Fatal(err)
			}
			if got.Packets != 3 || got.Bytes != want {
				t.Fatalf("counters %+v, want 3 packets, %d bytes", got, want)
			}
		})
	}
}

// TestLiveTX runs the generator program in ordinary test mode (one frame
// per run) and checks every frame against the Go builder's for the same seq
// and ts: stamp, addresses and source port of each flow, both checksums,
// and for a size pattern the frame's length and length fields. It covers
// both families, with and without send times, flows spread over several
// addresses, sequence numbers whose checksum words carry (around 2^32 and
// 2^48), send times on every 4th frame only, and size patterns (one
// program, the frame cut per seq).
func TestLiveTX(t *testing.T) {
	needBPF(t)
	one, pattern := []int{128}, []int{128, 300, 96, 128}
	for _, tc := range []struct {
		v6, noTime bool
		start      uint64
		every      int
		sizes      []int
	}{{false, false, 0, 0, one}, {true, false, 0, 1, one}, {false, true, 0, 0, one}, {true, true, 0, 4, one},
		{false, false, 1<<32 - 7, 0, one}, {true, false, 1<<48 - 5, 0, one}, {false, true, 1<<64 - 20, 0, one},
		{false, false, 1<<32 - 9, 4, one}, {true, false, 3, 4, one},
		{false, false, 0, 0, pattern}, {true, false, 1<<32 - 7, 0, pattern}, {false, true, 5, 2, pattern},
		{false, false, 0, 16, gen.IMIX()}} {
		const flows = 5
		sp := spec(tc.v6, 128, flows)
		sp.Sizes = tc.sizes
		sp.SrcAddrs, sp.DstAddrs = 2, 3
		b, err := gen.NewBuilder(sp)
		if err != nil {
			t.Fatal(err)
		}
		l, err := xdpprog.NewLiveTX(b.LiveTXSpec(9, tc.noTime, tc.every))
		if err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				t.Skip(err)
			}
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.SetSeq(tc.start); err != nil {
			t.Fatal(err)
		}
		f := b.LiveFrame(9)
		want := make([]byte, b.MaxLen())
		for k := uint64(0); k < 3*flows*uint64(len(tc.sizes))+1; k++ {
			seq := tc.start + k
			ret, got := run(t, l.Prog, f)
			if ret != 3 {
				t.Fatalf("return %d, want XDP_TX (3)", ret)
			}
			st, ok := gen.ParseStamp(got)
			timed := !tc.noTime && (tc.every <= 1 || seq%uint64(tc.every) == 0)
			if !ok || st.Seq != seq || st.Stream != 9 || (st.TS != 0) != timed {
				t.Fatalf("%+v: stamp %+v ok=%v, want seq %d stream 9", tc, st, ok, seq)
			}
			n := b.Build(want, 9, seq, st.TS)
			if !bytes.Equal(got, want[:n]) {
				t.Fatalf("%+v seq %d: program frame (%d bytes)\n% x\nbuilder frame (%d bytes)\n% x", tc, seq, len(got), got, n, want[:n])
			}
			if next, err := l.Seq(); err != nil || next != seq+1 {
				t.Fatalf("state seq %d (%v) after seq %d", next, err, seq)
			}
		}
	}
}

// TestLiveTXBadSpec: a spec without flows, with impossible offsets, a
// stamp interval that is no power of two, flows missing for a frame size or
// a frame too short for the stamp is
// refused with an error, not loaded.
func TestLiveTXBadSpec(t *testing.T) {
	needBPF(t)
	b, err := gen.NewBuilder(spec(false, 64, 4))
	if err != nil {
		t.Fatal(err)
	}
	good := b.LiveTXSpec(0, false, 0)
	noFlows := good
	noFlows.Flows = nil
	badOff := good
	badOff.StampOff = badOff.UDPOff
	badEvery := good
	badEvery.TimeEvery = 12
	noLens := good // flows for one size, two lengths
	noLens.Lens = []int{100, 200}
	short := good
	short.Flows = [][]xdpprog.LiveFlow{good.Flows[0], good.Flows[0]}
	short.Lens = []int{60, 20}
	uneven := short
	uneven.Lens = []int{60, 80}
	uneven.Flows = [][]xdpprog.LiveFlow{good.Flows[0], good.Flows[0][:2]}
	for _, s := range []xdpprog.LiveTXSpec{noFlows, badOff, badEvery, noLens, short, uneven} {
		if l, err := xdpprog.NewLiveTX(s); err == nil {
			l.Close()
			t.Errorf("spec %+v loaded", s)
		}
	}
}

// TestLiveTXLimitAndPacing: past the state's limit every run drops and
// uses no sequence number; a paced program sends at most its burst plus
// what its rate allows in the time elapsed (an upper bound, whatever the
// load), and its frames still match the builder's (the pacing clock read
// is the send time); a fast rate lets every frame through.
func TestLiveTXLimitAndPacing(t *testing.T) {
	needBPF(t)
	b, err := gen.NewBuilder(spec(false, 64, 3))
	if err != nil {
		t.Fatal(err)
	}
	f := b.LiveFrame(0)
	want := make([]byte, b.MaxLen())
	for _, tc := range []struct {
		name  string
		rate  float64
		limit uint64
	}{{"limit", 0, 4}, {"slow", 1, 0}, {"fast", 1e10, 0}, {"fast-limit", 1e10, 3}} {
		s := b.LiveTXSpec(0, false, 1)
		s.Rate, s.Burst = tc.rate, 1
		l, err := xdpprog.NewLiveTX(s)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.SetLimit(tc.limit); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		var sent uint64
		for i := 0; i < 8; i++ {
			ret, got := run(t, l.Prog, f)
			seq, err := l.Seq()
			if err != nil {
				t.Fatal(err)
			}
			switch ret {
			case 3:
				sent++
				st, ok := gen.ParseStamp(got)
				if !ok || st.Seq != sent-1 || st.TS == 0 || seq != sent {
					t.Fatalf("%s: frame %d: stamp %+v ok=%v, state seq %d", tc.name, sent-1, st, ok, seq)
				}
				if n := b.Build(want, 0, st.Seq, st.TS); !bytes.Equal(got, want[:n]) {
					t.Fatalf("%s seq %d: program frame\n% x\nbuilder frame\n% x", tc.name, st.Seq, got, want[:n])
				}
			case 1: // XDP_DROP
				if seq != sent {
					t.Fatalf("%s: a dropped run moved seq to %d (sent %d)", tc.name, seq, sent)
				}
			default:
				t.Fatalf("%s: return %d", tc.name, ret)
			}
		}
		el := time.Since(t0).Seconds()
		switch {
		case tc.limit > 0 && sent != min(tc.limit, 8):
			t.Errorf("%s: sent %d of 8 runs, limit %d", tc.name, sent, tc.limit)
		case tc.limit == 0 && tc.rate >= 1e10 && sent != 8:
			t.Errorf("%s: sent %d of 8 runs at %g/s", tc.name, sent, tc.rate)
		case tc.rate > 0 && float64(sent) > 1+1+el*tc.rate:
			t.Errorf("%s: sent %d in %.3f s at %g/s (burst 1)", tc.name, sent, el, tc.rate)
		}
	}
	s := b.LiveTXSpec(0, false, 1)
	s.Rate = 0.5
	if l, err := xdpprog.NewLiveTX(s); err == nil {
		l.Close()
		t.Error("rate 0.5/s loaded")
	}
}
