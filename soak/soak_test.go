package soak

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl"
	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/pmd"
)

const baseConfig = `
port add p0 driver afxdp dev r0
port add p1 driver afxdp dev r1
addr add p0 198.18.1.1/24
addr add p0 2001:2:0:1::1/64
addr add p1 198.19.2.1/24
addr add p1 2001:2:0:2::1/64
`

// reloadVariants are appended to baseConfig in turn by the chaos loop's
// reloads: each differs from the one before.
var reloadVariants = []string{
	"",
	"route add 198.19.64.0/24 via 198.19.2.2\n",
	"route add 198.19.64.0/24 via 198.19.2.2\nset net.icmp.ratelimit 500\n",
	"rule add 10 proto udp dport 7 count\n",
	"set net.fibs 2\nroute add 198.19.65.0/24 blackhole fib 1\n",
}

type soak struct {
	t      *testing.T
	n      *testnet.Net
	h1, h2 string
	rt     string
	d      *ctl.Daemon
	conf   string
	start  time.Time

	mu     sync.Mutex
	events []string    // what the chaos loop did, for the log
	ups    []time.Time // link-ups as the kernel reported them
	issued []time.Time // the link-up commands
	upWhat []string

	recvMu  sync.Mutex
	arrived []time.Time // arrival times, kept while an up is being measured
	lastRx  atomic.Int64
	sent    atomic.Uint64
	recv    atomic.Uint64
}

func duration(t *testing.T) time.Duration {
	if s := os.Getenv("FWDD_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 10*time.Second {
			t.Fatalf("FWDD_SOAK=%q: want a Go duration of at least 10s, like 60s or 10m", s)
		}
		return d
	}
	return 60 * time.Second
}

// hostSide configures h's side of a (re-created) veth.
func (s *soak) hostSide(ns, dev, a4, gw4, a6, gw6 string) {
	s.n.In(ns, "ethtool", "-K", dev, "tx", "off")
	s.n.In(ns, "ip", "addr", "add", a4, "dev", dev)
	s.n.In(ns, "ip", "addr", "add", a6, "dev", dev, "nodad")
	s.n.In(ns, "ip", "route", "replace", "default", "via", gw4)
	s.n.In(ns, "ip", "-6", "route", "replace", "default", "via", gw6)
}

type side struct {
	host, hdev, rdev string
	a4, gw4, a6, gw6 string
}

func (s *soak) sides() []side {
	return []side{
		{s.h1, "h1", "r0", "198.18.1.2/24", "198.18.1.1", "2001:2:0:1::2/64", "2001:2:0:1::1"},
		{s.h2, "h2", "r1", "198.19.2.2/24", "198.19.2.1", "2001:2:0:2::2/64", "2001:2:0:2::1"},
	}
}

