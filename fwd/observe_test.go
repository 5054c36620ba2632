package fwd

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/capture"
	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/trace"
)

// receive runs frames through the worker as one burst received on port
// queue 0, through the observation branch.
func (h *harness) receive(port uint16, frames ...[]byte) {
	h.t.Helper()
	h.p0.out, h.p1.out = nil, nil
	ms := make([]*mbuf.Mbuf, len(frames))
	if n := h.w.cache.Alloc(ms); n != len(ms) {
		h.t.Fatalf("pool exhausted: got %d mbufs", n)
	}
	for i, f := range frames {
		copy(ms[i].Append(len(f)), f)
	}
	h.w.pl.receive(port, 0, ms)
	h.w.pl.idle()
}

// testResolver names ports p0, p1 and knows nothing else.
type testResolver struct{}

func (testResolver) PortName(id int) string                      { return fmt.Sprintf("p%d", id) }
func (testResolver) Route(int, netip.Addr, uint64) string        { return "PFX" }
func (testResolver) NeighState(port int, addr netip.Addr) string { return "" }

// steps renders a record's steps as "what: text" lines.
func steps(r *trace.Record) string {
	s := trace.Show(r, testResolver{})
	var b strings.Builder
	for _, st := range s.Steps {
		fmt.Fprintf(&b, "%s: %s\n", st.What, st.Text)
	}
	return b.String()
}

// TestTraceDecisions: crafted packets (a rule moving a packet to FIB 1, no
// route, TTL 1, a neighbour miss, an echo to us) are traced with the right
// decisions and their real outcome; untraced packets around them are
// forwarded as usual.
func TestTraceDecisions(t *testing.T) {
	h := newHarness(t, true)
	setfib := Rule{ID: 7, InPort: -1, FIB: -1, Proto: -1, Src: netip.MustParsePrefix("198.18.1.128/25"), Action: ActSetFIB, SetFIB: 1, Slot: 3}
	rs, err := CompileRules([]Rule{setfib}, 2)
	if err != nil {
		t.Fatal(err)
	}
	st := *h.st
	st.Rules = rs
	h.e.PublishState(&st)

	cases := []struct {
		name  string
		frame []byte
		want  []string // substrings of the rendered steps, in order
	}{
		{"rule to fib 1", frame4(t, pktOpt{src: netip.MustParseAddr("198.18.1.200"), dst: remote4}), []string{
			"rx: port p0 queue 0, worker 0", "parse: ipv4", "fib-port: fib 0 (port p0's default)",
			"rule: rule 7 matched: setfib; fib now 1", "lookup: fib 1: no route to 198.19.1.1",
			"icmp: net_unreach to 198.18.1.200", "generated-route: generated packet to 198.18.1.200: next hop",
			"outcome: icmp_sent +1", "outcome: drop_no_route +1"}},
		{"no route", frame4(t, pktOpt{dst: netip.MustParseAddr("198.18.200.1")}), []string{
			"fib-port: fib 0", "lookup: fib 0: no route to 198.18.200.1", "icmp: net_unreach to 198.18.1.2",
			"(connected) on port p0", "outcome: forwarded +1", "outcome: icmp_sent +1", "outcome: drop_no_route +1"}},
		{"ttl 1", frame4(t, pktOpt{dst: remote4, ttl: 1}), []string{
			"lookup: fib 0: 198.19.1.1 matches PFX", "(gateway)", "ttl: ttl 1: expired", "icmp: ttl_exceeded to 198.18.1.2",
			"outcome: icmp_sent +1", "outcome: drop_ttl_expired +1"}},
		{"neighbour miss", frame4(t, pktOpt{dst: netip.MustParseAddr("198.18.2.77")}), []string{
			"(connected)", "ttl: ttl 64 -> 63", "next-hop: connected on port p1", "egress: port p1 up, mtu 1400",
			"neighbour: 198.18.2.77 on p1: no usable entry", "outcome: punted +1"}},
		{"echo to us", frame4(t, pktOpt{dst: addrP0.Addr(), icmpEcho: true}), []string{
			"(local)", "local: for us: echo request answered with an echo reply",
			"generated-route: generated packet to 198.18.1.2", "outcome: forwarded +1", "outcome: local_in +1", "outcome: icmp_sent +1"}},
		{"v6 forwarded", frame6(t, pktOpt{dst: remote6}), []string{
			"parse: ipv6", "lookup: fib 0: 2001:2:1::1 matches PFX", "ttl: ttl 64 -> 63",
			"next-hop: gateway 2001:2:0:2::9 via port p1", "neighbour: 2001:2:0:2::9 on p1 is 02:00:00:00:00:21", "outcome: forwarded +1"}},
		{"fragmented", frame4(t, pktOpt{dst: remote4, size: 1450}), []string{
			"egress: port p1 up, mtu 1400", "mtu: 1478 bytes > mtu 1400: fragmented", "neighbour: 198.18.2.9 on p1 is", "outcome: fragments_made +2"}},
		{"too big with DF", frame4(t, pktOpt{dst: remote4, size: 1450, df: true}), []string{
			"mtu: 1478 bytes > mtu 1400: too big, DF set", "icmp: frag_needed to 198.18.1.2", "outcome: drop_too_big +1"}},
		{"forwarded", frame4(t, pktOpt{dst: remote4}), []string{
			"next-hop: gateway 198.18.2.9 via port p1", "neighbour: 198.18.2.9 on p1 is 02:00:00:00:00:21",
			"tx-queue: port p1 queue 0", "outcome: forwarded +1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := trace.New(1, trace.Filter{Port: 0})
			h.e.SetObservers(&Observers{Trace: tr})
			defer h.e.SetObservers(nil)
			// An untraced packet on p1 first, the traced one, then one more
			// that the exhausted trace ignores.
			other := frame4(t, pktOpt{dst: host4, dstMAC: macP1, src: gw4})
			h.receive(1, other)
			h.receive(0, tc.frame, frame4(t, pktOpt{dst: remote4}))
			recs := tr.Records()
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			got := steps(&recs[0])
			at := 0
			for _, w := range tc.want {
				i := strings.Index(got[at:], w)
				if i < 0 {
					t.Fatalf("missing (or out of order) %q in:\n%s", w, got)
				}
				at += i + len(w)
			}
			if recs[0].End < recs[0].Start || recs[0].Steps[1].At < 0 {
				t.Errorf("timestamps out of order: %+v", recs[0])
			}
		})
	}
	// The traced packets' counters moved exactly as untraced ones would.
	c := h.e.Counters()
	if c["drop_no_route"] != 2 || c["drop_ttl_expired"] != 1 || c["punted"] != 2 || c["drop_rule"] != 0 {
		t.Errorf("counters %v", c)
	}
	if h.e.RuleHits(3) != 1 {
		t.Errorf("rule 7 hits %d, want 1 (explain must not count it again)", h.e.RuleHits(3))
	}
}

