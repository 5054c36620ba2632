package linkmon

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/nstest"
)

func TestWatch(t *testing.T) {
	nstest.Root(t)
	a := nstest.NewNS(t, "lmA")
	b := nstest.NewNS(t, "lmB")
	g0 := runtime.NumGoroutine()
	var mu sync.Mutex
	var seen []State
	m, err := Watch("lm0", a.Path, func(s State) {
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
	nstest.Veth(t, a, "lm0", b, "lm1", 1)
	nstest.Eventually(t, 5*time.Second, "lm0 up", func() bool { return m.State().Up })
	first := m.State().Index
	if len(m.State().MAC) != 6 || m.State().MTU != 1500 {
		t.Fatalf("state %+v", m.State())
	}
	nstest.IP(t, "-n", b.Name, "link", "set", "lm1", "down") // carrier lost
	nstest.Eventually(t, 5*time.Second, "lm0 down (no carrier)", func() bool { s := m.State(); return s.Present && !s.Up })
	nstest.IP(t, "-n", b.Name, "link", "set", "lm1", "up")
	nstest.Eventually(t, 5*time.Second, "lm0 up again", func() bool { return m.State().Up })
	nstest.IP(t, "-n", a.Name, "link", "set", "lm0", "down")
	nstest.Eventually(t, 5*time.Second, "lm0 admin down", func() bool { s := m.State(); return s.Present && !s.Up })
	nstest.IP(t, "-n", a.Name, "link", "del", "lm0")
	nstest.Eventually(t, 5*time.Second, "lm0 deleted", func() bool { return !m.State().Present })
	nstest.Veth(t, a, "lm0", b, "lm1", 1)
	nstest.Eventually(t, 5*time.Second, "lm0 re-created", func() bool { return m.State().Up })
	if m.State().Index == first {
		t.Logf("re-created interface got the same ifindex %d", first)
	}
	// A rename away counts as deletion.
	nstest.IP(t, "-n", a.Name, "link", "set", "lm0", "down")
	nstest.IP(t, "-n", a.Name, "link", "set", "lm0", "name", "lmX")
	nstest.Eventually(t, 5*time.Second, "lm0 renamed away", func() bool { return !m.State().Present })
	m.Close()
	m.Close()
	mu.Lock()
	n := len(seen)
	mu.Unlock()
	if n < 7 || uint64(n) != m.Changes() {
		t.Fatalf("%d callbacks, %d changes", n, m.Changes())
	}
	nstest.Eventually(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= g0 })
}

func TestErrors(t *testing.T) {
	if _, err := Watch("x", "/run/netns/does-not-exist-lm", nil); err == nil {
		t.Fatal("missing namespace accepted")
	}
}
