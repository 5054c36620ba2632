package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Topo is the standard topology: gen namespace → router namespace → sink
// namespace over two veth pairs, RFC 2544 addresses only.
//
//	[gen G]  g0 198.18.0.2/24 2001:2::2/64
//	   |
//	[rtr R]  r0 198.18.0.1/24 2001:2::1/64   r1 198.19.0.1/24 2001:2:0:1::1/64
//	                                            |
//	[sink S]                                 s0 198.19.0.2/24 2001:2:0:1::2/64
//
// Routes in R: 198.19.128.0/17 via 198.19.0.2, 2001:2:0:8000::/49 via
// 2001:2:0:1::2 (static neighbours). Names carry the harness pid so that
// parallel runs never collide and leftovers of a killed run can be found.
type Topo struct {
	ID             string
	G, R, S        string // namespace names
	G0, R0, R1, S0 string // device names
	MAC            map[string]string
	Index          map[string]int // ifindex in its own namespace
}

const nsPrefix = "fwb-"

func newTopo(ctx context.Context) (*Topo, error) {
	id := strconv.FormatInt(int64(os.Getpid()), 16)
	t := &Topo{ID: id, G: nsPrefix + id + "-g", R: nsPrefix + id + "-r", S: nsPrefix + id + "-s",
		G0: "b" + id + "g0", R0: "b" + id + "r0", R1: "b" + id + "r1", S0: "b" + id + "s0",
		MAC: map[string]string{}, Index: map[string]int{}}
	cmds := [][]string{
		{"netns", "add", t.G}, {"netns", "add", t.R}, {"netns", "add", t.S},
		{"link", "add", t.G0, "netns", t.G, "type", "veth", "peer", t.R0, "netns", t.R},
		{"link", "add", t.R1, "netns", t.R, "type", "veth", "peer", t.S0, "netns", t.S},
	}
	for _, c := range cmds {
		if err := ipCmd(ctx, c...); err != nil {
			t.Close()
			return nil, err
		}
	}
	for _, d := range []struct{ ns, dev, a4, a6 string }{
		{t.G, t.G0, "198.18.0.2/24", "2001:2::2/64"},
		{t.R, t.R0, "198.18.0.1/24", "2001:2::1/64"},
		{t.R, t.R1, "198.19.0.1/24", "2001:2:0:1::1/64"},
		{t.S, t.S0, "198.19.0.2/24", "2001:2:0:1::2/64"},
	} {
		for _, c := range [][]string{
			{"-n", d.ns, "link", "set", "lo", "up"},
			{"-n", d.ns, "link", "set", d.dev, "up"},
			{"-n", d.ns, "addr", "add", d.a4, "dev", d.dev},
			{"-n", d.ns, "addr", "add", d.a6, "dev", d.dev, "nodad"},
		} {
			if err := ipCmd(ctx, c...); err != nil {
				t.Close()
				return nil, err
			}
		}
		mac, idx, err := linkInfo(ctx, d.ns, d.dev)
		if err != nil {
			t.Close()
			return nil, err
		}
		t.MAC[d.dev], t.Index[d.dev] = mac, idx
	}
	for _, c := range [][]string{
		{"-n", t.R, "route", "add", "198.19.128.0/17", "via", "198.19.0.2"},
		{"-n", t.R, "-6", "route", "add", "2001:2:0:8000::/49", "via", "2001:2:0:1::2"},
		{"-n", t.R, "neigh", "replace", "198.19.0.2", "lladdr", t.MAC[t.S0], "dev", t.R1, "nud", "permanent"},
		{"-n", t.R, "-6", "neigh", "replace", "2001:2:0:1::2", "lladdr", t.MAC[t.S0], "dev", t.R1, "nud", "permanent"},
		{"-n", t.G, "neigh", "replace", "198.18.0.1", "lladdr", t.MAC[t.R0], "dev", t.G0, "nud", "permanent"},
	} {
		if err := ipCmd(ctx, c...); err != nil {
			t.Close()
			return nil, err
		}
	}
	if err := t.forwarding(ctx, false); err != nil {
		t.Close()
		return nil, err
	}
	_ = t.sysctl(ctx, t.R, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
	return t, nil
}

// Close deletes the namespaces (and with them the veths). Safe to call twice.
func (t *Topo) Close() {
	for _, ns := range []string{t.G, t.R, t.S} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

func (t *Topo) forwarding(ctx context.Context, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return t.sysctl(ctx, t.R, "net.ipv4.ip_forward="+v, "net.ipv6.conf.all.forwarding="+v)
}

func (t *Topo) sysctl(ctx context.Context, ns string, kv ...string) error {
	args := append([]string{"netns", "exec", ns, "sysctl", "-q", "-w"}, kv...)
	return run(ctx, "ip", args...)
}

// ethtool runs ethtool in ns.
func (t *Topo) ethtool(ctx context.Context, ns string, args ...string) error {
	return run(ctx, "ip", append([]string{"netns", "exec", ns, "ethtool"}, args...)...)
}

// threadedNAPI turns threaded NAPI on for dev in ns (it needs NAPI: GRO on
// or an XDP program attached, and must be set after attaching) and pins
// its kthread to cpu, with SCHED_FIFO priority rtPrio if > 0. cpu < 0 turns
// threading off.
func (t *Topo) threadedNAPI(ctx context.Context, ns, dev string, cpu, rtPrio int) error {
	v := "1"
	if cpu < 0 {
		v = "0"
	}
	if err := run(ctx, "ip", "netns", "exec", ns, "sh", "-c", "echo "+v+" > /sys/class/net/"+dev+"/threaded"); err != nil {
		return fmt.Errorf("threaded NAPI on %s: %w", dev, err)
	}
	if cpu < 0 {
		return nil
	}
	prefix := "napi/" + dev + "-"
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids := findThreads(prefix)
		if len(pids) > 0 {
			var set unix.CPUSet
			set.Set(cpu)
			for _, p := range pids {
				if err := unix.SchedSetaffinity(p, &set); err != nil {
					return fmt.Errorf("pin %s (pid %d) to cpu %d: %w", prefix, p, cpu, err)
				}
				if rtPrio > 0 {
					// SCHED_FIFO: the NAPI thread preempts ordinary tasks,
					// as softirq processing would.
					a := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 1, Priority: uint32(rtPrio)}
					if err := unix.SchedSetAttr(p, &a, 0); err != nil {
						return fmt.Errorf("SCHED_FIFO for %s (pid %d): %w", prefix, p, err)
					}
				}
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no NAPI thread %s* appeared", prefix)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rps sets receive packet steering of dev's first receive queue in ns to
// cpu: skbs that enter dev through netif_rx (what veth does with its
// peer's transmit when dev has no NAPI for them) are queued to cpu's
// backlog and received there.
func (t *Topo) rps(ctx context.Context, ns, dev string, cpu int) error {
	if cpu < 0 || cpu >= 64 {
		return fmt.Errorf("rps: cpu %d out of range", cpu)
	}
	mask := strconv.FormatUint(1<<uint(cpu), 16)
	return run(ctx, "ip", "netns", "exec", ns, "sh", "-c", "echo "+mask+" > /sys/class/net/"+dev+"/queues/rx-0/rps_cpus")
}

func findThreads(prefix string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), prefix) {
			out = append(out, pid)
		}
	}
	return out
}

// inNS runs fn on a thread switched into namespace ns.
func inNS(ns string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("netns %s: %w", ns, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("enter netns %s: %w", ns, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: let it die with the
		// goroutine rather than be reused.
		runtime.Goexit()
	}
	return ferr
}

func linkInfo(ctx context.Context, ns, dev string) (string, int, error) {
	out, err := exec.CommandContext(ctx, "ip", "-n", ns, "-j", "link", "show", dev).Output()
	if err != nil {
		return "", 0, fmt.Errorf("ip -n %s link show %s: %w", ns, dev, err)
	}
	var l []struct {
		Ifindex int    `json:"ifindex"`
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &l); err != nil || len(l) != 1 {
		return "", 0, fmt.Errorf("ip -n %s link show %s: unexpected output", ns, dev)
	}
	return l[0].Address, l[0].Ifindex, nil
}

func ipCmd(ctx context.Context, args ...string) error { return run(ctx, "ip", args...) }

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cleanupStale deletes namespaces left by harness runs whose process is gone.
func cleanupStale() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, nsPrefix) {
			continue
		}
		f := strings.Split(strings.TrimPrefix(n, nsPrefix), "-")
		pid, err := strconv.ParseInt(f[0], 16, 64)
		if err != nil {
			continue
		}
		if err := syscall.Kill(int(pid), 0); err == syscall.ESRCH {
			_ = exec.Command("ip", "netns", "del", n).Run()
		}
	}
}
