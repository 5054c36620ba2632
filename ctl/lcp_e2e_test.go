package ctl

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
)

// link is what ip -j link says about one interface.
type link struct {
	Name    string   `json:"ifname"`
	Address string   `json:"address"`
	MTU     int      `json:"mtu"`
	Flags   []string `json:"flags"`
	Oper    string   `json:"operstate"`
}

// linkIn returns interface dev in ns, or false if it does not exist.
func (x *e2e) linkIn(ns, dev string) (link, bool) {
	out, err := x.n.TryIn(ns, "ip", "-j", "link", "show", "dev", dev)
	if err != nil {
		return link{}, false
	}
	var ls []link
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		x.t.Fatalf("ip -j link: %v\n%s", err, out)
	}
	return ls[0], true
}

// gone waits until dev has left the router's namespace. The TAP goes with
// its descriptor's close, which the kernel completes only when no other
// reference to the file is left: a process another test forks at that
// moment holds one until it execs, so "at once" can be a little later.
func (x *e2e) gone(dev, when string) {
	x.t.Helper()
	testnet.Eventually(x.t, 5*time.Second, dev+" gone "+when, func() bool {
		_, ok := x.linkIn(x.rt, dev)
		return !ok
	})
}

func hasFlag(l link, f string) bool {
	for _, g := range l.Flags {
		if g == f {
			return true
		}
	}
	return false
}

// lcpStats returns the kernel-interface counters of port in show stats.
func (x *e2e) lcpStats(port string) map[string]uint64 {
	res := x.mustExec("show stats")
	out := map[string]uint64{}
	for _, c := range res[0].Data.([]show.Counter) {
		if strings.HasPrefix(c.Scope, "lcp ") && strings.HasSuffix(c.Scope, "(port "+port+")") {
			out[c.Name] = c.Value
		}
	}
	return out
}

// TestLCPInterface: lcp NAME makes a kernel interface in fwdd's namespace
// with the port's MAC, MTU and carrier; the carrier follows the port's
// link; port set mtu follows; lcp off and port del remove it; a taken name
// is refused and changes nothing.
func TestLCPInterface(t *testing.T) {
	testnet.Skip(t)
	x := newE2E(t)
	x.start("afpacket")
	x.mustExec("port set p0 lcp e0")
	l, ok := x.linkIn(x.rt, "e0")
	if !ok {
		t.Fatal("lcp e0: no interface e0 in fwdd's namespace")
	}
	if want := x.n.MAC(x.rt, "r0"); l.Address != want || l.MTU != 1500 || !hasFlag(l, "UP") || !hasFlag(l, "LOWER_UP") {
		t.Fatalf("e0 = %+v, want MAC %s, MTU 1500, UP and LOWER_UP (carrier)", l, want)
	}
	if !strings.Contains(x.show("show ports"), "\tlcp e0\n") {
		t.Errorf("show ports does not name e0:\n%s", x.show("show ports"))
	}
	// Carrier follows the port's link: the peer going down takes r0's
	// carrier, fwdd notices, and so does e0.
	x.n.In(x.h1, "ip", "link", "set", "h1", "down")
	testnet.Eventually(t, 5*time.Second, "e0 losing its carrier", func() bool {
		l, _ := x.linkIn(x.rt, "e0")
		return hasFlag(l, "NO-CARRIER")
	})
	x.n.In(x.h1, "ip", "link", "set", "h1", "up")
	testnet.Eventually(t, 5*time.Second, "e0 getting its carrier back", func() bool {
		l, _ := x.linkIn(x.rt, "e0")
		return hasFlag(l, "LOWER_UP")
	})
	// port set down: no carrier either.
	x.mustExec("port set p0 down")
	if l, _ := x.linkIn(x.rt, "e0"); !hasFlag(l, "NO-CARRIER") {
		t.Errorf("port set p0 down: e0 still has a carrier: %+v", l)
	}
	x.mustExec("port set p0 up", "port set p0 mtu 1400")
	if l, _ := x.linkIn(x.rt, "e0"); l.MTU != 1400 || !hasFlag(l, "LOWER_UP") {
		t.Errorf("port set p0 up mtu 1400: e0 = %+v", l)
	}

	// A taken name: refused, nothing changes.
	x.n.In(x.rt, "ip", "link", "add", "taken0", "type", "bridge")
	if _, err := x.exec("port set p1 lcp taken0"); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("lcp on an existing interface name: err %v", err)
	}
	if _, err := x.exec("port set p0 lcp off", "port set p1 lcp taken0"); err == nil {
		t.Errorf("a batch with a taken name succeeded")
	}
	if _, ok := x.linkIn(x.rt, "e0"); !ok {
		t.Fatal("a refused batch removed e0")
	}
	if strings.Contains(x.show("show ports"), "lcp taken0") {
		t.Fatal("a refused lcp is in the model")
	}

	// Renaming, moving a name between ports in one batch, lcp off.
	x.mustExec("port set p0 lcp off", "port set p1 lcp e0")
	if l, ok := x.linkIn(x.rt, "e0"); !ok || l.Address != x.n.MAC(x.rt, "r1") {
		t.Fatalf("e0 after moving to p1: %+v %v (want p1's MAC)", l, ok)
	}
	x.mustExec("port set p1 lcp e1")
	x.gone("e0", "after the rename to e1")
	if _, ok := x.linkIn(x.rt, "e1"); !ok {
		t.Fatal("e1 missing after the rename")
	}
	x.mustExec("port set p1 lcp off")
	x.gone("e1", "after lcp off")
	x.mustExec("port set p0 lcp e0")
	x.mustExec("port del p0")
	x.gone("e0", "after port del")
	x.mustExec("port add p0 driver afpacket dev r0 lcp e0")
	if _, ok := x.linkIn(x.rt, "e0"); !ok {
		t.Fatal("port add ... lcp e0 made no e0")
	}
	x.d.Shutdown()
	if _, ok := x.linkIn(x.rt, "e0"); ok {
		t.Fatal("shutdown left e0")
	}
}

