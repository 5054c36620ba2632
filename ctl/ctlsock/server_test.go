package ctlsock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctltest"
	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/internal/testenv"
	"golang.org/x/sys/unix"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start runs a server on a fresh socket with ex and stops it at cleanup.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "fwdd.sock")
	}
	if cfg.Exec == nil {
		cfg.Exec = ctltest.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func do(t *testing.T, c *Client, req *Request) *Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRequestResponse(t *testing.T) {
	ex := ctltest.New()
	s := start(t, Config{Exec: ex})
	c := dial(t, s.Path())

	r := do(t, c, &Request{Lines: []string{
		"# a batch",
		"port add p1 driver null",
		"route add 198.51.100.0/24 via 198.19.0.2 dev p1",
		"route add 2001:db8::/32 via 2001:2::2 via 2001:2::3",
	}})
	if !r.OK || r.Error != "" || r.Data != nil {
		t.Fatalf("batch: %+v", r)
	}
	r = do(t, c, &Request{Lines: []string{"show routes inet"}, JSON: true})
	if !r.OK || !strings.Contains(r.Text, "198.51.100.0/24") || strings.Contains(r.Text, "2001:db8::/32") {
		t.Fatalf("show routes inet: %+v", r)
	}
	if len(r.Data) != 1 {
		t.Fatalf("data: %s", r.Data)
	}
	var rows []show.Route
	if err := json.Unmarshal(r.Data[0], &rows); err != nil || len(rows) != 1 || rows[0].Netif != "p1" {
		t.Fatalf("data %s: %v", r.Data[0], err)
	}
	// Commands without data give null; blank requests are fine.
	r = do(t, c, &Request{Lines: []string{"get net.fibs", "port del p1"}, JSON: true})
	if !r.OK || len(r.Data) != 2 || string(r.Data[1]) != "null" || r.Text != "net.fibs: 2\n" {
		t.Fatalf("get/del: %+v", r)
	}
	r = do(t, c, &Request{Lines: []string{"", "# nothing"}})
	if !r.OK || r.Text != "" {
		t.Fatalf("empty batch: %+v", r)
	}
	if n := len(ex.Batches()); n != 3 {
		t.Errorf("executor saw %d batches, want 3", n)
	}
}

func TestParseErrorExecutesNothing(t *testing.T) {
	ex := ctltest.New()
	s := start(t, Config{Exec: ex})
	c := dial(t, s.Path())
	r := do(t, c, &Request{Source: "batch.conf", Lines: []string{
		"port add p1 driver null",
		"route add 198.51.100.0/24 via foo",
		"route add 198.51.100.7/24 blackhole",
	}})
	want := "batch.conf:2: route add: \"via\" needs an address, got \"foo\"\n" +
		"batch.conf:3: route add: destination 198.51.100.7/24 has host bits set (did you mean 198.51.100.0/24?)"
	if r.OK || r.Error != want {
		t.Fatalf("got %+v\nwant error %s", r, want)
	}
	r = do(t, c, &Request{Lines: []string{"route add 198.51.100.0/24 via foo"}})
	if r.Error != `route add: "via" needs an address, got "foo"` {
		t.Errorf("live error: %q", r.Error)
	}
	if n := len(ex.Batches()); n != 0 {
		t.Errorf("executor ran %d batches", n)
	}
}

func TestExecErrorAllOrNothing(t *testing.T) {
	ex := ctltest.New()
	s := start(t, Config{Exec: ex})
	c := dial(t, s.Path())
	r := do(t, c, &Request{Lines: []string{
		"route add 198.51.100.0/24 blackhole",
		"route add 198.51.101.0/24 via 198.19.0.2 dev p9",
	}})
	if r.OK || r.Error != "line 2: route add 198.51.101.0/24 via 198.19.0.2 dev p9: dev p9: no such port (see show ports)" {
		t.Fatalf("got %+v", r)
	}
	r = do(t, c, &Request{Lines: []string{"show routes"}, JSON: true})
	if string(r.Data[0]) != "[]" {
		t.Errorf("a failed batch left routes behind: %s", r.Data[0])
	}
}

func TestRelativeRouteLoadUsesClientDir(t *testing.T) {
	ex := ctltest.New()
	s := start(t, Config{Exec: ex})
	c := dial(t, s.Path())
	r := do(t, c, &Request{Dir: "/home/op", Lines: []string{"route load t.txt blackhole", "route load /abs.txt blackhole"}})
	if !r.OK {
		t.Fatal(r.Error)
	}
	b := ex.Batches()[0]
	if f := b[0].(*cmdlang.RouteLoad).File; f != "/home/op/t.txt" {
		t.Errorf("relative file = %q", f)
	}
	if f := b[1].(*cmdlang.RouteLoad).File; f != "/abs.txt" {
		t.Errorf("absolute file = %q", f)
	}
}

func TestSocketFile(t *testing.T) {
	s := start(t, Config{})
	fi, err := os.Lstat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want socket 0600", fi.Mode())
	}
	if os.Geteuid() == 0 {
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
			t.Errorf("socket owned by %d:%d, want root", st.Uid, st.Gid)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = Dial(context.Background(), s.Path())
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "is fwdd running? (start it with: fwdd -c FILE)") {
		t.Errorf("Dial after Close: %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fwdd.sock")
	// A crashed daemon leaves its socket file behind.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
	_, err = Dial(context.Background(), path)
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("Dial to a stale socket: %v", err)
	}
	s := start(t, Config{Path: path})
	r := do(t, dial(t, s.Path()), &Request{Lines: []string{"get net.fibs"}})
	if !r.OK {
		t.Fatal(r.Error)
	}
}