// TestTraceFilter: only packets matching port and prefixes are traced, at
// most N of them.
func TestTraceFilter(t *testing.T) {
	h := newHarness(t, false)
	tr := trace.New(2, trace.Filter{Port: -1, To: netip.MustParsePrefix("198.19.0.0/16")})
	h.e.SetObservers(&Observers{Trace: tr})
	h.receive(0, frame4(t, pktOpt{dst: host4}), frame4(t, pktOpt{dst: remote4, sport: 1}),
		frame6(t, pktOpt{dst: remote6}), frame4(t, pktOpt{dst: remote4, sport: 2}), frame4(t, pktOpt{dst: remote4, sport: 3}))
	recs := tr.Records()
	if len(recs) != 2 || !tr.Full() {
		t.Fatalf("%d records (full %v), want 2", len(recs), tr.Full())
	}
	for i, r := range recs {
		if s := trace.Summary(r.Head[:r.NHead]); !strings.Contains(s, "> 198.19.1.1: UDP "+fmt.Sprint(i+1)+" > 9") {
			t.Errorf("record %d is %s", i, s)
		}
	}
	if c := h.e.Counters(); c["forwarded"] != 5 {
		t.Errorf("forwarded %d, want 5 (all of them)", c["forwarded"])
	}
}

// TestCaptureInPipeline: a capture on p1 sees what p1 transmits (after
// the MAC rewrite) and nothing of p0; on p0 rx it sees what arrived.
func TestCaptureInPipeline(t *testing.T) {
	h := newHarness(t, false)
	tx, err := capture.New(capture.Config{Port: 1, Dir: capture.Tx, Rings: 2, Slots: 16, Snaplen: 2048})
	if err != nil {
		t.Fatal(err)
	}
	rx, err := capture.New(capture.Config{Port: 0, Dir: capture.Rx, Rings: 2, Slots: 4, Snaplen: 64})
	if err != nil {
		t.Fatal(err)
	}
	h.e.SetObservers(&Observers{Captures: []*capture.Session{tx, rx}})
	in := [][]byte{}
	for i := range 6 {
		in = append(in, frame4(t, pktOpt{dst: remote4, sport: uint16(100 + i), size: 100}))
	}
	h.receive(0, in...)
	if len(h.p1.out) != 6 {
		t.Fatalf("p1 sent %d frames, want 6", len(h.p1.out))
	}
	var got [][]byte
	n, _ := tx.Read(0, func(f *capture.Frame) error {
		if f.Dir != capture.Tx || f.Wire != len(f.Data) {
			t.Errorf("frame dir %v wire %d len %d", f.Dir, f.Wire, len(f.Data))
		}
		got = append(got, append([]byte(nil), f.Data...))
		return nil
	})
	if n != 6 {
		t.Fatalf("tx capture read %d frames, want 6", n)
	}
	for i := range got {
		if string(got[i]) != string(h.p1.out[i]) {
			t.Errorf("captured frame %d differs from the transmitted one", i)
		}
	}
	// The rx ring holds 4: two frames dropped and counted; the rest cut
	// at the snap length.
	k, _ := rx.Read(0, func(f *capture.Frame) error {
		if len(f.Data) != 64 || f.Wire != len(in[0]) || f.Dir != capture.Rx {
			t.Errorf("rx frame: %d bytes of %d, dir %v", len(f.Data), f.Wire, f.Dir)
		}
		return nil
	})
	if k != 4 || rx.Dropped() != 2 {
		t.Errorf("rx capture: %d read, %d dropped; want 4, 2", k, rx.Dropped())
	}
	h.e.SetObservers(nil)
	h.receive(0, in[0])
	if k, _ := tx.Read(0, func(*capture.Frame) error { return nil }); k != 0 {
		t.Errorf("disarmed capture still got %d frames", k)
	}
}

