package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/gopacket/gopacket/pcapgo"
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
	testenv.Tool(t, "tmux", "tmux")
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

// TestCaptureCommand: fwdctl capture writes a pcap file tcpdump and pcapgo
// read, and prints its summary on stderr; bad usage is refused locally.
func TestCaptureCommand(t *testing.T) {
	sock := startDaemon(t)
	file := filepath.Join(t.TempDir(), "p0.pcap")
	r := fwdctl(t, "", "-s", sock, "capture", "p0", "rx", "count", "5", "snaplen", "64", "-w", file)
	if r.code != 0 || !strings.Contains(r.stderr, "5 packets captured on p0 (stopped by count)") || r.stdout != "" {
		t.Fatalf("capture: %+v", r)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		d, ci, err := pr.ReadPacketData()
		if err != nil {
			break
		}
		if len(d) > 64 || ci.Length < len(d) {
			t.Errorf("frame of %d bytes (wire %d) with snaplen 64", len(d), ci.Length)
		}
		n++
	}
	if n != 5 {
		t.Errorf("%d frames in the file, want 5", n)
	}
	if _, err := exec.LookPath("tcpdump"); err == nil {
		out, err := exec.Command("tcpdump", "-n", "-r", file).CombinedOutput()
		if err != nil || strings.Count(string(out), "\n") < 5 {
			t.Errorf("tcpdump -r: %v\n%s", err, out)
		}
	}
	for _, bad := range [][]string{{"capture", "p0"}, {"capture", "p0", "-w"}, {"capture", "p0", "sideways", "-w", "x"}} {
		if r := fwdctl(t, "", append([]string{"-s", sock}, bad...)...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: %+v", bad, r)
		}
	}
	if r := fwdctl(t, "", "-s", sock, "capture", "nosuch", "-w", file); r.code != 1 || !strings.Contains(r.stderr, "no such port") {
		t.Errorf("capture on a missing port: %+v", r)
	}
}

// TestMonitorCommand: fwdctl monitor prints a route another fwdctl adds,
// and stops on Ctrl-C (its context) with status 0; -j prints JSON lines.
func TestMonitorCommand(t *testing.T) {
	sock := startDaemon(t)
	for _, j := range []bool{false, true} {
		ctx, stop := context.WithCancel(context.Background())
		var errb bytes.Buffer
		out := &syncWriter{w: &bytes.Buffer{}}
		done := make(chan int, 1)
		args := []string{"-s", sock, "monitor", "routes"}
		if j {
			args = append([]string{"-j"}, args...)
		}
		go func() { done <- run(ctx, args, strings.NewReader(""), out, &errb) }()
		prefix := fmt.Sprintf("198.19.%d.0/24", 50+len(fmt.Sprint(j)))
		deadline := time.Now().Add(10 * time.Second)
		for {
			// The monitor may not be subscribed yet: add and delete until
			// it shows.
			fwdctl(t, "", "-s", sock, "route", "add", prefix, "blackhole")
			fwdctl(t, "", "-s", sock, "route", "del", prefix)
			if strings.Contains(out.String(), `"add"`) || strings.Contains(out.String(), prefix+" blackhole") || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		if code := <-done; code != 0 {
			t.Fatalf("monitor exit %d: %s", code, errb.String())
		}
		s := out.String()
		if j {
			found := false
			for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
				var ev map[string]any
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					t.Errorf("-j monitor: %q (%v)", line, err)
				}
				found = found || ev["prefix"] == prefix && ev["action"] == "add"
			}
			if !found {
				t.Errorf("-j monitor: no add of %s in:\n%s", prefix, s)
			}
		} else if !strings.Contains(s, prefix+" blackhole fib 0 proto static") || !strings.Contains(s, "Deleted "+prefix) {
			t.Errorf("monitor printed:\n%s", s)
		}
	}
}

// syncWriter guards a buffer written by one goroutine and read by another.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