func (s *soak) event(format string, args ...any) {
	s.mu.Lock()
	s.events = append(s.events, fmt.Sprintf("%6.1fs ", time.Since(s.start).Seconds())+fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// linkUp records a link-up: issued is when the command was given; the
// link counts as up once the kernel reports both ends of the veth up
// (operstate UP): Linux delays carrier changes (linkwatch, up to 1 s after
// the previous event), and the host cannot send before.
func (s *soak) linkUp(what string, issued time.Time, sd side) {
	up := issued
	deadline := issued.Add(5 * time.Second)
	for time.Now().Before(deadline) {
		a, _ := exec.Command("ip", "-n", sd.host, "-o", "link", "show", "dev", sd.hdev).Output()
		b, _ := exec.Command("ip", "-n", s.rt, "-o", "link", "show", "dev", sd.rdev).Output()
		if strings.Contains(string(a), "state UP") && strings.Contains(string(b), "state UP") {
			up = time.Now()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.mu.Lock()
	s.ups = append(s.ups, up)
	s.issued = append(s.issued, issued)
	s.upWhat = append(s.upWhat, what)
	s.mu.Unlock()
}

func (s *soak) exec(lines ...string) error {
	cmds, err := cmdlang.ParseLines(lines, cmdlang.Options{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = s.d.Exec(ctx, cmds)
	return err
}

func fdCount() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

func inUse(d *ctl.Daemon) int {
	n := 0
	for _, p := range d.Engine().Pools() {
		n += p.Stats().InUse
	}
	return n
}

// TestSoak: see the package documentation.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test; skipped with -short")
	}
	testnet.Skip(t)
	testenv.Tool(t, "ethtool", "ethtool")
	py := testenv.Tool(t, "/usr/bin/python3", "python3")
	if err := exec.Command(py, "-c", "import scapy.all").Run(); err != nil {
		testenv.Tool(t, "scapy (python3 module)", "python3-scapy")
	}
	dur := duration(t)
	n := testnet.New(t)
	s := &soak{t: t, n: n, h1: n.NS("h1"), h2: n.NS("h2"), rt: n.NS("rt")}
	for _, sd := range s.sides() {
		n.Veth(sd.host, sd.hdev, s.rt, sd.rdev)
		s.hostSide(sd.host, sd.hdev, sd.a4, sd.gw4, sd.a6, sd.gw6)
	}
	dir := t.TempDir()
	s.conf = filepath.Join(dir, "fwdd.conf")
	os.WriteFile(s.conf, []byte(baseConfig), 0o644)
	goroutines0, fds0 := runtime.NumGoroutine(), fdCount()
	d, err := ctl.Start(ctl.Options{
		ConfigFile: s.conf, NetNS: testnet.Path(s.rt),
		Engine: fwd.Config{Workers: 1, PoolSize: 16384, CheckedPools: true},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.d = d
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			d.Shutdown()
		}
	})
	testnet.Eventually(t, 15*time.Second, "a first ping through fwdd", func() bool {
		_, err := n.TryIn(s.h1, "ping", "-c", "1", "-W", "1", "198.19.2.2")
		return err == nil
	})
	s.pinGateway()
	// Idle baselines: the daemon running, its fill rings full, no traffic.
	var mbufs0 int
	time.Sleep(200 * time.Millisecond) // let the ping's buffers come home; then poll for stability
	testnet.Eventually(t, 5*time.Second, "a stable idle mbuf count", func() bool {
		a := inUse(d)
		time.Sleep(100 * time.Millisecond)
		mbufs0 = inUse(d)
		return a == mbufs0
	})
	goroutinesIdle, fdsIdle := runtime.NumGoroutine(), fdCount()
	t.Logf("baseline: %d mbufs in use, %d goroutines, %d fds (before start: %d goroutines, %d fds)", mbufs0, goroutinesIdle, fdsIdle, goroutines0, fds0)

	s.start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	// The traffic goes on 3 s after the chaos, so the last link-up's
	// recovery is measured too.
	tctx, tcancel := context.WithTimeout(context.Background(), dur+3*time.Second)
	defer tcancel()
	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	rx := s.receiver(t)
	sendDone := make(chan struct{})
	go func() { defer close(sendDone); s.sender(t)(tctx) }()
	churned := &atomic.Uint64{}
	run(s.churn(churned))
	reloads := &atomic.Uint64{}
	run(s.chaos(reloads))
	floodOut := s.flood(t, py, dur)
	wg.Wait()
	<-sendDone
	// Traffic stopped (the sender ended with ctx); let the last packets
	// land.
	time.Sleep(500 * time.Millisecond)
	rx.Close()
	<-floodOut.done
	elapsed := time.Since(s.start)

	// Checks.
	var fails []string
	fail := func(format string, args ...any) { fails = append(fails, fmt.Sprintf(format, args...)) }
	if p := d.Panics(); p != 0 || d.Err() != nil {
		fail("panics: %d, daemon error: %v", p, d.Err())
	}
	// Forwarding resumes within 1 s of every link-up.
	recov := s.recoveries(false)
	fromCmd := s.recoveries(true)
	worstCmd := time.Duration(0)
	for _, r := range fromCmd {
		worstCmd = max(worstCmd, r)
	}
	worst := time.Duration(0)
	var late []string
	s.mu.Lock()
	upWhat := slices.Clone(s.upWhat)
	s.mu.Unlock()
	var recovList []string
	for i, r := range recov {
		worst = max(worst, r)
		recovList = append(recovList, fmt.Sprintf("%s %v", upWhat[i], r.Round(time.Millisecond)))
		if r > time.Second {
			late = append(late, fmt.Sprintf("up #%d (%s): %v", i+1, upWhat[i], r.Round(time.Millisecond)))
		}
	}
	if len(late) > 0 {
		fail("forwarding resumed later than 1 s after %d of %d link-ups: %s", len(late), len(recov), strings.Join(late, ", "))
	}
	// Accounting: every packet the workers received has an outcome.
	byWorker := d.Engine().CountersByWorker()
	// Packets the workers made (ICMP errors and echo replies, fragments)
	// have outcomes too.
	var rxw, made, outcomes, drops uint64
	for _, c := range byWorker[:len(byWorker)-1] {
		rxw += c["rx"]
		made += c["icmp_sent"] + c["fragments_made"]
		outcomes += c["forwarded"] + c["local_in"] + c["punted"] + c["punted_lcp"]
		for _, r := range fwd.Reasons() {
			if r.IsDrop() {
				drops += c[r.String()]
			}
		}
	}
	if rxw+made != outcomes+drops {
		fail("workers received %d packets and made %d but accounted %d (%d outcomes + %d drops)", rxw, made, outcomes+drops, outcomes, drops)
	}
	// Leaks: mbufs, goroutines, fds back to the idle baseline.
	leak := func(what string, base int, now func() int) int {
		deadline := time.Now().Add(15 * time.Second)
		v := now()
		for v > base && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			v = now()
		}
		if v > base {
			fail("%s: %d, idle baseline %d", what, v, base)
		}
		return v
	}
	mbufsEnd := leak("mbufs in use", mbufs0, func() int { return inUse(d) })
	goroutinesEnd := leak("goroutines", goroutinesIdle, runtime.NumGoroutine)
	fdsEnd := leak("file descriptors", fdsIdle, fdCount)
	stats := d.Engine().Counters()
	d.Shutdown()
	stopped = true
	afterShutdownG := leak("goroutines after Shutdown", goroutines0+2, runtime.NumGoroutine)
	afterShutdownFD := leak("file descriptors after Shutdown", fds0, fdCount)

	s.mu.Lock()
	nUps, nEvents := len(s.ups), len(s.events)
	s.mu.Unlock()
	var dropList []string
	for _, r := range fwd.Reasons() {
		if r.IsDrop() && stats[r.String()] > 0 {
			dropList = append(dropList, fmt.Sprintf("%s %d", r, stats[r.String()]))
		}
	}
	if floodOut.last != "" {
		t.Logf("a scapy run did not finish normally:\n%s", floodOut.last)
	}
	report := fmt.Sprintf(`soak: %v (asked %v), afxdp, 1 worker, 16384 mbufs
traffic: %d UDP packets sent h1->h2, %d received (%.1f%%)
chaos: %d events, %d link-ups (flaps and re-creations), %d reloads with changes
route churn: %d route changes (%.0f/s)
flood: %s
forwarding after link-up: worst %v over %d link-ups from the kernel's link-up (bound 1 s; median %v, p99 %v), worst %v from the up command: %s
workers: rx %d + made %d = %d forwarded/local/punted + %d dropped (%s)
mbufs in use: idle %d, end %d; goroutines: idle %d, end %d, after Shutdown %d (before Start %d); fds: idle %d, end %d, after Shutdown %d (before Start %d)
panics: %d
`, elapsed.Round(time.Second), dur, s.sent.Load(), s.recv.Load(), 100*float64(s.recv.Load())/float64(max(1, s.sent.Load())),
		nEvents, nUps, reloads.Load(), churned.Load(), float64(churned.Load())/elapsed.Seconds(), floodOut.summary(),
		worst.Round(time.Millisecond), len(recov), pct(recov, 50), pct(recov, 99), worstCmd.Round(time.Millisecond), strings.Join(recovList, ", "), rxw, made, outcomes, drops, strings.Join(dropList, ", "),
		mbufs0, mbufsEnd, goroutinesIdle, goroutinesEnd, afterShutdownG, goroutines0, fdsIdle, fdsEnd, afterShutdownFD, fds0, d.Panics())
	t.Log(report)
	if f := os.Getenv("FWDD_SOAK_REPORT"); f != "" {
		os.WriteFile(f, []byte(report+"\nevents:\n"+strings.Join(s.events, "\n")+"\n"), 0o644)
	}
	if len(fails) > 0 {
		s.mu.Lock()
		t.Logf("events:\n%s", strings.Join(s.events, "\n"))
		s.mu.Unlock()
		t.Fatalf("soak failed:\n%s", strings.Join(fails, "\n"))
	}
}

// receiver counts the UDP stream at h2 and records arrival times.
func (s *soak) receiver(t *testing.T) io.Closer {
	var c *net.UDPConn
	err := pmd.InNetNS(testnet.Path(s.h2), func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 19, 2, 2), Port: 9999})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				return
			}
			now := time.Now()
			s.recv.Add(1)
			s.lastRx.Store(now.UnixNano())
			s.recvMu.Lock()
			s.arrived = append(s.arrived, now)
			s.recvMu.Unlock()
		}
	}()
	return c
}

