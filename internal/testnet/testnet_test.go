package testnet

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testenv"
)

func TestTopology(t *testing.T) {
	n := New(t)
	// Registered first, so it runs after the namespaces' own cleanups.
	t.Cleanup(func() {
		out, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(out), n.Tag()) {
			t.Errorf("namespaces left behind: %s", out)
		}
	})
	testenv.Tool(t, "ping", "iputils-ping")
	a, b := n.NS("a"), n.NS("b")
	n.Veth(a, "va", b, "vb")
	n.In(a, "ip", "addr", "add", "198.18.0.1/24", "dev", "va")
	n.In(b, "ip", "addr", "add", "198.18.0.2/24", "dev", "vb")
	Eventually(t, 5*time.Second, "ping over the veth", func() bool {
		_, err := n.TryIn(a, "ping", "-c1", "-W1", "198.18.0.2")
		return err == nil
	})
	if mac := n.MAC(a, "va"); len(mac) != 17 {
		t.Fatalf("MAC %q", mac)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z'
	}
	return true
}

// TestStartKillsChildren: a command from Start that forks (a shell running
// a background sleep) leaves nothing behind when its test ends.
func TestStartKillsChildren(t *testing.T) {
	n := New(t)
	ns := n.NS("s")
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	t.Run("start", func(st *testing.T) {
		sub := &Net{t: st, tag: n.tag}
		sub.Start(ns, "sh", "-c", "sleep 300 & echo $! > "+pidFile+"; wait")
		Eventually(st, 10*time.Second, "the forked child", func() bool {
			b, err := os.ReadFile(pidFile)
			return err == nil && strings.HasSuffix(string(b), "\n")
		})
	})
	b, _ := os.ReadFile(pidFile)
	pid := strings.TrimSpace(string(b))
	Eventually(t, 5*time.Second, "the forked child "+pid+" to be killed", func() bool { return !alive(pid) })
}

// TestSweep: what a dead test process left (a namespace with a process in
// it) is removed by the next New; a live owner's things are not.
func TestSweep(t *testing.T) {
	Skip(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(OwnerDir, 0o755); err != nil {
		t.Fatal(err)
	}
	const tag = "0dead0"
	ns := "fwdt-sw-" + tag
	own := filepath.Join(OwnerDir, tag)
	t.Cleanup(func() { delNS(ns); _ = os.Remove(own) })
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	sl := exec.Command("ip", "netns", "exec", ns, "sleep", "300")
	if err := sl.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = sl.Wait() }()
	t.Cleanup(func() { _ = sl.Process.Kill() })
	pid := strconv.Itoa(sl.Process.Pid)
	// Sweep only once sleep is in the namespace: ip netns exec opens it
	// before it enters it, and a sweep in between lists no process, deletes
	// the name, and the sleep then lives on in a namespace nobody can name.
	Eventually(t, 30*time.Second, "sleep "+pid+" in namespace "+ns, func() bool {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		return slices.Contains(strings.Fields(string(out)), pid)
	})
	if err := os.WriteFile(own, []byte(strconv.Itoa(dead.Process.Pid)+" 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	live := New(t) // sweeps
	if _, err := os.Stat(Path(ns)); err == nil {
		t.Fatalf("namespace %s of a dead owner survived the sweep", ns)
	}
	Eventually(t, 5*time.Second, "the process in the swept namespace to be killed", func() bool { return !alive(pid) })
	if _, err := os.Stat(own); err == nil {
		t.Fatalf("owner file %s survived the sweep", own)
	}
	mine := live.NS("sw")
	Sweep()
	if _, err := os.Stat(Path(mine)); err != nil {
		t.Fatalf("a live owner's namespace was swept: %v", err)
	}
}
