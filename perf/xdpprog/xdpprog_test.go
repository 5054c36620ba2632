package xdpprog_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

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
	ret, err := p.Run(&ebpf.RunOptions{Data: in, DataOut: out})
	if err != nil {
		t.Fatalf("BPF_PROG_RUN: %v", err)
	}
	return ret, out
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

// TestLiveTX runs the generator program in ordinary test mode and checks
// its stamps and UDP checksum against the Go builder's for the same seq.
func TestLiveTX(t *testing.T) {
	needBPF(t)
	for _, tc := range []struct {
		v6, noTime bool
	}{{false, false}, {true, false}, {false, true}, {true, true}} {
		v6 := tc.v6
		const flows = 5
		b, err := gen.NewBuilder(spec(v6, 128, flows))
		if err != nil {
			t.Fatal(err)
		}
		l, err := xdpprog.NewLiveTX(xdpprog.LiveTXSpec{StampOff: gen.StampOffset(v6), UDPOff: gen.StampOffset(v6) - 8,
			Flows: flows, BasePort: 4000, PartialSum: b.PartialUDPSum(0, 9), NoTime: tc.noTime})
		if err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				t.Skip(err)
			}
			t.Fatal(err)
		}
		defer l.Close()
		f := b.Template(0, 9)
		want := make([]byte, b.MaxLen())
		for seq := uint64(0); seq < 12; seq++ {
			ret, out := run(t, l.Prog, f)
			if ret != 3 {
				t.Fatalf("return %d, want XDP_TX (3)", ret)
			}
			got := out[:len(f)]
			st, ok := gen.ParseStamp(got)
			if !ok || st.Seq != seq || st.Stream != 9 || (st.TS == 0) != tc.noTime {
				t.Fatalf("%+v: stamp %+v ok=%v, want seq %d stream 9", tc, st, ok, seq)
			}
			// The Go builder with the same seq and ts writes the same frame
			// (checksum included) when flows vary only the port
			// (SrcAddrs = DstAddrs = 1).
			n := b.Build(want, 9, seq, st.TS)
			if !bytes.Equal(got, want[:n]) {
				t.Fatalf("%+v seq %d: program frame\n% x\nbuilder frame\n% x", tc, seq, got, want[:n])
			}
		}
	}
}