// sender sends the UDP stream from h1, one packet every 500 µs.
func (s *soak) sender(t *testing.T) func(context.Context) {
	var c *net.UDPConn
	err := pmd.InNetNS(testnet.Path(s.h1), func() (err error) {
		c, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(198, 19, 2, 2), Port: 9999})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context) {
		defer c.Close()
		tick := time.NewTicker(500 * time.Microsecond)
		defer tick.Stop()
		var b [64]byte
		for seq := uint64(0); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			binary.BigEndian.PutUint64(b[:], seq)
			if _, err := c.Write(b[:]); err == nil {
				s.sent.Add(1)
			}
		}
	}
}

// recoveries returns, for every link-up, the time from the kernel's
// link-up (or, with issued, from the command) until the next packet
// reached h2.
func (s *soak) recoveries(issued bool) []time.Duration {
	s.mu.Lock()
	ups := slices.Clone(s.ups)
	if issued {
		ups = slices.Clone(s.issued)
	}
	s.mu.Unlock()
	s.recvMu.Lock()
	arrived := s.arrived
	s.recvMu.Unlock()
	var out []time.Duration
	for _, up := range ups {
		i, _ := slices.BinarySearchFunc(arrived, up, func(a, b time.Time) int { return a.Compare(b) })
		if i == len(arrived) {
			out = append(out, time.Hour) // never resumed
			continue
		}
		out = append(out, arrived[i].Sub(up))
	}
	return out
}

