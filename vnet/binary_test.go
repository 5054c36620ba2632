package vnet

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
)

// TestBinaryVnets runs the real fwdd and fwdctl: a file with two vnets is
// checked (-check) and applied, fwdctl -V reaches a vnet, SIGHUP adds one,
// SIGTERM removes every socket.
func TestBinaryVnets(t *testing.T) {
	dir := testenv.Binaries(t, "fwdd", "fwdctl")
	conf := filepath.Join(dir, "fwdd.conf")
	sock := filepath.Join(dir, "fwdd.sock")
	blueSock := filepath.Join(dir, "blue.sock")
	base := twoVnets + "vnet add red owner 4242 socket " + blueSock + "\nvnet red port add p0 driver null\n"
	// A bad line in the last vnet: -check names it, nothing starts.
	os.WriteFile(conf, []byte(base+"vnet red route add 198.51.100.0/24 via 203.0.113.1\n"), 0o644)
	if out, err := exec.Command(filepath.Join(dir, "fwdd"), "-check", "-c", conf).CombinedOutput(); err == nil || !strings.Contains(string(out), "vnet red route add") {
		t.Fatalf("fwdd -check of a bad file: %v\n%s", err, out)
	}
	os.WriteFile(conf, []byte(base), 0o644)
	if out, err := exec.Command(filepath.Join(dir, "fwdd"), "-check", "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("fwdd -check: %v\n%s", err, out)
	}
	cmd := exec.Command(filepath.Join(dir, "fwdd"), "-c", conf, "-s", sock, "-mbufs", "2048")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	gone := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(gone) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-gone // the log is complete and no longer written
		if t.Failed() {
			t.Logf("fwdd log:\n%s", logs.String())
		}
	})
	testnet.Eventually(t, 10*time.Second, "the control socket", func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})
	fwdctl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(filepath.Join(dir, "fwdctl"), append([]string{"-s", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("fwdctl %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := fwdctl("show", "vnets"); !strings.Contains(out, "blue") || !strings.Contains(out, "red") || !strings.Contains(out, blueSock) {
		t.Fatalf("show vnets:\n%s", out)
	}
	fwdctl("-V", "blue", "route", "add", "198.51.100.0/24", "blackhole")
	if out := fwdctl("vnet", "blue", "show", "routes"); !strings.Contains(out, "198.51.100.0/24") {
		t.Fatalf("blue's routes:\n%s", out)
	}
	if out := fwdctl("show", "routes"); strings.Contains(out, "198.51.100.0/24") {
		t.Fatalf("blue's route in the default vnet:\n%s", out)
	}
	if _, err := os.Stat(blueSock); err != nil {
		t.Fatalf("red's socket: %v", err)
	}
	os.WriteFile(conf, []byte(twoVnets+"vnet add green\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	testnet.Eventually(t, 10*time.Second, "the reload", func() bool {
		out := fwdctl("show", "vnets")
		return strings.Contains(out, "green") && !strings.Contains(out, "red")
	})
	// red is out of the host first, then its stack and socket are closed.
	testnet.Eventually(t, 10*time.Second, "red's socket to go", func() bool {
		_, err := os.Stat(blueSock)
		return errors.Is(err, os.ErrNotExist)
	})
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("fwdd exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("fwdd did not stop on SIGTERM")
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
}
