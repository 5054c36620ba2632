package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
)

// nullDaemon starts fwdd with null ports (no devices, no root needed).
func nullDaemon(t *testing.T, config string) (*Daemon, string) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "fwdd.conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Start(Options{
		ConfigFile: conf, Engine: fwd.Config{Workers: 1, PoolSize: 2048, CheckedPools: true},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Shutdown)
	return d, conf
}

func run(t *testing.T, d *Daemon, lines ...string) ([]cmdlang.Result, error) {
	t.Helper()
	cmds, err := cmdlang.ParseLines(lines, cmdlang.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Exec(context.Background(), cmds)
}

func text(t *testing.T, d *Daemon, line string) string {
	t.Helper()
	res, err := run(t, d, line)
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Text
}

const nullConfig = `
port add p0 driver null
port add p1 driver null
addr add p0 198.18.1.1/24
addr add p1 198.19.2.1/24
route add 198.19.128.0/17 via 198.19.2.9
`

// TestBatchAllOrNothing: a batch whose last command fails changes nothing.
func TestBatchAllOrNothing(t *testing.T) {
	d, _ := nullDaemon(t, nullConfig)
	// Port counters move (null ports receive all the time): compare the
	// configuration, not the statistics.
	state := func() []string {
		out := []string{text(t, d, "show routes"), text(t, d, "show rules"), text(t, d, "show neigh")}
		res, _ := run(t, d, "show ports")
		for _, p := range res[0].Data.([]show.Port) {
			out = append(out, fmt.Sprint(p.Name, p.Addrs, p.FIB, p.MTU, p.Up))
		}
		return out
	}
	before := state()
	_, err := run(t, d,
		"route add 198.19.64.0/18 via 198.19.2.9",
		"rule add 5 from 198.18.1.0/24 count",
		"addr add p1 198.19.3.1/24",
		"port del p9")
	var ee *cmdlang.ExecError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "p9") {
		t.Fatalf("want an ExecError naming p9, got %v", err)
	}
	after := state()
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("a failed batch changed the state:\nbefore:\n%s\nafter:\n%s", before[i], after[i])
		}
	}
	for _, tc := range []struct{ line, want string }{
		{"route del 198.51.100.0/24", "no route 198.51.100.0/24 in fib 0"},
		{"route add 198.19.0.0/16 via 198.20.0.1", "not on a connected network"},
		{"port set p0 fib 3", "raise net.fibs"},
		{"set net.fibs 5000", "out of range"},
		{"set nosuch.key 1", "unknown key"},
		{"rule del 42", "no rule 42"},
		{"addr del p0 198.18.9.1/24", "has no address"},
		{"neigh del p0 198.18.1.9", "no static neighbour"},
	} {
		if _, err := run(t, d, tc.line); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one mentioning %q", tc.line, err, tc.want)
		}
	}
}

