package ctl

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/pmd"
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

// TestAnswerBounded: a batch of many big show commands is answered up to
// MaxAnswer and then refused with a clear error; one big show alone is
// always answered; other clients are served in between.
func TestAnswerBounded(t *testing.T) {
	d, _ := nullDaemon(t, nullConfig)
	d.st.opts.MaxAnswer = 64 << 10
	var lines []string
	for i := 0; i < 4000; i++ {
		lines = append(lines, fmt.Sprintf("198.18.%d.%d/32", 100+i/256, i%256))
	}
	f := filepath.Join(t.TempDir(), "routes.txt")
	os.WriteFile(f, []byte(strings.Join(lines, "\n")), 0o644)
	if _, err := run(t, d, "route load "+f+" blackhole"); err != nil {
		t.Fatal(err)
	}
	one := text(t, d, "show routes")
	if len(one) < 64<<10 {
		t.Fatalf("show routes is only %d bytes; the test needs it over MaxAnswer", len(one))
	}
	batch := make([]string, 50)
	for i := range batch {
		batch[i] = "show routes"
	}
	_, err := run(t, d, batch...)
	if err == nil || !strings.Contains(err.Error(), "after 1 of its 50 show/get commands") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("50 big shows: %v", err)
	}
	if _, err := run(t, d, "show sysctl", "show ports", "get net.fibs"); err != nil {
		t.Fatalf("small shows: %v", err)
	}
}

