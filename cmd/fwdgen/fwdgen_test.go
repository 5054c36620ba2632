package main

import (
	"bufio"
	"bytes"
	"encoding/json"
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
	"github.com/fwdd/fwdd/perf/gen"
)

// TestGeneratorIntoSink sends stamped traffic across a veth pair between two
// namespaces made for the test and checks that the counts add up: every
// packet sent is received once, in order, with a latency stamp.
func TestGeneratorIntoSink(t *testing.T) {
	testenv.Root(t, "namespaces, veth, AF_PACKET, BPF")
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "fwdgen")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build fwdgen: %v\n%s", err, out)
	}
	id := fmt.Sprintf("fgt%x", os.Getpid()&0xfffff)
	nsA, nsB, devA, devB := id+"a", id+"b", id+"a", id+"b"
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", nsA).Run()
		_ = exec.Command("ip", "netns", "del", nsB).Run()
	})
	ip("netns", "add", nsA)
	ip("netns", "add", nsB)
	ip("link", "add", devA, "netns", nsA, "type", "veth", "peer", devB, "netns", nsB)
	ip("-n", nsA, "link", "set", devA, "up")
	ip("-n", nsB, "link", "set", devB, "up")
	// NAPI on the receiver: live frames (XDP_TX) are dropped without it.
	if out, err := exec.Command("ip", "netns", "exec", nsB, "ethtool", "-K", devB, "gro", "on").CombinedOutput(); err != nil {
		t.Fatalf("ethtool: %v: %s", err, out)
	}
	out, err := exec.Command("ip", "-n", nsB, "-j", "link", "show", devB).Output()
	if err != nil {
		t.Fatal(err)
	}
	var l []struct{ Address string }
	if err := json.Unmarshal(out, &l); err != nil || len(l) != 1 {
		t.Fatalf("ip link show: %s", out)
	}
	mac := l[0].Address

	for _, tc := range []struct {
		name      string
		rx, tx    []string
		n         uint64
		checkSeqs bool
	}{
		{"afpacket-v4", []string{"-backend", "afpacket"}, []string{"-rate", "50000", "-flows", "8"}, 20000, true},
		{"afpacket-v4-tc", []string{"-backend", "tc"}, []string{"-rate", "100000"}, 50000, false},
		{"mmsg-v4", []string{"-backend", "afpacket"}, []string{"-backend", "mmsg", "-rate", "50000", "-flows", "8", "-workers", "2"}, 20000, true},
		{"afxdp-v4", []string{"-backend", "afpacket"}, []string{"-backend", "afxdp", "-rate", "50000", "-flows", "8", "-workers", "2"}, 20000, true},
		{"afxdp-v6-copy-flat", []string{"-backend", "tc"}, []string{"-6", "-backend", "afxdp", "-xdp-mode", "copy"}, 100000, false},
		{"afpacket-v6-imix", []string{"-backend", "afpacket"}, []string{"-6", "-imix", "-rate", "50000", "-workers", "2"}, 20000, true},
		{"live-v4-tc", []string{"-backend", "tc"}, []string{"-backend", "live", "-flows", "16"}, 200000, false},
		{"live-v6-stamped", []string{"-backend", "afpacket"}, []string{"-6", "-backend", "live", "-rate", "50000", "-size", "128", "-ts-every", "1"}, 20000, true},
		{"live-v4-imix", []string{"-backend", "afpacket"}, []string{"-backend", "live", "-imix", "-rate", "50000", "-flows", "8", "-dst-addrs", "4", "-ts-every", "1"}, 20000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := exec.Command("ip", append([]string{"netns", "exec", nsB, bin, "-i", devB, "-rx", "-d", "0", "-j", "-q"}, tc.rx...)...)
			var stdout bytes.Buffer
			sink.Stdout = &stdout
			stderr, _ := sink.StderrPipe()
			if err := sink.Start(); err != nil {
				t.Fatal(err)
			}
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					_ = sink.Process.Kill()
					_ = sink.Wait()
				}
			})
			ready := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(stderr)
				var all strings.Builder
				for sc.Scan() {
					all.WriteString(sc.Text() + "\n")
					if strings.Contains(sc.Text(), "fwdgen: ready") {
						ready <- ""
					}
				}
				ready <- all.String()
			}()
			select {
			case msg := <-ready:
				if msg != "" {
					t.Fatalf("sink exited: %s", msg)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("sink not ready after 10s")
			}
			errs0 := xdpXmitErrs(t, nsA, devA)
			args := append([]string{"netns", "exec", nsA, bin, "-i", devA, "-dst-mac", mac, "-n", fmt.Sprint(tc.n), "-d", "20s", "-j", "-q"}, tc.tx...)
			txOut, err := exec.Command("ip", args...).Output()
			if err != nil {
				var ee *exec.ExitError
				if e, ok := err.(*exec.ExitError); ok {
					ee = e
				}
				if ee != nil && strings.Contains(string(ee.Stderr), "not supported") {
					t.Skipf("kernel lacks a feature: %s", ee.Stderr)
				}
				t.Fatalf("generator: %v: %s", err, func() string {
					if ee != nil {
						return string(ee.Stderr)
					}
					return ""
				}())
			}
			var tx, rx gen.Summary
			if err := json.Unmarshal(txOut, &tx); err != nil {
				t.Fatalf("generator output %q: %v", txOut, err)
			}
			if tx.Packets != tc.n {
				t.Fatalf("sent %d, want %d", tx.Packets, tc.n)
			}
			// The sink reports on SIGINT, after frames still in flight
			// have settled (gen.Receive).
			_ = sink.Process.Signal(syscall.SIGINT)
			done := make(chan error, 1)
			go func() { done <- sink.Wait() }()
			select {
			case err := <-done:
				stopped = true
				if err != nil {
					t.Fatalf("sink: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("sink did not stop")
			}
			if err := json.Unmarshal(stdout.Bytes(), &rx); err != nil {
				t.Fatalf("sink output %q: %v", stdout.String(), err)
			}
			t.Logf("tx %d pkts %.3f Mpps; rx %d pkts, unique %d, lost %d, dups %d, reorder %d, ring drops %d, latency %+v",
				tx.Packets, tx.MPPS, rx.Packets, rx.Unique, rx.Lost, rx.Dups, rx.Reorder, rx.RingDrops, rx.Latency)
			// Live frames the veth could not queue to its peer (its XDP
			// ring full while the peer's NAPI waited for the CPU).
			lost := xdpXmitErrs(t, nsA, devA) - errs0
			if !tc.checkSeqs {
				if rx.Packets+lost != tx.Packets {
					t.Fatalf("sink counted %d of %d (veth could not queue %d)", rx.Packets, tx.Packets, lost)
				}
				return
			}
			if rx.RingDrops > 0 || lost > 0 {
				t.Skipf("sink ring dropped %d frames, veth could not queue %d (machine too loaded to check exact counts)", rx.RingDrops, lost)
			}
			if rx.Unique != tx.Packets || rx.Lost != 0 || rx.Dups != 0 {
				t.Fatalf("sent %d; sink unique %d lost %d dups %d", tx.Packets, rx.Unique, rx.Lost, rx.Dups)
			}
			if rx.Latency == nil || rx.Latency.Samples != rx.Unique+rx.Dups {
				t.Fatalf("latency samples %+v, want %d", rx.Latency, rx.Unique)
			}
		})
	}
}

func TestParseCPUs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		bad  bool
	}{
		{"", "[]", false}, {"0", "[0]", false}, {"2,3", "[2 3]", false}, {"0-2,5", "[0 1 2 5]", false},
		{"x", "", true}, {"3-1", "", true},
	} {
		got, err := parseCPUs(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && fmt.Sprint(got) != tc.want) {
			t.Errorf("parseCPUs(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// xdpXmitErrs sums dev's tx_queue_*_xdp_xmit_errors (ethtool -S in ns):
// XDP frames (live back end) the veth could not queue to its peer.
func xdpXmitErrs(t *testing.T, ns, dev string) uint64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "ethtool", "-S", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("ethtool -S %s: %v: %s", dev, err, out)
	}
	var sum uint64
	for _, l := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if ok && strings.HasPrefix(k, "tx_queue_") && strings.HasSuffix(k, "_xdp_xmit_errors") {
			x, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("ethtool -S %s: %q", dev, l)
			}
			sum += x
		}
	}
	return sum
}
