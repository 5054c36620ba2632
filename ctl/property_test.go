package ctl

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/ctl/show"
)

// refModel is the property test's own, naive model of what the daemon
// should be running: ports (null driver) with their FIB, admin state and
// addresses, static routes, net.fibs. It decides by itself whether a
// command is valid, independently of ctl/model.go.
type refModel struct {
	fibs   int
	ports  map[string]*refPort
	routes map[refRoute]string // -> "blackhole" or the gateway
}

type refPort struct {
	fib   int
	up    bool
	addrs []netip.Prefix
}

type refRoute struct {
	fib    int
	prefix netip.Prefix
}

func (m *refModel) clone() *refModel {
	c := &refModel{fibs: m.fibs, ports: map[string]*refPort{}, routes: maps.Clone(m.routes)}
	for n, p := range m.ports {
		cp := *p
		cp.addrs = slices.Clone(p.addrs)
		c.ports[n] = &cp
	}
	return c
}

func (m *refModel) onLink(a netip.Addr) bool {
	for _, p := range m.ports {
		for _, pf := range p.addrs {
			if pf.Masked().Contains(a) && pf.Addr() != a {
				return true
			}
		}
	}
	return false
}

// gen makes one command line and applies it to m, reporting whether it
// is valid. Lines that do not parse are valid=false too.
func (m *refModel) gen(r *rand.Rand) (string, bool) {
	pn := fmt.Sprintf("n%d", r.IntN(4))
	k := r.IntN(6)
	fib := r.IntN(4)
	switch r.IntN(12) {
	case 0:
		line := fmt.Sprintf("port add %s driver null fib %d", pn, fib)
		if _, ok := m.ports[pn]; ok || fib >= m.fibs {
			return line, false
		}
		m.ports[pn] = &refPort{fib: fib, up: true}
		return line, true
	case 1:
		line := "port del " + pn
		if _, ok := m.ports[pn]; !ok {
			return line, false
		}
		delete(m.ports, pn)
		return line, true
	case 2, 3:
		pf := netip.MustParsePrefix(fmt.Sprintf("198.18.%d.1/24", k))
		line := fmt.Sprintf("addr add %s %s", pn, pf)
		p, ok := m.ports[pn]
		if !ok {
			return line, false
		}
		for _, q := range m.ports {
			if slices.Contains(q.addrs, pf) {
				return line, false
			}
		}
		p.addrs = append(p.addrs, pf)
		return line, true
	case 4:
		pf := netip.MustParsePrefix(fmt.Sprintf("198.18.%d.1/24", k))
		line := fmt.Sprintf("addr del %s %s", pn, pf)
		p, ok := m.ports[pn]
		if !ok || !slices.Contains(p.addrs, pf) {
			return line, false
		}
		p.addrs = slices.DeleteFunc(p.addrs, func(x netip.Prefix) bool { return x == pf })
		return line, true
	case 5, 6:
		pf := netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/24", r.IntN(8)))
		line := fmt.Sprintf("route add %s blackhole fib %d", pf, fib)
		if fib >= m.fibs {
			return line, false
		}
		m.routes[refRoute{fib, pf}] = "blackhole"
		return line, true
	case 7:
		pf := netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/24", r.IntN(8)))
		gw := netip.MustParseAddr(fmt.Sprintf("198.18.%d.9", k))
		line := fmt.Sprintf("route add %s via %s fib %d", pf, gw, fib)
		if fib >= m.fibs || !m.onLink(gw) {
			return line, false
		}
		m.routes[refRoute{fib, pf}] = gw.String()
		return line, true
	case 8:
		pf := netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/24", r.IntN(8)))
		line := fmt.Sprintf("route del %s fib %d", pf, fib)
		if fib >= m.fibs {
			return line, false
		}
		if _, ok := m.routes[refRoute{fib, pf}]; !ok {
			return line, false
		}
		delete(m.routes, refRoute{fib, pf})
		return line, true
	case 9:
		n := 1 + r.IntN(4)
		line := fmt.Sprintf("set net.fibs %d", n)
		for _, p := range m.ports {
			if p.fib >= n {
				return line, false
			}
		}
		if n < m.fibs {
			for rr := range m.routes {
				if rr.fib >= n {
					return line, false
				}
			}
		}
		m.fibs = n
		return line, true
	case 10:
		up := r.IntN(2) == 0
		line := fmt.Sprintf("port set %s %s", pn, map[bool]string{true: "up", false: "down"}[up])
		p, ok := m.ports[pn]
		if !ok {
			return line, false
		}
		p.up = up
		return line, true
	default:
		return []string{"route add nonsense", "port add", "set net.fibs 0", "bogus", "addr add n0 198.18.0.1"}[r.IntN(5)], false
	}
}

