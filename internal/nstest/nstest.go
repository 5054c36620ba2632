// Package nstest makes network namespaces and veth pairs for tests, with
// unique names and cleanup registered on the test. It shells out to ip(8)
// so that the test process never changes its own threads' namespaces.
// Tests only; it owns no state beyond what each test registers.
package nstest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Root skips the test unless it runs as root with ip(8) available.
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces and veth pairs)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2")
	}
}

// Suffix returns a short random suffix for unique interface names.
func Suffix() string { return fmt.Sprintf("%d%03x", os.Getpid()%1000, rand.IntN(0xfff)) }

// NS is a network namespace made for a test.
type NS struct {
	Name string
	Path string
}

// NewNS creates a namespace named prefix+suffix and deletes it at cleanup.
func NewNS(t testing.TB, prefix string) NS {
	t.Helper()
	name := prefix + Suffix()
	IP(t, "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	return NS{Name: name, Path: "/run/netns/" + name}
}

// IP runs ip(8) with args and fails the test on error.
func IP(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Veth creates a veth pair a (in ns a) and b (in ns b), with queues RX and
// TX queues each, both up. Deleting the namespaces removes it.
func Veth(t testing.TB, a NS, an string, b NS, bn string, queues int) {
	t.Helper()
	q := fmt.Sprint(queues)
	IP(t, "-n", a.Name, "link", "add", an, "numtxqueues", q, "numrxqueues", q, "type", "veth",
		"peer", "name", bn, "netns", b.Name, "numtxqueues", q, "numrxqueues", q)
	IP(t, "-n", a.Name, "link", "set", an, "up")
	IP(t, "-n", b.Name, "link", "set", bn, "up")
}

// Eventually polls cond every millisecond until it holds or d passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}