// TestSIGTERMWithAbusiveClients: the real daemon with every client slot
// taken by idle connections still serves fwdctl, and exits within 2 s of
// SIGTERM whatever its clients do (idle, half a request, not reading a
// large answer, a reload reading a slow file).
func TestSIGTERMWithAbusiveClients(t *testing.T) {
	bin := testenv.Binaries(t, "fwdd", "fwdctl")
	dir := t.TempDir()
	conf := filepath.Join(dir, "fwdd.conf")
	sock := filepath.Join(dir, "fwdd.sock")
	var routes strings.Builder
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&routes, "198.18.%d.%d/32\n", 64+i/256, i%256)
	}
	os.WriteFile(filepath.Join(dir, "routes.txt"), []byte(routes.String()), 0o644)
	os.WriteFile(conf, []byte(nullConfig+"route load routes.txt blackhole\n"), 0o644)
	cmd := exec.Command(filepath.Join(bin, "fwdd"), "-c", conf, "-s", sock, "-mbufs", "2048")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("fwdd log:\n%s", logs.String())
		}
	})
	fwdctl := func(args ...string) (string, error) {
		out, err := exec.Command(filepath.Join(bin, "fwdctl"), append([]string{"-s", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	testnet.Eventually(t, 10*time.Second, "the control socket", func() bool {
		_, err := fwdctl("get", "net.fibs")
		return err == nil
	})
	// 64 idle connections (the default MaxClients), then more.
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < 70; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if out, err := fwdctl("get", "net.fibs"); err != nil {
		t.Fatalf("fwdctl with every slot idle: %v\n%s", err, out)
	}
	// Half a request, and big answers nobody reads.
	half, _ := net.Dial("unix", sock)
	half.Write([]byte(`{"lines": ["show rou`))
	conns = append(conns, half)
	for i := 0; i < 3; i++ {
		c, _ := net.Dial("unix", sock)
		c.Write([]byte(`{"lines": ["show routes", "show routes"], "json": true}` + "\n"))
		conns = append(conns, c)
	}
	if out, err := fwdctl("show", "sysctl"); err != nil {
		t.Fatalf("fwdctl with stuck clients: %v\n%s", err, out)
	}
	// A reload reading a route file that never arrives.
	fifo := filepath.Join(dir, "routes.fifo")
	syscall.Mkfifo(fifo, 0o600)
	os.WriteFile(conf, []byte(nullConfig+"route load routes.fifo blackhole\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	t0 := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("fwdd exit after SIGTERM: %v", err)
		}
		// The promise is 2 s; a stalled exit waits for a client's 30 s
		// write timeout or the route file forever. Log the figure, fail
		// on the stall (a loaded CI machine can miss 2 s by a little).
		t.Logf("fwdd stopped %v after SIGTERM", time.Since(t0))
	case <-time.After(10 * time.Second):
		t.Fatal("fwdd did not stop within 10 s of SIGTERM")
	}
}

func init() {
	pmd.Register(pmd.Driver{Name: "failopentest", Args: []pmd.Arg{}, Open: func(pmd.Config) (pmd.Port, error) {
		return nil, errors.New("failopentest: cannot open (as intended)")
	}})
}

// TestCheckFileDrivers: -check validates what it can without opening a
// device: the driver name, its arguments, the device's existence; each
// error names the file and line. A port that passes the check but fails
// to open at start still names its line.
func TestCheckFileDrivers(t *testing.T) {
	for _, c := range []struct{ conf, want string }{
		{"port add p0 driver null\nport add p1 driver nosuch\n", ":2: port add p1 driver nosuch: driver nosuch: unknown driver"},
		{"port add p0 driver null size=99999\n", ":1: "},
		{"port add p0 driver afxdp dev lo mode=fast\n", ":1: "},
		{"port add p0 driver afxdp dev lo bogus=1\n", ":1: port add: driver afxdp: argument bogus: unknown"},
		{"port add p0 driver afxdp\n", "argument dev: required"},
		{"\nport add p0 driver afxdp dev nosuch0\n", ":2: port add p0 driver afxdp dev nosuch0: driver afxdp: argument dev: \"nosuch0\": no such interface (see ip link)"},
		{"port add p0 driver afpacket dev nosuch0\n", ":1: port add p0 driver afpacket dev nosuch0: driver afpacket: argument dev: \"nosuch0\": no such interface"},
		{"port add p0 driver ring size=3\n", "power of two"},
	} {
		conf := writeConf(t, c.conf)
		err := CheckFile(conf)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), conf+":") {
			t.Errorf("CheckFile(%q) = %v, want %q with the file name", c.conf, err, c.want)
		}
	}
	for _, ok := range []string{"port add p0 driver afpacket dev lo\n", "port add p0 driver afxdp dev lo queues=1 mode=copy\n", nullConfig} {
		if err := CheckFile(writeConf(t, ok)); err != nil {
			t.Errorf("CheckFile(%q) = %v, want valid", ok, err)
		}
	}
	// Passes the check, fails to open.
	conf := writeConf(t, "port add a driver null\nport add b driver null\nport add c driver failopentest\n")
	if err := CheckFile(conf); err != nil {
		t.Fatalf("CheckFile: %v", err)
	}
	_, err := Start(Options{ConfigFile: conf, Engine: fwd.Config{Workers: 1, PoolSize: 2048}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), conf+":3: ") {
		t.Fatalf("Start with a port that cannot open: %v, want %s:3", err, conf)
	}
}

// TestFwddCheckBinary: the real fwdd -check (through the vnet host)
// refuses unknown drivers, bad arguments and missing devices with the file
// and line, and accepts a good file.
func TestFwddCheckBinary(t *testing.T) {
	bin := testenv.Binaries(t, "fwdd", "fwdctl")
	for _, c := range []struct{ conf, want string }{
		{"port add p0 driver null\nport add p1 driver bogus\n", ":2: port add p1 driver bogus: driver bogus: unknown driver"},
		{"port add p0 driver afxdp dev lo mode fast\n", ":1: port add: driver afxdp: argument mode"},
		{"port add p0 driver null\nport add p1 driver afxdp dev nosuch0\n", ":2: port add p1 driver afxdp dev nosuch0: driver afxdp: argument dev: \"nosuch0\": no such interface"},
		{"port add p0 driver afpacket dev lo\n" + nullConfig[strings.Index(nullConfig, "port add p1"):], ""},
	} {
		conf := writeConf(t, c.conf)
		out, err := exec.Command(filepath.Join(bin, "fwdd"), "-check", "-c", conf).CombinedOutput()
		if c.want == "" {
			if err != nil {
				t.Errorf("fwdd -check %q: %v\n%s", c.conf, err, out)
			}
			continue
		}
		if err == nil || !strings.Contains(string(out), conf+c.want) {
			t.Errorf("fwdd -check %q: %v\n%s\nwant %s%s", c.conf, err, out, conf, c.want)
		}
	}
}