// churn adds and deletes 1000 /32 routes at a time, as fast as needed to
// make 10k route changes a second (or as fast as the daemon goes).
func (s *soak) churn(done *atomic.Uint64) func(context.Context) {
	var add, del []string
	for i := 0; i < 1000; i++ {
		p := fmt.Sprintf("198.19.%d.%d/32", 128+i/256, i%256)
		add = append(add, "route add "+p+" via 198.19.2.2")
		del = append(del, "route del "+p)
	}
	addC, _ := cmdlang.ParseLines(add, cmdlang.Options{})
	delC, _ := cmdlang.ParseLines(del, cmdlang.Options{})
	return func(ctx context.Context) {
		start := time.Now()
		for i := 0; ; i++ {
			// Ahead of 10k/s: wait; behind: go on at once.
			for ctx.Err() == nil && float64(done.Load()) >= 10000*time.Since(start).Seconds() {
				time.Sleep(5 * time.Millisecond)
			}
			if ctx.Err() != nil {
				if i%2 == 1 {
					s.d.Exec(context.Background(), delC)
				}
				return
			}
			cmds := addC
			if i%2 == 1 {
				cmds = delC
			}
			if _, err := s.d.Exec(ctx, cmds); err == nil {
				done.Add(uint64(len(cmds)))
			} else if ctx.Err() == nil && !strings.Contains(err.Error(), "no route") {
				// (A reload in between removes the churned routes: the
				// file does not have them; the next deletes then fail.)
				s.event("route churn batch failed: %v", err)
			}
		}
	}
}