func TestLiveSocketRefused(t *testing.T) {
	s := start(t, Config{})
	_, err := Listen(Config{Path: s.Path(), Exec: ctltest.New(), Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "another fwdd is already running there") {
		t.Fatalf("second Listen: %v", err)
	}
	// The first server still works, and its file is still there.
	if r := do(t, dial(t, s.Path()), &Request{Lines: []string{"get net.fibs"}}); !r.OK {
		t.Fatal(r.Error)
	}
}

func TestListenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	os.WriteFile(file, nil, 0o600)
	for _, tc := range []struct {
		path, want string
	}{
		{file, "the file exists and is not a socket"},
		{filepath.Join(dir, "no", "such", "dir.sock"), "the directory does not exist"},
		{"/" + strings.Repeat("x", 200), "at most 107 fit"},
	} {
		_, err := Listen(Config{Path: tc.path, Exec: ctltest.New(), Logger: quietLogger()})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Listen(%s): %v, want %q", tc.path, err, tc.want)
		}
	}
	if _, err := Listen(Config{Path: filepath.Join(dir, "s")}); err == nil {
		t.Error("Listen without Exec succeeded")
	}
	if fi, err := os.Lstat(file); err != nil || !fi.Mode().IsRegular() {
		t.Error("Listen touched a regular file")
	}
}

