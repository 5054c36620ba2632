package ctl

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/nlmirror"
)

// lcpEnv is fwdd running in its own namespace with null ports p0 and p1
// whose kernel interfaces are e0 and e1.
type lcpEnv struct {
	t    *testing.T
	n    *testnet.Net
	ns   string
	conf string
	d    *Daemon
	// mirror adjusts the netlink mirror's configuration (tests of overruns).
	mirror func(*nlmirror.Config)
	seq    int
}

const lcpConfig = `
port add p0 driver ring lcp e0
port add p1 driver ring lcp e1
addr add p0 198.18.0.1/24
addr add p0 2001:2::1/64
`

func newLCPEnv(t *testing.T, config string) *lcpEnv {
	return newLCPEnvWith(t, config, nil)
}

// newLCPEnvWith is newLCPEnv with the mirror's configuration adjusted.
func newLCPEnvWith(t *testing.T, config string, mirror func(*nlmirror.Config)) *lcpEnv {
	n := testnet.New(t)
	e := &lcpEnv{t: t, n: n, ns: n.NS("fw"), mirror: mirror}
	e.conf = filepath.Join(t.TempDir(), "fwdd.conf")
	if err := os.WriteFile(e.conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start()
	return e
}

func (e *lcpEnv) start() {
	e.t.Helper()
	d, err := Start(Options{
		ConfigFile: e.conf, NetNS: testnet.Path(e.ns),
		Engine: fwd.Config{Workers: 1, PoolSize: 2048, CheckedPools: true},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		mirror: e.mirror,
	})
	if err != nil {
		e.t.Fatalf("start fwdd: %v", err)
	}
	e.d = d
	e.t.Cleanup(d.Shutdown)
	// The kernel interfaces: made by lcp when it does, else here (a TAP
	// nobody holds: up, no carrier, enough for routes and addresses).
	for _, dev := range []string{"e0", "e1"} {
		if _, err := e.n.TryIn(e.ns, "ip", "link", "show", dev); err != nil {
			e.n.In(e.ns, "ip", "tuntap", "add", "dev", dev, "mode", "tap")
		}
		e.n.In(e.ns, "ip", "link", "set", dev, "up")
	}
	if strings.Contains(readFile(e.t, e.conf), "addr add p0 198.18.0.1/24") {
		testnet.Eventually(e.t, 10*time.Second, "fwdd's addresses on e0", func() bool {
			out := e.ip("addr", "show", "dev", "e0")
			return strings.Contains(out, "198.18.0.1/24") && strings.Contains(out, "2001:2::1/64")
		})
	}
}

func readFile(t *testing.T, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *lcpEnv) ip(args ...string) string {
	e.t.Helper()
	return e.n.In(e.ns, append([]string{"ip"}, args...)...)
}

func (e *lcpEnv) exec(lines ...string) error {
	cmds, err := cmdlang.ParseLines(lines, cmdlang.Options{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = e.d.Exec(ctx, cmds)
	return err
}

func (e *lcpEnv) mustExec(lines ...string) {
	e.t.Helper()
	if err := e.exec(lines...); err != nil {
		e.t.Fatal(err)
	}
}

// routes returns show routes' rows of fib f by destination.
func (e *lcpEnv) routes(f int) map[string]show.Route {
	e.t.Helper()
	cmds, _ := cmdlang.ParseLines([]string{fmt.Sprintf("show routes fib %d", f)}, cmdlang.Options{})
	res, err := e.d.Exec(context.Background(), cmds)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]show.Route{}
	for _, r := range res[0].Data.([]show.Route) {
		out[r.Destination.String()] = r
	}
	return out
}

// waitRoute waits until fib f's route to dst satisfies ok (nil: absent).
func (e *lcpEnv) waitRoute(f int, dst string, what string, ok func(r show.Route, present bool) bool) {
	e.t.Helper()
	var last show.Route
	var had bool
	deadline := testnet.Deadline(10 * time.Second)
	for {
		last, had = e.routes(f)[dst]
		if ok(last, had) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("fib %d %s: %s; have %+v (present %v)", f, dst, what, last, had)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func gateways(r show.Route) string {
	var s []string
	for _, g := range r.Gateways {
		s = append(s, g.String())
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

func kernelVia(gw, netif string) func(show.Route, bool) bool {
	return func(r show.Route, ok bool) bool {
		return ok && r.Origin == show.Kernel && gateways(r) == gw && r.Netif == netif
	}
}

func absent(_ show.Route, ok bool) bool { return !ok }

func (e *lcpEnv) lcpStats() lcpShow {
	e.t.Helper()
	cmds, _ := cmdlang.ParseLines([]string{"show lcp"}, cmdlang.Options{})
	res, err := e.d.Exec(context.Background(), cmds)
	if err != nil {
		e.t.Fatal(err)
	}
	return res[0].Data.(lcpShow)
}

// TestLCPMirrorRoutes: real ip route and ip addr changes in fwdd's
// namespace are mirrored into the running daemon (route types, multipath,
// IPv6, foreign interfaces, a second table), static routes stay apart.
func TestLCPMirrorRoutes(t *testing.T) {
	e := newLCPEnv(t, "set net.fibs 2\n"+lcpConfig+"lcp fib 1 table 101\n")

	// fwdd's addresses appear on the kernel interface; the kernel's on the port.
	testnet.Eventually(t, 10*time.Second, "fwdd's address on e0", func() bool {
		out := e.ip("addr", "show", "dev", "e0")
		return strings.Contains(out, "198.18.0.1/24") && strings.Contains(out, "2001:2::1/64")
	})
	e.ip("addr", "add", "198.18.1.1/24", "dev", "e1")
	e.waitRoute(0, "198.18.1.0/24", "connected route of the kernel's address on e1", func(r show.Route, ok bool) bool {
		return ok && r.Origin == show.Connected && r.Netif == "p1"
	})
	e.ip("addr", "del", "198.18.1.1/24", "dev", "e1")
	e.waitRoute(0, "198.18.1.0/24", "address removed in the kernel", absent)
	e.ip("addr", "add", "198.18.1.1/24", "dev", "e1")
	e.mustExec("addr del p0 198.18.0.1/24")
	testnet.Eventually(t, 10*time.Second, "fwdd's removed address gone from e0", func() bool {
		return !strings.Contains(e.ip("addr", "show", "dev", "e0"), "198.18.0.1/24")
	})
	e.mustExec("addr add p0 198.18.0.1/24")
	testnet.Eventually(t, 10*time.Second, "address back on e0", func() bool {
		return strings.Contains(e.ip("addr", "show", "dev", "e0"), "198.18.0.1/24")
	})

	// Unicast, IPv4 and IPv6, gateway and on-link.
	e.ip("route", "add", "198.18.10.0/24", "via", "198.18.0.2")
	e.ip("-6", "route", "add", "2001:2:10::/48", "via", "2001:2::2")
	e.ip("route", "add", "198.18.12.0/24", "dev", "e1")
	e.waitRoute(0, "198.18.10.0/24", "gateway route", kernelVia("198.18.0.2", "p0"))
	e.waitRoute(0, "2001:2:10::/48", "IPv6 gateway route", kernelVia("2001:2::2", "p0"))
	e.waitRoute(0, "198.18.12.0/24", "on-link route", func(r show.Route, ok bool) bool {
		return ok && r.Origin == show.Kernel && r.Netif == "p1" && len(r.Gateways) == 0
	})
	// Multipath -> ECMP.
	e.ip("route", "add", "198.18.11.0/24", "nexthop", "via", "198.18.0.2", "nexthop", "via", "198.18.1.2")
	e.waitRoute(0, "198.18.11.0/24", "ECMP route", func(r show.Route, ok bool) bool {
		return ok && r.Origin == show.Kernel && gateways(r) == "198.18.0.2,198.18.1.2"
	})
	// Blackhole, unreachable, prohibit.
	e.ip("route", "add", "blackhole", "198.18.13.0/24")
	e.ip("route", "add", "unreachable", "198.18.14.0/24")
	e.ip("-6", "route", "add", "prohibit", "2001:2:14::/48")
	e.waitRoute(0, "198.18.13.0/24", "blackhole", func(r show.Route, ok bool) bool { return ok && r.Kind == cmdlang.Blackhole })
	e.waitRoute(0, "198.18.14.0/24", "unreachable -> reject", func(r show.Route, ok bool) bool { return ok && r.Kind == cmdlang.Reject })
	e.waitRoute(0, "2001:2:14::/48", "prohibit -> reject", func(r show.Route, ok bool) bool { return ok && r.Kind == cmdlang.Reject })
	// Table 101 feeds FIB 1; table 102 feeds nothing.
	e.ip("route", "add", "198.18.15.0/24", "via", "198.18.0.2", "table", "101")
	e.ip("route", "add", "198.18.16.0/24", "via", "198.18.0.2", "table", "102")
	e.waitRoute(1, "198.18.15.0/24", "table 101 in fib 1", kernelVia("198.18.0.2", "p0"))
	// A foreign interface (not a port's): ignored and counted.
	e.n.In(e.ns, "ip", "tuntap", "add", "dev", "x0", "mode", "tap")
	e.ip("link", "set", "x0", "up")
	e.ip("addr", "add", "198.19.0.1/24", "dev", "x0")
	before := e.lcpStats().Stats.Reasons[nlmirror.SkipForeign]
	e.ip("route", "add", "198.19.10.0/24", "via", "198.19.0.2")
	testnet.Eventually(t, 10*time.Second, "foreign route counted", func() bool {
		return e.lcpStats().Stats.Reasons[nlmirror.SkipForeign] > before
	})
	if _, ok := e.routes(0)["198.19.10.0/24"]; ok {
		t.Error("route through a foreign interface installed")
	}
	if _, ok := e.routes(0)["198.19.0.0/24"]; ok {
		t.Error("foreign interface's connected network installed")
	}
	for _, f := range []int{0, 1} {
		if _, ok := e.routes(f)["198.18.16.0/24"]; ok {
			t.Errorf("route of unmapped table 102 in fib %d", f)
		}
	}
	// A route through a kernel nexthop object: with nexthop_compat_mode
	// (the default) the kernel spells its hops out in the route's
	// messages, also when the object changes.
	if _, err := e.n.TryIn(e.ns, "ip", "nexthop", "add", "id", "7", "via", "198.18.0.2", "dev", "e0"); err == nil {
		e.ip("route", "add", "198.18.17.0/24", "nhid", "7")
		e.waitRoute(0, "198.18.17.0/24", "route through a nexthop object", kernelVia("198.18.0.2", "p0"))
		e.ip("nexthop", "replace", "id", "7", "via", "198.18.1.2", "dev", "e1")
		e.waitRoute(0, "198.18.17.0/24", "nexthop object replaced", kernelVia("198.18.1.2", "p1"))
	}
	// The kernel's own connected route for e0's address does not fight
	// fwdd's: still connected, p0.
	if r := e.routes(0)["198.18.0.0/24"]; r.Origin != show.Connected || r.Netif != "p0" {
		t.Errorf("connected route of p0: %+v", r)
	}

	// Replace, then delete.
	e.ip("route", "replace", "198.18.10.0/24", "via", "198.18.1.2")
	e.waitRoute(0, "198.18.10.0/24", "replaced route", kernelVia("198.18.1.2", "p1"))
	e.ip("route", "replace", "198.18.10.0/24", "via", "198.19.0.2")
	e.waitRoute(0, "198.18.10.0/24", "route moved to a foreign interface removed", absent)
	e.ip("-6", "route", "del", "2001:2:10::/48")
	e.waitRoute(0, "2001:2:10::/48", "deleted route", absent)

	// Static and kernel routes of one prefix: static wins, each origin
	// changes only its own.
	e.mustExec("route add 198.18.20.0/24 via 198.18.0.3")
	e.ip("route", "add", "198.18.20.0/24", "via", "198.18.0.2")
	e.sentinel()
	e.waitRoute(0, "198.18.20.0/24", "static kept over kernel", func(r show.Route, ok bool) bool {
		return ok && r.Origin == show.Static && gateways(r) == "198.18.0.3"
	})
	e.mustExec("route del 198.18.20.0/24")
	e.waitRoute(0, "198.18.20.0/24", "kernel route back after static deleted", kernelVia("198.18.0.2", "p0"))
	e.mustExec("route add 198.18.20.0/24 via 198.18.0.4")
	e.waitRoute(0, "198.18.20.0/24", "static over kernel", func(r show.Route, ok bool) bool {
		return ok && r.Origin == show.Static && gateways(r) == "198.18.0.4"
	})
	e.ip("route", "del", "198.18.20.0/24")
	e.sentinel()
	e.waitRoute(0, "198.18.20.0/24", "kernel delete leaves static alone", func(r show.Route, ok bool) bool {
		return ok && r.Origin == show.Static && gateways(r) == "198.18.0.4"
	})
	e.mustExec("route del 198.18.20.0/24")
	e.waitRoute(0, "198.18.20.0/24", "no kernel route to restore", absent)

	// show routes says which is which.
	out := func() string {
		cmds, _ := cmdlang.ParseLines([]string{"show routes fib 0"}, cmdlang.Options{})
		res, _ := e.d.Exec(context.Background(), cmds)
		return res[0].Text
	}()
	marked := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "198.18.11.0/24" && f[2] == "UG1" {
			marked = true
		}
		if len(f) >= 3 && f[0] == "198.18.0.0/24" && strings.Contains(f[2], "1") {
			t.Errorf("connected route marked as kernel: %q", l)
		}
	}
	if !marked {
		t.Errorf("show routes does not mark the kernel route 198.18.11.0/24 UG1:\n%s", out)
	}
	st := e.lcpStats()
	t.Logf("show lcp: %+v", st.Stats)
}

// TestLCPMirrorResync: routes changed while fwdd was not listening (its
// mirror stopped, the FIB kept) are put right by the dump of a new
// subscription: no stale route, nothing missing.
func TestLCPMirrorResync(t *testing.T) {
	e := newLCPEnv(t, lcpConfig)
	for i := range 50 {
		e.ip("route", "add", fmt.Sprintf("198.18.%d.0/24", 100+i), "via", "198.18.0.2")
	}
	e.waitRoute(0, "198.18.149.0/24", "routes mirrored", kernelVia("198.18.0.2", "p0"))

	// Stop listening; change the kernel's table; listen again.
	if err := e.d.do(func(s *stack) { s.lcpm.m.Close() }); err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		e.ip("route", "del", fmt.Sprintf("198.18.%d.0/24", 100+i))
	}
	e.ip("route", "replace", "198.18.130.0/24", "via", "198.18.0.9")
	e.ip("route", "add", "198.18.200.0/24", "via", "198.18.0.2")
	if _, ok := e.routes(0)["198.18.100.0/24"]; !ok {
		t.Fatal("the mirror was still listening")
	}
	var startErr error
	if err := e.d.do(func(s *stack) {
		s.lcpm.m, startErr = nlmirror.Start(nlmirror.Config{NetNS: s.opts.NetNS, Log: s.log})
	}); err != nil || startErr != nil {
		t.Fatal(err, startErr)
	}
	e.waitRoute(0, "198.18.200.0/24", "route added while not listening", kernelVia("198.18.0.2", "p0"))
	e.waitRoute(0, "198.18.130.0/24", "route replaced while not listening", kernelVia("198.18.0.9", "p0"))
	rs := e.routes(0)
	for i := range 50 {
		_, ok := rs[fmt.Sprintf("198.18.%d.0/24", 100+i)]
		if ok != (i >= 25) {
			t.Errorf("198.18.%d.0/24: present %v after resync", 100+i, ok)
		}
	}
	if st := e.lcpStats().Stats; st.Swept < 25 {
		t.Errorf("swept %d stale routes, want 25", st.Swept)
	}

	// A forced resync (as after an overrun) changes nothing when nothing
	// was lost, and also clears a route the kernel never had.
	if err := e.d.do(func(s *stack) {
		nh, _ := s.nexthop(fib.NextHop{Kind: fib.KindBlackhole})
		_ = s.fibs.Apply([]fib.Change{{Op: fib.OpAdd, Prefix: netip.MustParsePrefix("198.18.222.0/24"), NextHop: nh}})
		s.lcpm.m.Resync("test")
	}); err != nil {
		t.Fatal(err)
	}
	e.waitRoute(0, "198.18.222.0/24", "stale route swept by a forced resync", absent)
	e.waitRoute(0, "198.18.200.0/24", "kept by the resync", kernelVia("198.18.0.2", "p0"))
}

// TestLCPMirrorRestart: fwdd restarted converges to the kernel's routes,
// including those changed while it was down. (lcp removes the kernel
// interfaces at shutdown, and the kernel the routes through them: a
// routing daemon puts those back when the interface returns, as here.)
func TestLCPMirrorRestart(t *testing.T) {
	e := newLCPEnv(t, lcpConfig)
	e.ip("route", "add", "blackhole", "198.18.30.0/24")
	e.ip("route", "add", "unreachable", "198.18.32.0/24")
	e.ip("route", "add", "198.18.33.0/24", "via", "198.18.0.2")
	e.ip("-6", "route", "add", "2001:2:30::/48", "via", "2001:2::2")
	e.waitRoute(0, "198.18.33.0/24", "route", kernelVia("198.18.0.2", "p0"))
	e.waitRoute(0, "198.18.30.0/24", "blackhole", func(r show.Route, ok bool) bool { return ok && r.Kind == cmdlang.Blackhole })
	e.d.Shutdown()
	e.ip("route", "del", "198.18.30.0/24")
	e.ip("route", "add", "blackhole", "198.18.31.0/24")
	e.start()
	if !strings.Contains(e.ip("route", "show", "198.18.33.0/24"), "via") {
		e.ip("route", "add", "198.18.33.0/24", "via", "198.18.0.2")
		e.ip("-6", "route", "add", "2001:2:30::/48", "via", "2001:2::2")
	}
	e.waitRoute(0, "198.18.31.0/24", "route added while fwdd was down", func(r show.Route, ok bool) bool {
		return ok && r.Kind == cmdlang.Blackhole && r.Origin == show.Kernel
	})
	e.waitRoute(0, "198.18.32.0/24", "route kept while fwdd was down", func(r show.Route, ok bool) bool {
		return ok && r.Kind == cmdlang.Reject && r.Origin == show.Kernel
	})
	e.waitRoute(0, "198.18.33.0/24", "route through the kernel interface", kernelVia("198.18.0.2", "p0"))
	e.waitRoute(0, "2001:2:30::/48", "IPv6 route", kernelVia("2001:2::2", "p0"))
	e.waitRoute(0, "198.18.30.0/24", "route deleted while fwdd was down", absent)
}

// TestLCPMirrorChanges: what makes the mirror dump again (a kernel
// interface going down, the table map, net.fibs) leaves fwdd's FIBs
// exactly as the kernel's tables; IPv6 multipath is ECMP.
func TestLCPMirrorChanges(t *testing.T) {
	e := newLCPEnv(t, lcpConfig)
	e.mustExec("addr add p1 198.18.1.1/24", "addr add p1 2001:2:1::1/64")
	testnet.Eventually(t, 10*time.Second, "p1's addresses on e1", func() bool {
		out := e.ip("addr", "show", "dev", "e1")
		return strings.Contains(out, "198.18.1.1/24") && strings.Contains(out, "2001:2:1::1/64")
	})
	e.ip("-6", "route", "add", "2001:2:40::/48", "nexthop", "via", "2001:2::2", "nexthop", "via", "2001:2:1::2")
	e.waitRoute(0, "2001:2:40::/48", "IPv6 multipath as ECMP", func(r show.Route, ok bool) bool {
		return ok && r.Origin == show.Kernel && gateways(r) == "2001:2:1::2,2001:2::2"
	})
	e.ip("route", "add", "198.18.40.0/24", "via", "198.18.1.2")
	e.ip("route", "add", "198.18.41.0/24", "via", "198.18.0.2")
	e.waitRoute(0, "198.18.40.0/24", "route via e1", kernelVia("198.18.1.2", "p1"))

	// e1 down: Linux drops its IPv4 routes without a message; fwdd must
	// drop them too. Up again: the routing daemon re-adds them.
	e.ip("link", "set", "e1", "down")
	e.waitRoute(0, "198.18.40.0/24", "route via a downed interface gone", absent)
	e.waitRoute(0, "198.18.41.0/24", "route via e0 kept", kernelVia("198.18.0.2", "p0"))
	e.ip("link", "set", "e1", "up")
	testnet.Eventually(t, 10*time.Second, "e1's address back", func() bool {
		return strings.Contains(e.ip("addr", "show", "dev", "e1"), "198.18.1.1/24")
	})
	e.ip("route", "replace", "198.18.40.0/24", "via", "198.18.1.2")
	e.waitRoute(0, "198.18.40.0/24", "route via e1 again", kernelVia("198.18.1.2", "p1"))

	// The table map: off removes the kernel routes, on brings them back;
	// static routes stay.
	e.mustExec("route add 198.18.42.0/24 via 198.18.0.7")
	e.mustExec("lcp fib 0 off")
	e.waitRoute(0, "198.18.41.0/24", "kernel route gone with lcp fib 0 off", absent)
	if r := e.routes(0)["198.18.42.0/24"]; r.Origin != show.Static {
		t.Errorf("static route after lcp fib 0 off: %+v", r)
	}
	e.mustExec("lcp fib 0 table main")
	e.waitRoute(0, "198.18.41.0/24", "kernel route back", kernelVia("198.18.0.2", "p0"))

	// A new FIB set (net.fibs): the kernel routes are put into it; and a
	// second table into the new FIB.
	e.ip("route", "add", "198.18.43.0/24", "via", "198.18.0.2", "table", "101")
	e.mustExec("set net.fibs 2", "lcp fib 1 table 101")
	e.waitRoute(0, "198.18.41.0/24", "kernel route in the new FIB set", kernelVia("198.18.0.2", "p0"))
	e.waitRoute(1, "198.18.43.0/24", "table 101 in fib 1", kernelVia("198.18.0.2", "p0"))
	e.waitRoute(0, "198.18.42.0/24", "static route in the new FIB set", func(r show.Route, ok bool) bool {
		return ok && r.Origin == show.Static
	})
	// The table moves to another FIB: gone from the old one.
	e.mustExec("set net.fibs 3", "lcp fib 1 off", "lcp fib 2 table 101")
	e.waitRoute(2, "198.18.43.0/24", "table 101 in fib 2", kernelVia("198.18.0.2", "p0"))
	e.waitRoute(1, "198.18.43.0/24", "table 101 gone from fib 1", absent)
	if err := e.exec("lcp fib 0 table 101"); err == nil || !strings.Contains(err.Error(), "feeds fib 2 already") {
		t.Errorf("a table mapped twice: %v", err)
	}

	// A port removed: the routes through it go with it.
	e.waitRoute(0, "198.18.40.0/24", "route via e1", kernelVia("198.18.1.2", "p1"))
	e.mustExec("port del p1")
	if _, ok := e.routes(0)["198.18.40.0/24"]; ok {
		t.Error("route through a removed port still there right after port del")
	}
	e.waitRoute(0, "198.18.41.0/24", "route via e0 kept", kernelVia("198.18.0.2", "p0"))
	e.waitRoute(0, "2001:2:40::/48", "IPv6 multipath down to its hop via e0", kernelVia("2001:2::2", "p0"))
}

// TestLCPMirrorOverrun: the route socket overflows while the control
// goroutine is busy (a tiny socket buffer); the mirror resubscribes, dumps,
// and fwdd converges to exactly the kernel's table, the overrun counted.
func TestLCPMirrorOverrun(t *testing.T) {
	e := newLCPEnvWith(t, lcpConfig, func(c *nlmirror.Config) { c.RcvBuf = 4096; c.MaxPending = 3000 })
	var batch strings.Builder
	for i := range 100 {
		fmt.Fprintf(&batch, "route add 198.19.%d.0/24 via 198.18.0.2\n", i)
	}
	e.ipBatch(batch.String())
	e.waitRoute(0, "198.19.99.0/24", "routes", kernelVia("198.18.0.2", "p0"))

	// Hold the control goroutine while the kernel changes a lot.
	release := make(chan struct{})
	held := make(chan struct{})
	go e.d.do(func(*stack) { close(held); <-release })
	<-held
	batch.Reset()
	for i := range 100 {
		fmt.Fprintf(&batch, "route del 198.19.%d.0/24\n", i)
	}
	for i := range 20000 {
		fmt.Fprintf(&batch, "route add 198.18.%d.%d/32 via 198.18.0.2\n", 100+i/250, i%250)
	}
	e.ipBatch(batch.String())
	close(release)

	e.waitRoute(0, "198.18.179.249/32", "last route", kernelVia("198.18.0.2", "p0"))
	testnet.Eventually(t, 20*time.Second, "no stale route", func() bool {
		rs := e.routes(0)
		for i := range 100 {
			if _, ok := rs[fmt.Sprintf("198.19.%d.0/24", i)]; ok {
				return false
			}
		}
		n := 0
		for _, r := range rs {
			if r.Origin == show.Kernel {
				n++
			}
		}
		return n == 20000
	})
	st := e.lcpStats().Stats
	if st.Mirror.Overruns == 0 && st.Mirror.Dropped == 0 {
		t.Errorf("no overrun counted: %+v", st.Mirror)
	}
	t.Logf("mirror: %+v", st.Mirror)
	// The same counters in the metrics.
	mfs, err := e.d.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "fwdd_lcp_mirror_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if got["dumps"] < 2 || got["overruns"]+got["dropped"] == 0 || got["installed"] < 20000 {
		t.Errorf("fwdd_lcp_mirror_total: %v", got)
	}
}

// sentinel adds (or moves) a kernel route and waits until fwdd has it:
// kernel events are applied in order, so everything before it is applied.
func (e *lcpEnv) sentinel() {
	e.t.Helper()
	e.seq++
	gw := fmt.Sprintf("198.18.0.%d", 100+e.seq%100)
	e.ip("route", "replace", "198.18.250.0/24", "via", gw)
	e.waitRoute(0, "198.18.250.0/24", "sentinel route", kernelVia(gw, "p0"))
}

func (e *lcpEnv) ipBatch(cmds string) {
	e.t.Helper()
	f := filepath.Join(e.t.TempDir(), "batch")
	if err := os.WriteFile(f, []byte(cmds), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.ip("-batch", f)
}

// TestLCPMirrorAddrDelAdd: the operator deletes and re-adds a port's
// address quickly, so the kernel's echoes of both (a delete and an add of
// one prefix) arrive in one batch (a long coalescing window): the port
// keeps its address (only the last event of a prefix in a batch counts).
func TestLCPMirrorAddrDelAdd(t *testing.T) {
	e := newLCPEnvWith(t, lcpConfig, func(c *nlmirror.Config) { c.Coalesce = 500 * time.Millisecond })
	for range 3 {
		e.mustExec("addr del p0 198.18.0.1/24")
		e.mustExec("addr add p0 198.18.0.1/24")
		// The mirror writes the address back to e0 on its own goroutine;
		// the sentinel's gateway needs it in the kernel.
		testnet.Eventually(t, 10*time.Second, "198.18.0.1/24 back on e0", func() bool {
			return strings.Contains(e.ip("-4", "addr", "show", "dev", "e0"), "198.18.0.1/24")
		})
		e.sentinel() // after the echoes: the batch holding them is applied
		if r := e.routes(0)["198.18.0.0/24"]; r.Origin != show.Connected || r.Netif != "p0" {
			t.Fatalf("p0 lost 198.18.0.1/24 to the echo of its own delete: connected route %+v", r)
		}
	}
}
