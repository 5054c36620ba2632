package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/internal/testnet"
)

// sockDaemon is nullDaemon with a control socket.
func sockDaemon(t *testing.T, config string) (*Daemon, string) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "fwdd.conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s")
	d, err := Start(Options{ConfigFile: conf, Socket: sock,
		Engine: fwd.Config{Workers: 1, PoolSize: 2048, CheckedPools: true},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Shutdown)
	return d, sock
}

// TestShowTrace: trace add on a port records its packets (null ports
// receive frames for another MAC all the time), show trace prints them as
// text and JSON, trace clear disarms.
func TestShowTrace(t *testing.T) {
	d, _ := sockDaemon(t, nullConfig)
	if _, err := run(t, d, "trace add 3 port nosuch"); err == nil || !strings.Contains(err.Error(), "no such port") {
		t.Fatalf("trace add on a missing port: %v", err)
	}
	if out := text(t, d, "trace add 3 port p1"); !strings.Contains(out, "tracing the next 3 packets on port p1") {
		t.Fatalf("trace add: %q", out)
	}
	var ans *TraceShow
	testnet.Eventually(t, 10*time.Second, "3 traced packets", func() bool {
		res, err := run(t, d, "show trace")
		if err != nil {
			t.Fatal(err)
		}
		ans = res[0].Data.(*TraceShow)
		return ans.Traced == 3
	})
	if ans.Armed || len(ans.Packets) != 3 || ans.Filter != "on port p1" {
		t.Fatalf("show trace: %+v", ans)
	}
	out := text(t, d, "show trace")
	for _, w := range []string{"3 of 3 packets traced on port p1", "Packet 1: worker 0", "rx", "port p1 queue 0, worker 0",
		"not-our-mac", "outcome", "drop_not_our_mac +1", "Packet 3"} {
		if !strings.Contains(out, w) {
			t.Errorf("no %q in:\n%s", w, out)
		}
	}
	b, err := json.Marshal(ans)
	if err != nil || !strings.Contains(string(b), `"what":"outcome"`) {
		t.Errorf("JSON: %s %v", b, err)
	}
	// Full: the workers no longer see it.
	testnet.Eventually(t, 5*time.Second, "the full trace to be unpublished", func() bool { return d.Engine().Observers() == nil })
	if out := text(t, d, "trace clear"); out != "trace cleared\n" {
		t.Errorf("trace clear: %q", out)
	}
	if out := text(t, d, "show trace"); !strings.Contains(out, "no trace armed") {
		t.Errorf("after clear: %q", out)
	}
	if out := text(t, d, "show workers"); !strings.Contains(out, "Packets/poll") || !strings.Contains(out, "neighbours: 0") {
		t.Errorf("show workers:\n%s", out)
	}
	// Worker load as Prometheus metrics.
	mfs, err := d.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "fwdd_worker_") {
			got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got["fwdd_worker_polls_total"] == 0 || got["fwdd_worker_busy_polls_total"] == 0 ||
		got["fwdd_worker_poll_packets_total"] < got["fwdd_worker_busy_polls_total"] {
		t.Errorf("worker metrics %v", got)
	}
	if _, ok := got["fwdd_worker_stalls_total"]; !ok {
		t.Errorf("fwdd_worker_stalls_total missing: %v", got)
	}
	if _, ok := got["fwdd_worker_stall_packets_total"]; !ok {
		t.Errorf("fwdd_worker_stall_packets_total missing: %v", got)
	}
}

