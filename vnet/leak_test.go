package vnet

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/mbuf"
)

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// vmKB reads a field (VmRSS, VmSize) of /proc/self/status in kB.
func vmKB(t *testing.T, field string) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("cannot read /proc/self/status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

// TestAddDelLeaks creates and deletes a vnet 100 times, each time with
// traffic (a null port generating packets routed into a ring pair): the
// goroutines, file descriptors and mapped memory return to what they were,
// every mbuf of the deleted vnet's pools is back in its pool, and the
// default vnet's pools are untouched.
func TestAddDelLeaks(t *testing.T) {
	rounds := 100
	if testing.Short() {
		rounds = 10
	}
	h := startHost(t, "port add p0 driver null\naddr add p0 198.18.1.1/24\n")
	defPools := func() []mbuf.Stats {
		var out []mbuf.Stats
		for _, p := range h.Daemon(Default).Engine().Pools() {
			out = append(out, p.Stats())
		}
		return out
	}
	// One round first, so that lazily started runtime goroutines and
	// caches exist in the baseline.
	round := func(i int) {
		name := fmt.Sprintf("v%d", i)
		mustText(t, h, "vnet add "+name)
		for _, l := range []string{
			"port add n0 driver null src 198.18.9.1 dst 198.19.9.9 dmac 02:00:00:00:00:01",
			"port add a driver ring peer x",
			"port add b driver ring peer x",
			"addr add n0 198.18.9.2/24",
			"addr add a 198.19.9.1/24",
			"neigh add a 198.19.9.9 lladdr 02:00:00:00:00:09",
		} {
			mustText(t, h, "vnet "+name+" "+l)
		}
		eng := h.Daemon(name).Engine()
		testnet.Eventually(t, 10*time.Second, "traffic in "+name, func() bool {
			return eng.Counters()["forwarded"] > 100
		})
		pools := eng.Pools()
		mustText(t, h, "vnet del "+name)
		for _, p := range pools {
			if st := p.Stats(); st.Free+st.Cached != st.Count {
				t.Fatalf("round %d: pool %s after vnet del: %+v (mbufs not returned)", i, st.Name, st)
			}
		}
		if h.Daemon(name) != nil {
			t.Fatalf("vnet %s still there", name)
		}
	}
	round(-1)
	runtime.GC()
	g0, fd0, rss0, def0 := runtime.NumGoroutine(), openFDs(t), vmKB(t, "VmRSS"), defPools()
	for i := range rounds {
		round(i)
		if os.Getenv("VNET_LEAK_TRACE") != "" && i%20 == 0 {
			runtime.GC()
			t.Logf("round %d: VmSize %d kB VmRSS %d kB", i, vmKB(t, "VmSize"), vmKB(t, "VmRSS"))
		}
	}
	testnet.Eventually(t, 10*time.Second, "goroutines back to the baseline", func() bool {
		return runtime.NumGoroutine() <= g0
	})
	if fd := openFDs(t); fd > fd0 {
		t.Errorf("file descriptors: %d before, %d after %d vnets", fd0, fd, rounds)
	}
	// Pools are mmapped with MAP_POPULATE (4 MB each here) and unmapped
	// at vnet del: resident memory comes back. (VmSize is no measure: the
	// Go heap reserves arenas in 64 MB steps and never returns them.)
	runtime.GC()
	if rss := vmKB(t, "VmRSS"); rss > rss0+32<<10 {
		t.Errorf("VmRSS grew from %d kB to %d kB over %d vnets", rss0, rss, rounds)
	}
	for i, st := range defPools() {
		if st.Count != def0[i].Count || st.Name != def0[i].Name {
			t.Errorf("default pool %d changed: %+v -> %+v", i, def0[i], st)
		}
	}
	t.Logf("%d rounds: goroutines %d -> %d, fds %d -> %d, VmRSS %d -> %d kB", rounds, g0, runtime.NumGoroutine(), fd0, openFDs(t), rss0, vmKB(t, "VmRSS"))
}
