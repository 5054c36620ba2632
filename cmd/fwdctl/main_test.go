package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/ctl/ctltest"
	"github.com/fwdd/fwdd/ctl/show"
	"golang.org/x/term"
)

// TestMain doubles as the fwdctl binary when FWDCTL_TEST_MAIN is set, so
// the process-level test runs the real main (exit status, stderr).
func TestMain(m *testing.M) {
	if os.Getenv("FWDCTL_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func startServer(t *testing.T) (string, *ctltest.Executor) {
	t.Helper()
	ex := ctltest.New()
	s, err := ctlsock.Listen(ctlsock.Config{
		Path: filepath.Join(t.TempDir(), "fwdd.sock"), Exec: ex,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s.Path(), ex
}

type result struct {
	code           int
	stdout, stderr string
}

func fwdctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestOneCommand(t *testing.T) {
	sock, ex := startServer(t)
	if r := fwdctl(t, "", "-s", sock, "port", "add", "p1", "driver", "null"); r.code != 0 || r.stderr != "" {
		t.Fatalf("port add: %+v", r)
	}
	if r := fwdctl(t, "", "-s", sock, "route", "add", "198.51.100.0/24", "via", "198.19.0.2", "dev", "p1"); r.code != 0 {
		t.Fatalf("route add: %+v", r)
	}
	r := fwdctl(t, "", "-s", sock, "show", "routes")
	if r.code != 0 || !strings.Contains(r.stdout, "198.51.100.0/24") || !strings.Contains(r.stdout, "198.19.0.2") {
		t.Fatalf("show routes: %+v", r)
	}
	// Arguments with blanks are quoted on the way, and relative names are
	// the caller's.
	if r := fwdctl(t, "", "-s", sock, "route", "load", "my table.txt", "blackhole"); r.code != 0 {
		t.Fatalf("route load: %+v", r)
	}
	b := ex.Batches()
	cwd, _ := os.Getwd()
	if f := b[len(b)-1][0].(*cmdlang.RouteLoad).File; f != filepath.Join(cwd, "my table.txt") {
		t.Errorf("route load file = %q", f)
	}
}

func TestJSONOutput(t *testing.T) {
	sock, _ := startServer(t)
	fwdctl(t, "", "-s", sock, "route", "add", "2001:db8::/32", "via", "2001:2::2", "via", "2001:2::3")
	r := fwdctl(t, "", "-s", sock, "-j", "show", "routes")
	var rows []show.Route
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil || len(rows) != 1 || len(rows[0].Gateways) != 2 {
		t.Fatalf("-j show routes: %+v", r)
	}
	// A command without data prints nothing.
	if r := fwdctl(t, "", "-s", sock, "-j", "route", "del", "2001:db8::/32"); r.code != 0 || r.stdout != "" {
		t.Fatalf("-j route del: %+v", r)
	}
	// A batch prints an array, one value per command.
	r = fwdctl(t, "get net.fibs\nshow routes\n", "-s", sock, "-j", "-f", "-")
	var vals []json.RawMessage
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &vals) != nil || len(vals) != 2 {
		t.Fatalf("-j batch: %+v", r)
	}
}

func TestErrors(t *testing.T) {
	sock, ex := startServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"route", "add", "198.51.100.0/24", "via", "foo"}, `fwdctl: route add: "via" needs an address, got "foo"` + "\n"},
		{[]string{"port", "del", "p9"}, "fwdctl: port del p9: no such port (see show ports)\n"},
		{[]string{"frob"}, `fwdctl: unknown command "frob" (expected set, get, port, addr, route, rule, neigh, lcp or show)` + "\n"},
	} {
		r := fwdctl(t, "", append([]string{"-s", sock}, tc.args...)...)
		if r.code != 1 || r.stderr != tc.want || r.stdout != "" {
			t.Errorf("%v: %+v\nwant stderr %q", tc.args, r, tc.want)
		}
	}
	if n := len(ex.Batches()); n != 0 {
		t.Errorf("%d batches applied", n)
	}
}

func TestNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "fwdd.sock")
	r := fwdctl(t, "", "-s", sock, "show", "ports")
	want := "fwdctl: cannot reach fwdd at " + sock + ": is fwdd running? (start it with: fwdd -c FILE)\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("got %+v\nwant stderr %q", r, want)
	}
}

