package vnet

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/fwd"
	dto "github.com/prometheus/client_model/go"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// engineCfg keeps every vnet small: one worker, few mbufs.
var engineCfg = fwd.Config{Workers: 1, PoolSize: 2048, CheckedPools: true}

// startHost starts a Host from config (no sockets).
func startHost(t *testing.T, config string) *Host {
	t.Helper()
	cfg := Config{Engine: engineCfg, Log: quiet()}
	if config != "" {
		cfg.ConfigFile = filepath.Join(t.TempDir(), "fwdd.conf")
		if err := os.WriteFile(cfg.ConfigFile, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Shutdown)
	return h
}

func execLines(ex cmdlang.Executor, lines ...string) ([]cmdlang.Result, error) {
	cmds, err := cmdlang.ParseLines(lines, cmdlang.Options{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return ex.Exec(ctx, cmds)
}

func mustText(t *testing.T, ex cmdlang.Executor, line string) string {
	t.Helper()
	res, err := execLines(ex, line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return res[0].Text
}

// twoVnets: the default vnet and blue, with the same addresses and routes.
const twoVnets = `
port add p0 driver null
addr add p0 198.18.1.1/24
route add 198.19.0.0/16 via 198.18.1.9
vnet add blue devices vethb0
vnet blue port add p0 driver null
vnet blue addr add p0 198.18.1.1/24
vnet blue route add 198.19.0.0/16 via 198.18.1.9
vnet blue set net.fibs 2
`

func TestVnetsIsolated(t *testing.T) {
	h := startHost(t, twoVnets)
	if got := strings.Join(h.Names(), " "); got != "default blue" && got != "blue default" {
		t.Fatalf("vnets: %s", got)
	}
	out := mustText(t, h, "show vnets")
	if !strings.Contains(out, "blue") || !strings.Contains(out, "vethb0") {
		t.Fatalf("show vnets:\n%s", out)
	}
	// Same addresses in both, separate sysctls.
	for _, pre := range []string{"", "vnet blue "} {
		if out := mustText(t, h, pre+"show routes"); !strings.Contains(out, "198.19.0.0/16") {
			t.Fatalf("%sshow routes:\n%s", pre, out)
		}
	}
	if got := mustText(t, h, "get net.fibs"); !strings.Contains(got, "1") {
		t.Fatalf("default net.fibs: %s", got)
	}
	if got := mustText(t, h, "vnet blue get net.fibs"); !strings.Contains(got, "2") {
		t.Fatalf("blue net.fibs: %s", got)
	}
	// A route added in blue stays in blue.
	mustText(t, h, "vnet blue route add 198.51.100.0/24 blackhole")
	if strings.Contains(mustText(t, h, "show routes"), "198.51.100.0/24") {
		t.Fatal("blue's route shows in the default vnet")
	}
	// Errors name the command as written.
	_, err := execLines(h, "vnet blue route del 203.0.113.0/24")
	if err == nil || !strings.Contains(err.Error(), "vnet blue route del 203.0.113.0/24") {
		t.Fatalf("error %v should name the prefixed command", err)
	}
	_, err = execLines(h, "vnet red show ports")
	if err == nil || !strings.Contains(err.Error(), "no vnet red") {
		t.Fatalf("unknown vnet: %v", err)
	}
	if blue, def := h.Daemon("blue").Engine(), h.Daemon(Default).Engine(); blue == def || &blue.Pools()[0] == &def.Pools()[0] {
		t.Fatal("vnets share an engine")
	}
}

func TestVnetLifecycleErrors(t *testing.T) {
	h := startHost(t, twoVnets)
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{[]string{"vnet add blue"}, "already exists"},
		{[]string{"vnet del red"}, "no vnet red"},
		{[]string{"vnet add red", "vnet add red"}, "added twice"},
		{[]string{"vnet add red", "vnet del red"}, "added and deleted"},
		{[]string{"vnet blue show ports", "vnet del blue"}, "deleted in the same batch"},
		{[]string{"vnet add red devices vethb0"}, "device vethb0 is claimed by vnets blue and red"},
		{[]string{"vnet add red", "vnet red port add p0 driver afxdp dev vethb0"}, "device vethb0 is claimed by vnets blue and red"},
		{[]string{"port add p9 driver afxdp dev vethb0"}, "device vethb0 belongs to vnet blue"},
		{[]string{"vnet add red owner 1 socket /tmp/x.sock", "vnet add green owner 1 socket /tmp/x.sock"}, "already vnet red's"},
		// A bad command in one vnet: nothing applies anywhere.
		{[]string{"vnet add red", "vnet red port add p0 driver null", "route add 198.51.100.0/24 blackhole", "vnet blue route del 203.0.113.0/24"}, "no route"},
	} {
		_, err := execLines(h, tc.lines...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.lines, err, tc.want)
		}
	}
	if names := h.Names(); len(names) != 2 {
		t.Fatalf("vnets after failed batches: %v", names)
	}
	if strings.Contains(mustText(t, h, "show routes"), "198.51.100.0/24") {
		t.Fatal("a refused batch changed the default vnet")
	}
	// Deleting blue frees its device for another vnet.
	mustText(t, h, "vnet del blue")
	mustText(t, h, "vnet add red devices vethb0")
	if out := mustText(t, h, "show vnets"); strings.Contains(out, "blue") || !strings.Contains(out, "red") {
		t.Fatalf("show vnets:\n%s", out)
	}
}

// TestConfigValidatedWhole: a file whose last vnet has a bad command starts
// nothing, and -check says why.
func TestConfigValidatedWhole(t *testing.T) {
	bad := twoVnets + "vnet add red\nvnet red route add 198.51.100.0/24 via 203.0.113.1\n"
	conf := filepath.Join(t.TempDir(), "fwdd.conf")
	os.WriteFile(conf, []byte(bad), 0o644)
	err := CheckFile(conf)
	if err == nil || !strings.Contains(err.Error(), "fwdd.conf:11: vnet red route add") {
		t.Fatalf("CheckFile: %v", err)
	}
	if _, err := Start(Config{ConfigFile: conf, Engine: engineCfg, Log: quiet()}); err == nil {
		t.Fatal("Start accepted a bad file")
	}
	for _, tc := range []struct{ conf, want string }{
		{"vnet blue port add p0 driver null\n", "no vnet blue"},
		{"vnet add a devices d0\nvnet add b devices d0\n", "device d0 is claimed by vnets a and b"},
		{"vnet add a\nvnet a port add p0 driver afxdp dev d0\nport add p0 driver afpacket dev d0\n", "device d0 is claimed"},
		{"vnet add a owner 5 socket /run/a.sock\nvnet add b owner 5 socket /run/a.sock\n", "already vnet a's"},
		{"vnet add a netns x\nvnet add b netns x\nvnet a port add p0 driver afxdp dev d0\nvnet b port add p0 driver afxdp dev d0\n", "device d0 is claimed by vnets a and b"},
		// Kernel interfaces: their names, and the namespace's kernel tables
		// (mirrored), belong to one vnet.
		{"vnet add a\nvnet a port add p0 driver null lcp k0\nport add p0 driver afpacket dev k0\n", "device k0 is claimed"},
		{"vnet add a\nvnet a port add p0 driver null lcp k0\nport add p0 driver null lcp k1\n", "would mirror the same kernel tables"},
	} {
		os.WriteFile(conf, []byte(tc.conf), 0o644)
		if err := CheckFile(conf); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.conf, err, tc.want)
		}
	}
	for _, ok := range []string{
		twoVnets,
		// The same device name in two namespaces: two devices.
		"vnet add a netns x devices d0\nvnet add b netns y devices d0\nvnet a port add p0 driver afxdp dev d0\nvnet b port add p0 driver afxdp dev d0\nport add p0 driver afxdp dev d0\n",
		"vnet add a netns x\nvnet a port add p0 driver null lcp k0\nport add p0 driver null lcp k0\n",
	} {
		os.WriteFile(conf, []byte(ok), 0o644)
		// The devices and namespaces are made up: validation only (fwdd
		// -check, CheckFile, also looks the devices up).
		if err := checkFile(conf, false, fwd.Config{}); err != nil {
			t.Fatalf("%q: %v", ok, err)
		}
	}
}

