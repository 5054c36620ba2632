package lagg

import (
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/pmd/mcast"
	"golang.org/x/sys/unix"
)

// stubPort is a member: it records what it transmits (and frees it).
type stubPort struct {
	info  pmd.Info
	up    atomic.Bool
	pools []*mbuf.Pool
	sent  [][]byte
	// accept, if >= 0, is how many frames one TxBurst takes.
	accept int
	keep   bool
}

func (s *stubPort) RxBurst(int, []*mbuf.Mbuf) int { return 0 }
func (s *stubPort) TxBurst(q int, ms []*mbuf.Mbuf) int {
	n := len(ms)
	if s.accept >= 0 {
		n = min(n, s.accept)
	}
	if !s.keep {
		s.pools[0].Free(ms[:n])
		return n
	}
	for i, m := range ms[:n] {
		if s.keep {
			s.sent = append(s.sent, append([]byte(nil), m.Data()...))
		}
		s.pools[m.PoolID()].Free(ms[i : i+1])
	}
	return n
}
func (s *stubPort) Info() pmd.Info          { return s.info }
func (s *stubPort) Link() pmd.Link          { return pmd.Link{Up: s.up.Load(), Present: true} }
func (s *stubPort) Stats() []pmd.QueueStats { return make([]pmd.QueueStats, 1) }
func (s *stubPort) Close() error            { return nil }

type rig struct {
	t      testing.TB
	pool   *mbuf.Pool
	ports  map[string]*stubPort
	ids    map[string]uint16
	shared *pmd.Shared
}

func newRig(t testing.TB, names ...string) *rig {
	pool, err := mbuf.NewPool(mbuf.Config{Count: 4096, CacheSize: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	r := &rig{t: t, pool: pool, ports: map[string]*stubPort{}, ids: map[string]uint16{}, shared: pmd.NewShared()}
	for i, n := range names {
		s := &stubPort{info: pmd.Info{Name: n, MAC: net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}, MTU: 1500, RxQueues: 1, TxQueues: 1},
			pools: []*mbuf.Pool{pool}, accept: -1, keep: true}
		s.up.Store(true)
		r.ports[n], r.ids[n] = s, uint16(10+i)
	}
	return r
}

func (r *rig) open(name string, args pmd.Args) (*Port, error) {
	return Open(pmd.Config{Name: name, ID: 1, Driver: DriverName, Args: args, Pools: []*mbuf.Pool{r.pool}, Shared: r.shared,
		Lookup: func(n string) (pmd.Port, uint16, bool) {
			p, ok := r.ports[n]
			return p, r.ids[n], ok
		}})
}

// frame builds a UDP/IPv4 frame of flow i.
func frame(i int) []byte {
	f := make([]byte, 14+20+8+10)
	copy(f[0:6], []byte{2, 0, 0, 0, 9, 9})
	copy(f[6:12], []byte{2, 0, 0, 0, 1, 0})
	binary.BigEndian.PutUint16(f[12:14], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:4], 38)
	copy(ip[12:16], []byte{198, 18, 0, 2})
	copy(ip[16:20], []byte{198, 19, byte(i >> 8), byte(i)})
	binary.BigEndian.PutUint16(ip[20:22], uint16(1000+i))
	binary.BigEndian.PutUint16(ip[22:24], 9)
	return f
}

func (r *rig) burst(frames ...[]byte) []*mbuf.Mbuf {
	ms := make([]*mbuf.Mbuf, len(frames))
	if n := r.pool.Alloc(ms); n != len(ms) {
		r.t.Fatal("pool exhausted")
	}
	for i, f := range frames {
		copy(ms[i].Append(len(f)), f)
	}
	return ms
}