func TestBatchFile(t *testing.T) {
	sock, ex := startServer(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	os.WriteFile(good, []byte("# routes\nport add p1 driver null\nroute add 198.51.100.0/24 via 198.19.0.2 dev p1\nroute load t.txt blackhole\n"), 0o644)
	if r := fwdctl(t, "", "-s", sock, "-f", good); r.code != 0 || r.stderr != "" {
		t.Fatalf("good batch: %+v", r)
	}
	if f := ex.Batches()[0][2].(*cmdlang.RouteLoad).File; f != filepath.Join(dir, "t.txt") {
		t.Errorf("route load in a file is relative to the file: %q", f)
	}
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("route add 198.51.101.0/24 blackhole\n\nroute add 198.51.102.0/24 via nowhere\n"), 0o644)
	r := fwdctl(t, "", "-s", sock, "-f", bad)
	if want := "fwdctl: " + bad + `:3: route add: "via" needs an address, got "nowhere"` + "\n"; r.code != 1 || r.stderr != want {
		t.Errorf("bad batch: %+v\nwant %q", r, want)
	}
	// All or nothing: a batch that fails in the executor leaves nothing.
	fail := filepath.Join(dir, "fail.conf")
	os.WriteFile(fail, []byte("route add 198.51.103.0/24 blackhole\nport del p9\n"), 0o644)
	if r := fwdctl(t, "", "-s", sock, "-f", fail); r.code != 1 || !strings.Contains(r.stderr, fail+":2: port del p9: no such port") {
		t.Errorf("failing batch: %+v", r)
	}
	if r := fwdctl(t, "", "-s", sock, "show", "routes"); strings.Contains(r.stdout, "198.51.101.0") || strings.Contains(r.stdout, "198.51.103.0") {
		t.Errorf("a refused batch changed state:\n%s", r.stdout)
	}
	if r := fwdctl(t, "", "-s", sock, "-f", filepath.Join(dir, "missing.conf")); r.code != 1 || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing file: %+v", r)
	}
}

func TestStdinBatch(t *testing.T) {
	sock, ex := startServer(t)
	// No command and stdin not a terminal: stdin is the batch.
	if r := fwdctl(t, "route add 198.51.100.0/24 blackhole\nshow routes\n", "-s", sock); r.code != 0 || !strings.Contains(r.stdout, "blackhole") {
		t.Fatalf("stdin batch: %+v", r)
	}
	if r := fwdctl(t, "show ports\nroute add x\n", "-s", sock); r.code != 1 || !strings.HasPrefix(r.stderr, "fwdctl: stdin:2: route add:") {
		t.Fatalf("bad stdin batch: %+v", r)
	}
	if n := len(ex.Batches()); n != 1 {
		t.Errorf("%d batches", n)
	}
}

func TestUsage(t *testing.T) {
	if r := fwdctl(t, "", "help"); r.code != 0 || r.stdout != cmdlang.HelpText() {
		t.Errorf("help: %+v", r)
	}
	if r := fwdctl(t, "", "-f", "x", "show", "ports"); r.code != 2 || !strings.Contains(r.stderr, "either -f FILE or a command") {
		t.Errorf("-f and a command: %+v", r)
	}
	if r := fwdctl(t, "", "-bogus"); r.code != 2 || !strings.Contains(r.stderr, "usage: fwdctl") {
		t.Errorf("bad flag: %+v", r)
	}
	if r := fwdctl(t, "", "-h"); r.code != 0 || !strings.Contains(r.stderr, "usage: fwdctl") {
		t.Errorf("-h: %+v", r)
	}
}

// The prompt, driven through term.Terminal over plain pipes.
func TestInteractive(t *testing.T) {
	sock, ex := startServer(t)
	c, err := ctlsock.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in := "help\r" +
		"route add 198.51.100.0/24 blackhole\r" +
		"route add 198.51.100.0/24 via foo\r" + // rejected locally
		"port del p9\r" + // refused by the daemon
		"\r" +
		"show routes\r" +
		"quit\r" +
		"show ports\r" // never read
	var out bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{strings.NewReader(in), &out}
	s := &session{sock: sock, c: c}
	code := s.loop(context.Background(), term.NewTerminal(rw, prompt), -1)
	text := strings.ReplaceAll(out.String(), "\r\n", "\n")
	for _, want := range []string{
		"connected to fwdd at " + sock,
		"route add PREFIX via ADDR", // help
		`% route add: "via" needs an address, got "foo"`,
		"% port del p9: no such port (see show ports)",
		"198.51.100.0/24",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("prompt output lacks %q:\n%s", want, text)
		}
	}
	if code != 0 {
		t.Errorf("exit status %d after a successful last command", code)
	}
	if n := len(ex.Batches()); n != 2 { // route add, show routes
		t.Errorf("%d batches, want 2", n)
	}
}

