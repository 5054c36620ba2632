package ctl

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
)

// scanScript sends one UDP datagram to each of many random addresses of
// 198.18.128.0/17 (through the host's default route: fwdd), about rate per
// second, for secs seconds; .1 (fwdd) and .200.x (the real neighbour) are
// skipped.
const scanScript = `
import random, socket, sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + secs
sent = 0
while time.time() < end:
    for _ in range(rate // 100):
        b, c = random.randint(128, 255), random.randint(0, 255)
        if b == 200 or (b == 128 and c < 2):
            continue
        try:
            s.sendto(b"scan", ("198.18.%d.%d" % (b, c), 9))
            sent += 1
        except OSError:
            pass
    time.sleep(0.01)
print(sent)
`

// Issue: INCOMPLETE entries were never evicted. A host scans an on-link
// /17 of the router's other port (one packet to each of thousands of
// unresolvable addresses, several thousand per second) for several
// seconds. INCOMPLETE entries stay within net.neigh.max_incomplete and the
// port's entries within max_per_port throughout, the scan's entries are
// evicted and counted, a neighbour resolved before keeps forwarding, a new
// neighbour on the scanned prefix resolves during the scan, and after it
// the held mbufs are back.
func TestE2ENeighbourScan(t *testing.T) {
	py := testenv.Tool(t, "/usr/bin/python3", "python3")
	script := filepath.Join(t.TempDir(), "scan.py")
	if err := os.WriteFile(script, []byte(scanScript), 0o644); err != nil {
		t.Fatal(err)
	}
	const maxInc, maxPort = 128, 512
	for _, driver := range e2eDrivers() {
		t.Run(driver, func(t *testing.T) {
			x := newE2E(t)
			x.start(driver)
			x.mustExec(fmt.Sprintf("set net.neigh.max_incomplete %d", maxInc), fmt.Sprintf("set net.neigh.max_per_port %d", maxPort),
				"addr add p1 198.18.128.1/17")
			x.eventuallyPing(x.h1, "198.19.2.2")
			counter := func(name string) uint64 {
				for _, r := range x.mustExec("show stats")[0].Data.([]show.Counter) {
					if r.Scope == "neigh" && r.Name == name {
						return r.Value
					}
				}
				return 0
			}
			// check samples the table: INCOMPLETE entries and p1's entries
			// within their limits.
			maxSeen := 0
			check := func() {
				ns := x.mustExec("show neigh p1")[0].Data.([]show.Neighbour)
				inc := 0
				for _, n := range ns {
					if n.State == "incomplete" {
						inc++
					}
				}
				maxSeen = max(maxSeen, inc)
				if inc > maxInc || len(ns) > maxPort {
					t.Fatalf("%d INCOMPLETE entries (limit %d), %d on p1 (limit %d)", inc, maxInc, len(ns), maxPort)
				}
			}
			scanStart := time.Now()
			scan := x.n.Start(x.h1, py, script, "3000", "5")
			testnet.Eventually(t, 20*time.Second, "the scan fills the INCOMPLETE quota", func() bool {
				check()
				return counter("evicted_incomplete")+counter("refused_incomplete") > 0
			})
			// A new neighbour on the scanned prefix resolves during the
			// scan (ping sends every 200 ms: a flow wanting its neighbour
			// again), and the neighbour resolved before still forwards.
			x.n.In(x.h2, "ip", "addr", "add", "198.18.200.2/17", "dev", "h2")
			deadline := testnet.Deadline(20 * time.Second)
			for {
				check()
				out, err := x.n.TryIn(x.h1, "ping", "-c", "10", "-i", "0.2", "-W", "1", "198.18.200.2")
				if err == nil {
					// Under heavy load the scan may have ended first: the
					// lltable tests show resolution during a scan exactly.
					t.Logf("new neighbour reached %v after the scan started (it runs 5 s)", time.Since(scanStart).Round(time.Millisecond))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("new neighbour never reached during the scan:\n%s\n%s", out, x.show("show stats"))
				}
			}
			if out, err := x.n.TryIn(x.h1, "ping", "-c", "10", "-i", "0.2", "-W", "1", "198.19.2.2"); err != nil {
				t.Fatalf("known neighbour lost during the scan:\n%s", out)
			}
			check()
			if scan.ProcessState == nil {
				_ = scan.Wait()
			}
			t.Logf("scan: max %d INCOMPLETE seen; evicted_incomplete %d refused_incomplete %d misses %d requests_rate_limited %d",
				maxSeen, counter("evicted_incomplete"), counter("refused_incomplete"), counter("misses"), counter("requests_rate_limited"))
			// After the scan its entries fail and nothing stays held.
			testnet.Eventually(t, 30*time.Second, "no INCOMPLETE entry and nothing held after the scan", func() bool {
				for _, n := range x.mustExec("show neigh p1")[0].Data.([]show.Neighbour) {
					if n.State == "incomplete" || n.Held > 0 {
						return false
					}
				}
				return true
			})
		})
	}
}