// TestLCPHostTraffic: with lcp on, the host's own TCP to the router's
// address works (iperf3 from a neighbour to a server in fwdd's namespace),
// ARP reaches both the kernel and the neighbour table, link-local IPv6
// works, and transit traffic does not go through the kernel.
func TestLCPHostTraffic(t *testing.T) {
	testnet.Skip(t)
	for _, driver := range e2eDrivers() {
		t.Run(driver, func(t *testing.T) {
			x := newE2E(t)
			x.start(driver)
			x.mustExec("port set p0 lcp e0", "port set p1 lcp e1")
			// fwdd's addresses on the kernel side: the netlink mirror
			// puts them there.
			testnet.Eventually(t, 10*time.Second, "fwdd's addresses on e0 and e1", func() bool {
				e0, _ := x.n.TryIn(x.rt, "ip", "addr", "show", "dev", "e0")
				e1, _ := x.n.TryIn(x.rt, "ip", "addr", "show", "dev", "e1")
				return strings.Contains(e0, "198.18.1.1/24") && strings.Contains(e0, "2001:2:0:1::1/64") && strings.Contains(e1, "198.19.2.1/24")
			})

			// Transit first, and count what went to the kernel.
			x.eventuallyPing(x.h1, "198.19.2.2")
			before := x.lcpStats("p0")["punted"] + x.lcpStats("p1")["punted"]
			x.tcpTransfer(t, "198.19.2.2", 4<<20)
			after := x.lcpStats("p0")["punted"] + x.lcpStats("p1")["punted"]
			if after-before > 20 { // ARP/ND copies at most, never the ~3000 segments
				t.Errorf("transit TCP punted %d frames to the kernel", after-before)
			}

			// The host's own TCP.
			testenv.Tool(t, "iperf3", "iperf3")
			// Not -1 (one client, then exit): an attempt that connects and
			// then fails under load would leave the retries no server.
			x.n.Start(x.rt, "iperf3", "-s", "-B", "198.18.1.1")
			var out string
			var err error
			testnet.Eventually(t, 15*time.Second, "iperf3 to the router's address", func() bool {
				out, err = x.n.TryIn(x.h1, "iperf3", "-c", "198.18.1.1", "-t", "2", "-f", "m")
				return err == nil
			})
			if !strings.Contains(out, "receiver") {
				t.Fatalf("iperf3: %v\n%s", err, out)
			}
			t.Logf("iperf3 to the router over lcp (%s):\n%s", driver, lastLines(out, 4))
			st := x.lcpStats("p0")
			if st["punted"] < 100 || st["injected"] < 100 {
				t.Errorf("lcp counters after iperf3: %v", st)
			}
			// The kernel learned h1 from ARP, and so did fwdd.
			if neigh := x.n.In(x.rt, "ip", "neigh", "show", "dev", "e0"); !strings.Contains(neigh, "198.18.1.2") {
				t.Errorf("the kernel has no neighbour entry for h1:\n%s", neigh)
			}
			if !strings.Contains(x.show("show neigh"), "198.18.1.2") {
				t.Errorf("fwdd has no neighbour entry for h1:\n%s", x.show("show neigh"))
			}
			// IPv6 link-local: h1 pings e0's fe80:: address through fwdd's
			// port (NDP copied to the kernel, fe80::/10 punted).
			ll := ifLinkLocal(t, x, x.rt, "e0")
			testnet.Eventually(t, 10*time.Second, "ping6 to e0's link-local address", func() bool {
				_, err := x.n.TryIn(x.h1, "ping", "-6", "-c", "1", "-W", "1", ll+"%h1")
				return err == nil
			})
			// TCP over IPv6 to the router's global address.
			x.n.Start(x.rt, "iperf3", "-s", "-B", "2001:2:0:1::1", "-p", "5202")
			testnet.Eventually(t, 15*time.Second, "TCP over IPv6 to the router", func() bool {
				_, err := x.n.TryIn(x.h1, "iperf3", "-c", "2001:2:0:1::1", "-p", "5202", "-t", "1")
				return err == nil
			})
		})
	}
}