// After the daemon restarts, the prompt reconnects by itself.
func TestInteractiveReconnect(t *testing.T) {
	ex := ctltest.New()
	path := filepath.Join(t.TempDir(), "fwdd.sock")
	listen := func() *ctlsock.Server {
		s, err := ctlsock.Listen(ctlsock.Config{Path: path, Exec: ex, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve()
		return s
	}
	s1 := listen()
	c, err := ctlsock.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	sess := &session{sock: path, c: c}
	if r, err := sess.do(context.Background(), &ctlsock.Request{Lines: []string{"get net.fibs"}}); err != nil || !r.OK {
		t.Fatal(r, err)
	}
	s1.Close()
	s2 := listen()
	defer s2.Close()
	r, err := sess.do(context.Background(), &ctlsock.Request{Lines: []string{"get net.fibs"}})
	if err != nil || !r.OK {
		t.Fatalf("after restart: %+v, %v", r, err)
	}
	sess.c.Close()
}

// The real binary's exit status and stderr.
func TestProcess(t *testing.T) {
	sock, _ := startServer(t)
	cmd := func(args ...string) (int, string, string) {
		c := exec.Command(os.Args[0], args...)
		c.Env = append(os.Environ(), "FWDCTL_TEST_MAIN=1")
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errb.String()
	}
	if code, out, _ := cmd("-s", sock, "get", "net.fibs"); code != 0 || out != "net.fibs: 2\n" {
		t.Errorf("get: %d %q", code, out)
	}
	if code, _, errs := cmd("-s", sock, "route", "del", "198.51.100.0/24"); code != 1 || errs != "fwdctl: route del 198.51.100.0/24: no such route (see show routes)\n" {
		t.Errorf("route del: %d %q", code, errs)
	}
	missing := filepath.Join(t.TempDir(), "none.sock")
	if code, _, errs := cmd("-s", missing, "show", "ports"); code != 1 || !strings.Contains(errs, "is fwdd running? (start it with: fwdd -c FILE)") {
		t.Errorf("not running: %d %q", code, errs)
	}
}

// TestInteractiveEvicted: a prompt whose idle connection the daemon closed
// for another client (every slot taken) reconnects and sends its next
// command transparently, exactly once.
func TestInteractiveEvicted(t *testing.T) {
	ex := ctltest.New()
	s, err := ctlsock.Listen(ctlsock.Config{Path: filepath.Join(t.TempDir(), "fwdd.sock"), Exec: ex, MaxClients: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Close()
	c, err := ctlsock.Dial(context.Background(), s.Path())
	if err != nil {
		t.Fatal(err)
	}
	sess := &session{sock: s.Path(), c: c}
	if r, err := sess.do(context.Background(), &ctlsock.Request{Lines: []string{"get net.fibs"}}); err != nil || !r.OK {
		t.Fatal(r, err)
	}
	// Another client takes the only slot: the prompt's idle connection is
	// evicted.
	other, err := ctlsock.Dial(context.Background(), s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := other.Do(context.Background(), &ctlsock.Request{Lines: []string{"get net.fibs"}}); err != nil || !r.OK {
		t.Fatal(r, err)
	}
	other.Close()
	before := len(ex.Batches())
	r, err := sess.do(context.Background(), &ctlsock.Request{Lines: []string{"route add 198.51.100.0/24 blackhole"}})
	if err != nil || !r.OK {
		t.Fatalf("after eviction: %+v, %v", r, err)
	}
	if got := len(ex.Batches()) - before; got != 1 {
		t.Fatalf("the command was executed %d times, want once", got)
	}
	sess.c.Close()
}

// TestOneShotEvictedResent: a command whose fresh connection fwdd closed
// for another client before reading it (ctlsock.ErrEvicted: not executed)
// is sent again on a new connection; after evictedRetries it gives up with
// that error. Any other failure is not retried.
func TestOneShotEvictedResent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		evictions int // connections answered "evicted" before a good answer
		wantConns int
		wantErr   error
	}{
		{"none", 0, 1, nil},
		{"once", 1, 2, nil},
		{"every retry", evictedRetries, evictedRetries + 1, nil},
		{"too often", evictedRetries + 1, evictedRetries + 1, ctlsock.ErrEvicted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "fake.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			conns := make(chan int, 1)
			go func() {
				n := 0
				defer func() { conns <- n }()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					n++
					br := bufio.NewReader(c)
					if _, err := br.ReadBytes('\n'); err != nil {
						c.Close()
						continue
					}
					resp := `{"ok":true,"output":"done"}`
					if n <= tc.evictions {
						resp = `{"ok":false,"evicted":true,"error":"closed for another client"}`
					}
					c.Write([]byte(resp + "\n"))
					c.Close()
				}
			}()
			resp, err := doOnce(context.Background(), sock, &ctlsock.Request{Lines: []string{"get net.fibs"}})
			ln.Close()
			if got := <-conns; got != tc.wantConns {
				t.Errorf("%d connections, want %d", got, tc.wantConns)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || !resp.OK {
				t.Fatalf("resp %+v, err %v", resp, err)
			}
		})
	}
}