// TestObserveZeroAllocs: a burst allocates nothing with nothing armed, and
// nothing either with a trace recording every packet and a capture armed.
func TestObserveZeroAllocs(t *testing.T) {
	h := newHarness(t, false)
	h.p0.discard, h.p1.discard = true, true
	frames := [][]byte{
		frame4(t, pktOpt{dst: remote4, size: 18}),
		frame6(t, pktOpt{dst: remote6, size: 18}),
		frame4(t, pktOpt{dst: remote4, ttl: 1}),
		frame4(t, pktOpt{dst: addrP0.Addr(), icmpEcho: true}),
		frame4(t, pktOpt{dst: netip.MustParseAddr("198.19.255.1")}),
		frame4(t, pktOpt{dst: netip.MustParseAddr("198.18.200.1")}),
	}
	ms := make([]*mbuf.Mbuf, Burst)
	run := func() {
		n := h.w.cache.Alloc(ms)
		for i, m := range ms[:n] {
			f := frames[i%len(frames)]
			copy(m.Append(len(f)), f)
		}
		h.w.pl.receive(0, 0, ms[:n])
		h.w.pl.idle()
	}
	run()
	if a := allocsPerRun(200, run); a != 0 {
		t.Fatalf("nothing armed: %v allocations per burst, want 0", a)
	}
	tr := trace.New(1<<20, trace.Filter{Port: -1})
	c0, _ := capture.New(capture.Config{Port: 0, Dir: capture.Both, Rings: 2, Slots: 64})
	c1, _ := capture.New(capture.Config{Port: 1, Dir: capture.Both, Rings: 2, Slots: 64})
	h.e.SetObservers(&Observers{Trace: tr, Captures: []*capture.Session{c0, c1}})
	drain := func() {
		c0.Read(0, func(*capture.Frame) error { return nil })
		c1.Read(0, func(*capture.Frame) error { return nil })
	}
	run()
	drain()
	if a := allocsPerRun(100, func() { run(); drain() }); a != 0 {
		t.Fatalf("trace and capture armed: %v allocations per burst, want 0", a)
	}
	if tr.Claimed() < 100*Burst {
		t.Errorf("only %d packets traced", tr.Claimed())
	}
}

// TestTraceControlPath: a packet held for its neighbour shows twice: when
// the worker hands it to the control plane, and when the control plane
// sends it once the neighbour is known.
func TestTraceControlPath(t *testing.T) {
	h := newHarness(t, false)
	tr := trace.New(3, trace.Filter{Port: -1, To: netip.MustParsePrefix("198.18.2.77/32")})
	h.e.SetObservers(&Observers{Trace: tr})
	h.receive(0, frame4(t, pktOpt{dst: netip.MustParseAddr("198.18.2.77")}))
	nt := h.e.Neigh()
	nt.Poll() // the miss reaches the table, which holds the packet
	if err := nt.AddStatic(1, netip.MustParseAddr("198.18.2.77"), [6]byte{2, 0, 0, 0, 0, 0x77}); err != nil {
		t.Fatal(err)
	}
	h.w.pl.idle()
	recs := tr.Records()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if s := steps(&recs[0]); !strings.Contains(s, "outcome: punted +1") {
		t.Errorf("first record:\n%s", s)
	}
	if s := steps(&recs[1]); !strings.Contains(s, "control: sent by the control plane") || !strings.Contains(s, "(port p1)") || recs[1].Worker != 1 {
		t.Errorf("second record (worker %d):\n%s", recs[1].Worker, s)
	}
	if n := len(h.p1.out); n == 0 || h.p1.out[n-1][12] != 0x08 || h.p1.out[n-1][13] != 0 {
		t.Errorf("p1 sent %d frames, the last not the released IPv4 packet", n)
	}
}