// TestReloadVnets: SIGHUP's reload creates, updates and deletes vnets to
// match the file.
func TestReloadVnets(t *testing.T) {
	h := startHost(t, twoVnets)
	mustText(t, h, "vnet add live")
	os.WriteFile(h.cfg.ConfigFile, []byte(twoVnets+"vnet add red devices d9\nvnet red port add p0 driver null\n"), 0o644)
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.Names(), " "); got != "blue default red" {
		t.Fatalf("after reload: %s", got)
	}
	os.WriteFile(h.cfg.ConfigFile, []byte("vnet add red devices d8\nvnet red port add p0 driver null\nvnet add x\nvnet x port add p0 driver null\nvnet x route add 1.2.3.0/24 via 9.9.9.9\n"), 0o644)
	if err := h.Reload(); err == nil {
		t.Fatal("bad reload accepted")
	}
	if got := strings.Join(h.Names(), " "); got != "blue default red" {
		t.Fatalf("after a failed reload: %s", got)
	}
	os.WriteFile(h.cfg.ConfigFile, []byte("vnet add red devices d8\nvnet red port add p0 driver null\n"), 0o644)
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.Names(), " "); got != "default red" {
		t.Fatalf("after reload: %s", got)
	}
	if out := mustText(t, h, "show vnets"); !strings.Contains(out, "d8") || strings.Contains(out, "d9") {
		t.Fatalf("red's devices not updated:\n%s", out)
	}
	if out := mustText(t, h, "show ports"); !strings.Contains(out, "no ports") {
		t.Fatalf("the default vnet kept ports the file no longer has:\n%s", out)
	}
}