// ifLinkLocal returns dev's fe80:: address in ns.
func ifLinkLocal(t *testing.T, x *e2e, ns, dev string) string {
	var a string
	testnet.Eventually(t, 5*time.Second, dev+" having a link-local address", func() bool {
		out, _ := x.n.TryIn(ns, "ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link")
		f := strings.Fields(out)
		for i, w := range f {
			if w == "inet6" && i+1 < len(f) && !strings.Contains(out, "tentative") {
				a = strings.Split(f[i+1], "/")[0]
				return true
			}
		}
		return false
	})
	return a
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestLCPKernelAddress: an address added with ip addr on a kernel
// interface becomes the port's (netlink mirror); a neighbour host pings it
// through fwdd, and the host's own TCP to it reaches the kernel.
func TestLCPKernelAddress(t *testing.T) {
	testnet.Skip(t)
	testenv.Tool(t, "iperf3", "iperf3")
	x := newE2E(t)
	x.start("afpacket")
	x.mustExec("port set p0 lcp e0")
	x.n.In(x.rt, "ip", "addr", "add", "198.18.1.77/24", "dev", "e0")
	x.n.In(x.rt, "ip", "addr", "add", "2001:2:0:1::77/64", "dev", "e0", "nodad")
	testnet.Eventually(t, 10*time.Second, "the kernel's addresses on port p0", func() bool {
		out := x.show("show ports")
		return strings.Contains(out, "198.18.1.77") && strings.Contains(out, "2001:2:0:1::77")
	})
	x.eventuallyPing(x.h1, "198.18.1.77")
	x.eventuallyPing(x.h1, "-6", "2001:2:0:1::77")
	x.n.Start(x.rt, "iperf3", "-s", "-B", "198.18.1.77", "-p", "5203")
	testnet.Eventually(t, 15*time.Second, "TCP to the kernel's address", func() bool {
		_, err := x.n.TryIn(x.h1, "iperf3", "-c", "198.18.1.77", "-p", "5203", "-t", "1")
		return err == nil
	})
	// Removed in the kernel: gone from the port.
	x.n.In(x.rt, "ip", "addr", "del", "198.18.1.77/24", "dev", "e0")
	testnet.Eventually(t, 10*time.Second, "198.18.1.77 leaving port p0", func() bool {
		return !strings.Contains(x.show("show ports"), "198.18.1.77")
	})
}

// iperf3Mbps runs an iperf3 client in ns to dst for secs seconds and
// returns the receiver's Mbit/s.
func (x *e2e) iperf3Mbps(ns, dst, port string, secs int) float64 {
	x.t.Helper()
	out, err := x.n.TryIn(ns, "iperf3", "-J", "-c", dst, "-p", port, "-t", strconv.Itoa(secs))
	if err != nil {
		x.t.Fatalf("iperf3 -c %s: %v\n%s", dst, err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		x.t.Fatalf("iperf3 -J: %v\n%s", err, out)
	}
	return r.End.SumReceived.BitsPerSecond / 1e6
}

// TestLCPTransitThroughput: transit TCP keeps flowing through fwdd while
// kernel interfaces are attached to and detached from its ports, three
// times each way, and the throughput of each state is logged (alternated in
// one run). It asserts no ratio: on a shared machine a loaded minute once
// gave 0.34 on/off, and timing belongs in benchmarks; that transit is not
// punted is TestLCPHostTraffic's assertion, by counters.
func TestLCPTransitThroughput(t *testing.T) {
	testnet.Skip(t)
	if testing.Short() {
		t.Skip("throughput comparison (-short)")
	}
	testenv.Tool(t, "iperf3", "iperf3")
	x := newE2E(t)
	x.start("afxdp")
	x.eventuallyPing(x.h1, "198.19.2.2")
	x.n.Start(x.h2, "iperf3", "-s", "-B", "198.19.2.2", "-p", "5204")
	testnet.Eventually(t, 5*time.Second, "iperf3 server on h2", func() bool {
		_, err := x.n.TryIn(x.h1, "iperf3", "-c", "198.19.2.2", "-p", "5204", "-t", "1")
		return err == nil
	})
	var off, on []float64
	for i := 0; i < 3; i++ {
		// Measure only once the ports carry traffic again after the
		// change (an iperf3 whose control connection lost its first
		// packets hung until TryIn killed it).
		x.mustExec("port set p0 lcp off", "port set p1 lcp off")
		x.eventuallyPing(x.h1, "198.19.2.2")
		off = append(off, x.iperf3Mbps(x.h1, "198.19.2.2", "5204", 2))
		x.mustExec("port set p0 lcp e0", "port set p1 lcp e1")
		x.eventuallyPing(x.h1, "198.19.2.2")
		on = append(on, x.iperf3Mbps(x.h1, "198.19.2.2", "5204", 2))
	}
	med := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	t.Logf("transit TCP h1 -> h2 through fwdd (afxdp, 1 worker), Mbit/s: lcp off %.0f %v, lcp on %.0f %v, ratio on/off %.2f",
		med(off), off, med(on), on, med(on)/med(off))
	for i := range on {
		if on[i] <= 0 || off[i] <= 0 {
			t.Errorf("round %d: no transit TCP received (lcp off %.0f Mbit/s, on %.0f)", i, off[i], on[i])
		}
	}
}
