package linkmon

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testnet"
)

func TestWatch(t *testing.T) {
	n := testnet.New(t)
	a, b := n.NS("lmA"), n.NS("lmB")
	dev, peer := n.Name("lm0"), n.Name("lm1")
	g0 := runtime.NumGoroutine()
	var mu sync.Mutex
	var seen []State
	m, err := Watch(dev, testnet.Path(a), func(s State) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.State().Present {
		t.Fatal("absent interface reported present")
	}
	n.Veth(a, dev, b, peer)
	testnet.Eventually(t, 5*time.Second, "lm0 up", func() bool { return m.State().Up })
	first := m.State().Index
	if len(m.State().MAC) != 6 || m.State().MTU != 1500 {
		t.Fatalf("state %+v", m.State())
	}
	n.In(b, "ip", "link", "set", peer, "down") // carrier lost
	testnet.Eventually(t, 5*time.Second, "lm0 down (no carrier)", func() bool { s := m.State(); return s.Present && !s.Up })
	n.In(b, "ip", "link", "set", peer, "up")
	testnet.Eventually(t, 5*time.Second, "lm0 up again", func() bool { return m.State().Up })
	n.In(a, "ip", "link", "set", dev, "down")
	testnet.Eventually(t, 5*time.Second, "lm0 admin down", func() bool { s := m.State(); return s.Present && !s.Up })
	n.In(a, "ip", "link", "del", dev)
	testnet.Eventually(t, 5*time.Second, "lm0 deleted", func() bool { return !m.State().Present })
	n.Veth(a, dev, b, peer)
	testnet.Eventually(t, 5*time.Second, "lm0 re-created", func() bool { return m.State().Up })
	if m.State().Index == first {
		t.Logf("re-created interface got the same ifindex %d", first)
	}
	// A rename away counts as deletion.
	n.In(a, "ip", "link", "set", dev, "down")
	n.In(a, "ip", "link", "set", dev, "name", n.Name("lmX"))
	testnet.Eventually(t, 5*time.Second, "lm0 renamed away", func() bool { return !m.State().Present })
	m.Close()
	m.Close()
	mu.Lock()
	calls := len(seen)
	mu.Unlock()
	if calls < 7 || uint64(calls) != m.Changes() {
		t.Fatalf("%d callbacks, %d changes", calls, m.Changes())
	}
	// Carrier lost, admin down, admin down before the rename: each went
	// from up to down (deleting or renaming a down interface is not one).
	if m.Downs() < 3 {
		t.Fatalf("%d downs counted, want at least 3", m.Downs())
	}
	testnet.Eventually(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= g0 })
}

func TestErrors(t *testing.T) {
	if _, err := Watch("x", "/run/netns/does-not-exist-lm", nil); err == nil {
		t.Fatal("missing namespace accepted")
	}
}
