package vlan

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/pmd/mcast"
)

// parentPort records what it transmits (and frees it); accept < 0 takes
// everything, else at most accept frames per burst.
type parentPort struct {
	pool   *mbuf.Pool
	sent   [][]byte
	accept int
	keep   bool
	owners mcast.Owners
}

func (s *parentPort) RxBurst(int, []*mbuf.Mbuf) int { return 0 }
func (s *parentPort) TxBurst(q int, ms []*mbuf.Mbuf) int {
	n := len(ms)
	if s.accept >= 0 {
		n = min(n, s.accept)
	}
	for _, m := range ms[:n] {
		if s.keep {
			s.sent = append(s.sent, append([]byte(nil), m.Data()...))
		}
	}
	s.pool.Free(ms[:n])
	return n
}
func (s *parentPort) Info() pmd.Info {
	return pmd.Info{Name: "p0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, MTU: 1500, RxQueues: 2, TxQueues: 2}
}
func (s *parentPort) Link() pmd.Link          { return pmd.Link{Up: true, Present: true} }
func (s *parentPort) Stats() []pmd.QueueStats { return make([]pmd.QueueStats, 2) }
func (s *parentPort) Close() error            { return nil }
func (s *parentPort) SetMulticast(owner string, macs []net.HardwareAddr) error {
	s.owners.Set(owner, macs)
	return nil
}
func (s *parentPort) Multicast() []string { return s.owners.Groups() }

type rig struct {
	pool   *mbuf.Pool
	parent *parentPort
	shared *pmd.Shared
}

func newRig(t testing.TB) *rig {
	pool, err := mbuf.NewPool(mbuf.Config{Count: 1024, CacheSize: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return &rig{pool: pool, parent: &parentPort{pool: pool, accept: -1, keep: true}, shared: pmd.NewShared()}
}

func (r *rig) open(name string, args pmd.Args) (*Port, error) {
	return Open(pmd.Config{Name: name, ID: 5, Driver: DriverName, Args: args, Pools: []*mbuf.Pool{r.pool}, Shared: r.shared,
		Lookup: func(n string) (pmd.Port, uint16, bool) {
			if n == "p0" {
				return r.parent, 3, true
			}
			return nil, 0, false
		}})
}

// frame is an untagged IPv4 frame with payload byte b.
func frame(b byte) []byte {
	f := []byte{2, 0, 0, 0, 9, 9, 2, 0, 0, 0, 0, 1, 0x08, 0x00}
	return append(f, bytes.Repeat([]byte{b}, 46)...)
}

func (r *rig) burst(t testing.TB, frames ...[]byte) []*mbuf.Mbuf {
	ms := make([]*mbuf.Mbuf, len(frames))
	if r.pool.Alloc(ms) != len(ms) {
		t.Fatal("pool exhausted")
	}
	for i, f := range frames {
		copy(ms[i].Append(len(f)), f)
	}
	return ms
}

func TestOpenErrors(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		args pmd.Args
		want string
	}{
		{pmd.Args{"parent": "p0"}, "argument vid"},
		{pmd.Args{"parent": "p0", "vid": "0"}, "argument vid"},
		{pmd.Args{"parent": "p0", "vid": "4095"}, "argument vid"},
		{pmd.Args{"parent": "p9", "vid": "7"}, "parent p9: no such port"},
	} {
		if _, err := r.open("x", tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := Open(pmd.Config{Name: "x", Args: pmd.Args{"parent": "p0", "vid": "7"}}); err == nil || !strings.Contains(err.Error(), "Lookup") {
		t.Errorf("no Lookup: %v", err)
	}
	a, err := r.open("p0.7", pmd.Args{"parent": "p0", "vid": "7"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.open("other.7", pmd.Args{"parent": "p0", "vid": "7"}); err == nil || !strings.Contains(err.Error(), "vid 7 on p0 is port p0.7 already") {
		t.Errorf("second sub-interface for vid 7: %v", err)
	}
	if _, err := r.open("p0.8", pmd.Args{"parent": "p0", "vid": "8"}); err != nil {
		t.Errorf("vid 8: %v", err)
	}
	a.Close()
	if _, err := r.open("other.7", pmd.Args{"parent": "p0", "vid": "7"}); err != nil {
		t.Errorf("vid 7 after its sub-interface closed: %v", err)
	}
}

// TestInfoLowers: the sub-interface has its parent's MAC, MTU and
// transmit queues, no receive queue, and one binding: its VID on the
// parent, with receive counters per worker plus the control path.
func TestInfoLowers(t *testing.T) {
	r := newRig(t)
	p, err := r.open("p0.100", pmd.Args{"parent": "p0", "vid": "100"})
	if err != nil {
		t.Fatal(err)
	}
	in := p.Info()
	if in.Driver != DriverName || in.MTU != 1500 || in.TxQueues != 2 || in.RxQueues != 0 || in.MAC.String() != "02:00:00:00:00:01" {
		t.Fatalf("info %+v", in)
	}
	l := p.Lowers()
	if len(l) != 1 || l[0].Port != 3 || l[0].VID != 100 || len(l[0].Rx) != 2 || l[0].Collecting != nil || l[0].Control != nil {
		t.Fatalf("lowers %+v", l)
	}
	if !p.Link().Up || p.RxBurst(0, make([]*mbuf.Mbuf, 4)) != 0 {
		t.Fatal("link or receive")
	}
}

// TestTxTags: transmit inserts the 802.1Q tag (priority 0, this VID)
// after the MACs, the rest unchanged, through the parent's queue.
func TestTxTags(t *testing.T) {
	r := newRig(t)
	p, err := r.open("p0.291", pmd.Args{"parent": "p0", "vid": "291"}) // 0x123
	if err != nil {
		t.Fatal(err)
	}
	f := frame(0xaa)
	if n := p.TxBurst(1, r.burst(t, f, f)); n != 2 {
		t.Fatalf("sent %d of 2", n)
	}
	want := append(append(append([]byte(nil), f[:12]...), 0x81, 0x00, 0x01, 0x23), f[12:]...)
	for _, got := range r.parent.sent {
		if !bytes.Equal(got, want) {
			t.Fatalf("sent %x\nwant %x", got, want)
		}
	}
	s := p.Stats()
	if s[1].TxPackets != 2 || s[1].TxBytes != uint64(2*len(want)) {
		t.Fatalf("stats %+v", s[1])
	}
	if r.pool.Stats().InUse != 0 {
		t.Fatal("leak")
	}
}

// TestTxRefused: what the parent refuses comes back untagged, as given,
// after the sent ones, and is not counted.
func TestTxRefused(t *testing.T) {
	r := newRig(t)
	r.parent.accept = 1
	p, err := r.open("p0.7", pmd.Args{"parent": "p0", "vid": "7"})
	if err != nil {
		t.Fatal(err)
	}
	ms := r.burst(t, frame(1), frame(2), frame(3))
	n := p.TxBurst(0, ms)
	if n != 1 {
		t.Fatalf("sent %d, want 1", n)
	}
	for i, m := range ms[n:] {
		if !bytes.Equal(m.Data(), frame(byte(2+i))) {
			t.Fatalf("refused frame %d not restored: %x", i, m.Data())
		}
	}
	r.pool.Free(ms[n:])
	if s := p.Stats()[0]; s.TxPackets != 1 || s.TxBytes != uint64(len(frame(1))+4) {
		t.Fatalf("stats %+v", s)
	}
}

// TestTxBad: a frame with no room for the tag, or shorter than two MACs,
// is freed and counted as a transmit error (taken, as TxBurst's contract
// wants: the caller does not retry it); the others are sent in order.
func TestTxBad(t *testing.T) {
	r := newRig(t)
	p, err := r.open("p0.7", pmd.Args{"parent": "p0", "vid": "7"})
	if err != nil {
		t.Fatal(err)
	}
	ms := r.burst(t, frame(1), frame(2), []byte{1, 2, 3}, frame(4))
	ms[1].Prepend(ms[1].Headroom()) // no headroom left
	if n := p.TxBurst(0, ms); n != 4 {
		t.Fatalf("took %d of 4", n)
	}
	if len(r.parent.sent) != 2 || r.parent.sent[0][16] != 0x08 || r.parent.sent[0][18] != 1 || r.parent.sent[1][18] != 4 {
		t.Fatalf("sent %d frames: %x", len(r.parent.sent), r.parent.sent)
	}
	if s := p.Stats()[0]; s.TxErrors != 2 || s.TxPackets != 2 {
		t.Fatalf("stats %+v", s)
	}
	if r.pool.Stats().InUse != 0 {
		t.Fatal("leak")
	}
}

// TestMulticast: groups go to the parent under the sub-interface's own
// owner name, and are given back on close.
func TestMulticast(t *testing.T) {
	r := newRig(t)
	p, err := r.open("p0.7", pmd.Args{"parent": "p0", "vid": "7"})
	if err != nil {
		t.Fatal(err)
	}
	g := net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	if err := p.SetMulticast("addr", []net.HardwareAddr{g}); err != nil {
		t.Fatal(err)
	}
	if got := r.parent.owners["p0.7/addr"]; len(got) != 1 || got[0].String() != g.String() {
		t.Fatalf("parent's owners %v", r.parent.owners)
	}
	if m := p.Multicast(); len(m) != 1 || m[0] != g.String() {
		t.Fatalf("multicast %v", m)
	}
	p.Close()
	if len(r.parent.Multicast()) != 0 {
		t.Fatalf("parent kept %v after close", r.parent.Multicast())
	}
}

func TestTxZeroAllocs(t *testing.T) {
	r := newRig(t)
	r.parent.keep = false
	p, err := r.open("p0.7", pmd.Args{"parent": "p0", "vid": "7"})
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
