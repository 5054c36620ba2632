package afxdp

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/internal/xsk"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"golang.org/x/sys/unix"
)

// topo is x --- [r: ports A and B] --- y: the kernel in x and y exchange UDP
// through two afxdp ports in namespace r.
type topo struct {
	n          *testnet.Net
	r, x, y    string
	ra, rb     string // router-side devices
	xa, yb     string // host-side devices
	macRA      net.HardwareAddr
	macRB      net.HardwareAddr
	macXA      net.HardwareAddr
	macYB      net.HardwareAddr
	queueFlags []string
}

func newTopo(t *testing.T, queues int) *topo { return newTopoQ(t, queues) }

func newTopoT(t testing.TB) *topo { return newTopoQ(t, 1) }

func newTopoQ(t testing.TB, queues int) *topo {
	n := testnet.New(t)
	tp := &topo{n: n, r: n.NS("r"), x: n.NS("x"), y: n.NS("y"),
		ra: n.Name("ra"), rb: n.Name("rb"), xa: n.Name("xa"), yb: n.Name("yb")}
	var extra []string
	if queues > 1 {
		extra = []string{"numtxqueues", fmt.Sprint(queues), "numrxqueues", fmt.Sprint(queues)}
	}
	n.Veth(tp.r, tp.ra, tp.x, tp.xa, extra...)
	n.Veth(tp.r, tp.rb, tp.y, tp.yb, extra...)
	mac := func(ns, dev string) net.HardwareAddr {
		m, err := net.ParseMAC(n.MAC(ns, dev))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tp.macRA, tp.macRB, tp.macXA, tp.macYB = mac(tp.r, tp.ra), mac(tp.r, tp.rb), mac(tp.x, tp.xa), mac(tp.y, tp.yb)
	n.In(tp.x, "ip", "addr", "add", "198.18.1.1/24", "dev", tp.xa)
	n.In(tp.y, "ip", "addr", "add", "198.18.2.1/24", "dev", tp.yb)
	n.In(tp.x, "ip", "route", "add", "198.18.2.0/24", "via", "198.18.1.2")
	n.In(tp.y, "ip", "route", "add", "198.18.1.0/24", "via", "198.18.2.2")
	n.In(tp.x, "ip", "neigh", "replace", "198.18.1.2", "lladdr", tp.macRA.String(), "dev", tp.xa, "nud", "permanent")
	n.In(tp.y, "ip", "neigh", "replace", "198.18.2.2", "lladdr", tp.macRB.String(), "dev", tp.yb, "nud", "permanent")
	return tp
}

// sharedFor plays the stack's part: ports opened over the same pools share
// one pmd.Shared, hence one UMEM per pool.
var testShared sync.Map // *mbuf.Pool -> *pmd.Shared

func sharedFor(pools []*mbuf.Pool) *pmd.Shared {
	sh, _ := testShared.LoadOrStore(pools[0], pmd.NewShared())
	return sh.(*pmd.Shared)
}

func newPool(t *testing.T, id uint16, count int) *mbuf.Pool {
	p, err := mbuf.NewPool(mbuf.Config{Name: fmt.Sprint("p", id), ID: id, Count: count, Checked: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func openPort(t *testing.T, name string, id uint16, ns, dev string, pools []*mbuf.Pool, qp func(int) int, extra string) pmd.Port {
	t.Helper()
	args, err := pmd.ParseArgs("dev=" + dev + extra)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pmd.Open(pmd.Config{Name: name, ID: id, Driver: DriverName, Args: args, Pools: pools, QueuePool: qp, NetNS: testnet.Path(ns), Shared: sharedFor(pools)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// udpIn opens a UDP socket in ns, sending without checksums (veth leaves
// them partial and an L2 forwarder passes them on as they are).
func udpIn(t *testing.T, ns, addr string) *net.UDPConn {
	var c *net.UDPConn
	err := pmd.InNetNS(testnet.Path(ns), func() error {
		a, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err
		}
		if c, err = net.ListenUDP("udp4", a); err != nil {
			return err
		}
		rc, _ := c.SyscallConn()
		rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// forwarder moves packets A->B and B->A on queue q with a MAC rewrite, as
// one worker would; what TxBurst does not take is freed.
type forwarder struct {
	a, b       pmd.Port
	dstA, srcA []byte // rewrite for packets leaving through A
	dstB, srcB []byte
	caches     []*mbuf.Cache // per pool id, the worker's
	ms         [Burst]*mbuf.Mbuf
}

func (f *forwarder) round(q int) int {
	total := 0
	for _, d := range [2]struct {
		in, out  pmd.Port
		dst, src []byte
	}{{f.a, f.b, f.dstB, f.srcB}, {f.b, f.a, f.dstA, f.srcA}} {
		n := d.in.RxBurst(q, f.ms[:])
		for _, m := range f.ms[:n] {
			b := m.Data()
			copy(b[0:6], d.dst)
			copy(b[6:12], d.src)
		}
		k := d.out.TxBurst(q, f.ms[:n])
		for _, m := range f.ms[k:n] {
			f.ms[0] = m
			f.caches[m.PoolID()].Free(f.ms[:1])
		}
		total += n
	}
	return total
}

func (f *forwarder) run(stop *atomic.Bool, queues int, done *sync.WaitGroup) {
	defer done.Done()
	for !stop.Load() {
		n := 0
		for q := range queues {
			n += f.round(q)
		}
		if n == 0 {
			time.Sleep(20 * time.Microsecond)
		}
	}
	for _, c := range f.caches {
		c.Flush()
	}
}

// startForwarder runs the forwarder until the returned stop is called (or
// the test ends).
func startForwarder(t *testing.T, tp *topo, a, b pmd.Port, pools []*mbuf.Pool, queues int) (stop func()) {
	f := &forwarder{a: a, b: b, dstA: tp.macXA, srcA: tp.macRA, dstB: tp.macYB, srcB: tp.macRB}
	for _, p := range pools {
		f.caches = append(f.caches, p.NewCache())
	}
	var st atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go f.run(&st, queues, &wg)
	stop = func() { st.Store(true); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

// closeAndCheck stops the forwarder, closes the ports and checks that every
// mbuf is back in its pool and no XDP program is left.
func closeAndCheck(t *testing.T, tp *topo, stop func(), ports []pmd.Port, pools []*mbuf.Pool) {
	t.Helper()
	stop()
	for _, p := range ports {
		if err := p.Close(); err != nil {
			t.Errorf("close %s: %v", p.Info().Name, err)
		}
	}
	for _, p := range pools {
		if st := p.Stats(); st.InUse != 0 {
			t.Errorf("pool %s: %d mbufs still in use after close: %+v", st.Name, st.InUse, st)
		}
	}
	noXDP(t, tp)
}

// echo runs a UDP echo server in y and checks count requests from x come
// back, resending the missing ones until a deadline.
func echo(t *testing.T, tp *topo, flows, count int, round int) {
	srv := udpIn(t, tp.y, fmt.Sprintf("198.18.2.1:%d", 7+round))
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			srv.WriteToUDP(buf[:n], from)
		}
	}()
	dst := &net.UDPAddr{IP: net.IPv4(198, 18, 2, 1), Port: 7 + round}
	for f := range flows {
		c := udpIn(t, tp.x, fmt.Sprintf("198.18.1.1:%d", 30000+100*round+f))
		got := map[string]bool{}
		buf := make([]byte, 2048)
		deadline := testnet.Deadline(10 * time.Second)
		for len(got) < count {
			for i := range count {
				msg := fmt.Sprintf("flow %d msg %d", f, i)
				if !got[msg] {
					c.WriteToUDP([]byte(msg), dst)
				}
			}
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			for len(got) < count {
				n, _, err := c.ReadFromUDP(buf)
				if err != nil {
					break
				}
				got[string(buf[:n])] = true
			}
			if time.Now().After(deadline) {
				t.Fatalf("flow %d: %d of %d echoes came back", f, len(got), count)
			}
		}
	}
}

func sum(ss []pmd.QueueStats) pmd.QueueStats {
	var s pmd.QueueStats
	for _, x := range ss {
		s.Add(x)
	}
	return s
}

func noXDP(t *testing.T, tp *topo) {
	out, _ := exec.Command("ip", "-n", tp.r, "link", "show").CombinedOutput()
	if strings.Contains(string(out), "xdp") {
		t.Errorf("XDP program left in %s:\n%s", tp.r, out)
	}
}

// TestForwardSharedUmem: two ports, one pool: forwarding hands descriptors
// over (Copies == 0); after Close every mbuf is back in the pool and no XDP
// program is left.
func TestForwardSharedUmem(t *testing.T) {
	for _, tc := range []struct {
		name   string
		queues int
		extra  string
		mode   string
	}{
		{"1queue", 1, "", "copy,native"},
		{"2queues", 2, "", "copy,native"},
		{"generic-copy", 1, ",xdpmode=generic,mode=copy", "copy,generic"},
		{"busypoll", 1, ",busypoll=20", "copy,native"},
	} {
		queues := tc.queues
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopo(t, queues)
			pool := newPool(t, 0, 4096)
			pools := []*mbuf.Pool{pool}
			a := openPort(t, "A", 0, tp.r, tp.ra, pools, nil, ",ring=512"+tc.extra)
			b := openPort(t, "B", 1, tp.r, tp.rb, pools, nil, ",ring=512"+tc.extra)
			if a.Info().RxQueues != queues || a.Info().Mode != tc.mode {
				t.Fatalf("info %+v", a.Info())
			}
			if l := a.Link(); !l.Up || !l.Present {
				t.Fatalf("link %+v", l)
			}
			stop := startForwarder(t, tp, a, b, pools, queues)
			echo(t, tp, 4*queues, 50, 0)
			sa, sb := sum(a.Stats()), sum(b.Stats())
			t.Logf("A %+v\nB %+v", sa, sb)
			if sa.Copies != 0 || sb.Copies != 0 || sa.RxPackets < 50 || sb.TxPackets < 50 || sa.RxErrors+sa.TxErrors+sb.RxErrors+sb.TxErrors != 0 {
				t.Fatal("unexpected counters")
			}
			if queues == 2 {
				for i, q := range a.Stats() {
					if q.RxPackets == 0 {
						t.Errorf("A queue %d received nothing", i)
					}
				}
			}
			closeAndCheck(t, tp, stop, []pmd.Port{a, b}, pools)
		})
	}
}

// TestForwardTwoPools: port B's queue uses another pool (another worker's
// memory): packets are copied once and counted.
func TestForwardTwoPools(t *testing.T) {
	tp := newTopo(t, 1)
	p0, p1 := newPool(t, 0, 2048), newPool(t, 1, 2048)
	pools := []*mbuf.Pool{p0, p1}
	a := openPort(t, "A", 0, tp.r, tp.ra, pools, func(int) int { return 0 }, ",ring=512")
	b := openPort(t, "B", 1, tp.r, tp.rb, pools, func(int) int { return 1 }, ",ring=512")
	stop := startForwarder(t, tp, a, b, pools, 1)
	echo(t, tp, 1, 50, 0)
	sa, sb := sum(a.Stats()), sum(b.Stats())
	t.Logf("A %+v\nB %+v", sa, sb)
	if sa.Copies < 50 || sb.Copies < 50 {
		t.Fatal("copies not counted")
	}
	closeAndCheck(t, tp, stop, []pmd.Port{a, b}, pools)
}

// forwardingPair opens ports A and B (one queue, one pool) on a fresh
// topology, starts a forwarder between them and checks that x and y
// exchange packets through it.
func forwardingPair(t *testing.T) (tp *topo, a, b pmd.Port, pool *mbuf.Pool, stop func()) {
	t.Helper()
	tp = newTopo(t, 1)
	pool = newPool(t, 0, 2048)
	pools := []*mbuf.Pool{pool}
	a = openPort(t, "A", 0, tp.r, tp.ra, pools, nil, ",ring=512")
	b = openPort(t, "B", 1, tp.r, tp.rb, pools, nil, ",ring=512")
	stop = startForwarder(t, tp, a, b, pools, 1)
	echo(t, tp, 1, 10, 0)
	return tp, a, b, pool, stop
}

// TestLinkGoneAndBack: the device goes down, then disappears under a
// polling worker: no panic, Link follows, the port releases the buffers the
// kernel held; the device is re-created (new ifindex, same name) and the
// port comes back by itself and forwards again. Close returns every mbuf.
func TestLinkGoneAndBack(t *testing.T) {
	tp, a, b, pool, stop := forwardingPair(t)
	pools := []*mbuf.Pool{pool}
	inUse := pool.Stats().InUse

	tp.n.In(tp.r, "ip", "link", "set", tp.rb, "down")
	testnet.Eventually(t, 5*time.Second, "B down", func() bool { l := b.Link(); return !l.Up && l.Present })
	testnet.Eventually(t, 5*time.Second, "B's buffers released", func() bool { return pool.Stats().InUse <= inUse-500 })
	tp.n.In(tp.r, "ip", "link", "set", tp.rb, "up")
	testnet.Eventually(t, 5*time.Second, "B up again", func() bool { return b.Link().Up })
	echo(t, tp, 1, 10, 1)

	oldIf := b.Info().IfIndex
	tp.n.In(tp.r, "ip", "link", "del", tp.rb)
	testnet.Eventually(t, 5*time.Second, "B gone", func() bool { return !b.Link().Present })
	// Traffic into A keeps being forwarded towards the absent B: TxBurst
	// takes nothing and the forwarder frees.
	c := udpIn(t, tp.x, "198.18.1.1:40000")
	rx0 := sum(a.Stats()).RxPackets
	for range 50 {
		c.WriteToUDP([]byte("into the void"), &net.UDPAddr{IP: net.IPv4(198, 18, 2, 1), Port: 7})
	}
	testnet.Eventually(t, 5*time.Second, "A keeps receiving", func() bool { return sum(a.Stats()).RxPackets >= rx0+50 })

	// Re-create B's interface with the same name and MACs.
	tp.n.Veth(tp.r, tp.rb, tp.y, tp.yb)
	tp.n.In(tp.r, "ip", "link", "set", tp.rb, "down")
	tp.n.In(tp.r, "ip", "link", "set", tp.rb, "address", tp.macRB.String())
	tp.n.In(tp.r, "ip", "link", "set", tp.rb, "up")
	tp.n.In(tp.y, "ip", "link", "set", tp.yb, "down")
	tp.n.In(tp.y, "ip", "link", "set", tp.yb, "address", tp.macYB.String())
	tp.n.In(tp.y, "ip", "link", "set", tp.yb, "up")
	tp.n.In(tp.y, "ip", "addr", "add", "198.18.2.1/24", "dev", tp.yb)
	tp.n.In(tp.y, "ip", "route", "add", "198.18.1.0/24", "via", "198.18.2.2")
	tp.n.In(tp.y, "ip", "neigh", "replace", "198.18.2.2", "lladdr", tp.macRB.String(), "dev", tp.yb, "nud", "permanent")
	testnet.Eventually(t, 5*time.Second, "B back", func() bool { return b.Link().Up })
	if b.Info().IfIndex == oldIf {
		t.Errorf("ifindex %d did not change", oldIf)
	}
	echo(t, tp, 1, 10, 2)
	t.Logf("A %+v\nB %+v", sum(a.Stats()), sum(b.Stats()))
	closeAndCheck(t, tp, stop, []pmd.Port{a, b}, pools)
}

func TestArgs(t *testing.T) {
	pool, err := mbuf.NewPool(mbuf.Config{Count: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, tc := range []struct{ args, want string }{
		{"", "argument dev: required"},
		{"dev=x,mode=fast", "want one of auto, copy, zerocopy"},
		{"dev=x,xdpmode=hw", "want one of auto, native, generic"},
		{"dev=x,colour=red", "argument colour: unknown"},
		{"dev=x,ring=1000", "power of two"},
		{"dev=nonexistent0", "no such interface"},
	} {
		a, err := pmd.ParseArgs(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		_, err = pmd.Open(pmd.Config{Name: "p0", Driver: DriverName, Args: a, Pools: []*mbuf.Pool{pool}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("args %q: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	if st := pool.Stats(); st.InUse != 0 {
		t.Errorf("failed opens leaked %d mbufs", st.InUse)
	}
}

// TestBurstAllocs: RxBurst and TxBurst (with refill, completions and kicks)
// allocate nothing, measured while frames sent beforehand are forwarded.
func TestBurstAllocs(t *testing.T) {
	tp := newTopo(t, 1)
	pool := newPool(t, 0, 4096)
	pools := []*mbuf.Pool{pool}
	a := openPort(t, "A", 0, tp.r, tp.ra, pools, nil, ",ring=1024")
	b := openPort(t, "B", 1, tp.r, tp.rb, pools, nil, ",ring=1024")
	f := &forwarder{a: a, b: b, dstA: tp.macXA, srcA: tp.macRA, dstB: tp.macYB, srcB: tp.macRB, caches: []*mbuf.Cache{pool.NewCache()}}
	c := udpIn(t, tp.x, "198.18.1.1:41000")
	dst := &net.UDPAddr{IP: net.IPv4(198, 18, 2, 1), Port: 9}
	for range 800 {
		c.WriteToUDP([]byte("0123456789"), dst)
	}
	pfd := []unix.PollFd{{Fd: int32(a.(pmd.Poller).RxFD(0)), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 5000); n != 1 || err != nil {
		t.Fatalf("no frames on A's RX ring: %v", err)
	}
	forwarded := 0
	allocs := testing.AllocsPerRun(200, func() { forwarded += f.round(0) })
	if allocs != 0 {
		t.Fatalf("RxBurst+TxBurst allocate %v times per round", allocs)
	}
	if forwarded == 0 {
		t.Fatal("nothing forwarded during the measurement")
	}
	t.Logf("forwarded %d packets in 201 rounds, 0 allocs", forwarded)
}

// TestStatsDuringDetach (issue 12.14): Stats reads each queue's socket
// (XDP_STATISTICS on its descriptor) while link changes detach and close
// those sockets. Under -race this reported the descriptor being closed under
// the reader; Stats must only touch a socket detach has not closed yet.
func TestStatsDuringDetach(t *testing.T) {
	tp := newTopo(t, 1)
	pool := newPool(t, 0, 2048)
	p := openPort(t, "A", 0, tp.r, tp.ra, []*mbuf.Pool{pool}, nil, ",ring=512")
	stop := make(chan struct{})
	var reads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.Stats()
			reads.Add(1)
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
	for i := range 10 {
		tp.n.In(tp.r, "ip", "link", "set", tp.ra, "down")
		testnet.Eventually(t, 5*time.Second, fmt.Sprintf("down %d", i), func() bool { return !p.Link().Up })
		tp.n.In(tp.r, "ip", "link", "set", tp.ra, "up")
		testnet.Eventually(t, 5*time.Second, fmt.Sprintf("up %d", i), func() bool { return p.Link().Up })
	}
	if reads.Load() == 0 {
		t.Fatal("Stats never ran")
	}
}

// TestTouchFrames: touchFrames reads the first byte of every frame inside
// the region, skips descriptors outside it (whatever the kernel hands out),
// takes none at all, and allocates nothing.
func TestTouchFrames(t *testing.T) {
	region := make([]byte, 4096)
	region[0], region[256], region[4095] = 1, 2, 4
	descs := []xsk.Desc{{Addr: 0}, {Addr: 4095}, {Addr: 4096}, {Addr: 1 << 40}, {Addr: ^uint64(0)}, {Addr: 256, Len: 60}}
	if got := touchFrames(region, descs); got != 7 {
		t.Errorf("touchFrames = %d, want 7 (1+4+2; the three outside skipped)", got)
	}
	if got := touchFrames(region, nil); got != 0 {
		t.Errorf("touchFrames(nil) = %d", got)
	}
	if got := touchFrames(nil, descs); got != 0 {
		t.Errorf("touchFrames with no region = %d", got)
	}
	if n := testing.AllocsPerRun(100, func() { touchFrames(region, descs) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}