// TestTenantExecutor: a tenant's batch is checked against the allow-list
// and sees only its vnet.
func TestTenantExecutor(t *testing.T) {
	h := startHost(t, twoVnets+"vnet add red\nvnet red port add q0 driver null\n")
	routes := t.TempDir()
	os.WriteFile(filepath.Join(routes, "r.txt"), []byte("198.51.100.0/24\n"), 0o644)
	outside := filepath.Join(t.TempDir(), "o.txt")
	os.WriteFile(outside, []byte("198.51.101.0/24\n"), 0o644)
	os.Symlink(outside, filepath.Join(routes, "link.txt"))
	h.mu.Lock()
	h.vnets["blue"].spec.Routes = routes
	h.mu.Unlock()
	ten := &tenant{h: h, v: h.vnets["blue"]}
	if out := mustText(t, ten, "show ports"); !strings.Contains(out, "p0") || strings.Contains(out, "q0") {
		t.Fatalf("tenant show ports:\n%s", out)
	}
	if out := mustText(t, ten, "show vnets"); !strings.Contains(out, "blue") || strings.Contains(out, "red") || strings.Contains(out, "default") {
		t.Fatalf("tenant show vnets:\n%s", out)
	}
	mustText(t, ten, "route add 198.51.102.0/24 via 198.18.1.9")
	mustText(t, ten, "route load "+filepath.Join(routes, "r.txt")+" blackhole")
	if out := mustText(t, h, "vnet blue show routes"); !strings.Contains(out, "198.51.102.0/24") || !strings.Contains(out, "198.51.100.0/24") {
		t.Fatalf("tenant routes missing:\n%s", out)
	}
	for _, tc := range []struct{ line, want string }{
		{"vnet red show ports", "vnet prefixes are for the main socket"},
		{"vnet add x", "only root creates"},
		{"vnet del blue", "only root creates"},
		{"port add p1 driver afxdp dev eth0", "device eth0 was not given to this vnet"},
		{"port add p1 driver frob", "driver frob is not available to tenants"},
		{"route load " + outside + " blackhole", "outside " + routes},
		{"route load ../x.txt blackhole", "outside"},
		{"route load " + filepath.Join(routes, "link.txt") + " blackhole", "escapes"},
	} {
		_, err := execLines(ten, tc.line)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tenant %q: %v, want %q", tc.line, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "red") && tc.line != "vnet red show ports" {
			t.Errorf("tenant %q: the error names another vnet: %v", tc.line, err)
		}
	}
	if _, err := execLines(ten, "vnet add x"); !errors.Is(err, ErrTenant) {
		t.Errorf("refusal does not wrap ErrTenant: %v", err)
	}
	// The device root granted: allowed.
	if _, err := execLines(ten, "port add p1 driver afxdp dev vethb0"); err == nil || strings.Contains(err.Error(), "not given") {
		t.Errorf("granted device: %v (want a driver error: there is no such device)", err)
	}
	// Deleted vnet: the tenant's executor says so.
	mustText(t, h, "vnet del blue")
	if _, err := execLines(ten, "show ports"); err == nil || !strings.Contains(err.Error(), "was deleted") {
		t.Errorf("after vnet del: %v", err)
	}
}

// TestMetricsVnetLabel: every vnet's metrics carry vnet="NAME"; a deleted
// vnet's disappear.
func TestMetricsVnetLabel(t *testing.T) {
	h := startHost(t, twoVnets)
	count := func(vnet string) int {
		mfs, err := h.Metrics().Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			if mf.GetName() != "fwdd_port_packets_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "vnet" && l.GetValue() == vnet {
						n++
					}
				}
			}
		}
		return n
	}
	if count("default") == 0 || count("blue") == 0 {
		t.Fatalf("port metrics: default %d, blue %d", count("default"), count("blue"))
	}
	// Every collector of the stack is there, the workers' load too.
	mfs, _ := h.Metrics().Gather()
	if !slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == "fwdd_worker_polls_total" }) {
		t.Error("fwdd_worker_polls_total missing from the host's metrics")
	}
	mustText(t, h, "vnet del blue")
	if count("blue") != 0 {
		t.Fatal("a deleted vnet's metrics remain")
	}
}
