package ctl

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/pmd"
)

// e2e is the standard topology with real Linux hosts on both sides:
//
//	h1 198.18.1.2/24 2001:2:0:1::2/64 -- r0 [fwdd p0 | p1] r1 -- h2 198.19.2.2/24 2001:2:0:2::2/64
type e2e struct {
	t          *testing.T
	n          *testnet.Net
	h1, h2, rt string
	d          *Daemon
	// poolSize is the mbufs per worker (8192 if 0: two afxdp ports park
	// 2048 each in their fill rings, and a flood needs buffers for answers).
	poolSize int
}

func newE2E(t *testing.T) *e2e {
	n := testnet.New(t)
	testenv.Tool(t, "ethtool", "ethtool")
	testenv.Tool(t, "ping", "iputils-ping")
	x := &e2e{t: t, n: n, h1: n.NS("h1"), h2: n.NS("h2"), rt: n.NS("rt")}
	n.Veth(x.h1, "h1", x.rt, "r0")
	n.Veth(x.h2, "h2", x.rt, "r1")
	for _, h := range []struct{ ns, dev, a4, gw4, a6, gw6 string }{
		{x.h1, "h1", "198.18.1.2/24", "198.18.1.1", "2001:2:0:1::2/64", "2001:2:0:1::1"},
		{x.h2, "h2", "198.19.2.2/24", "198.19.2.1", "2001:2:0:2::2/64", "2001:2:0:2::1"},
	} {
		// Hosts compute their own checksums: a veth would otherwise hand
		// over packets whose checksum is left to a NIC.
		n.TryIn(h.ns, "ethtool", "-K", h.dev, "tx", "off")
		n.In(h.ns, "ip", "addr", "add", h.a4, "dev", h.dev)
		n.In(h.ns, "ip", "addr", "add", h.a6, "dev", h.dev, "nodad")
		n.In(h.ns, "ip", "route", "add", "default", "via", h.gw4)
		n.In(h.ns, "ip", "-6", "route", "add", "default", "via", h.gw6)
	}
	return x
}

const e2eConfig = `
port add p0 driver %[1]s dev r0
port add p1 driver %[1]s dev r1
addr add p0 198.18.1.1/24
addr add p0 2001:2:0:1::1/64
addr add p1 198.19.2.1/24
addr add p1 2001:2:0:2::1/64
`

