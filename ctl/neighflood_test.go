package ctl

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
)

// floodScript sends NS for the router's address from n spoofed on-link
// IPv6 sources and ARP requests from every spoofed on-link IPv4 source, each
// with its own random MAC, out of h1.
const floodScript = `
import sys
from scapy.all import Ether, IPv6, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, ARP, sendp, RandMAC
iface, n = sys.argv[1], int(sys.argv[2])
pkts = []
for i in range(n):
    mac = "02:ee:%02x:%02x:%02x:%02x" % ((i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255)
    src = "2001:2:0:1:aa::%x:%x" % (i >> 16, i & 0xffff)
    pkts.append(Ether(src=mac, dst="33:33:ff:00:00:01") /
                IPv6(src=src, dst="ff02::1:ff00:1", hlim=255) /
                ICMPv6ND_NS(tgt="2001:2:0:1::1") / ICMPv6NDOptSrcLLAddr(lladdr=mac))
for i in range(10, 250):
    mac = "02:ef:00:00:00:%02x" % i
    pkts.append(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") /
                ARP(op=1, hwsrc=mac, psrc="198.18.1.%d" % i, pdst="198.18.1.1"))
sendp(pkts, iface=iface, verbose=0)
`

// Issue 12.1 with real frames: an on-link host floods the router with NS
// and ARP requests from thousands of spoofed sources (more than the port's
// quota); afterwards two new neighbours on that port, one per family,
// still resolve and are reached from the far side. Every frame and packet
// the pipeline handed to the neighbour table is accounted in its counters.
func TestE2ENeighbourFlood(t *testing.T) {
	py := testenv.Tool(t, "/usr/bin/python3", "python3")
	if err := exec.Command(py, "-c", "import scapy.all").Run(); err != nil {
		testenv.Tool(t, "scapy (python3 module)", "python3-scapy")
	}
	script := filepath.Join(t.TempDir(), "flood.py")
	if err := os.WriteFile(script, []byte(floodScript), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, driver := range e2eDrivers() {
		t.Run(driver, func(t *testing.T) {
			x := newE2E(t)
			x.start(driver)
			x.mustExec("set net.neigh.max_per_port 1024")
			x.eventuallyPing(x.h1, "198.19.2.2")
			x.eventuallyPing(x.h1, "-6", "2001:2:0:2::2")
			const n = 3000
			if out, err := x.n.TryIn(x.h1, py, script, "h1", fmt.Sprint(n)); err != nil {
				t.Fatalf("flood: %v\n%s", err, out)
			}
			counter := func(scope, name string) uint64 {
				for _, r := range x.mustExec("show stats")[0].Data.([]show.Counter) {
					if r.Scope == scope && r.Name == name {
						return r.Value
					}
				}
				return 0
			}
			// The flood reached the table and filled the port's quota.
			testnet.Eventually(t, 10*time.Second, "the flood learned up to the quota", func() bool {
				return len(x.mustExec("show neigh p0")[0].Data.([]show.Neighbour)) >= 1000
			})
			if got := len(x.mustExec("show neigh p0")[0].Data.([]show.Neighbour)); got > 1024 {
				t.Fatalf("%d entries on p0, quota 1024", got)
			}
			// Two new neighbours behind the flooded port, reached from h2.
			x.n.In(x.h1, "ip", "addr", "add", "198.18.1.3/24", "dev", "h1")
			x.n.In(x.h1, "ip", "addr", "add", "2001:2:0:1::3/64", "dev", "h1", "nodad")
			x.eventuallyPing(x.h2, "198.18.1.3")
			x.eventuallyPing(x.h2, "-6", "2001:2:0:1::3")
			if counter("neigh", "evicted") == 0 {
				t.Fatalf("nothing evicted:\n%s", x.show("show stats"))
			}
			// Accounting: what the pipeline punted is what the table took
			// in (frames) plus what it was asked to resolve (misses).
			testnet.Eventually(t, 5*time.Second, "punted == neigh input + misses", func() bool {
				return counter("fwd", "punted") == counter("neigh", "input")+counter("neigh", "misses")
			})
		})
	}
}