// TestTraceECMP: the trace names the ECMP member each flow took, and it
// is the gateway the packet really went to.
func TestTraceECMP(t *testing.T) {
	h := newHarness(t, false)
	gw2 := netip.MustParseAddr("198.18.2.10")
	mac2 := [6]byte{2, 0, 0, 0, 0, 0x22}
	if err := h.e.Neigh().AddStatic(1, gw2, mac2); err != nil {
		t.Fatal(err)
	}
	h.e.Neigh().Publish()
	a, _ := h.fibs.AddNextHop(fib.NextHop{Kind: fib.KindGateway, Port: 1, Addr: gw4})
	b, _ := h.fibs.AddNextHop(fib.NextHop{Kind: fib.KindGateway, Port: 1, Addr: gw2})
	g, _ := h.fibs.AddNextHop(fib.NextHop{Kind: fib.KindECMP, Members: []uint32{a, b}})
	if err := h.fibs.Apply([]fib.Change{{Op: fib.OpAdd, Prefix: netip.MustParsePrefix("198.19.100.0/24"), NextHop: g}}); err != nil {
		t.Fatal(err)
	}
	tr := trace.New(16, trace.Filter{Port: -1})
	h.e.SetObservers(&Observers{Trace: tr})
	var frames [][]byte
	for i := range 16 {
		frames = append(frames, frame4(t, pktOpt{dst: netip.MustParseAddr("198.19.100.1"), sport: uint16(2000 + i)}))
	}
	h.receive(0, frames...)
	recs := tr.Records()
	if len(recs) != 16 || len(h.p1.out) != 16 {
		t.Fatalf("%d records, %d frames out", len(recs), len(h.p1.out))
	}
	members := map[string]bool{}
	for i := range recs {
		s := steps(&recs[i])
		gw := gw4.String()
		if strings.Contains(s, "ecmp: member 1 of 2") {
			gw = gw2.String()
		} else if !strings.Contains(s, "ecmp: member 0 of 2") {
			t.Fatalf("no ecmp step:\n%s", s)
		}
		members[gw] = true
		if !strings.Contains(s, "next-hop: gateway "+gw+" via port p1") {
			t.Errorf("member and gateway disagree:\n%s", s)
		}
		wantMAC := macGW
		if gw == gw2.String() {
			wantMAC = mac2[:]
		}
		if string(h.p1.out[i][0:6]) != string(wantMAC) {
			t.Errorf("packet %d went to %x, trace says %s", i, h.p1.out[i][0:6], gw)
		}
	}
	if len(members) != 2 {
		t.Errorf("16 flows all on one member: %v", members)
	}
}

// BenchmarkPipeline4Armed is BenchmarkPipeline4 (same table, flows and
// frames) with observation armed: nothing (the baseline of this run), a
// trace whose filter never matches (the per-packet filter check), and a
// capture of every transmitted frame drained after each burst (the copy).
// ns/op is per packet.
func BenchmarkPipeline4Armed(b *testing.B) {
	for _, mode := range []string{"none", "trace-nomatch", "capture-tx"} {
		b.Run(mode, func(b *testing.B) {
			h := newHarness(b, false)
			prefixes := h.loadFullTable(b, false)
			r := rand.New(rand.NewPCG(1, 2))
			const flows = 1024
			frames := make([][]byte, flows)
			for i := range frames {
				frames[i] = frame4(b, pktOpt{dst: randomIn(r, prefixes[r.IntN(len(prefixes))]), sport: uint16(1024 + i), size: 18})
			}
			var c *capture.Session
			switch mode {
			case "trace-nomatch":
				h.e.SetObservers(&Observers{Trace: trace.New(1, trace.Filter{Port: 5})})
			case "capture-tx":
				c, _ = capture.New(capture.Config{Port: 1, Dir: capture.Tx, Rings: 2, Slots: 1024, Snaplen: 128})
				h.e.SetObservers(&Observers{Captures: []*capture.Session{c}})
			}
			ms := make([]*mbuf.Mbuf, Burst)
			pl := &h.w.pl
			runtime.GC()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU()
			b.ReportAllocs()
			b.ResetTimer()
			next := 0
			for done := 0; done < b.N; done += Burst {
				n := h.w.cache.Alloc(ms)
				for _, m := range ms[:n] {
					f := frames[next]
					next = (next + 1) & (flows - 1)
					copy(m.Append(len(f)), f)
				}
				pl.receive(0, 0, ms[:n])
				pl.idle()
				if c != nil {
					c.Read(0, func(*capture.Frame) error { return nil })
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/pkt")
			if c != nil && c.Dropped() > 0 {
				b.Fatalf("capture dropped %d", c.Dropped())
			}
		})
	}
}
