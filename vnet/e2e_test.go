package vnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/pmd"
)

// twin is two routers with identical addressing in one fwdd, vnet default
// and vnet blue, each between its own pair of Linux hosts:
//
//	ha1 198.18.1.2 -- a0 [default p0 | p1] a1 -- ha2 198.19.2.2
//	hb1 198.18.1.2 -- b0 [blue    p0 | p1] b1 -- hb2 198.19.2.2
type twin struct {
	t        *testing.T
	n        *testnet.Net
	rt       string
	ha, hb   [2]string // host namespaces
	dev      map[string]string
	h        *Host
	dir      string
	driver   string
	blueSock string
}

func newTwin(t *testing.T) *twin {
	n := testnet.New(t)
	x := &twin{t: t, n: n, rt: n.NS("rt"), dev: map[string]string{}, dir: openDir(t)}
	x.ha = [2]string{n.NS("ha1"), n.NS("ha2")}
	x.hb = [2]string{n.NS("hb1"), n.NS("hb2")}
	for _, side := range []struct {
		hosts [2]string
		pre   string
	}{{x.ha, "a"}, {x.hb, "b"}} {
		for i, h := range side.hosts {
			dev := n.Name(fmt.Sprintf("%s%d", side.pre, i))
			x.dev[fmt.Sprintf("%s%d", side.pre, i)] = dev
			n.Veth(h, "veth", x.rt, dev)
			n.TryIn(h, "ethtool", "-K", "veth", "tx", "off")
			addr, gw := "198.18.1.2/24", "198.18.1.1"
			if i == 1 {
				addr, gw = "198.19.2.2/24", "198.19.2.1"
			}
			n.In(h, "ip", "addr", "add", addr, "dev", "veth")
			n.In(h, "ip", "route", "add", "default", "via", gw)
		}
	}
	x.driver = "afpacket"
	for _, d := range pmd.Drivers() {
		if d.Name == "afxdp" {
			x.driver = "afxdp"
		}
	}
	x.blueSock = filepath.Join(x.dir, "blue.sock")
	return x
}

const twinConfig = `
port add p0 driver %[1]s dev %[2]s
port add p1 driver %[1]s dev %[3]s
addr add p0 198.18.1.1/24
addr add p1 198.19.2.1/24
vnet add blue owner 65534:65534 socket %[6]s devices %[4]s,%[5]s
vnet blue port add p0 driver %[1]s dev %[4]s
vnet blue port add p1 driver %[1]s dev %[5]s
vnet blue addr add p0 198.18.1.1/24
vnet blue addr add p1 198.19.2.1/24
`

func (x *twin) start() {
	x.t.Helper()
	conf := filepath.Join(x.dir, "fwdd.conf")
	text := fmt.Sprintf(twinConfig, x.driver, x.dev["a0"], x.dev["a1"], x.dev["b0"], x.dev["b1"], x.blueSock)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		x.t.Fatal(err)
	}
	h, err := Start(Config{
		ConfigFile: conf, Socket: filepath.Join(x.dir, "fwdd.sock"), NetNS: testnet.Path(x.rt),
		Engine: fwd.Config{Workers: 1, PoolSize: 8192, CheckedPools: true}, Log: quiet(),
	})
	if err != nil {
		x.t.Fatalf("start fwdd: %v", err)
	}
	x.h = h
	x.t.Cleanup(h.Shutdown)
}

func (x *twin) eventuallyPing(t *testing.T, vnet, ns, dst string) {
	t.Helper()
	var out string
	deadline := testnet.Deadline(15 * time.Second)
	for time.Now().Before(deadline) {
		o, err := x.n.TryIn(ns, "ping", "-c", "1", "-W", "1", dst)
		if err == nil {
			return
		}
		out = o
	}
	diag := ""
	for _, c := range []string{"show ports", "show neigh", "show stats"} {
		res, err := execLines(x.h, "vnet "+vnet+" "+c)
		if err == nil {
			diag += res[0].Text
		}
	}
	t.Fatalf("ping %s from %s never got through:\n%s\nvnet %s:\n%s", dst, ns, out, vnet, diag)
}

