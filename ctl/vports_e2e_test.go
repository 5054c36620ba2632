package ctl

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/internal/testnet"
)

// startConf runs fwdd in-process on config text, ports in namespace rt.
func (x *e2e) startConf(conf string) {
	x.t.Helper()
	dir := x.t.TempDir()
	path := filepath.Join(dir, "fwdd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		x.t.Fatal(err)
	}
	d, err := Start(Options{
		ConfigFile: path, Socket: filepath.Join(dir, "fwdd.sock"), NetNS: testnet.Path(x.rt),
		Engine: fwd.Config{Workers: 1, PoolSize: 16384, CheckedPools: true},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		x.t.Fatalf("start fwdd: %v", err)
	}
	x.d = d
	x.t.Cleanup(d.Shutdown)
}

// host makes namespace ns with interface dev (the far end of a veth made
// by the caller) addressed a4 with default gateway gw4.
func (x *e2e) host(ns, dev, a4, gw4 string) {
	x.n.In(ns, "ip", "addr", "add", a4, "dev", dev)
	x.n.In(ns, "ip", "route", "add", "default", "via", gw4)
}

// counter reads one counter of show stats.
func (x *e2e) counter(name string) uint64 {
	for _, l := range strings.Split(x.show("show stats"), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[1] == name {
			n, _ := strconv.ParseUint(f[0], 10, 64)
			return n
		}
	}
	return 0
}

// TestE2EVLANOVS: 802.1Q sub-interfaces against Open vSwitch (userspace
// datapath): fwdd's p0 is a trunk to an OVS bridge whose access ports
// (tag 100, 101, 200) lead to hosts; p1 is untagged to h2.
//
//	h100 (tag 100) \
//	h101 (tag 101)  OVS br -- trunk -- r0 [fwdd p0, p0.100, p0.101 | p1] r1 -- h2
//	h200 (tag 200) /
//
// Routing VLAN <-> untagged and VLAN <-> VLAN works; tag 200 has no
// sub-interface: its frames are dropped and counted, never routed.
func TestE2EVLANOVS(t *testing.T) {
	testnet.SkipNoOVS(t)
	n := testnet.New(t)
	x := &e2e{t: t, n: n, rt: n.NS("rt"), h2: n.NS("h2")}
	o := n.StartOVS()
	br := n.Name("vb")
	o.Bridge(br)
	trunk := n.Name("vt")
	o.HostVeth(trunk, x.rt, "r0")
	o.Vsctl("add-port", br, trunk)
	n.Veth(x.h2, "h2", x.rt, "r1")
	n.TryIn(x.h2, "ethtool", "-K", "h2", "tx", "off")
	x.host(x.h2, "h2", "198.19.2.2/24", "198.19.2.1")
	hosts := map[int]string{}
	for _, vid := range []int{100, 101, 200} {
		ns := n.NS(fmt.Sprintf("v%d", vid))
		a := n.Name(fmt.Sprintf("a%d", vid))
		o.HostVeth(a, ns, "eth0")
		o.Vsctl("add-port", br, a, "tag="+strconv.Itoa(vid))
		x.host(ns, "eth0", fmt.Sprintf("198.18.%d.2/24", vid), fmt.Sprintf("198.18.%d.1", vid))
		hosts[vid] = ns
	}
	x.startConf(`
port add p0 driver afxdp dev r0
port add p1 driver afxdp dev r1
port add p0.100 driver vlan parent p0 vid 100
port add p0.101 driver vlan parent p0 vid 101
addr add p0.100 198.18.100.1/24
addr add p0.101 198.18.101.1/24
addr add p1 198.19.2.1/24
`)
	x.eventuallyPing(hosts[100], "198.18.100.1") // the sub-interface's own address
	x.eventuallyPing(hosts[100], "198.19.2.2")   // VLAN -> untagged
	x.eventuallyPing(x.h2, "198.18.101.2")       // untagged -> VLAN
	x.eventuallyPing(hosts[100], "198.18.101.2") // VLAN -> VLAN
	x.h1 = hosts[101]
	x.tcpTransfer(t, "198.19.2.2", 1<<20)

	before := x.counter("drop_unknown_vlan")
	if out, err := x.n.TryIn(hosts[200], "ping", "-c", "3", "-i", "0.2", "-W", "1", "198.19.2.2"); err == nil {
		t.Fatalf("tag 200 has no sub-interface, yet its host got through:\n%s", out)
	}
	if after := x.counter("drop_unknown_vlan"); after <= before {
		t.Fatalf("drop_unknown_vlan did not move (%d -> %d):\n%s", before, after, x.show("show stats"))
	}
	ports := x.show("show ports")
	for _, want := range []string{"p0.100", "p0.101", "vlan"} {
		if !strings.Contains(ports, want) {
			t.Errorf("show ports lacks %q:\n%s", want, ports)
		}
	}
	// Deleting the parent while a sub-interface uses it is refused.
	if _, err := x.exec("port del p0"); err == nil || !strings.Contains(err.Error(), "used by port p0.10") {
		t.Errorf("port del p0 with sub-interfaces: %v", err)
	}
}

// TestE2EMulticastMemberships: a port joins on its device the groups it
// needs (IPv6 all-routers and solicited-node, operator joins), and they
// are gone after address delete, leave, port delete, and interface delete;
// a re-created interface gets them back. Checked with ip maddr.
func TestE2EMulticastMemberships(t *testing.T) {
	for _, driver := range e2eDrivers() {
		t.Run(driver, func(t *testing.T) { testMulticast(t, driver) })
	}
}

func testMulticast(t *testing.T, driver string) {
	n := testnet.New(t)
	x := &e2e{t: t, n: n, rt: n.NS("rt"), h1: n.NS("h1")}
	n.Veth(x.h1, "h1", x.rt, "r0")
	x.startConf(`
port add p0 driver ` + driver + ` dev r0
addr add p0 198.18.1.1/24
addr add p0 2001:2:0:1::1/64
`)
	maddr := func() string { out, _ := n.TryIn(x.rt, "ip", "maddr", "show", "dev", "r0"); return out }
	has := func(g string) bool { return strings.Contains(maddr(), "link  "+g) }
	wait := func(what string, cond func() bool) {
		t.Helper()
		testnet.Eventually(t, 5*time.Second, what+"\n"+maddr(), cond)
	}
	const solicited, allRouters, isis = "33:33:ff:00:00:01", "33:33:00:00:00:02", "01:80:c2:00:00:14"
	wait("solicited-node and all-routers joined", func() bool { return has(solicited) && has(allRouters) })
	if sp := x.show("show ports"); !strings.Contains(sp, "multicast ") || !strings.Contains(sp, solicited) {
		t.Errorf("show ports does not list the memberships:\n%s", sp)
	}
	x.mustExec("port set p0 join " + isis)
	wait("operator join", func() bool { return has(isis) })
	x.mustExec("port set p0 leave " + isis)
	wait("operator leave", func() bool { return !has(isis) })
	x.mustExec("addr del p0 2001:2:0:1::1/64")
	wait("solicited-node left after address delete", func() bool { return !has(solicited) && !has(allRouters) })
	x.mustExec("addr add p0 2001:2:0:1::1/64", "port set p0 join "+isis)
	wait("joined again", func() bool { return has(solicited) && has(isis) })

	// The interface vanishes and comes back: re-joined on the new one.
	n.In(x.rt, "ip", "link", "del", "r0")
	n.Veth(x.h1, "h1", x.rt, "r0")
	wait("re-joined on the re-created interface", func() bool { return has(solicited) && has(isis) && has(allRouters) })

	// Port delete: every membership released.
	x.mustExec("port del p0")
	wait("released on port delete", func() bool { return !has(solicited) && !has(isis) && !has(allRouters) })
}