// chaos flaps links, deletes and re-creates interfaces, and reloads.
func (s *soak) chaos(reloads *atomic.Uint64) func(context.Context) {
	return func(ctx context.Context) {
		sides := s.sides()
		for i := 0; ; i++ {
			wait := time.NewTimer(1500 * time.Millisecond)
			select {
			case <-ctx.Done():
				wait.Stop()
				return
			case <-wait.C:
			}
			sd := sides[i%2]
			switch (i / 2) % 3 {
			case 0: // flap
				s.n.TryIn(s.rt, "ip", "link", "set", sd.rdev, "down")
				time.Sleep(300 * time.Millisecond)
				issued := time.Now()
				s.n.TryIn(s.rt, "ip", "link", "set", sd.rdev, "up")
				s.linkUp("flap "+sd.rdev, issued, sd)
				s.event("flap %s", sd.rdev)
			case 1: // delete and re-create
				s.n.TryIn(s.rt, "ip", "link", "del", sd.rdev)
				time.Sleep(300 * time.Millisecond)
				if out, err := exec.Command("ip", "link", "add", sd.hdev, "netns", sd.host, "type", "veth", "peer", "name", sd.rdev, "netns", s.rt).CombinedOutput(); err != nil {
					s.event("re-create %s failed: %v %s", sd.rdev, err, out)
					continue
				}
				s.n.TryIn(sd.host, "ip", "link", "set", sd.hdev, "up")
				s.hostSideTry(sd)
				issued := time.Now()
				s.n.TryIn(s.rt, "ip", "link", "set", sd.rdev, "up")
				s.linkUp("re-create "+sd.rdev, issued, sd)
				if sd.rdev == "r0" {
					s.pinGateway()
				}
				s.event("re-create %s", sd.rdev)
			case 2: // reload with a change
				v := reloadVariants[int(reloads.Load()+1)%len(reloadVariants)]
				os.WriteFile(s.conf, []byte(baseConfig+v), 0o644)
				if err := s.d.Reload(); err != nil {
					s.event("reload failed: %v", err)
				} else {
					reloads.Add(1)
					s.event("reload %q", strings.TrimSpace(v))
				}
			}
		}
	}
}

// pinGateway gives h1 a permanent neighbour entry for its gateway (fwdd's
// p0, r0's MAC): Linux flushes a host's neighbours on carrier loss and
// retransmits ARP only after 1 s, which would otherwise be the host's
// share of the recovery after a flap of r0. A re-created r0 gets a new
// MAC, so it is pinned again (after the first ARP exchange, which the
// recovery of a re-creation includes).
func (s *soak) pinGateway() {
	out, err := exec.Command("ip", "-n", s.rt, "-o", "link", "show", "dev", "r0").Output()
	if err != nil {
		return
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "link/ether" && i+1 < len(f) {
			s.n.TryIn(s.h1, "ip", "neigh", "replace", "198.18.1.1", "lladdr", f[i+1], "nud", "permanent", "dev", "h1")
		}
	}
}

func (s *soak) hostSideTry(sd side) {
	s.n.TryIn(sd.host, "ethtool", "-K", sd.hdev, "tx", "off")
	s.n.TryIn(sd.host, "ip", "addr", "add", sd.a4, "dev", sd.hdev)
	s.n.TryIn(sd.host, "ip", "addr", "add", sd.a6, "dev", sd.hdev, "nodad")
	s.n.TryIn(sd.host, "ip", "route", "replace", "default", "via", sd.gw4)
	s.n.TryIn(sd.host, "ip", "-6", "route", "replace", "default", "via", sd.gw6)
}