// TestMonitorEvents: port, rule and route changes reach a monitor, in
// order; a monitor of routes only sees no port events.
func TestMonitorEvents(t *testing.T) {
	d, sock := sockDaemon(t, nullConfig)
	got := map[string]*[]string{}
	var mu sync.Mutex
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for _, what := range []string{"monitor", "monitor routes"} {
		lines := &[]string{}
		got[what] = lines
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ctlsock.Dial(ctx, sock)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if _, err := c.Stream(ctx, &ctlsock.Request{Lines: []string{what}}, func(r *ctlsock.Response) error {
				mu.Lock()
				*lines = append(*lines, strings.TrimSpace(r.Text))
				mu.Unlock()
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	testnet.Eventually(t, 5*time.Second, "two monitors", func() bool { return d.Events().Subscribers() == 2 })
	for _, l := range []string{"port add p2 driver null", "port set p2 down", "rule add 10 from 198.18.1.0/24 count",
		"route add 198.19.5.0/24 blackhole", "rule del 10", "port del p2"} {
		if _, err := run(t, d, l); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	all := []string{"port p2 driver null fib 0", "port p2 down (admin)", "rule 10", "198.19.5.0/24 blackhole fib 0 proto static", "Deleted rule 10", "Deleted port p2"}
	testnet.Eventually(t, 5*time.Second, "the events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(*got["monitor"]) >= len(all) && len(*got["monitor routes"]) >= 1
	})
	stop()
	wg.Wait()
	lines := *got["monitor"]
	for i, w := range all {
		if i >= len(lines) || !strings.HasPrefix(lines[i], w) {
			t.Errorf("event %d: want %q, got:\n%s", i, w, strings.Join(lines, "\n"))
			break
		}
	}
	if r := *got["monitor routes"]; len(r) != 1 || !strings.HasPrefix(r[0], "198.19.5.0/24") {
		t.Errorf("routes monitor got %q", r)
	}
}

// TestMonitorSlowDropped: a monitor that does not read is dropped with a
// message once it falls MonitorQueue events behind; the control goroutine
// is not slowed (the route loads complete at once) and a monitor that
// reads goes on. A load larger than MaxRouteEvents is one bulk event.
func TestMonitorSlowDropped(t *testing.T) {
	d, sock := sockDaemon(t, nullConfig)
	dir := t.TempDir()
	const per, loads = 1000, 3*MonitorQueue/1000 + 1
	var files []string
	for l := range loads {
		var b strings.Builder
		for i := range per {
			k := l*per + i
			fmt.Fprintf(&b, "198.19.%d.%d/32\n", 128+k/256, k%256)
		}
		files = append(files, filepath.Join(dir, fmt.Sprint(l)))
		if err := os.WriteFile(files[l], []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	type result struct {
		final *ctlsock.Response
		err   error
	}
	var frames [2]atomic.Int64
	slow, fast := make(chan result, 1), make(chan result, 1)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for i, ch := range []chan result{slow, fast} {
		go func() {
			cl, err := ctlsock.Dial(ctx, sock)
			if err != nil {
				ch <- result{err: err}
				return
			}
			defer cl.Close()
			final, err := cl.Stream(ctx, &ctlsock.Request{Lines: []string{"monitor routes"}}, func(*ctlsock.Response) error {
				if frames[i].Add(1) == 1 && i == 0 {
					<-release // the slow one stops reading
				}
				return nil
			})
			ch <- result{final, err}
		}()
	}
	testnet.Eventually(t, 5*time.Second, "two monitors", func() bool { return d.Events().Subscribers() == 2 })
	for l, f := range files {
		start := time.Now()
		if _, err := run(t, d, "route load "+f+" blackhole"); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("route load of %d routes took %v with a stalled monitor", per, el)
		}
		// The reading monitor keeps up between loads.
		testnet.Eventually(t, 20*time.Second, "the fast monitor to catch up", func() bool { return frames[1].Load() == int64((l+1)*per) })
	}
	testnet.Eventually(t, 10*time.Second, "the slow monitor to be dropped", func() bool { return d.Events().Subscribers() == 1 })
	close(release)
	r := <-slow
	if r.err != nil || r.final == nil || r.final.OK || !strings.Contains(r.final.Error, "monitor dropped") || frames[0].Load() >= loads*per {
		t.Fatalf("slow monitor: %d frames, %+v, %v", frames[0].Load(), r.final, r.err)
	}
	// A full-table-sized load is one event.
	var b strings.Builder
	for k := range MaxRouteEvents + 1 {
		fmt.Fprintf(&b, "198.18.%d.%d/32\n", 100+k/256, k%256)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, []byte(b.String()), 0o644)
	if _, err := run(t, d, "route load "+big+" blackhole"); err != nil {
		t.Fatal(err)
	}
	testnet.Eventually(t, 10*time.Second, "the bulk event", func() bool { return frames[1].Load() == int64(loads*per+1) })
	stop()
	if f := <-fast; f.err != nil || f.final == nil || !f.final.OK {
		t.Errorf("fast monitor: %+v", f)
	}
}

// TestStreamOnlyAlone: monitor and capture in a batch, or sent as an
// ordinary request (the interactive prompt), are refused with a hint.
func TestStreamOnlyAlone(t *testing.T) {
	d, sock := sockDaemon(t, nullConfig)
	if _, err := run(t, d, "show ports", "monitor"); err == nil || !strings.Contains(err.Error(), "run it alone from the shell") {
		t.Errorf("monitor in a batch: %v", err)
	}
	c, err := ctlsock.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Do(context.Background(), &ctlsock.Request{Lines: []string{"capture p0 -w x"}})
	if err != nil || r.OK {
		t.Fatalf("capture as a plain request: %+v %v", r, err)
	}
	r, err = c.Do(context.Background(), &ctlsock.Request{Lines: []string{"capture p0 count 1"}})
	if err != nil || r.OK || !strings.Contains(r.Error, "run it alone") {
		t.Fatalf("capture as a plain request: %+v %v", r, err)
	}
	// The connection still works.
	if r, err := c.Do(context.Background(), &ctlsock.Request{Lines: []string{"show workers"}}); err != nil || !r.OK {
		t.Fatalf("after: %+v %v", r, err)
	}
}

// TestMonitorReload: a reload (SIGHUP) shows as a config event, followed
// by what it changed.
func TestMonitorReload(t *testing.T) {
	d, sock := sockDaemon(t, nullConfig)
	c, err := ctlsock.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var mu sync.Mutex
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Stream(ctx, &ctlsock.Request{Lines: []string{"monitor config ports"}}, func(r *ctlsock.Response) error {
			mu.Lock()
			lines = append(lines, strings.TrimSpace(r.Text))
			mu.Unlock()
			return nil
		})
	}()
	testnet.Eventually(t, 5*time.Second, "the monitor", func() bool { return d.Events().Subscribers() == 1 })
	if err := os.WriteFile(d.opts.ConfigFile, []byte(nullConfig+"port set p1 down\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	testnet.Eventually(t, 5*time.Second, "the events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(lines) >= 2
	})
	stop()
	<-done
	if !strings.HasPrefix(lines[0], "config reload "+d.opts.ConfigFile) || lines[1] != "port p1 down (admin)" {
		t.Errorf("events:\n%s", strings.Join(lines, "\n"))
	}
}

// TestCaptureClientGone: a capture whose client disappears (its
// connection closed, no stop asked) is disarmed; so is one cut by the
// daemon shutting down.
func TestCaptureClientGone(t *testing.T) {
	d, sock := sockDaemon(t, nullConfig)
	c, err := ctlsock.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	go c.Stream(context.Background(), &ctlsock.Request{Lines: []string{"capture p0"}}, func(*ctlsock.Response) error { return nil })
	testnet.Eventually(t, 5*time.Second, "the capture to be armed", func() bool { return d.Engine().Observers() != nil })
	c.Close()
	testnet.Eventually(t, 5*time.Second, "the capture to be disarmed", func() bool { return d.Engine().Observers() == nil })

	c2, err := ctlsock.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	done := make(chan error, 1)
	go func() {
		_, err := c2.Stream(context.Background(), &ctlsock.Request{Lines: []string{"capture p1 duration 1h"}}, func(*ctlsock.Response) error { return nil })
		done <- err
	}()
	testnet.Eventually(t, 5*time.Second, "the second capture to be armed", func() bool { return d.Engine().Observers() != nil })
	d.Shutdown()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the capture client was not released by the shutdown")
	}
}
