// Package testnet builds throw-away network topologies for tests: network
// namespaces and veth pairs made with iproute2, removed again when the test
// ends (t.Cleanup), whether it passed or not.
//
// Only the benchmarking ranges 198.18.0.0/15 and 2001:2::/48 belong inside
// them. Names carry a random suffix so tests running in parallel (and
// other test binaries) never collide.
package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testenv"
)

// Skip skips the test unless it runs as root with iproute2 available; in
// CI (internal/testenv) it fails instead.
func Skip(t testing.TB) {
	t.Helper()
	testenv.Root(t, "creates network namespaces and veth pairs")
	testenv.Tool(t, "ip", "iproute2")
}

// Net is a set of namespaces belonging to one test.
type Net struct {
	t   testing.TB
	tag string
}

// New returns a Net whose names end in a random tag.
func New(t testing.TB) *Net {
	t.Helper()
	Skip(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	return &Net{t: t, tag: hex.EncodeToString(b[:])}
}

// Tag is the random suffix of this Net's names (6 hex digits).
func (n *Net) Tag() string { return n.tag }

// Name returns base with the tag appended, e.g. "r0" -> "r0-1a2b3c" (at most
// 15 characters, IFNAMSIZ-1: keep base short).
func (n *Net) Name(base string) string {
	s := base + n.tag
	if len(s) > 15 {
		n.t.Fatalf("testnet: name %q is longer than 15 characters", s)
	}
	return s
}

// NS creates a namespace named base+tag with loopback up, removed at
// cleanup, and returns its name.
func (n *Net) NS(base string) string {
	n.t.Helper()
	name := "fwdt-" + base + "-" + n.tag
	n.run("ip", "netns", "add", name)
	n.t.Cleanup(func() {
		// Processes still in the namespace keep it alive: kill them first.
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	n.In(name, "ip", "link", "set", "lo", "up")
	return name
}

// Path returns the namespace's path for setns(2).
func Path(ns string) string { return "/run/netns/" + ns }

// Veth creates a veth pair a (in namespace nsA) <-> b (in nsB), both up.
// Extra arguments go to "ip link add", e.g. "numrxqueues", "2".
func (n *Net) Veth(nsA, a, nsB, b string, extra ...string) {
	n.t.Helper()
	args := append([]string{"link", "add", a, "netns", nsA}, extra...)
	args = append(args, "type", "veth", "peer", "name", b, "netns", nsB)
	args = append(args, extra...)
	n.run("ip", args...)
	n.In(nsA, "ip", "link", "set", a, "up")
	n.In(nsB, "ip", "link", "set", b, "up")
}

// In runs a command inside namespace ns and fails the test on error.
func (n *Net) In(ns string, cmd ...string) string {
	n.t.Helper()
	out, err := n.TryIn(ns, cmd...)
	if err != nil {
		n.t.Fatalf("in %s: %s: %v\n%s", ns, strings.Join(cmd, " "), err, out)
	}
	return out
}

// TryIn runs a command inside namespace ns (30 s at most) and returns its
// combined output and error.
func (n *Net) TryIn(ns string, cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, cmd...)...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.String(), err
}

// Start starts a long-running command inside ns; it is killed at cleanup.
func (n *Net) Start(ns string, cmd ...string) *exec.Cmd {
	n.t.Helper()
	c := exec.Command("ip", append([]string{"netns", "exec", ns}, cmd...)...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		n.t.Fatalf("start in %s: %s: %v", ns, strings.Join(cmd, " "), err)
	}
	n.t.Cleanup(func() {
		_ = c.Process.Kill()
		_ = c.Wait()
		if n.t.Failed() && out.Len() > 0 {
			n.t.Logf("output of %s:\n%s", strings.Join(cmd, " "), out.String())
		}
	})
	return c
}

func (n *Net) run(cmd string, args ...string) {
	n.t.Helper()
	out, err := exec.Command(cmd, args...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("%s %s: %v\n%s", cmd, strings.Join(args, " "), err, out)
	}
}

// Eventually polls cond every 10 ms until it is true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// MAC returns the MAC address of interface dev in ns.
func (n *Net) MAC(ns, dev string) string {
	out := n.In(ns, "cat", fmt.Sprintf("/sys/class/net/%s/address", dev))
	return strings.TrimSpace(out)
}