// gatewaysOK: every gateway route still has its gateway on a link (checked
// once at the end of a batch: an address may move within one).
func (m *refModel) gatewaysOK() bool {
	for _, gw := range m.routes {
		if gw != "blackhole" && !m.onLink(netip.MustParseAddr(gw)) {
			return false
		}
	}
	return true
}

// TestPropertyBatches: random sequences of valid and invalid batches
// against a running daemon (null ports generating traffic, a ring pair)
// never panic, are accepted exactly when the reference model says so, and
// leave the running state (ports as opened, routes as in the FIBs) equal to
// the reference model.
func TestPropertyBatches(t *testing.T) {
	d, _ := nullDaemon(t, `
port add gen driver null
addr add gen 198.18.99.1/24
port add ra driver ring peer=x
port add rb driver ring peer=x
addr add ra 198.18.100.1/24
addr add rb 198.18.101.1/24
`)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	ref := &refModel{fibs: 1, ports: map[string]*refPort{}, routes: map[refRoute]string{}}
	batches := 2000
	if testing.Short() {
		batches = 300
	}
	ctx := context.Background()
	for i := 0; i < batches; i++ {
		next := ref.clone()
		valid := true
		var lines []string
		for j := 1 + r.IntN(4); j > 0; j-- {
			line, ok := next.gen(r)
			lines = append(lines, line)
			valid = valid && ok
		}
		valid = valid && next.gatewaysOK()
		resp := ctlsock.Handle(ctx, d, &ctlsock.Request{Lines: lines})
		if resp.OK != valid {
			t.Fatalf("batch %d %q: ok=%v (%s), the reference model says valid=%v", i, lines, resp.OK, resp.Error, valid)
		}
		if strings.Contains(resp.Error, "internal error") {
			t.Fatalf("batch %d %q: %s", i, lines, resp.Error)
		}
		if valid {
			ref = next
		}
		if i%10 == 9 || i == batches-1 {
			compareRunning(t, d, ref, i)
		}
	}
	if n := d.Panics(); n != 0 {
		t.Fatalf("%d panics recovered", n)
	}
	if d.Err() != nil {
		t.Fatal(d.Err())
	}
	// Traffic flowed all along (the null port generates it).
	var rx uint64
	for _, p := range portRows(t, d) {
		if p.Name == "gen" {
			rx = p.Stats.RxPackets
		}
	}
	if rx == 0 {
		t.Fatal("no packets received on the generating port: no traffic flowed")
	}
}

func portRows(t *testing.T, d *Daemon) []show.Port {
	t.Helper()
	res, err := run(t, d, "show ports")
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Data.([]show.Port)
}

