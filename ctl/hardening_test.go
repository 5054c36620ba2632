package ctl

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within runs f and fails the test if it has not returned after d: the
// regressions below used to hang forever.
func within[T any](t *testing.T, d time.Duration, what string, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: still blocked after %v", what, d)
	}
	panic("unreachable")
}

// TestRouteLoadFIFO: route load of a FIFO (nobody writing) is refused at
// once as not a regular file; it used to block the control goroutine in
// open(2) forever.
func TestRouteLoadFIFO(t *testing.T) {
	d, _ := nullDaemon(t, nullConfig)
	fifo := filepath.Join(t.TempDir(), "routes.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	err := within(t, 5*time.Second, "route load FIFO", func() error {
		_, err := run(t, d, "route load "+fifo+" blackhole")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), "named pipe") {
		t.Fatalf("route load FIFO: %v, want a refusal naming the named pipe", err)
	}
	for _, dev := range []string{"/dev/zero", t.TempDir()} {
		_, err := run(t, d, "route load "+dev+" blackhole")
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("route load %s: %v, want not a regular file", dev, err)
		}
	}
}

// blockingReader never returns data until released.
type blockingReader struct{ release chan struct{} }

func (b blockingReader) Read(p []byte) (int, error) {
	<-b.release
	return 0, io.EOF
}
func (b blockingReader) Close() error { return nil }

// TestRouteLoadSlowFile: while a route file is being read (slowly), the
// control goroutine keeps answering other batches, the read gives up after
// the timeout with a clear error, and Shutdown does not wait for it.
func TestRouteLoadSlowFile(t *testing.T) {
	d, _ := nullDaemon(t, nullConfig)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	d.files.timeout = 2 * time.Second
	d.files.open = func(string) (io.ReadCloser, error) { return blockingReader{release}, nil }
	done := make(chan error, 1)
	go func() {
		_, err := run(t, d, "route load slow.txt blackhole")
		done <- err
	}()
	// The control goroutine answers while the file is being read.
	for i := 0; i < 5; i++ {
		within(t, time.Second, "show sysctl during a slow route load", func() string { return text(t, d, "show sysctl") })
	}
	err := within(t, 5*time.Second, "the slow route load", func() error { return <-done })
	if err == nil || !strings.Contains(err.Error(), "not read within") || !strings.Contains(err.Error(), "route load") {
		t.Fatalf("slow route load: %v, want a timeout error", err)
	}
	// A load pending at shutdown does not hold Shutdown up.
	d.files.timeout = time.Hour
	go func() {
		_, err := run(t, d, "route load slow.txt blackhole")
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the load start; either order passes
	within(t, 2*time.Second, "Shutdown during a slow route load", func() bool { d.Shutdown(); return true })
	if err := within(t, 2*time.Second, "the load after Shutdown", func() error { return <-done }); err == nil {
		t.Fatal("the route load pending at shutdown succeeded")
	}
}

// TestRouteLoadSecretFile: route load of a file that is not a route file
// quotes at most the offending word, truncated: /etc/shadow must not end up
// in the error (and so in the log).
func TestRouteLoadSecretFile(t *testing.T) {
	d, _ := nullDaemon(t, nullConfig)
	secret := "root:$6$saltsalt$" + strings.Repeat("S", 86) + ":19000:0:99999:7:::"
	f := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(f, []byte(secret+"\nbin:*:19000:0:99999:7:::\n"), 0o600)
	_, err := run(t, d, "route load "+f+" blackhole")
	if err == nil || !strings.Contains(err.Error(), "is not a prefix") {
		t.Fatalf("route load shadow: %v", err)
	}
	if strings.Contains(err.Error(), "SSSSSSSSSSSS") || strings.Contains(err.Error(), "bin:") {
		t.Fatalf("error copies the file: %v", err)
	}
	if err := CheckFile(writeConf(t, "route load "+f+" blackhole\n")); err == nil || strings.Contains(err.Error(), "SSSSSSSSSSSS") {
		t.Fatalf("CheckFile: %v", err)
	}
}

func writeConf(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fwdd.conf")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
