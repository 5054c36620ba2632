package lagg

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/pmd/mcast"
)

// mcStub is a member port with multicast memberships.
type mcStub struct {
	*stubPort
	owners mcast.Owners
}

func (s *mcStub) SetMulticast(owner string, macs []net.HardwareAddr) error {
	s.owners.Set(owner, macs)
	return nil
}
func (s *mcStub) Multicast() []string { return s.owners.Groups() }

// TestReconfigureMembers: two LACP laggs back to back over a0-b0 and
// a1-b1; a2-b2 is added live on both sides, then a1 removed live from A:
// the members that stay never stop distributing (no renegotiation), the
// new one joins by itself, the removed one leaves the transmit set at once,
// gives back its multicast groups and its claim, and its last LACPDU (out
// of sync) takes it out of B's aggregator without waiting for a timeout.
func TestReconfigureMembers(t *testing.T) {
	r := newRig(t, "a0", "a1", "a2", "b0", "b1", "b2")
	mc := map[string]*mcStub{}
	lookup := func(n string) (pmd.Port, uint16, bool) {
		if _, ok := r.ports[n]; !ok {
			return nil, 0, false
		}
		if mc[n] == nil {
			mc[n] = &mcStub{stubPort: r.ports[n]}
		}
		return mc[n], r.ids[n], true
	}
	cfg := func(name string, id uint16, members string, sh *pmd.Shared) pmd.Config {
		return pmd.Config{Name: name, ID: id, Driver: DriverName, Args: pmd.Args{"laggport": members, "proto": "lacp", "lacp": "fast"},
			Pools: []*mbuf.Pool{r.pool}, Shared: sh, Lookup: lookup}
	}
	shA, shB := pmd.NewShared(), pmd.NewShared()
	a, err := Open(cfg("laggA", 1, "a0 a1", shA))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(cfg("laggB", 2, "b0 b1", shB))
	if err != nil {
		t.Fatal(err)
	}
	ids := r.ids
	ab := &wire{t: t, pool: r.pool, from: a, to: &b, ids: map[uint16]uint16{ids["a0"]: ids["b0"], ids["a1"]: ids["b1"], ids["a2"]: ids["b2"]}, cut: map[uint16]bool{}}
	ba := &wire{t: t, pool: r.pool, from: b, to: &a, ids: map[uint16]uint16{ids["b0"]: ids["a0"], ids["b1"]: ids["a1"], ids["b2"]: ids["a2"]}, cut: map[uint16]bool{}}
	now := time.Now()
	distributing := func(p *Port, name string) bool {
		set := p.active.Load()
		for _, i := range set.idx {
			if p.members[i].name == name {
				return true
			}
		}
		return false
	}
	// step runs both sides and checks that the members in keep never stop
	// distributing.
	step := func(n int, keep ...string) {
		t.Helper()
		for range n {
			now = now.Add(100 * time.Millisecond)
			a.serviceAt(now, ab)
			b.serviceAt(now, ba)
			for _, k := range keep {
				if !distributing(a, "a"+k) || !distributing(b, "b"+k) {
					t.Fatalf("member %s stopped distributing during a live change of another\nA %v\nB %v", k, a.Status().Rows, b.Status().Rows)
				}
			}
		}
	}
	step(10)
	if len(a.active.Load().ports) != 2 || len(b.active.Load().ports) != 2 {
		t.Fatalf("not negotiated: %v / %v", a.active.Load().idx, b.active.Load().idx)
	}
	if g := mc["a1"].Multicast(); !slices.Contains(g, mcast.SlowProtocols.String()) {
		t.Fatalf("a1 multicast %v", g)
	}
	statsBefore := a.Stats()[0]

	// Add a2 and b2 live.
	for _, x := range []struct {
		p       *Port
		c       pmd.Config
		members string
	}{{a, cfg("laggA", 1, "", shA), "a0 a1 a2"}, {b, cfg("laggB", 2, "", shB), "b0 b1 b2"}} {
		x.c.Args["laggport"] = x.members
		apply, err := x.p.Reconfigure(x.c)
		if err != nil {
			t.Fatalf("%s: %v", x.p.info.Name, err)
		}
		apply()
	}
	if l := a.Lowers(); len(l) != 3 || l[2].Port != ids["a2"] {
		t.Fatalf("lowers after adding a2: %+v", l)
	}
	step(20, "0", "1")
	if !distributing(a, "a2") || !distributing(b, "b2") {
		t.Fatalf("a2-b2 not distributing after 2 s\nA %v\nB %v", a.Status().Rows, b.Status().Rows)
	}
	if g := mc["a2"].Multicast(); !slices.Contains(g, mcast.SlowProtocols.String()) {
		t.Fatalf("a2 did not join the slow-protocols group: %v", g)
	}
	ports := map[uint16]bool{}
	for _, m := range a.members {
		ports[m.lacp.actor.Port] = true
	}
	if len(ports) != 3 {
		t.Fatalf("LACP port numbers not distinct: %v", ports)
	}

	// Remove a1 live from A only: it leaves A's transmit set at once, and
	// its last LACPDU takes b1 out of B's aggregator at B's next service.
	c := cfg("laggA", 1, "a0 a2", shA)
	apply, err := a.Reconfigure(c)
	if err != nil {
		t.Fatal(err)
	}
	apply()
	if distributing(a, "a1") || len(a.members) != 2 {
		t.Fatalf("a1 still in A: %v", a.active.Load().idx)
	}
	if mc["a1"].Multicast() == nil || len(mc["a1"].Multicast()) != 0 {
		t.Fatalf("a1 kept multicast groups: %v", mc["a1"].Multicast())
	}
	shA.Do(func(sh map[any]any) {
		if _, ok := sh[memberKey{ids["a1"]}]; ok {
			t.Error("a1 still claimed")
		}
	})
	step(2, "0", "2")
	if distributing(b, "b1") {
		t.Fatalf("b1 still distributing after a1's last LACPDU: %v", b.Status().Rows)
	}
	step(40, "0", "2") // 4 s: longer than the short timeout; nothing else moves
	if s := a.Stats()[0]; s.RxPackets < statsBefore.RxPackets || s.TxPackets < statsBefore.TxPackets {
		t.Errorf("lagg counters went back: %+v -> %+v", statsBefore, s)
	}
	// a1 can join again.
	c = cfg("laggA", 1, "a0 a1 a2", shA)
	if apply, err = a.Reconfigure(c); err != nil {
		t.Fatal(err)
	}
	apply()
	step(30, "0", "2")
	if !distributing(a, "a1") || !distributing(b, "b1") {
		t.Fatalf("a1-b1 not back\nA %v\nB %v", a.Status().Rows, b.Status().Rows)
	}
	a.Close()
	b.Close()
	if n := r.pool.Stats().InUse; n != 0 {
		t.Errorf("%d mbufs in use", n)
	}
}