// bg runs cmd in ns and returns a function waiting for its output.
func (x *twin) bg(ns string, cmd ...string) func() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	c := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, cmd...)...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	c.WaitDelay = 2 * time.Second
	if err := c.Start(); err != nil {
		cancel()
		x.t.Fatal(err)
	}
	done := make(chan struct{})
	var err error
	go func() { err = c.Wait(); cancel(); close(done) }()
	x.t.Cleanup(func() { cancel(); <-done })
	return func() (string, error) {
		<-done
		return out.String(), err
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

var lossRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// TestTwoVnetsForward: two vnets with identical addressing route between
// their own hosts at the same time (ping and iperf3 through both); then
// one is deleted while both forward, and the other loses nothing.
func TestTwoVnetsForward(t *testing.T) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Skip("needs iperf3 (apt-get install iperf3)")
	}
	x := newTwin(t)
	x.start()
	for i, hs := range [][2]string{x.ha, x.hb} {
		v := []string{"default", "blue"}[i]
		x.eventuallyPing(t, v, hs[0], "198.19.2.2")
		x.eventuallyPing(t, v, hs[1], "198.18.1.2")
	}
	// Each vnet has its own neighbour table: the same address, two MACs.
	neighA := mustText(t, x.h, "show neigh")
	neighB := mustText(t, x.h, "vnet blue show neigh")
	for _, mac := range []string{x.n.MAC(x.ha[0], "veth"), x.n.MAC(x.ha[1], "veth")} {
		if !strings.Contains(neighA, mac) || strings.Contains(neighB, mac) {
			t.Fatalf("default's hosts (%s) should be in default's table only:\ndefault:\n%s\nblue:\n%s", mac, neighA, neighB)
		}
	}

	t.Run("iperf3", func(t *testing.T) {
		for _, hs := range [][2]string{x.ha, x.hb} {
			x.n.Start(hs[1], "iperf3", "-s", "-B", "198.19.2.2")
		}
		testnet.Eventually(t, 10*time.Second, "iperf3 servers", func() bool {
			for _, hs := range [][2]string{x.ha, x.hb} {
				if out, _ := x.n.TryIn(hs[1], "ss", "-ltn"); !strings.Contains(out, "198.19.2.2:5201") {
					return false
				}
			}
			return true
		})
		receiver := func(name, out string, err error) string {
			t.Helper()
			if err != nil || !strings.Contains(out, "receiver") {
				t.Fatalf("iperf3 through vnet %s: %v\n%s", name, err, out)
			}
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "receiver") {
					return strings.TrimSpace(l)
				}
			}
			return ""
		}
		// Baseline: the default vnet alone; then both at once.
		alone, err := x.bg(x.ha[0], "iperf3", "-c", "198.19.2.2", "-t", "3", "-f", "m")()
		t.Logf("default alone: %s", receiver("default", alone, err))
		var waits []func() (string, error)
		for _, hs := range [][2]string{x.ha, x.hb} {
			waits = append(waits, x.bg(hs[0], "iperf3", "-c", "198.19.2.2", "-t", "3", "-f", "m"))
		}
		for i, w := range waits {
			out, err := w()
			name := []string{"default", "blue"}[i]
			t.Logf("%s (both at once): %s", name, receiver(name, out, err))
		}
	})

	// A third vnet flooded at full rate (a null port forwarding into
	// another as fast as its worker runs) takes CPU time, nothing else:
	// the default vnet still answers every ping.
	t.Run("flooded-neighbour", func(t *testing.T) {
		mustText(t, x.h, "vnet add flood")
		for _, l := range []string{
			"port add n0 driver null src 198.18.9.1 dst 198.19.9.9 dmac 02:00:00:00:00:01",
			"port add n1 driver null",
			"addr add n0 198.18.9.2/24",
			"addr add n1 198.19.9.1/24",
			"neigh add n1 198.19.9.9 lladdr 02:00:00:00:00:09",
		} {
			mustText(t, x.h, "vnet flood "+l)
		}
		defer mustText(t, x.h, "vnet del flood")
		flood := x.h.Daemon("flood").Engine()
		before := flood.Counters()["forwarded"]
		out, err := x.n.TryIn(x.ha[0], "ping", "-i", "0.01", "-c", "300", "-W", "1", "198.19.2.2")
		m := lossRE.FindStringSubmatch(out)
		if err != nil || m == nil || m[1] != m[2] {
			t.Fatalf("default vnet lost packets next to a flooded vnet: %v\n%s", err, lastLines(out, 4))
		}
		t.Logf("default: %s while vnet flood forwarded %d packets", m[0], flood.Counters()["forwarded"]-before)
	})

	t.Run("delete-while-forwarding", func(t *testing.T) {
		const count = 600 // 6 s at -i 0.01
		pingA := x.bg(x.ha[0], "ping", "-i", "0.01", "-c", fmt.Sprint(count), "-W", "1", "198.19.2.2")
		pingB := x.bg(x.hb[0], "ping", "-i", "0.01", "-c", fmt.Sprint(count), "-W", "1", "198.19.2.2")
		// Both forward, then blue goes away mid-stream.
		blue := x.h.Daemon("blue").Engine()
		testnet.Eventually(t, 5*time.Second, "blue forwarding", func() bool { return blue.Counters()["forwarded"] > 100 })
		mustText(t, x.h, "vnet del blue")
		outA, errA := pingA()
		outB, _ := pingB()
		m := lossRE.FindStringSubmatch(outA)
		if errA != nil || m == nil || m[1] != m[2] {
			t.Fatalf("default vnet lost packets across vnet del blue: %v\n%s\n%s", errA, lastLines(outA, 4), mustText(t, x.h, "show stats"))
		}
		if mb := lossRE.FindStringSubmatch(outB); mb == nil || mb[1] == mb[2] {
			t.Errorf("blue's ping should have stopped getting answers after vnet del:\n%s", outB)
		}
		t.Logf("default: %s", m[0])
		// Blue's devices are free again: no XDP program left on them.
		for _, d := range []string{x.dev["b0"], x.dev["b1"]} {
			if out := x.n.In(x.rt, "ip", "link", "show", d); strings.Contains(out, "xdp") {
				t.Errorf("XDP program left on %s after vnet del:\n%s", d, out)
			}
		}
		if _, err := os.Stat(x.blueSock); !os.IsNotExist(err) {
			t.Errorf("blue's socket left behind: %v", err)
		}
		// And another vnet can take them.
		mustText(t, x.h, fmt.Sprintf("vnet add green devices %s,%s", x.dev["b0"], x.dev["b1"]))
		if _, err := execLines(x.h, fmt.Sprintf("vnet green port add p0 driver %s dev %s", x.driver, x.dev["b0"]),
			"vnet green port add p1 driver "+x.driver+" dev "+x.dev["b1"],
			"vnet green addr add p0 198.18.1.1/24", "vnet green addr add p1 198.19.2.1/24"); err != nil {
			t.Fatal(err)
		}
		x.eventuallyPing(t, "green", x.hb[0], "198.19.2.2")
	})
}