// floodScript runs in h1 for the soak's duration: spoofed ARP requests and
// NS, and malformed frames to the router, in rounds.
const floodScript = `
import sys, time, random
from scapy.all import (Ether, IP, IPv6, UDP, TCP, ICMP, ARP, Dot1Q, Raw, ICMPv6ND_NS,
    ICMPv6NDOptSrcLLAddr, IPv6ExtHdrHopByHop, sendp, fuzz, get_if_hwaddr, conf)
conf.verb = 0
iface, secs = sys.argv[1], float(sys.argv[2])
end = time.time() + secs
rounds = arp = ns = bad = 0
while time.time() < end:
    try:
        rmac = open("/proc/net/arp").read()
    except Exception:
        rmac = ""
    gw = None
    for line in rmac.splitlines()[1:]:
        f = line.split()
        if f[0] == "198.18.1.1" and f[3] != "00:00:00:00:00:00":
            gw = f[3]
    pk = []
    for i in range(200):
        mac = "02:ee:%02x:%02x:%02x:%02x" % (random.randrange(256), random.randrange(256), random.randrange(256), random.randrange(256))
        pk.append(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") /
                  ARP(op=1, hwsrc=mac, psrc="198.18.1.%d" % random.randrange(10, 250), pdst="198.18.1.1"))
        pk.append(Ether(src=mac, dst="33:33:ff:00:00:01") /
                  IPv6(src="2001:2:0:1:aa::%x" % random.randrange(1 << 16), dst="ff02::1:ff00:1", hlim=255) /
                  ICMPv6ND_NS(tgt="2001:2:0:1::1") / ICMPv6NDOptSrcLLAddr(lladdr=mac))
        arp += 1; ns += 1
    if gw:
        s4, d4 = "198.18.1.2", "198.19.2.2"
        s6, d6 = "2001:2:0:1::2", "2001:2:0:2::2"
        e = Ether(dst=gw)
        for i in range(20):
            pk += [
                e / IP(src=s4, dst=d4, ihl=2) / UDP(dport=7),
                e / IP(src=s4, dst=d4, len=10) / UDP(dport=7),
                e / IP(src=s4, dst=d4, len=1400) / UDP(dport=7),
                e / IP(src=s4, dst=d4, chksum=0x1234) / UDP(dport=7),
                e / IP(src=s4, dst=d4, ttl=1) / UDP(dport=7),
                e / IP(src=s4, dst=d4, flags="MF", frag=3) / Raw(b"x" * 8),
                e / Raw(bytes(Ether(dst=gw) / IP(src=s4, dst=d4))[:20]),
                e / fuzz(IP(src=s4, dst=d4) / UDP(dport=7)),
                e / IP(src=s4, dst=d4) / fuzz(TCP(dport=7)),
                e / Dot1Q(vlan=random.randrange(1, 4095)) / IP(src=s4, dst=d4) / UDP(dport=7),
                e / IPv6(src=s6, dst=d6, plen=900) / UDP(dport=7),
                e / IPv6(src=s6, dst=d6) / IPv6ExtHdrHopByHop() / UDP(dport=7),
                e / IPv6(src=s6, dst=d6, hlim=0) / UDP(dport=7),
                e / Raw(bytes(random.randrange(256) for _ in range(random.randrange(1, 60)))),
            ]
            bad += 14
    try:
        sendp(pk, iface=iface)
    except OSError:
        pass  # h1 is being re-created under us: try again next round
    rounds += 1
    print("rounds %d arp %d ns %d malformed %d" % (rounds, arp, ns, bad), flush=True)
    time.sleep(0.2)
`

type floodResult struct {
	done chan struct{}
	mu   sync.Mutex
	out  string
	last string // output of the last run that did not finish normally
}

func (f *floodResult) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.TrimSpace(f.out)
}

// flood runs floodScript in h1 (re-started when h1's interface is
// re-created under it) until the soak ends.
func (s *soak) flood(t *testing.T, py string, dur time.Duration) *floodResult {
	script := filepath.Join(t.TempDir(), "flood.py")
	os.WriteFile(script, []byte(floodScript), 0o644)
	f := &floodResult{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		end := time.Now().Add(dur)
		var arp, ns, bad, rounds, runs int
		for time.Now().Before(end) {
			left := time.Until(end).Seconds()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(left+60)*time.Second)
			out, _ := exec.CommandContext(ctx, "ip", "netns", "exec", s.h1, py, script, "h1", fmt.Sprintf("%.1f", left)).CombinedOutput()
			cancel()
			runs++
			var r, a, n, b int
			if _, err := fmt.Sscanf(lastProgress(string(out)), "rounds %d arp %d ns %d malformed %d", &r, &a, &n, &b); err == nil {
				rounds, arp, ns, bad = rounds+r, arp+a, ns+n, bad+b
			}
			if r == 0 || !strings.HasSuffix(strings.TrimSpace(string(out)), lastProgress(string(out))) {
				f.mu.Lock()
				f.last = string(out)
				f.mu.Unlock()
				time.Sleep(200 * time.Millisecond) // h1 was being re-created
			}
		}
		f.mu.Lock()
		f.out = fmt.Sprintf("%d spoofed ARP requests, %d spoofed NS, %d malformed frames (%d scapy runs)", arp, ns, bad, runs)
		f.mu.Unlock()
	}()
	return f
}

// lastProgress is the last "rounds ..." line of the flood's output.
func lastProgress(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "rounds ") {
			return lines[i]
		}
	}
	return ""
}

// pct is the p-th percentile of ds, rounded to the millisecond.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Millisecond)
}
