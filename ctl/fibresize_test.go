package ctl

import (
	"fmt"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testnet"
)

// TestFIBResizeUnderTraffic (issue 12.13): batches that change net.fibs and
// in the same batch make a rule send every packet to the highest new FIB
// are applied while the null port's traffic flows. The workers must never
// see the new rules with the old FIB set (they indexed a FIB that was not
// there yet and panicked). Run it under -race too.
func TestFIBResizeUnderTraffic(t *testing.T) {
	d, _ := nullDaemon(t, `
port add p0 driver null smac=02:00:00:00:00:01 dmac=02:00:00:00:00:01 src=198.18.1.2 dst=198.19.200.1 flows=64
port add p1 driver null
addr add p0 198.18.1.1/24
addr add p1 198.19.2.1/24
set net.icmp.ratelimit 1
rule add 10 from 198.18.0.0/15 setfib 0
`)
	e := d.Engine()
	rounds := 300
	if testing.Short() {
		rounds = 10
	}
	start := time.Now()
	for i := range rounds {
		n := 2 + 6*(i%2) // 2, 8, 2, 8, ...
		if i%3 == 2 {
			n = 1 + i%16
		}
		if _, err := run(t, d, "rule del 10", fmt.Sprintf("set net.fibs %d", n),
			fmt.Sprintf("rule add 10 from 198.18.0.0/15 setfib %d", n-1)); err != nil {
			t.Fatalf("round %d (net.fibs %d): %v", i, n, err)
		}
		// Traffic flows through the new highest FIB before the next change.
		before, _ := e.FIBLookups(n - 1)
		testnet.Eventually(t, 10*time.Second, fmt.Sprintf("lookups in fib %d", n-1), func() bool {
			now, _ := e.FIBLookups(n - 1)
			return now > before
		})
	}
	t.Logf("%d resizes under traffic in %v; %d packets received", rounds, time.Since(start), e.Counters()["rx"])
}
