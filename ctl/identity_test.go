package ctl

import (
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/internal/testnet"
)

// Issue 12.11: the router's interface is deleted and re-created under the
// same name, with new MACs on both ends of the veth (the re-created host
// interface too). The port re-attaches, answers ARP and NDP with the new
// MAC, and the neighbours learned on the vanished interface are gone: a
// host behind the router reaches the re-created host within seconds (it
// was blackholed ~39 s by the stale neighbour entry, until REACHABLE ran
// out and probing failed).
func TestE2EInterfaceRecreated(t *testing.T) {
	for _, driver := range e2eDrivers() {
		t.Run(driver, func(t *testing.T) {
			x := newE2E(t)
			x.start(driver)
			// fwdd learns h1 in both families, REACHABLE.
			x.eventuallyPing(x.h2, "198.18.1.2")
			x.eventuallyPing(x.h2, "-6", "2001:2:0:1::2")
			oldR0 := x.n.MAC(x.rt, "r0")

			const newR0, newH1 = "02:00:5e:00:53:a1", "02:00:5e:00:53:b1"
			x.n.In(x.rt, "ip", "link", "del", "r0")
			// The port's dynamic neighbours go with the interface.
			testnet.Eventually(t, 5*time.Second, "p0's neighbours flushed once r0 is gone", func() bool {
				return len(x.mustExec("show neigh p0")[0].Data.([]show.Neighbour)) == 0
			})
			x.n.In(x.rt, "ip", "link", "add", "r0", "address", newR0, "type", "veth",
				"peer", "name", "h1", "netns", x.h1, "address", newH1)
			x.n.In(x.rt, "ip", "link", "set", "r0", "up")
			x.n.In(x.h1, "ip", "link", "set", "h1", "up")
			x.n.TryIn(x.h1, "ethtool", "-K", "h1", "tx", "off")
			x.n.In(x.h1, "ip", "addr", "add", "198.18.1.2/24", "dev", "h1")
			x.n.In(x.h1, "ip", "addr", "add", "2001:2:0:1::2/64", "dev", "h1", "nodad")
			x.n.In(x.h1, "ip", "route", "add", "default", "via", "198.18.1.1")
			x.n.In(x.h1, "ip", "-6", "route", "add", "default", "via", "2001:2:0:1::1")
			start := time.Now()

			// From the far side first: h1 has sent nothing yet, so only a
			// fresh resolution by the router reaches it.
			for _, dst := range [][]string{{"198.18.1.2"}, {"-6", "2001:2:0:1::2"}} {
				deadline := testnet.Deadline(8 * time.Second)
				for {
					if _, err := x.n.TryIn(x.h2, append([]string{"ping", "-c", "1", "-W", "0.2"}, dst...)...); err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("h2 cannot reach the re-created h1 (%v) after %v (old r0 MAC %s):\n%s\n%s",
							dst, time.Since(start).Round(time.Millisecond), oldR0, x.show("show neigh p0"), x.show("show ports"))
					}
				}
			}
			t.Logf("%s: forwarding to the re-created host resumed %v after the interface came back",
				driver, time.Since(start).Round(time.Millisecond))

			// The router answers with its new MAC.
			x.eventuallyPing(x.h1, "198.19.2.2")
			x.eventuallyPing(x.h1, "-6", "2001:2:0:2::2")
			for _, gw := range []string{"198.18.1.1", "2001:2:0:1::1"} {
				out := x.n.In(x.h1, "ip", "neigh", "show", gw, "dev", "h1")
				if !strings.Contains(out, newR0) {
					t.Fatalf("h1 learned %q for %s, want the new MAC %s (old %s)", strings.TrimSpace(out), gw, newR0, oldR0)
				}
			}
			// And knows h1 by its new MAC only.
			res := x.mustExec("show neigh p0")
			for _, n := range res[0].Data.([]show.Neighbour) {
				if len(n.LLAddr) > 0 && n.LLAddr.String() != newH1 {
					t.Fatalf("neighbour %v lladdr %v, want %s:\n%s", n.Addr, n.LLAddr, newH1, res[0].Text)
				}
			}
			res = x.mustExec("show ports")
			for _, p := range res[0].Data.([]show.Port) {
				if p.Name == "p0" && p.LLAddr.String() != newR0 {
					t.Fatalf("show ports: p0 lladdr %v, want %s", p.LLAddr, newR0)
				}
			}
		})
	}
}

// The port's kernel interface (lcp) follows the re-created device's MAC
// too: the kernel answers and sends with the port's MAC.
func TestE2EInterfaceRecreatedLCP(t *testing.T) {
	for _, driver := range e2eDrivers() {
		t.Run(driver, func(t *testing.T) {
			x := newE2E(t)
			x.start(driver)
			x.mustExec("port set p0 lcp e0")
			old := x.n.MAC(x.rt, "r0")
			if l, ok := x.linkIn(x.rt, "e0"); !ok || l.Address != old {
				t.Fatalf("e0 %+v %v, want r0's MAC %s", l, ok, old)
			}
			const newR0 = "02:00:5e:00:53:a2"
			x.n.In(x.rt, "ip", "link", "del", "r0")
			x.n.In(x.rt, "ip", "link", "add", "r0", "address", newR0, "type", "veth", "peer", "name", "h1", "netns", x.h1)
			x.n.In(x.rt, "ip", "link", "set", "r0", "up")
			x.n.In(x.h1, "ip", "link", "set", "h1", "up")
			testnet.Eventually(t, 5*time.Second, "e0 taking r0's new MAC", func() bool {
				l, ok := x.linkIn(x.rt, "e0")
				return ok && l.Address == newR0
			})
		})
	}
}