// start runs fwdd in-process with its ports in the router namespace.
func (x *e2e) start(driver string) {
	x.t.Helper()
	dir := x.t.TempDir()
	conf := filepath.Join(dir, "fwdd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(e2eConfig, driver)), 0o644); err != nil {
		x.t.Fatal(err)
	}
	d, err := Start(Options{
		ConfigFile: conf, Socket: filepath.Join(dir, "fwdd.sock"), NetNS: testnet.Path(x.rt),
		Engine: fwd.Config{Workers: 1, PoolSize: cmp.Or(x.poolSize, 8192), CheckedPools: true},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		x.t.Fatalf("start fwdd: %v", err)
	}
	x.d = d
	x.t.Cleanup(d.Shutdown)
}

// exec runs command lines through the daemon, like fwdctl.
func (x *e2e) exec(lines ...string) ([]cmdlang.Result, error) {
	cmds, err := cmdlang.ParseLines(lines, cmdlang.Options{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return x.d.Exec(ctx, cmds)
}

func (x *e2e) mustExec(lines ...string) []cmdlang.Result {
	x.t.Helper()
	res, err := x.exec(lines...)
	if err != nil {
		x.t.Fatalf("%v", err)
	}
	return res
}

func (x *e2e) ping(ns string, args ...string) (string, error) {
	return x.n.TryIn(ns, append([]string{"ping", "-c", "2", "-i", "0.2", "-W", "2"}, args...)...)
}

// eventuallyPing waits until a ping gets through (the first packets may
// wait for ARP/NDP on both sides).
func (x *e2e) eventuallyPing(ns string, args ...string) {
	x.t.Helper()
	var out string
	deadline := testnet.Deadline(10 * time.Second)
	for time.Now().Before(deadline) {
		o, err := x.n.TryIn(ns, append([]string{"ping", "-c", "1", "-W", "1"}, args...)...)
		if err == nil {
			return
		}
		out = o
	}
	x.t.Fatalf("ping %v from %s never got through:\n%s\n%s", args, ns, out, x.show("show stats"))
}

func (x *e2e) show(line string) string {
	res, err := x.exec(line)
	if err != nil {
		return err.Error()
	}
	return res[0].Text
}

func TestE2EForwarding(t *testing.T) {
	for _, driver := range e2eDrivers() {
		t.Run(driver, func(t *testing.T) {
			x := newE2E(t)
			x.start(driver)
			// Both families, both directions, and the router's own addresses.
			x.eventuallyPing(x.h1, "198.19.2.2")
			x.eventuallyPing(x.h2, "198.18.1.2")
			x.eventuallyPing(x.h1, "-6", "2001:2:0:2::2")
			x.eventuallyPing(x.h2, "-6", "2001:2:0:1::2")
			x.eventuallyPing(x.h2, "198.18.1.1")
			x.eventuallyPing(x.h1, "-6", "2001:2:0:1::1")

			t.Run("tcp", func(t *testing.T) {
				x.tcpTransfer(t, "198.19.2.2", 1<<20)
				x.tcpTransfer(t, "2001:2:0:2::2", 1<<20)
			})
			t.Run("traceroute", func(t *testing.T) {
				testenv.Tool(t, "traceroute", "traceroute")
				// Hosts rate-limit their own ICMP errors (the last hop's port
				// unreachable): allow a retry rather than a flaky failure.
				var out string
				for try := 0; try < 3; try++ {
					out, _ = x.n.TryIn(x.h1, "traceroute", "-n", "-q", "2", "-w", "2", "-m", "4", "198.19.2.2")
					if strings.Contains(out, " 1  198.18.1.1") && strings.Contains(out, "198.19.2.2  ") {
						return
					}
					time.Sleep(time.Second)
				}
				t.Fatalf("traceroute does not show the router as the first hop and the host as the second:\n%s", out)
			})
			t.Run("unreachable", func(t *testing.T) {
				out, _ := x.ping(x.h1, "198.19.77.1")
				if !strings.Contains(out, "Destination Net Unreachable") || !strings.Contains(out, "198.18.1.1") {
					t.Fatalf("no ICMP net unreachable from the router:\n%s", out)
				}
				out, _ = x.ping(x.h1, "-6", "2001:2:0:77::1")
				if !strings.Contains(out, "Destination unreachable") && !strings.Contains(out, "No route") {
					t.Fatalf("no ICMPv6 destination unreachable:\n%s", out)
				}
			})
			t.Run("mtu", func(t *testing.T) {
				x.mustExec("port set p1 mtu 1400")
				defer x.mustExec("port set p1 mtu 1500")
				out, _ := x.ping(x.h1, "-M", "do", "-s", "1450", "198.19.2.2")
				if !strings.Contains(out, "mtu = 1400") {
					t.Fatalf("no fragmentation-needed with the next-hop MTU:\n%s", out)
				}
				out, _ = x.ping(x.h1, "-6", "-M", "do", "-s", "1450", "2001:2:0:2::2")
				if !strings.Contains(out, "mtu=1400") && !strings.Contains(out, "mtu = 1400") {
					t.Fatalf("no packet-too-big with the MTU:\n%s", out)
				}
				// Without DF the router fragments, and the host reassembles.
				if out, err := x.ping(x.h1, "-M", "dont", "-s", "1450", "198.19.2.2"); err != nil {
					t.Fatalf("fragmented ping failed: %v\n%s", err, out)
				}
			})
			t.Run("setfib", func(t *testing.T) {
				x.mustExec("set net.fibs 2", "route add 198.19.2.0/24 blackhole fib 1",
					"rule add 10 from 198.18.1.2/32 setfib 1")
				if out, err := x.ping(x.h1, "198.19.2.2"); err == nil {
					t.Fatalf("ping got through although the rule moved h1 to the blackholed FIB 1:\n%s", out)
				}
				res := x.mustExec("show rules")
				if !strings.Contains(res[0].Text, "setfib 1") {
					t.Fatalf("show rules:\n%s", res[0].Text)
				}
				x.mustExec("rule del 10")
				x.eventuallyPing(x.h1, "198.19.2.2")
			})
			t.Run("show", func(t *testing.T) {
				for _, c := range []struct{ line, want string }{
					{"show neigh", "reachable"},
					{"show routes", "198.19.2.0/24"},
					{"show ports", "RUNNING"},
					{"show stats", "forwarded"},
					{"route get 198.19.2.2", "interface: p1"},
				} {
					if out := x.show(c.line); !strings.Contains(out, c.want) {
						t.Errorf("%s: no %q in:\n%s", c.line, c.want, out)
					}
				}
			})
			t.Run("shutdown", func(t *testing.T) {
				// Stopping detaches the XDP programs and closes the sockets.
				x.d.Shutdown()
				out := x.n.In(x.rt, "ip", "-d", "link", "show")
				if strings.Contains(out, "xdp") || strings.Contains(out, "prog/xdp") {
					t.Fatalf("an XDP program is left on the router's interfaces:\n%s", out)
				}
				pk := x.n.In(x.rt, "cat", "/proc/net/packet")
				if n := strings.Count(strings.TrimSpace(pk), "\n"); n > 0 {
					t.Fatalf("packet sockets left open:\n%s", pk)
				}
			})
		})
	}
}

// e2eDrivers are the kernel-backed drivers to run the end-to-end tests on.
func e2eDrivers() []string {
	var out []string
	for _, d := range pmd.Drivers() {
		if d.Name == "afxdp" || d.Name == "afpacket" {
			out = append(out, d.Name)
		}
	}
	return out
}

// tcpTransfer sends n bytes from h1 to a listener in h2 through fwdd and
// compares digests.
func (x *e2e) tcpTransfer(t *testing.T, dst string, n int) {
	t.Helper()
	var ln net.Listener
	err := pmd.InNetNS(testnet.Path(x.h2), func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(dst, "0"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- [32]byte{}
			return
		}
		defer c.Close()
		h := sha256.New()
		_, _ = io.Copy(h, c)
		got <- [32]byte(h.Sum(nil))
	}()
	var c net.Conn
	err = pmd.InNetNS(testnet.Path(x.h1), func() (err error) {
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("connect to %s through fwdd: %v", ln.Addr(), err)
	}
	data := bytes.Repeat([]byte("fwdd moves bytes "), n/17+1)[:n]
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(data); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.Close()
	select {
	case sum := <-got:
		if sum != sha256.Sum256(data) {
			t.Fatal("the bytes that arrived differ from the bytes sent")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("transfer did not finish")
	}
}