func TestOpenErrors(t *testing.T) {
	r := newRig(t, "m0", "m1", "m2")
	for _, tc := range []struct {
		args pmd.Args
		want string
	}{
		{pmd.Args{}, "no members"},
		{pmd.Args{"laggport": "m9"}, "laggport m9: no such port"},
	} {
		if _, err := r.open("lagg0", tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := r.open("lagg0", pmd.Args{"laggport": "m0 m1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.open("lagg1", pmd.Args{"laggport": "m2 m1"}); err == nil || !strings.Contains(err.Error(), "m1 is a member of lagg0 already") {
		t.Errorf("second lagg on m1: %v", err)
	}
}

// TestLoadBalance: flows spread over both members, one flow always on one
// member, a member down takes its flows to the other at the next Service.
func TestLoadBalance(t *testing.T) {
	r := newRig(t, "m0", "m1")
	p, err := r.open("lagg0", pmd.Args{"laggport": "m0 m1", "proto": "loadbalance"})
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for i := 0; i < 64; i++ {
		frames = append(frames, frame(i))
	}
	if n := p.TxBurst(0, r.burst(frames...)); n != 64 {
		t.Fatalf("sent %d of 64", n)
	}
	a, b := len(r.ports["m0"].sent), len(r.ports["m1"].sent)
	if a+b != 64 || a < 16 || b < 16 {
		t.Fatalf("64 flows spread %d/%d", a, b)
	}
	// The same flows again: each on the member it took before.
	first := map[string]string{}
	for _, n := range []string{"m0", "m1"} {
		for _, f := range r.ports[n].sent {
			first[string(f)] = n
		}
		r.ports[n].sent = nil
	}
	p.TxBurst(0, r.burst(frames...))
	for _, n := range []string{"m0", "m1"} {
		for _, f := range r.ports[n].sent {
			if first[string(f)] != n {
				t.Fatal("a flow moved between members with nothing changed")
			}
		}
		r.ports[n].sent = nil
	}
	r.ports["m1"].up.Store(false)
	p.Service(nopIO{})
	p.TxBurst(0, r.burst(frames...))
	if len(r.ports["m0"].sent) != 64 || len(r.ports["m1"].sent) != 0 {
		t.Fatalf("after m1 down: %d/%d", len(r.ports["m0"].sent), len(r.ports["m1"].sent))
	}
	if r.ports["m1"].up.Store(true); true {
		p.Service(nopIO{})
	}
	if len(p.active.Load().ports) != 2 {
		t.Fatal("m1 not re-added after its link came back")
	}
}

// TestFailover: one member carries everything; the next takes over.
func TestFailover(t *testing.T) {
	r := newRig(t, "m0", "m1")
	p, err := r.open("lagg0", pmd.Args{"laggport": "m0 m1"})
	if err != nil {
		t.Fatal(err)
	}
	p.TxBurst(0, r.burst(frame(1), frame(2), frame(3)))
	if len(r.ports["m0"].sent) != 3 {
		t.Fatal("failover does not send on the primary")
	}
	r.ports["m0"].up.Store(false)
	p.Service(nopIO{})
	p.TxBurst(0, r.burst(frame(1)))
	if len(r.ports["m1"].sent) != 1 {
		t.Fatal("no failover to m1")
	}
	if !p.Link().Up {
		t.Fatal("lagg down with m1 up")
	}
	r.ports["m1"].up.Store(false)
	p.Service(nopIO{})
	if p.Link().Up {
		t.Fatal("lagg up with no member up")
	}
	if n := p.TxBurst(0, r.burst(frame(1))); n != 1 || r.pool.Stats().InUse != 0 {
		t.Fatal("with no member the frames must be freed and counted")
	}
}

// TestFailoverReceive: failover receives only on the active member
// (FreeBSD), on every up member with failover_rx_all.
func TestFailoverReceive(t *testing.T) {
	r := newRig(t, "m0", "m1", "m2", "m3")
	p, err := r.open("lagg0", pmd.Args{"laggport": "m0 m1"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.members[0].collecting.Load() || p.members[1].collecting.Load() {
		t.Fatal("failover: only the active member (m0) receives")
	}
	r.ports["m0"].up.Store(false)
	p.Service(nopIO{})
	if p.members[0].collecting.Load() || !p.members[1].collecting.Load() {
		t.Fatal("failover: after m0 went down only m1 receives")
	}
	all, err := r.open("lagg1", pmd.Args{"laggport": "m2 m3", "failover_rx_all": "on"})
	if err != nil {
		t.Fatal(err)
	}
	if !all.members[0].collecting.Load() || !all.members[1].collecting.Load() {
		t.Fatal("failover_rx_all: both members receive")
	}
	if len(all.active.Load().ports) != 1 {
		t.Fatal("failover_rx_all: still one member transmits")
	}
	if _, err := all.Reconfigure(pmd.Config{Name: "lagg1", Args: pmd.Args{"laggport": "m2 m3"}, Shared: r.shared,
		Lookup: func(n string) (pmd.Port, uint16, bool) { s, ok := r.ports[n]; return s, r.ids[n], ok }}); !errors.Is(err, pmd.ErrReopen) {
		t.Fatalf("failover_rx_all changed live: %v", err)
	}
}

// TestRoundRobinRefused: roundrobin alternates; what a member refuses is
// returned to the caller after what was sent.
func TestRoundRobinRefused(t *testing.T) {
	r := newRig(t, "m0", "m1")
	p, err := r.open("lagg0", pmd.Args{"laggport": "m0 m1", "proto": "roundrobin"})
	if err != nil {
		t.Fatal(err)
	}
	r.ports["m1"].accept = 1
	ms := r.burst(frame(1), frame(2), frame(3), frame(4))
	want := []*mbuf.Mbuf{ms[3]} // m1 gets 2 and 4, takes 2
	n := p.TxBurst(0, ms)
	if n != 3 || ms[3] != want[0] {
		t.Fatalf("sent %d, rest %v", n, ms[n:])
	}
	r.pool.Free(ms[n:])
	if len(r.ports["m0"].sent) != 2 || len(r.ports["m1"].sent) != 1 {
		t.Fatalf("%d/%d", len(r.ports["m0"].sent), len(r.ports["m1"].sent))
	}
}

func TestTxZeroAllocs(t *testing.T) {
	r := newRig(t, "m0", "m1")
	for _, s := range r.ports {
		s.keep = false
	}
	p, err := r.open("lagg0", pmd.Args{"laggport": "m0 m1", "proto": "loadbalance"})
	if err != nil {
		t.Fatal(err)
	}
	ms := make([]*mbuf.Mbuf, 32)
	f := frame(7)
	run := func() {
		n := r.pool.Alloc(ms)
		for _, m := range ms[:n] {
			copy(m.Append(len(f)), f)
		}
		p.TxBurst(0, ms[:n])
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("%v allocations per burst", a)
	}
}

type nopIO struct{}

func (nopIO) Alloc([]*mbuf.Mbuf) int    { return 0 }
func (nopIO) Send(uint16, []*mbuf.Mbuf) {}
func (nopIO) Rebind()                   {}

// wire connects two laggs' members back to back: what one sends on member
// i arrives on the other's member i (through its control ring).
type wire struct {
	t    testing.TB
	pool *mbuf.Pool
	from *Port
	to   **Port
	ids  map[uint16]uint16 // sender member id -> receiver member id
	cut  map[uint16]bool   // sender member ids whose frames are lost
	sent int
}

func (w *wire) Alloc(ms []*mbuf.Mbuf) int { return w.pool.Alloc(ms) }
func (w *wire) Send(port uint16, ms []*mbuf.Mbuf) {
	for _, m := range ms {
		w.sent++
		if w.cut[port] {
			w.pool.Free([]*mbuf.Mbuf{m})
			continue
		}
		m.Port = w.ids[port]
		if !(*w.to).ctl.Enqueue(m) {
			w.pool.Free([]*mbuf.Mbuf{m})
		}
	}
}
func (w *wire) Rebind() {}

// TestLACPNegotiation: two LACP laggs back to back aggregate both links;
// a member whose partner falls silent leaves within the short timeout and
// the other keeps distributing; a marker is answered.
func TestLACPNegotiation(t *testing.T) {
	r := newRig(t, "a0", "a1", "b0", "b1")
	a, err := r.open("laggA", pmd.Args{"laggport": "a0 a1", "proto": "lacp", "lacp": "fast"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(pmd.Config{Name: "laggB", ID: 2, Driver: DriverName, Args: pmd.Args{"laggport": "b0 b1", "proto": "lacp", "lacp": "fast"},
		Pools: []*mbuf.Pool{r.pool}, Shared: pmd.NewShared(),
		Lookup: func(n string) (pmd.Port, uint16, bool) { p, ok := r.ports[n]; return p, r.ids[n], ok }})
	if err != nil {
		t.Fatal(err)
	}
	ids := r.ids
	ab := &wire{t: t, pool: r.pool, from: a, to: &b, ids: map[uint16]uint16{ids["a0"]: ids["b0"], ids["a1"]: ids["b1"]}, cut: map[uint16]bool{}}
	ba := &wire{t: t, pool: r.pool, from: b, to: &a, ids: map[uint16]uint16{ids["b0"]: ids["a0"], ids["b1"]: ids["a1"]}, cut: map[uint16]bool{}}
	now := time.Now()
	step := func(d time.Duration) {
		now = now.Add(d)
		a.serviceAt(now, ab)
		b.serviceAt(now, ba)
	}
	for i := 0; i < 10; i++ {
		step(100 * time.Millisecond)
	}
	for _, p := range []*Port{a, b} {
		if n := len(p.active.Load().ports); n != 2 {
			t.Fatalf("%s: %d members distributing, want 2\n%v", p.info.Name, n, p.Status().Rows)
		}
	}
	if a.members[0].lacp.partner.Sys != b.sys || a.members[0].lacp.partner.Key != b.key {
		t.Fatal("partner is not the other lagg")
	}
	// Periodic: fast (the partner asked for short timeouts): ~1/s.
	before := ab.sent
	for i := 0; i < 50; i++ {
		step(100 * time.Millisecond)
	}
	if n := ab.sent - before; n < 8 || n > 14 {
		t.Errorf("%d LACPDUs in 5 s on 2 members, want ~10 (fast periodic)", n)
	}
	// b1 falls silent: a1 expires after 3 s (short timeout), out of the
	// aggregator; a0 carries on.
	ba.cut[ids["b1"]] = true
	gone := time.Duration(0)
	for len(a.active.Load().ports) == 2 && gone < 10*time.Second {
		step(100 * time.Millisecond)
		gone += 100 * time.Millisecond
	}
	if gone > shortTimeout+200*time.Millisecond || len(a.active.Load().ports) != 1 || a.active.Load().idx[0] != 0 {
		t.Fatalf("a1 left after %v (want within %v); active %v", gone, shortTimeout, a.active.Load().idx)
	}
	// Back: re-added.
	ba.cut[ids["b1"]] = false
	for i := 0; i < 30 && len(a.active.Load().ports) != 2; i++ {
		step(100 * time.Millisecond)
	}
	if len(a.active.Load().ports) != 2 {
		t.Fatal("a1 not re-added when its partner came back")
	}
	// Link down: out at once.
	r.ports["a0"].up.Store(false)
	step(100 * time.Millisecond)
	if len(a.active.Load().ports) != 1 || a.active.Load().idx[0] != 1 {
		t.Fatalf("a0 link down, still distributing: %v", a.active.Load().idx)
	}
	if r.pool.Stats().InUse != 0 {
		t.Errorf("%d mbufs in use", r.pool.Stats().InUse)
	}
}

// TestChurn: a partner that answers but never gets in sync (another
// aggregator key than the one selected) is flagged partner churn after
// 60 s; in sync again, the flag goes.
func TestChurn(t *testing.T) {
	r := newRig(t, "a0", "b0")
	a, err := r.open("laggA", pmd.Args{"laggport": "a0", "proto": "lacp", "lacp": "fast"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.serviceAt(now, nopIO{})
	// A partner that never says it is in sync.
	pdu := func() {
		f := make([]byte, frameLen)
		partner := lacpInfo{SysPrio: 0x8000, Sys: [6]byte{2, 9, 9, 9, 9, 9}, Key: 7, PortPrio: 0x8000, Port: 1, State: stActivity | stTimeout | stAggregation}
		buildLACPDU(f, [6]byte{2, 9, 9, 9, 9, 9}, partner, a.members[0].lacp.actor)
		ms := r.burst(f)
		ms[0].Port = r.ids["a0"]
		if !a.ctl.Enqueue(ms[0]) {
			t.Fatal("control ring full")
		}
	}
	for i := 0; i < 700; i++ { // 70 s
		now = now.Add(100 * time.Millisecond)
		if i%10 == 0 {
			pdu()
		}
		a.serviceAt(now, nopIO{})
	}
	l := &a.members[0].lacp
	if !l.partnerChurn || l.actorChurn {
		t.Fatalf("partner churn %v actor churn %v, want partner churn only\n%v", l.partnerChurn, l.actorChurn, a.Status().Rows)
	}
	if !strings.Contains(a.Status().Rows[0][4], "partner_churn") {
		t.Fatalf("show lagg does not say partner_churn: %v", a.Status().Rows[0])
	}
	r.ports["a0"].up.Store(false)
	a.serviceAt(now.Add(100*time.Millisecond), nopIO{})
	if l.partnerChurn {
		t.Fatal("churn kept with the link down")
	}
}

// TestMarkerResponder: a marker PDU is answered with a response carrying
// the same information.
func TestMarkerResponder(t *testing.T) {
	r := newRig(t, "a0")
	a, err := r.open("laggA", pmd.Args{"laggport": "a0", "proto": "lacp"})
	if err != nil {
		t.Fatal(err)
	}
	a.Service(nopIO{})
	f := make([]byte, frameLen)
	copy(f[0:6], mcast.SlowProtocols)
	binary.BigEndian.PutUint16(f[12:14], 0x8809)
	b := f[14:]
	b[0], b[1], b[2], b[3] = subtypeMarker, 1, 1, 16
	binary.BigEndian.PutUint16(b[4:6], 7)
	binary.BigEndian.PutUint32(b[12:16], 0xdeadbeef)
	ms := r.burst(f)
	ms[0].Port = r.ids["a0"]
	a.ctl.Enqueue(ms[0])
	c := &capIO{pool: r.pool}
	a.Service(c)
	if len(c.frames) == 0 {
		t.Fatal("no marker response")
	}
	kind, _, mk, err := parseSlow(c.frames[0][14:])
	if err != nil || kind != subtypeMarker || !mk.Response || mk.TxID != 0xdeadbeef || mk.Port != 7 {
		t.Fatalf("response %v %+v %v", kind, mk, err)
	}
}

type capIO struct {
	pool   *mbuf.Pool
	frames [][]byte
}

func (c *capIO) Alloc(ms []*mbuf.Mbuf) int { return c.pool.Alloc(ms) }
func (c *capIO) Send(port uint16, ms []*mbuf.Mbuf) {
	for _, m := range ms {
		c.frames = append(c.frames, append([]byte(nil), m.Data()...))
		c.pool.Free([]*mbuf.Mbuf{m})
	}
}
func (c *capIO) Rebind() {}

// FuzzParseSlow: LACP and marker parsing never panics, and what parses
// as an LACPDU survives a build/parse round trip.
func FuzzParseSlow(f *testing.F) {
	fr := make([]byte, frameLen)
	buildLACPDU(fr, [6]byte{2}, lacpInfo{SysPrio: 1, Key: 2, Port: 3, State: 0x3d}, lacpInfo{Key: 9})
	f.Add(fr[14:])
	buildMarkerResponse(fr, [6]byte{2}, markerPDU{Port: 1, TxID: 5})
	f.Add(fr[14:])
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, l, _, err := parseSlow(b)
		if err != nil || kind != subtypeLACP {
			return
		}
		out := make([]byte, frameLen)
		buildLACPDU(out, [6]byte{}, l.Actor, l.Partner)
		k2, l2, _, err := parseSlow(out[14:])
		if err != nil || k2 != subtypeLACP || l2.Actor != l.Actor || l2.Partner != l.Partner {
			t.Fatalf("round trip: %+v -> %+v (%v)", l, l2, err)
		}
	})
}

// BenchmarkTxBurst: ns/op is per packet (32-packet bursts over 2 members,
// l2,l3,l4 hash), against BenchmarkTxBurstOne (one member: no split).
func BenchmarkTxBurst(b *testing.B)    { benchTx(b, "m0 m1", false) }
func BenchmarkTxBurstOne(b *testing.B) { benchTx(b, "m0", false) }

// BenchmarkTxBurstHashed: frames carrying the pipeline's hash
// (mbuf.FlagTxHash), as routed frames do.
func BenchmarkTxBurstHashed(b *testing.B) { benchTx(b, "m0 m1", true) }

func benchTx(b *testing.B, members string, hashed bool) {
	r := newRig(b, "m0", "m1")
	for _, s := range r.ports {
		s.keep = false
	}
	p, err := r.open("lagg0", pmd.Args{"laggport": members, "proto": "loadbalance"})
	if err != nil {
		b.Fatal(err)
	}
	ms := make([]*mbuf.Mbuf, 32)
	frames := make([][]byte, 64)
	hashes := make([]uint32, 64)
	for i := range frames {
		frames[i] = frame(i)
		hashes[i] = p.hash(frames[i])
	}
	// CPU time of this thread next to wall time: on a shared machine
	// being descheduled inflates wall time, not CPU time.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i += 32 {
		n := r.pool.Alloc(ms)
		for j, m := range ms[:n] {
			f := frames[(i+j)&63]
			copy(m.Append(len(f)), f)
			if hashed {
				m.Hash = hashes[(i+j)&63]
				m.Flags |= mbuf.FlagTxHash | mbuf.FlagHashValid
			}
		}
		p.TxBurst(0, ms[:n])
	}
	b.StopTimer()
	b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/pkt")
}

// threadCPU returns the calling thread's CPU time in nanoseconds.
func threadCPU() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