// compareRunning checks the daemon's ports and static routes against ref.
func compareRunning(t *testing.T, d *Daemon, ref *refModel, i int) {
	t.Helper()
	cmds, err := cmdlang.ParseLines([]string{"show ports", "show routes", "get net.fibs"}, cmdlang.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Exec(context.Background(), cmds)
	if err != nil {
		t.Fatalf("after batch %d: %v", i, err)
	}
	ports := res[0].Data.([]show.Port)
	got := map[string]string{}
	for _, p := range ports {
		if p.Name == "ra" || p.Name == "rb" || p.Name == "gen" {
			continue
		}
		got[p.Name] = fmt.Sprintf("fib %d up %v addrs %v", p.FIB, p.Up, p.Addrs)
	}
	want := map[string]string{}
	for n, p := range ref.ports {
		want[n] = fmt.Sprintf("fib %d up %v addrs %v", p.fib, p.up, p.addrs)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("after batch %d: running ports\n%v\nmodel\n%v", i, got, want)
	}
	gotR := map[refRoute]string{}
	connected := map[refRoute]bool{}
	for _, rt := range res[1].Data.([]show.Route) {
		k := refRoute{rt.FIB, rt.Destination}
		switch rt.Origin {
		case show.Static, show.Loaded:
			if rt.Kind == cmdlang.Blackhole {
				gotR[k] = "blackhole"
			} else if len(rt.Gateways) == 1 {
				gotR[k] = rt.Gateways[0].String()
			} else {
				gotR[k] = fmt.Sprint(rt.Kind, rt.Gateways)
			}
		case show.Connected:
			connected[k] = true
		}
	}
	if !maps.Equal(gotR, ref.routes) {
		t.Fatalf("after batch %d: FIB static routes\n%v\nmodel\n%v", i, gotR, ref.routes)
	}
	for _, p := range ref.ports {
		for _, a := range p.addrs {
			for f := 0; f < ref.fibs; f++ {
				if !connected[refRoute{f, a.Masked()}] {
					t.Fatalf("after batch %d: connected %s missing from fib %d", i, a.Masked(), f)
				}
			}
		}
	}
	if got := strings.TrimSpace(res[2].Text); !strings.Contains(got, fmt.Sprint(ref.fibs)) {
		t.Fatalf("after batch %d: net.fibs %q, model %d", i, got, ref.fibs)
	}
}

// TestPanicPolicy: the policy of docs/ctl.md. A panic while validating a
// batch or answering a query is recovered: the batch gets an internal
// error, nothing changed, the daemon goes on. A panic while the running
// stack is being changed stops the daemon (Failed), and Shutdown still
// closes everything.
func TestPanicPolicy(t *testing.T) {
	d, _ := nullDaemon(t, nullConfig)
	before := text(t, d, "show routes")
	for _, ph := range []phase{phaseValidate, phaseQuery} {
		d.do(func(s *stack) {
			s.panicHook = func(p phase) {
				if p == ph {
					panic("injected")
				}
			}
		})
		_, err := run(t, d, "route add 198.51.100.0/24 blackhole", "show routes")
		if err == nil || !strings.Contains(err.Error(), "internal error while "+ph.String()) {
			t.Fatalf("panic while %s: %v", ph, err)
		}
		d.do(func(s *stack) { s.panicHook = nil })
		if ph == phaseValidate && text(t, d, "show routes") != before {
			t.Fatalf("a batch that panicked while validating changed the routes")
		}
		if d.Err() != nil {
			t.Fatalf("daemon failed after a recoverable panic: %v", d.Err())
		}
	}
	if d.Panics() != 2 {
		t.Fatalf("Panics() = %d, want 2", d.Panics())
	}
	d.do(func(s *stack) {
		s.panicHook = func(p phase) {
			if p == phaseReconcile {
				panic("injected")
			}
		}
	})
	_, err := run(t, d, "route add 198.51.100.0/24 blackhole")
	if err == nil || !strings.Contains(err.Error(), "fwdd stopped") {
		t.Fatalf("panic while applying: %v", err)
	}
	select {
	case <-d.Failed():
	case <-time.After(5 * time.Second):
		t.Fatal("daemon not failed after a panic while applying")
	}
	if _, err := run(t, d, "show routes"); err == nil {
		t.Fatal("a failed daemon still answers")
	}
	d.Shutdown()
}

// TestReplacedGatewayRouteNotRechecked: found by TestPropertyBatches. A
// gateway route replaced in the same batch that removes its gateway's
// network is checked as replaced, not as it was.
func TestReplacedGatewayRouteNotRechecked(t *testing.T) {
	d, _ := nullDaemon(t, nullConfig+"addr add p0 198.18.5.1/24\nroute add 198.19.5.0/24 via 198.18.5.9\n")
	if _, err := run(t, d, "route add 198.19.5.0/24 blackhole", "addr del p0 198.18.5.1/24"); err != nil {
		t.Fatalf("replacing the route and removing its gateway's network in one batch: %v", err)
	}
	if _, err := run(t, d, "addr add p0 198.18.6.1/24", "route add 198.19.6.0/24 via 198.18.6.9"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, d, "addr del p0 198.18.6.1/24"); err == nil {
		t.Fatal("removing a gateway's network under a route that still uses it was accepted")
	}
}
