package ctl

import (
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/internal/testnet"
)

// A port's neighbours are flushed when its link goes down: here the peer
// (a kernel host in a namespace) takes a new MAC across a link flap (up
// again as soon as fwdd's driver saw it down: usually before the control
// plane's 100 ms poll, so the driver's down count tells it). Linux sends no
// gratuitous ARP or unsolicited NA for it, so without the flush fwdd would
// keep sending to the old MAC for the entry's reachable time and probes
// (15 s and more); with it, the next packet resolves the host anew.
func TestE2ELinkFlapPeerNewMAC(t *testing.T) {
	for _, driver := range e2eDrivers() {
		t.Run(driver, func(t *testing.T) {
			x := newE2E(t)
			x.start(driver)
			x.eventuallyPing(x.h2, "198.18.1.2")
			x.eventuallyPing(x.h2, "-6", "2001:2:0:1::2")
			oldH1 := x.n.MAC(x.h1, "h1")
			const newH1 = "02:00:5e:00:53:c1"
			port := func() show.Port {
				for _, p := range x.mustExec("show ports")[0].Data.([]show.Port) {
					if p.Name == "p0" {
						return p
					}
				}
				t.Fatal("no p0")
				return show.Port{}
			}
			// The kernel reports r0's carrier loss (linkwatch may batch it
			// for up to a second); a flap quicker than that is not reported
			// at all, and nothing on the router's side can see it.
			x.n.In(x.h1, "ip", "link", "set", "h1", "down")
			testnet.Eventually(t, 10*time.Second, "fwdd seeing p0's link go down", func() bool { return port().LinkDowns > 0 })
			x.n.In(x.h1, "sh", "-c", "ip link set h1 address "+newH1+" && ip link set h1 up")
			// Link down removed h1's routes and IPv6 addresses; put them
			// back (no packet to the router: only the router's resolution
			// reaches h1).
			x.n.In(x.h1, "ip", "addr", "replace", "2001:2:0:1::2/64", "dev", "h1", "nodad")
			x.n.In(x.h1, "ip", "route", "replace", "default", "via", "198.18.1.1")
			x.n.In(x.h1, "ip", "-6", "route", "replace", "default", "via", "2001:2:0:1::1")
			start := time.Now()
			for _, dst := range [][]string{{"198.18.1.2"}, {"-6", "2001:2:0:1::2"}} {
				deadline := testnet.Deadline(8 * time.Second)
				for {
					if _, err := x.n.TryIn(x.h2, append([]string{"ping", "-c", "1", "-W", "0.5"}, dst...)...); err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("h2 cannot reach h1 (%v) with its new MAC %s (old %s) after %v:\n%s",
							dst, newH1, oldH1, time.Since(start).Round(time.Millisecond), x.show("show neigh p0"))
					}
				}
			}
			t.Logf("%s: h1 reached with its new MAC %v after the flap", driver, time.Since(start).Round(time.Millisecond))
			// The driver woke the control loop for the link changes
			// (pmd.Config.LinkChanged) rather than leaving them to its poll.
			var wakes int
			x.d.do(func(s *stack) { wakes = s.linkWakes })
			if wakes == 0 {
				t.Error("no link check was run by a driver's wake-up")
			}
			res := x.mustExec("show neigh p0")
			for _, n := range res[0].Data.([]show.Neighbour) {
				if len(n.LLAddr) > 0 && !strings.EqualFold(n.LLAddr.String(), newH1) {
					t.Fatalf("neighbour %v lladdr %v after the flap, want %s:\n%s", n.Addr, n.LLAddr, newH1, res[0].Text)
				}
			}
		})
	}
}
