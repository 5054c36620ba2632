package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl"
	"github.com/fwdd/fwdd/fwd"
)

// startDaemon runs a real fwdd (null ports, which receive all the time)
// with a control socket; no root needed.
func startDaemon(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "fwdd.conf")
	if err := os.WriteFile(conf, []byte("port add p0 driver null\nport add p1 driver null\naddr add p0 198.18.1.1/24\naddr add p1 198.19.2.1/24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := ctl.Start(ctl.Options{ConfigFile: conf, Socket: filepath.Join(dir, "s"),
		Engine: fwd.Config{Workers: 1, PoolSize: 2048}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Shutdown)
	return filepath.Join(dir, "s")
}

// TestTopSnapshots: top -n 2 prints two plain snapshots without a
// terminal.
func TestTopSnapshots(t *testing.T) {
	sock := startDaemon(t)
	r := fwdctl(t, "", "-s", sock, "top", "-n", "2", "-i", "200ms", "-o", "name")
	if r.code != 0 {
		t.Fatalf("top: %+v", r)
	}
	t.Logf("top -n 2:\n%s", r.stdout)
	if n := strings.Count(r.stdout, "fwdd top"); n != 2 {
		t.Fatalf("%d snapshots, want 2:\n%s", n, r.stdout)
	}
	for _, w := range []string{"sorted by name", "\np0 ", "\np1 ", "WORKER", "busy %", "pkts/poll", "mbufs: worker0", "neighbours: 0", "fibs: 0: 4+0 routes", "drops/s by reason"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("no %q in:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("escape sequences in plain output")
	}
	for _, bad := range [][]string{{"top", "-o", "colour"}, {"top", "extra"}, {"top", "-i", "1ms"}} {
		if r := fwdctl(t, "", append([]string{"-s", sock}, bad...)...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: %+v", bad, r)
		}
	}
}

// TestTopTerminal drives the live view in tmux: it renders, re-sorts on
// a key and quits on q.
func TestTopTerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed")
	}
	sock := startDaemon(t)
	srv := fmt.Sprintf("fwdtop%d", os.Getpid())
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", srv}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { tmux("kill-server") })
	cmd := fmt.Sprintf("env FWDCTL_TEST_MAIN=1 %s -s %s top -i 300ms", os.Args[0], sock)
	if out, err := tmux("new-session", "-d", "-s", "top", "-x", "120", "-y", "40", cmd); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	screen := func() string { s, _ := tmux("capture-pane", "-p", "-t", "top"); return s }
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(screen(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q on the screen:\n%s", what, screen())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("sorted by rx")
	s := screen()
	for _, w := range []string{"PORT", "p0", "p1", "WORKER", "mbufs:", "neighbours:"} {
		if !strings.Contains(s, w) {
			t.Errorf("no %q on the screen:\n%s", w, s)
		}
	}
	tmux("send-keys", "-t", "top", "n")
	waitFor("sorted by name")
	tmux("send-keys", "-t", "top", "q")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := tmux("has-session", "-t", "top"); err != nil {
			break // top quit, and the session with it
		}
		if time.Now().After(deadline) {
			t.Fatalf("top did not quit on q:\n%s", screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
