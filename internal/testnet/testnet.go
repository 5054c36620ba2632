// Package testnet builds throw-away network topologies for tests: network
// namespaces and veth pairs made with iproute2, removed again when the test
// ends (t.Cleanup), whether it passed or not.
//
// Nothing survives a test: processes from Start run in their own process
// group, which is killed at cleanup, and die with the test binary
// (Pdeathsig) if it is killed before cleanups run; every process left in a
// namespace is killed before the namespace is deleted. Each Net records its
// owner (pid and start time) in OwnerDir; New removes what a dead owner left
// (a test binary killed by a signal or by go test's -timeout): its
// namespaces, the processes in them, links in the root namespace and OVS
// daemons carrying its tag.
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
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// OwnerDir holds one file per live Net, named by its tag, containing the
// owning process's pid and start time.
const OwnerDir = "/run/fwdd-testnet"

// New returns a Net whose names end in a random tag. It first removes what
// Nets of dead test processes left behind (Sweep).
func New(t testing.TB) *Net {
	t.Helper()
	Skip(t)
	Sweep()
	var b [3]byte
	_, _ = rand.Read(b[:])
	n := &Net{t: t, tag: hex.EncodeToString(b[:])}
	if err := os.MkdirAll(OwnerDir, 0o755); err == nil {
		own := filepath.Join(OwnerDir, n.tag)
		if err := os.WriteFile(own, []byte(selfOwner()), 0o644); err == nil {
			// Registered first: runs after every other cleanup of this Net.
			t.Cleanup(func() { _ = os.Remove(own) })
		}
	}
	return n
}

// selfOwner is "pid starttime" of this process.
func selfOwner() string {
	pid := os.Getpid()
	return strconv.Itoa(pid) + " " + startTime(pid)
}

// startTime is field 22 of /proc/pid/stat ("" if the process is gone): with
// the pid it identifies a process even after pid reuse.
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 20 {
		return ""
	}
	return f[19] // field 22 counted from the pid
}

// Sweep removes the namespaces (and every process in them), root-namespace
// links and OVS daemons of Nets whose owning process no longer exists. It
// never touches a live owner's things, nor anything without an owner file.
func Sweep() {
	ents, err := os.ReadDir(OwnerDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		tag := e.Name()
		b, err := os.ReadFile(filepath.Join(OwnerDir, tag))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 2 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || startTime(pid) == f[1] {
			continue // still alive
		}
		removeTag(tag)
		_ = os.Remove(filepath.Join(OwnerDir, tag))
	}
}

// removeTag removes everything carrying tag; see Sweep.
func removeTag(tag string) {
	if nss, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range nss {
			if name := e.Name(); strings.HasPrefix(name, "fwdt-") && strings.HasSuffix(name, "-"+tag) {
				delNS(name)
			}
		}
	}
	if links, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, e := range links {
			if strings.HasSuffix(e.Name(), tag) {
				_ = exec.Command("ip", "link", "del", e.Name()).Run()
			}
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "fwdd-ovs-"+tag+"*"))
	for _, dir := range dirs {
		for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
			if b, err := os.ReadFile(filepath.Join(dir, d+".pid")); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// delNS kills every process in namespace name, waits (2 s at most) for them
// to be gone, and deletes the namespace.
func delNS(name string) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		out, err := exec.Command("ip", "netns", "pids", name).Output()
		pids := strings.Fields(string(out))
		if err != nil || len(pids) == 0 || time.Now().After(deadline) {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
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
	// Processes still in the namespace keep it alive: delNS kills them
	// first.
	n.t.Cleanup(func() { delNS(name) })
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

// Start starts a long-running command inside ns in a process group of its
// own; the whole group is killed at cleanup (children it forked too), and
// the command is killed if the test binary dies first (Pdeathsig).
func (n *Net) Start(ns string, cmd ...string) *exec.Cmd {
	n.t.Helper()
	c := exec.Command("ip", append([]string{"netns", "exec", ns}, cmd...)...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		n.t.Fatalf("start in %s: %s: %v", ns, strings.Join(cmd, " "), err)
	}
	n.t.Cleanup(func() {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
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
// Under the race detector, which slows everything several times, the
// timeout is tripled: a deadline bounds how long a failing test waits;
// it asserts no timing (that belongs in benchmarks).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout *= raceSlowdown
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Deadline returns now + d, d tripled under the race detector like
// Eventually's: for tests that poll in loops of their own.
func Deadline(d time.Duration) time.Time { return time.Now().Add(d * raceSlowdown) }

// MAC returns the MAC address of interface dev in ns.
func (n *Net) MAC(ns, dev string) string {
	out := n.In(ns, "cat", fmt.Sprintf("/sys/class/net/%s/address", dev))
	return strings.TrimSpace(out)
}