func TestReload(t *testing.T) {
	d, conf := nullDaemon(t, nullConfig)
	if !strings.Contains(text(t, d, "show routes"), "198.19.128.0/17") {
		t.Fatal("the startup route is missing")
	}
	next := strings.Replace(nullConfig, "route add 198.19.128.0/17 via 198.19.2.9", "route add 198.19.64.0/18 via 198.19.2.9\nrule add 7 from 198.18.1.0/24 count", 1)
	if err := os.WriteFile(conf, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	routes := text(t, d, "show routes")
	if strings.Contains(routes, "198.19.128.0/17") || !strings.Contains(routes, "198.19.64.0/18") {
		t.Fatalf("reload did not apply the difference:\n%s", routes)
	}
	if !strings.Contains(text(t, d, "show rules"), "count") {
		t.Fatal("reload did not add the rule")
	}
	// A broken file is refused whole; the running configuration stays.
	if err := os.WriteFile(conf, []byte(next+"route add 198.19.0.0/16 via nonsense\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err == nil {
		t.Fatal("reload of a broken file succeeded")
	}
	if text(t, d, "show routes") != routes {
		t.Fatal("a failed reload changed the routes")
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(good, []byte(nullConfig), 0o644)
	os.WriteFile(bad, []byte("port add p0 driver null\naddr add p1 198.18.1.1/24\n"), 0o644)
	if err := CheckFile(good); err != nil {
		t.Fatalf("good file: %v", err)
	}
	err := CheckFile(bad)
	if err == nil || !strings.Contains(err.Error(), "bad.conf:2") || !strings.Contains(err.Error(), "no such port") {
		t.Fatalf("bad file: %v, want the file, line 2 and the reason", err)
	}
}

func TestMetrics(t *testing.T) {
	d, _ := nullDaemon(t, nullConfig+"rule add 3 proto udp count\n")
	srv := httptest.NewServer(promhttp.HandlerFor(d.Metrics(), promhttp.HandlerOpts{}))
	defer srv.Close()
	// Let the null ports' traffic flow for a moment.
	testnet.Eventually(t, 5*time.Second, "packets counted", func() bool {
		return d.Engine().Counters()["rx"] > 0
	})
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for _, name := range []string{"fwdd_port_packets_total", "fwdd_pipeline_packets_total", "fwdd_rule_hits_total",
		"fwdd_mbuf_pool", "fwdd_fib_routes", "fwdd_fib_lookups_total"} {
		if fams[name] == nil || len(fams[name].Metric) == 0 {
			t.Errorf("metric %s missing", name)
		}
	}
	var rx float64
	for _, m := range fams["fwdd_port_packets_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "dir" && l.GetValue() == "rx" {
				rx += m.GetCounter().GetValue()
			}
		}
	}
	if rx == 0 {
		t.Error("no received packets in the metrics")
	}
}

// TestDaemonBinary runs the real fwdd binary: it starts from a file, answers
// fwdctl, reloads on SIGHUP, and on SIGTERM exits 0 leaving no socket file.
func TestDaemonBinary(t *testing.T) {
	dir := testenv.Binaries(t, "fwdd", "fwdctl")
	conf := filepath.Join(dir, "fwdd.conf")
	sock := filepath.Join(dir, "fwdd.sock")
	os.WriteFile(conf, []byte(nullConfig), 0o644)
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
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("fwdd log:\n%s", logs.String())
		}
	})
	testnet.Eventually(t, 10*time.Second, "the control socket", func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})
	fwdctl := func(args ...string) (string, error) {
		out, err := exec.Command(filepath.Join(dir, "fwdctl"), append([]string{"-s", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := fwdctl("show", "routes"); err != nil || !strings.Contains(out, "198.19.128.0/17") {
		t.Fatalf("fwdctl show routes: %v\n%s", err, out)
	}
	if out, err := fwdctl("route", "del", "198.51.100.0/24"); err == nil || !strings.Contains(out, "no route") {
		t.Fatalf("fwdctl with a failing command: err %v, output %s", err, out)
	}
	os.WriteFile(conf, []byte(strings.Replace(nullConfig, "198.19.128.0/17", "198.19.192.0/18", 1)), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	testnet.Eventually(t, 10*time.Second, "the reload", func() bool {
		out, _ := fwdctl("show", "routes")
		return strings.Contains(out, "198.19.192.0/18")
	})
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("fwdd exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fwdd did not stop on SIGTERM")
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

// TestRingPair: two "ring" ports joined by peer= pass packets between
// them (the hub is the stack's), and pinging the far port's address from
// a null port is routed across.
func TestRingPair(t *testing.T) {
	d, _ := nullDaemon(t, `
port add a driver ring peer=x
port add b driver ring peer=x
addr add a 198.18.5.1/24
addr add b 198.18.6.1/24
`)
	out := text(t, d, "show ports")
	if strings.Count(out, "RUNNING") != 2 {
		t.Fatalf("both ring ports should be up once paired:\n%s", out)
	}
}

// TestConnectedRouteDeletedFromOneFIB: connected routes appear in every FIB
// and can be deleted from one by hand.
func TestConnectedRouteDeletedFromOneFIB(t *testing.T) {
	d, _ := nullDaemon(t, "set net.fibs 3\n"+nullConfig)
	for f := range 3 {
		if !strings.Contains(text(t, d, fmt.Sprintf("show routes fib %d", f)), "198.18.1.0/24") {
			t.Fatalf("connected route missing from fib %d", f)
		}
	}
	if _, err := run(t, d, "route del 198.18.1.0/24 fib 1"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text(t, d, "show routes fib 1"), "198.18.1.0/24") {
		t.Fatal("connected route still in fib 1 after route del")
	}
	if !strings.Contains(text(t, d, "show routes fib 2"), "198.18.1.0/24") {
		t.Fatal("route del fib 1 removed the connected route from fib 2")
	}
	if _, err := run(t, d, "route get 198.18.1.7 fib 1"); err == nil {
		t.Fatal("route get found the deleted connected route")
	}
	// A second delete is an error (nothing left to delete).
	if _, err := run(t, d, "route del 198.18.1.0/24 fib 1"); err == nil {
		t.Fatal("deleting twice succeeded")
	}
}

// TestShowRows: the show commands answer with ctl/show's rows as Data and
// their text is ctl/show's rendering of exactly those rows, so fwdctl -j,
// the text and ctl/ctltest's fake executor agree.
func TestShowRows(t *testing.T) {
	d, _ := nullDaemon(t, "set net.fibs 2\n"+nullConfig+`
addr add p1 2001:2::1/64
route add 2001:2:9::/48 via 2001:2::5 via 2001:2::6
route add 203.0.113.0/24 blackhole
rule add 10 in p0 from 198.18.1.0/24 proto udp dport 53 setfib 1
neigh add p1 198.19.2.9 lladdr 02:00:00:00:00:09
`)
	for _, tc := range []struct {
		line   string
		render func(b *strings.Builder, data any) error
		want   []string
	}{
		{"show ports", func(b *strings.Builder, data any) error { return show.Ports(b, data.([]show.Port)) },
			[]string{"p1: flags=<UP,RUNNING> mtu 1500 fib 0 index 2", "inet 198.19.2.1 netmask 0xffffff00", "inet6 2001:2::1 prefixlen 64"}},
		{"show routes", func(b *strings.Builder, data any) error { return show.Routes(b, data.([]show.Route), nil) },
			[]string{"Routing tables (fib: 1)", "198.19.128.0/17  198.19.2.9  UGS    p1", "2001:2:9::/48  2001:2::6  UGS    p1", "203.0.113.0/24   blackhole   USB    -", "198.18.1.1       link#1      UH     p0"}},
		{"show rules", func(b *strings.Builder, data any) error { return show.Rules(b, data.([]show.Rule)) },
			[]string{"00010          0 in p0 from 198.18.1.0/24 proto udp dport 53 setfib 1"}},
		{"show neigh", func(b *strings.Builder, data any) error { return show.Neighbours(b, data.([]show.Neighbour)) },
			[]string{"? (198.19.2.9) at 02:00:00:00:00:09 on p1 permanent [ethernet]"}},
		{"show stats", func(b *strings.Builder, data any) error { return show.Stats(b, data.([]show.Counter), false) },
			[]string{"mbuf pool "}}, // fwd counters may all still be zero
		{"show sysctl net.fibs", func(b *strings.Builder, data any) error { return show.Sysctls(b, data.([]show.Sysctl), "") },
			[]string{"net.fibs: 2\n"}},
	} {
		res, err := run(t, d, tc.line)
		if err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		var b strings.Builder
		if err := tc.render(&b, res[0].Data); err != nil {
			t.Fatal(err)
		}
		// Counters move between two reads (null ports receive all the
		// time): compare the stats' shape only.
		if tc.line != "show stats" && b.String() != res[0].Text {
			t.Errorf("%s: the text is not ctl/show's rendering of its data:\n--- text\n%s--- rendered\n%s", tc.line, res[0].Text, b.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(res[0].Text, w) {
				t.Errorf("%s: no %q in:\n%s", tc.line, w, res[0].Text)
			}
		}
	}
	res, err := run(t, d, "route get 198.19.200.1", "show fibs")
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := res[0].Data.(show.Route); !ok || r.Netif != "p1" || r.Destination.String() != "198.19.128.0/17" {
		t.Errorf("route get data: %#v", res[0].Data)
	}
	if fs, ok := res[1].Data.([]show.FIB); !ok || len(fs) != 2 || fs[0].Routes6 != 3 || fs[0].Bytes4 == 0 || !strings.Contains(res[1].Text, "net.fibs: 2") {
		t.Errorf("show fibs data %#v text:\n%s", res[1].Data, res[1].Text)
	}
}

// TestLCPModel: lcp names are kept in the model, shown by show ports,
// unique across ports and never a port's dev; lcp off clears the name; a
// refused command changes nothing.
func TestLCPModel(t *testing.T) {
	d, _ := nullDaemon(t, "port add p0 driver null\nport add p1 driver null lcp e1\n")
	lcps := func() map[string]string {
		res, err := run(t, d, "show ports")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, p := range res[0].Data.([]show.Port) {
			out[p.Name] = p.LCP
		}
		return out
	}
	if got := lcps(); got["p0"] != "" || got["p1"] != "e1" {
		t.Fatalf("lcp after startup: %v", got)
	}
	if !strings.Contains(text(t, d, "show ports"), "\tlcp e1\n") {
		t.Errorf("show ports does not name the kernel interface:\n%s", text(t, d, "show ports"))
	}
	for _, tc := range []struct{ line, want string }{
		{"port set p0 lcp e1", "lcp e1 is port p1's kernel interface already (port set p1 lcp off first"},
		{"port add p2 driver null lcp e1", "lcp e1 is port p1's kernel interface already"},
		{"port add p3 driver afpacket dev r9 lcp r9", "port p3 attaches to dev r9 already"},
	} {
		_, err := run(t, d, tc.line)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one mentioning %q", tc.line, err, tc.want)
		}
	}
	if got := lcps(); len(got) != 2 || got["p0"] != "" || got["p1"] != "e1" {
		t.Fatalf("a refused command changed the ports: %v", got)
	}
	// Moving a name in one batch: off on one port, on for another.
	if _, err := run(t, d, "port set p1 lcp off", "port set p0 lcp e1"); err != nil {
		t.Fatal(err)
	}
	if got := lcps(); got["p0"] != "e1" || got["p1"] != "" {
		t.Fatalf("after the move: %v", got)
	}
	if _, err := run(t, d, "port set p0 lcp e0", "port set p1 lcp e1"); err != nil {
		t.Fatal(err)
	}
	if got := lcps(); got["p0"] != "e0" || got["p1"] != "e1" {
		t.Fatalf("after renaming: %v", got)
	}
	if _, err := run(t, d, "port del p0", "port add p0 driver null lcp e0"); err != nil {
		t.Fatal(err)
	}
}