func TestManyClients(t *testing.T) {
	ex := ctltest.New()
	s := start(t, Config{Exec: ex})
	const clients, reqs = 16, 20
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(context.Background(), s.Path())
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			for j := range reqs {
				line := fmt.Sprintf("route add 198.51.%d.%d/32 blackhole", i, j)
				r, err := c.Do(context.Background(), &Request{Lines: []string{line}})
				if err != nil || !r.OK {
					errc <- fmt.Errorf("%s: %v %+v", line, err, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := len(ex.Batches()); n != clients*reqs {
		t.Errorf("%d batches applied, want %d", n, clients*reqs)
	}
}

func TestDisconnectMidRequest(t *testing.T) {
	ex := ctltest.New()
	s := start(t, Config{Exec: ex})
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	// Half a request, then gone.
	io.WriteString(c, `{"lines":["route add 198.51.100.0/24 blackhole"]`)
	c.Close()
	// The server goes on serving, and ran nothing.
	r := do(t, dial(t, s.Path()), &Request{Lines: []string{"show routes"}, JSON: true})
	if !r.OK || string(r.Data[0]) != "[]" {
		t.Fatalf("after a cut request: %+v", r)
	}
	if n := len(ex.Batches()); n != 1 {
		t.Errorf("executor ran %d batches, want only the show", n)
	}
}

func TestDisconnectBeforeAnswer(t *testing.T) {
	ex := ctltest.New()
	ex.Gate, ex.Entered = make(chan struct{}), make(chan struct{}, 1)
	s := start(t, Config{Exec: ex})
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, `{"lines":["route add 198.51.100.0/24 blackhole"]}`+"\n")
	<-ex.Entered
	c.Close()
	close(ex.Gate) // the batch completes; its answer has nowhere to go
	deadline := time.Now().Add(10 * time.Second)
	for len(ex.Batches()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the batch of a departed client was not applied")
		}
		time.Sleep(time.Millisecond)
	}
	r := do(t, dial(t, s.Path()), &Request{Lines: []string{"show routes"}, JSON: true})
	if !r.OK || !strings.Contains(string(r.Data[0]), "198.51.100.0/24") {
		t.Fatalf("after a client left: %+v", r)
	}
}

func TestOversizedRequest(t *testing.T) {
	ex := ctltest.New()
	s := start(t, Config{Exec: ex, MaxRequest: 1024})
	c := dial(t, s.Path())
	big := make([]string, 100)
	for i := range big {
		big[i] = "route add 198.51.100.0/24 blackhole"
	}
	r := do(t, c, &Request{Lines: big})
	if r.OK || !strings.Contains(r.Error, "request too large (at most 1024 bytes)") {
		t.Fatalf("oversized: %+v", r)
	}
	// The connection is closed afterwards.
	if _, err := c.Do(context.Background(), &Request{Lines: []string{"show routes"}}); err == nil {
		t.Error("connection still open after an oversized request")
	}
	if n := len(ex.Batches()); n != 0 {
		t.Errorf("executor ran %d batches", n)
	}
	// A request just under the limit passes.
	if r := do(t, dial(t, s.Path()), &Request{Lines: big[:10]}); r.Error == "" || strings.Contains(r.Error, "too large") {
		// the fake refuses the duplicate route, which is fine: it was read.
		t.Fatalf("small request: %+v", r)
	}
}

func TestMalformedRequest(t *testing.T) {
	s := start(t, Config{})
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "route add 1.2.3.0/24 blackhole\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var r Response
	if json.Unmarshal([]byte(line), &r) != nil || r.OK || !strings.Contains(r.Error, "malformed request") {
		t.Errorf("got %q", line)
	}
}

// TestIdleClientsEvicted: idle connections filling MaxClients do not lock
// a new client out: the longest-idle one is closed for it, and its client
// learns on its next request that the request was not executed (fwdctl
// then reconnects).
func TestIdleClientsEvicted(t *testing.T) {
	s := start(t, Config{MaxClients: 3})
	var idle []*Client
	for i := 0; i < 3; i++ {
		c := dial(t, s.Path())
		if r := do(t, c, &Request{Lines: []string{"get net.fibs"}}); !r.OK {
			t.Fatal(r.Error)
		}
		idle = append(idle, c)
		// The server marks a connection idle after writing its answer,
		// which the client may read first: wait, so that the clients'
		// idle times are in the order of this loop.
		waitIdle(t, s, i+1)
	}
	for i := 0; i < 5; i++ {
		r := do(t, dial(t, s.Path()), &Request{Lines: []string{"get net.fibs"}})
		if !r.OK {
			t.Fatalf("new client %d with every slot idle: %+v", i, r)
		}
	}
	// The first idle client was the longest idle: evicted, told so.
	_, err := idle[0].Do(context.Background(), &Request{Lines: []string{"route add 198.51.100.0/24 blackhole"}})
	if !errors.Is(err, ErrEvicted) || !errors.Is(err, ErrNotSent) {
		t.Fatalf("evicted client: %v, want ErrEvicted and ErrNotSent", err)
	}
}

// TestEvictedInAdmissionOrder: connections that never sent a request are
// idle from their admission, so the one admitted first is evicted first,
// however late their handlers ran: a client that just connected (fwdctl)
// is not evicted for one that connected before it.
func TestEvictedInAdmissionOrder(t *testing.T) {
	s := start(t, Config{MaxClients: 2})
	var quiet []*Client
	for i := 0; i < 2; i++ {
		quiet = append(quiet, dial(t, s.Path()))
		waitIdle(t, s, i+1)
	}
	if r := do(t, dial(t, s.Path()), &Request{Lines: []string{"get net.fibs"}}); !r.OK {
		t.Fatalf("new client with every slot idle: %+v", r)
	}
	if _, err := quiet[0].Do(context.Background(), &Request{Lines: []string{"get net.fibs"}}); !errors.Is(err, ErrEvicted) {
		t.Fatalf("first admitted: %v, want ErrEvicted", err)
	}
	if r := do(t, quiet[1], &Request{Lines: []string{"get net.fibs"}}); !r.OK {
		t.Fatalf("second admitted (not evicted): %+v", r)
	}
}

// waitIdle waits until n admitted connections of s are idle.
func waitIdle(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		k := 0
		for _, st := range s.conns {
			if st.admitted && st.idle && !st.evicted {
				k++
			}
		}
		s.mu.Unlock()
		if k >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections after 10 s, want %d", k, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTooManyBusyClients: when every slot is busy (nothing idle to evict),
// a new client is refused with a clear error.
func TestTooManyBusyClients(t *testing.T) {
	ex := ctltest.New()
	ex.Gate, ex.Entered = make(chan struct{}), make(chan struct{}, 1)
	s := start(t, Config{MaxClients: 1, Exec: ex})
	busy := dial(t, s.Path())
	done := make(chan error, 1)
	go func() {
		_, err := busy.Do(context.Background(), &Request{Lines: []string{"route add 198.51.100.0/24 blackhole"}})
		done <- err
	}()
	<-ex.Entered
	r := do(t, dial(t, s.Path()), &Request{Lines: []string{"get net.fibs"}})
	if r.OK || !strings.Contains(r.Error, "too many control connections (1), all busy") {
		t.Fatalf("second client: %+v", r)
	}
	close(ex.Gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestHalfRequestStallsOnlyItself: a request that stops half-way holds
// only its own connection; other clients are served meanwhile, even with
// one slot left, and the half request is answered once it is complete.
// RequestTimeout is long, so that the order checked here holds however
// slowly a loaded machine serves the three clients (with 5 s it once
// did not, under -race); TestHalfRequestTimesOut covers the timeout.
func TestHalfRequestStallsOnlyItself(t *testing.T) {
	s := start(t, Config{MaxClients: 2, RequestTimeout: 10 * time.Minute})
	half, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := half.Write([]byte(`{"lines": ["get net`)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < 3; i++ {
		if r := do(t, dial(t, s.Path()), &Request{Lines: []string{"get net.fibs"}}); !r.OK {
			t.Fatalf("client %d while a request is half-way: %+v", i, r)
		}
	}
	t.Logf("three clients served in %v while a request was half-way", time.Since(start))
	r := bufio.NewReader(half)
	half.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if line, err := r.ReadString('\n'); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the half request was answered (%q, %v) before it was complete", line, err)
	}
	if _, err := half.Write([]byte(`.fibs"]}` + "\n")); err != nil {
		t.Fatal(err)
	}
	half.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := r.ReadString('\n')
	var resp Response
	if err != nil || json.Unmarshal([]byte(line), &resp) != nil || !resp.OK {
		t.Fatalf("the completed half request: %q, %v", line, err)
	}
}

// TestHalfRequestTimesOut: a request that stays half-way longer than
// RequestTimeout is answered with an error saying so, and its connection
// is closed.
func TestHalfRequestTimesOut(t *testing.T) {
	s := start(t, Config{RequestTimeout: 300 * time.Millisecond})
	half, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := half.Write([]byte(`{"lines": ["get net`)); err != nil {
		t.Fatal(err)
	}
	half.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(half)
	line, err := r.ReadString('\n')
	if err != nil || !strings.Contains(line, "not completed within 300ms") {
		t.Fatalf("half request: %q, %v", line, err)
	}
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("after the timeout answer: %v, want the connection closed (EOF)", err)
	}
}

// TestCloseWithStuckClients: Close returns within 2 s whatever the
// clients do: idle, half-way through a request, or not reading a large
// answer.
func TestCloseWithStuckClients(t *testing.T) {
	ex := ctltest.New()
	s, err := Listen(Config{Path: filepath.Join(t.TempDir(), "s"), Exec: ex, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	// A large answer the client never reads: many routes, shown many times.
	var lines []string
	for i := 0; i < 2000; i++ {
		lines = append(lines, fmt.Sprintf("route add 198.18.%d.%d/32 blackhole", i/256, i%256))
	}
	if r := do(t, dial(t, s.Path()), &Request{Lines: lines}); !r.OK {
		t.Fatal(r.Error)
	}
	var conns []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	conns[1].Write([]byte(`{"lines": [`))
	big := `{"lines": [` + strings.TrimSuffix(strings.Repeat(`"show routes",`, 200), ",") + `]}` + "\n"
	conns[2].Write([]byte(big))
	conns[3].Write([]byte(big))
	time.Sleep(200 * time.Millisecond) // let the big answers be written until the socket buffers fill
	t0 := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The promise is 2 s (closeWriteGrace); a stuck Close would wait for
	// the 30 s WriteTimeout. Fail on the stall, not on a loaded machine.
	d := time.Since(t0)
	t.Logf("Close took %v with stuck clients", d)
	if d > 10*time.Second {
		t.Fatalf("Close took %v with stuck clients: it waited for a client", d)
	}
}

func TestCloseWithClients(t *testing.T) {
	ex := ctltest.New()
	ex.Gate, ex.Entered = make(chan struct{}), make(chan struct{}, 1)
	s, err := Listen(Config{Path: filepath.Join(t.TempDir(), "s"), Exec: ex, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	idle := dial(t, s.Path())
	busy := dial(t, s.Path())
	answer := make(chan *Response, 1)
	go func() {
		r, err := busy.Do(context.Background(), &Request{Lines: []string{"route add 198.51.100.0/24 blackhole"}})
		if err != nil {
			r = &Response{Error: "transport: " + err.Error()}
		}
		answer <- r
	}()
	<-ex.Entered
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// The busy client got an answer (the fake abandons a gated batch when
	// the server's context ends), the idle one sees the end.
	if r := <-answer; r.OK || r.Error != "fwdd: shutting down; the batch was not applied" {
		t.Errorf("busy client: %+v", r)
	}
	if _, err := idle.Do(context.Background(), &Request{Lines: []string{"show routes"}}); err == nil {
		t.Error("idle client still served after Close")
	}
	if _, err := os.Lstat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left: %v", err)
	}
}

// Close removes the socket file only if it is still ours.
func TestCloseKeepsForeignFile(t *testing.T) {
	s := start(t, Config{})
	os.Remove(s.Path())
	os.WriteFile(s.Path(), []byte("someone else's"), 0o600)
	s.Close()
	if b, err := os.ReadFile(s.Path()); err != nil || string(b) != "someone else's" {
		t.Errorf("Close removed or changed a file it did not create: %v", err)
	}
}

func TestClientCancel(t *testing.T) {
	ex := ctltest.New()
	ex.Gate, ex.Entered = make(chan struct{}), make(chan struct{}, 1)
	s := start(t, Config{Exec: ex})
	c := dial(t, s.Path())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-ex.Entered; cancel() }()
	_, err := c.Do(ctx, &Request{Lines: []string{"show routes"}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Do after cancel: %v", err)
	}
}

func TestReadRequestBounds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
		err  error
	}{
		{"abc\n", 3, "abc\n", nil},
		{"abcd\n", 3, "", errTooLarge},
		{"abc", 10, "", io.ErrUnexpectedEOF},
		{"", 10, "", io.EOF},
		{strings.Repeat("x", 200000) + "\n", 200000, strings.Repeat("x", 200000) + "\n", nil},
		{strings.Repeat("x", 200001) + "\n", 200000, "", errTooLarge},
	} {
		got, err := readRequest(bufio.NewReaderSize(strings.NewReader(tc.in), 16), tc.max)
		if string(got) != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("readRequest(%.10q, %d) = %.10q, %v; want %.10q, %v", tc.in, tc.max, got, err, tc.want, tc.err)
		}
	}
}

// asUser runs f on a fresh OS thread whose real, effective and saved
// uid/gid are uid/gid. setresuid(2) through a raw syscall changes only the
// calling thread (Go's syscall.Setuid would change every thread); the
// thread is never unlocked, so it dies with the goroutine instead of going
// back to the scheduler with a foreign identity.
func asUser(t *testing.T, uid, gid int, f func()) {
	t.Helper()
	testenv.Root(t, "changes a thread's uid")
	done := make(chan string, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
			done <- "setresgid: " + e.Error()
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
			done <- "setresuid: " + e.Error()
			return
		}
		f()
		done <- ""
	}()
	if msg := <-done; msg != "" {
		t.Fatal(msg)
	}
}

const nobody = 65534

// reachableDir makes a directory other users may traverse (t.TempDir's
// parents are 0700).
func reachableDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "fwdd-ctlsock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A non-root peer that can reach the socket is refused by SO_PEERCRED with
// a clear message, and nothing it sent is executed.
func TestPeerCredRefusesNonRoot(t *testing.T) {
	testenv.Root(t, "the refusal is of a non-root peer by a root daemon")
	dir := reachableDir(t) // let nobody reach the socket: the test is of the credential check
	ex := ctltest.New()
	s := start(t, Config{Path: filepath.Join(dir, "fwdd.sock"), Exec: ex})
	os.Chmod(s.Path(), 0o666)

	var conn net.Conn
	var dialErr error
	asUser(t, nobody, nobody, func() {
		// connect(2) from this thread: the kernel records uid 65534.
		conn, dialErr = net.Dial("unix", s.Path())
	})
	if dialErr != nil {
		t.Fatal(dialErr)
	}
	c := NewClient(conn, s.Path())
	defer c.Close()
	r, err := c.Do(context.Background(), &Request{Lines: []string{"route add 198.51.100.0/24 blackhole"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || !strings.Contains(r.Error, "permission denied: uid 65534") || !strings.Contains(r.Error, "run fwdctl as root") {
		t.Errorf("non-root peer: %+v", r)
	}
	if n := len(ex.Batches()); n != 0 {
		t.Errorf("executor ran %d batches for a refused peer", n)
	}
	// Root is still served.
	if r := do(t, dial(t, s.Path()), &Request{Lines: []string{"get net.fibs"}}); !r.OK {
		t.Fatal(r.Error)
	}
}

// With the socket as Listen leaves it (0600 root), a non-root client
// cannot even connect, and Dial says why.
func TestNonRootCannotConnect(t *testing.T) {
	testenv.Root(t, "the socket must belong to another user")
	dir := reachableDir(t)
	s := start(t, Config{Path: filepath.Join(dir, "fwdd.sock")})
	var err error
	asUser(t, nobody, nobody, func() {
		var c *Client
		c, err = Dial(context.Background(), s.Path())
		if c != nil {
			c.Close()
		}
	})
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "run as root") {
		t.Errorf("Dial as nobody: %v", err)
	}
}

func TestRootOrSelf(t *testing.T) {
	if err := RootOrSelf(Cred{UID: 0}); err != nil {
		t.Error(err)
	}
	if err := RootOrSelf(Cred{UID: uint32(os.Geteuid())}); err != nil {
		t.Error(err)
	}
	if os.Geteuid() != 12345 {
		err := RootOrSelf(Cred{UID: 12345, PID: 77})
		if !errors.Is(err, ErrNotRoot) || err.Error() != "fwdd: permission denied: uid 12345 (pid 77) may not control fwdd; run fwdctl as root (e.g. with sudo)" {
			t.Errorf("RootOrSelf(12345) = %v", err)
		}
	}
}

// An executor that panics does not take the server down.
type panicky struct{}

func (panicky) Exec(context.Context, []cmdlang.Command) ([]cmdlang.Result, error) { panic("boom") }

func TestExecutorPanic(t *testing.T) {
	var logs strings.Builder
	s := start(t, Config{Exec: panicky{}, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil))})
	r := do(t, dial(t, s.Path()), &Request{Lines: []string{"show ports"}})
	if r.OK || !strings.Contains(r.Error, "internal error executing the batch: boom") {
		t.Errorf("got %+v", r)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func newBenchExec() cmdlang.Executor { return ctltest.New() }