// TestVnetNetNS: vnets in their own network namespaces open devices of the
// same name, each its own.
func TestVnetNetNS(t *testing.T) {
	n := testnet.New(t)
	var conf strings.Builder
	for _, v := range []string{"a", "b"} {
		rt, peer := n.NS("r"+v), n.NS("p"+v)
		n.Veth(rt, "r0", peer, "veth")
		fmt.Fprintf(&conf, "vnet add %s netns %s devices r0\nvnet %s port add p0 driver afpacket dev r0\n", v, rt, v)
	}
	h := startHost(t, conf.String())
	macs := map[string]bool{}
	for _, v := range []string{"a", "b"} {
		res, err := execLines(h, "vnet "+v+" show ports")
		if err != nil || !strings.Contains(res[0].Text, "dev r0") {
			t.Fatalf("vnet %s: %v\n%v", v, err, res)
		}
		for _, l := range strings.Split(res[0].Text, "\n") {
			if strings.Contains(l, "ether") {
				macs[l] = true
			}
		}
	}
	if len(macs) != 2 {
		t.Fatalf("the two vnets' p0 should be two devices (two MACs): %v", macs)
	}
	if out := mustText(t, h, "show vnets"); !strings.Contains(out, "/run/netns/") {
		t.Fatalf("show vnets has no netns:\n%s", out)
	}
}

// TestTenantRootPorts: a tenant may re-create a port on a device root
// opened in its vnet (a grant), until root deletes that port itself.
func TestTenantRootPorts(t *testing.T) {
	n := testnet.New(t)
	rt, peer := n.NS("rt"), n.NS("p")
	n.Veth(rt, "r0", peer, "v0")
	n.Veth(rt, "r1", peer, "v1")
	h := startHost(t, "vnet add a netns "+rt+" devices r0\nvnet a port add p1 driver afpacket dev r1\n")
	h.mu.RLock()
	ten := &tenant{h: h, v: h.vnets["a"]}
	h.mu.RUnlock()
	mustText(t, ten, "port del p1")
	mustText(t, ten, "port add p1 driver afpacket dev r1")
	mustText(t, ten, "port add p0 driver afpacket dev r0")
	if _, err := execLines(ten, "port add p2 driver afpacket dev veth9"); err == nil || !strings.Contains(err.Error(), "not given") {
		t.Fatalf("a device root never gave: %v", err)
	}
	// Root deletes the port: the grant ends; r0 (vnet add ... devices) stays.
	mustText(t, h, "vnet a port del p1")
	if _, err := execLines(ten, "port add p1 driver afpacket dev r1"); err == nil || !strings.Contains(err.Error(), "not given") {
		t.Fatalf("after root deleted the port: %v", err)
	}
	mustText(t, ten, "port del p0")
	mustText(t, ten, "port add p0 driver afpacket dev r0")
	// And r1 is free for another vnet in the same namespace.
	mustText(t, h, "vnet add b netns "+rt)
	mustText(t, h, "vnet b port add q1 driver afpacket dev r1")
	if _, err := execLines(h, "vnet b port add q0 driver afpacket dev r0"); err == nil || !strings.Contains(err.Error(), "belongs to vnet a") {
		t.Fatalf("vnet a's device: %v", err)
	}
	// Kernel interfaces (lcp): one vnet per namespace mirrors its tables.
	mustText(t, h, "vnet b port add q2 driver null lcp k9")
	if _, err := execLines(h, "vnet a port add p3 driver null lcp k8"); err == nil || !strings.Contains(err.Error(), "vnet b has kernel interfaces (lcp) in the same network namespace") {
		t.Fatalf("a second vnet with lcp in one namespace: %v", err)
	}
	if _, err := execLines(h, "vnet a port add p3 driver afpacket dev k9"); err == nil || !strings.Contains(err.Error(), "device k9 belongs to vnet b") {
		t.Fatalf("vnet b's kernel interface as a device: %v", err)
	}
}