// TestReconfigureRefused: what cannot be changed live asks for a reopen;
// wrong arguments fail as Open would, and change nothing.
func TestReconfigureRefused(t *testing.T) {
	r := newRig(t, "m0", "m1", "m2", "m3")
	p, err := r.open("lagg0", pmd.Args{"laggport": "m0 m1", "proto": "loadbalance"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.open("lagg9", pmd.Args{"laggport": "m3"}); err != nil {
		t.Fatal(err)
	}
	r.ports["m2"].info.TxQueues = 0
	for _, tc := range []struct {
		args   pmd.Args
		reopen bool
		want   string
	}{
		{pmd.Args{"laggport": "m0 m1", "proto": "lacp"}, true, "proto changed"},
		{pmd.Args{"laggport": "m0 m1", "proto": "loadbalance", "hash": "l3"}, true, "hash changed"},
		{pmd.Args{"laggport": "m0 m1 m2", "proto": "loadbalance"}, true, "transmit queues"},
		{pmd.Args{"laggport": "", "proto": "loadbalance"}, false, "no members"},
		{pmd.Args{"laggport": "m0 m9", "proto": "loadbalance"}, false, "m9: no such port"},
		{pmd.Args{"laggport": "m0 m3", "proto": "loadbalance"}, false, "member of lagg9 already"},
	} {
		apply, err := p.Reconfigure(pmd.Config{Name: "lagg0", ID: 1, Args: tc.args, Shared: r.shared,
			Lookup: func(n string) (pmd.Port, uint16, bool) { s, ok := r.ports[n]; return s, r.ids[n], ok }})
		if err == nil || apply != nil || errors.Is(err, pmd.ErrReopen) != tc.reopen || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v (reopen %v), want %q reopen %v", tc.args, err, errors.Is(err, pmd.ErrReopen), tc.want, tc.reopen)
		}
	}
	if len(p.members) != 2 || len(p.active.Load().ports) != 2 {
		t.Fatalf("a refused change changed the lagg: %d members", len(p.members))
	}
}
