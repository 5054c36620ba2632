package xsk

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Root tests build their own namespaces and veth pairs (names "xk<pid><seq>",
// <= 15 characters), use only 198.18.0.0/15 and tear everything down, then
// check that nothing is left: no XDP program on the (deleted) veths, none of
// our sockets open, no namespace.

var envSeq atomic.Uint32

func requireRoot(t testing.TB) {
	t.Helper()
	testenv.Root(t, "creates network namespaces, veth pairs and XDP programs")
	testenv.Tool(t, "ip", "iproute2")
}

// env collects teardown steps and runs them once, newest first.
type env struct {
	t      testing.TB
	id     string
	mu     sync.Mutex
	undo   []func()
	nss    []string
	links  []string
	fdsBef int
}

func newEnv(t testing.TB) *env {
	requireRoot(t)
	e := &env{t: t, id: fmt.Sprintf("xk%04x%02x", os.Getpid()&0xffff, envSeq.Add(1)&0xff), fdsBef: countFDs(t)}
	t.Cleanup(e.close)
	return e
}

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	return len(ents)
}

func (e *env) defer_(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.undo = append(e.undo, f)
}

func (e *env) close() {
	e.mu.Lock()
	undo := e.undo
	e.undo = nil
	e.mu.Unlock()
	for i := len(undo) - 1; i >= 0; i-- {
		undo[i]()
	}
}

// closeAndVerify tears down and checks that nothing is left.
func (e *env) closeAndVerify() {
	e.t.Helper()
	e.close()
	for _, l := range e.links {
		if nl, err := netlink.LinkByName(l); err == nil {
			e.t.Errorf("interface %s still exists after teardown", l)
			if x := nl.Attrs().Xdp; x != nil && x.Attached {
				e.t.Errorf("interface %s still has XDP program id %d", l, x.ProgId)
			}
		}
	}
	for _, ns := range e.nss {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			e.t.Errorf("namespace %s still exists after teardown", ns)
		}
	}
	// Every fd we opened (AF_XDP sockets, program, map, link, UDP sockets)
	// is closed: the process holds exactly as many fds as before.
	deadline := time.Now().Add(2 * time.Second)
	for countFDs(e.t) != e.fdsBef && time.Now().Before(deadline) {
		runtime.GC() // os.File finalizers of exited helper goroutines
		time.Sleep(10 * time.Millisecond)
	}
	if n := countFDs(e.t); n != e.fdsBef {
		e.t.Errorf("%d fds open after teardown, %d before", n, e.fdsBef)
	}
}

func ipCmd(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (e *env) newNS(suffix string) string {
	name := e.id + suffix
	ipCmd(e.t, "netns", "add", name)
	e.nss = append(e.nss, name)
	e.defer_(func() { exec.Command("ip", "netns", "del", name).Run() })
	ipCmd(e.t, "-n", name, "link", "set", "lo", "up")
	return name
}

// vethInfo is one veth pair: local end in this namespace, peer in ns.
type vethInfo struct {
	local    string
	ifindex  int
	localMAC net.HardwareAddr
	peer     string
	peerMAC  net.HardwareAddr
	ns       string
}

// newVeth makes a veth pair with queues RX/TX queues on each end, the peer
// moved to ns with address peerCIDR and a permanent neighbour entry mapping
// gw to the local end's MAC (so the kernel sends to our socket without ARP).
func (e *env) newVeth(suffix, ns string, queues int, peerCIDR, gw string) *vethInfo {
	v := &vethInfo{local: e.id + suffix, peer: e.id + suffix + "p", ns: ns}
	q := fmt.Sprint(queues)
	ipCmd(e.t, "link", "add", v.local, "numtxqueues", q, "numrxqueues", q, "type", "veth",
		"peer", "name", v.peer, "numtxqueues", q, "numrxqueues", q, "netns", ns)
	e.links = append(e.links, v.local)
	e.defer_(func() { exec.Command("ip", "link", "del", v.local).Run() })
	ipCmd(e.t, "link", "set", v.local, "up")
	ipCmd(e.t, "-n", ns, "addr", "add", peerCIDR, "dev", v.peer)
	ipCmd(e.t, "-n", ns, "link", "set", v.peer, "up")
	nl, err := netlink.LinkByName(v.local)
	if err != nil {
		e.t.Fatal(err)
	}
	v.ifindex, v.localMAC = nl.Attrs().Index, nl.Attrs().HardwareAddr
	ipCmd(e.t, "-n", ns, "neigh", "replace", gw, "lladdr", v.localMAC.String(), "dev", v.peer, "nud", "permanent")
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", v.peer).Output()
	if err != nil {
		e.t.Fatal(err)
	}
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "link/ether" && i+1 < len(f) {
			v.peerMAC, _ = net.ParseMAC(f[i+1])
		}
	}
	if v.peerMAC == nil {
		e.t.Fatalf("no MAC for %s in %q", v.peer, out)
	}
	return v
}

// udpInNS opens a UDP socket bound to addr inside namespace ns.
func (e *env) udpInNS(ns, addr string) *net.UDPConn {
	e.t.Helper()
	type res struct {
		c   *net.UDPConn
		err error
	}
	ch := make(chan res)
	go func() {
		// The thread is left locked: it exits with the goroutine instead of
		// going back to the scheduler in the wrong namespace.
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			ch <- res{nil, err}
			return
		}
		a, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		c, err := net.ListenUDP("udp4", a)
		if err == nil {
			// Send without a UDP checksum (SO_NO_CHECK): over veth the kernel
			// leaves it partial (offloaded), and a forwarder that does not
			// touch L4 would pass the partial checksum on.
			rc, _ := c.SyscallConn()
			rc.Control(func(fd uintptr) {
				err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1)
			})
		}
		ch <- res{c, err}
	}()
	r := <-ch
	if r.err != nil {
		e.t.Fatalf("udp socket in %s on %s: %v", ns, addr, r.err)
	}
	e.defer_(func() { r.c.Close() })
	return r.c
}

// newUmem maps a region of n chunks and makes a Umem over it.
func (e *env) newUmem(chunks int) *Umem {
	region, err := MapRegion(chunks * 4096)
	if err != nil {
		e.t.Fatal(err)
	}
	e.defer_(func() { UnmapRegion(region) })
	u, err := NewUmem(region, UmemConfig{ChunkSize: 4096})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) attach(ifindex int, cfg ProgramConfig) *Program {
	e.t.Helper()
	cfg.Ifindex = ifindex
	p, err := AttachProgram(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.defer_(func() {
		if err := p.Close(); err != nil {
			e.t.Errorf("program close: %v", err)
		}
	})
	return p
}

func (e *env) socket(u *Umem, cfg SocketConfig) *Socket {
	e.t.Helper()
	s, err := u.NewSocket(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.defer_(func() {
		if err := s.Close(); err != nil {
			e.t.Errorf("socket close: %v", err)
		}
	})
	return s
}

// worker runs f in a goroutine until stop; stop waits for it.
func (e *env) worker(f func(stop *atomic.Bool)) (stop func()) {
	var st atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(&st)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			st.Store(true)
			<-done
		})
	}
	e.defer_(stop)
	return stop
}

// freeList is the test's chunk allocator (the mbuf pool stands in for it
// in fwdd): a stack of chunk addresses.
type freeList struct{ a []uint64 }

func newFreeList(u *Umem, from, to int) *freeList {
	f := &freeList{a: make([]uint64, 0, to-from)}
	for i := from; i < to; i++ {
		f.a = append(f.a, u.ChunkAddr(i))
	}
	return f
}

// refill gives the socket as many chunks as fit.
func (f *freeList) refill(s *Socket) {
	n := min(s.FillFree(), len(f.a))
	if n == 0 {
		return
	}
	k := s.Fill(f.a[len(f.a)-n:])
	f.a = f.a[:len(f.a)-k]
}

func (f *freeList) put(addrs []uint64) { f.a = append(f.a, addrs...) }

func (f *freeList) putDescs(chunk uint32, d []Desc) {
	for i := range d {
		f.a = append(f.a, d[i].Addr&^uint64(chunk-1))
	}
}

// reflectUDP turns a UDP/IPv4 frame around in place: swap MACs, IPs and
// ports (the IPv4 header checksum stays valid). Other frames are left as they are.
func reflectUDP(b []byte) bool {
	if len(b) < 42 || b[12] != 0x08 || b[13] != 0x00 || b[23] != 17 {
		return false
	}
	var t [6]byte
	copy(t[:], b[0:6])
	copy(b[0:6], b[6:12])
	copy(b[6:12], t[:])
	ihl := int(b[14]&0x0f) * 4
	var ip [4]byte
	copy(ip[:], b[26:30])
	copy(b[26:30], b[30:34])
	copy(b[30:34], ip[:])
	u := 14 + ihl
	if len(b) < u+8 {
		return false
	}
	b[u], b[u+1], b[u+2], b[u+3] = b[u+2], b[u+3], b[u], b[u+1]
	// The sender's checksum may be a partial one (veth offloads it and
	// XDP sees the frame before it is completed): send without one, which
	// UDP over IPv4 allows.
	b[u+6], b[u+7] = 0, 0
	return true
}

// reflector runs the echo loop on s: receive, reflect UDP, transmit, flush,
// complete, refill. Frames that are not UDP are dropped (back to the list).
// It records the first kick error in errOut.
func reflector(s *Socket, fl *freeList, errOut *atomic.Value) func(stop *atomic.Bool) {
	return func(stop *atomic.Bool) {
		u := s.Umem()
		var descs [64]Desc
		var addrs [64]uint64
		var keep [64]Desc
		fl.refill(s)
		for !stop.Load() {
			n := s.Receive(descs[:])
			k := 0
			for _, d := range descs[:n] {
				if reflectUDP(u.Frame(d.Addr, d.Len)) {
					keep[k] = d
					k++
				} else {
					fl.putDescs(u.ChunkSize(), []Desc{d})
				}
			}
			m := s.Transmit(keep[:k])
			fl.putDescs(u.ChunkSize(), keep[m:k])
			if err := s.FlushTx(); err != nil && errOut != nil {
				errOut.CompareAndSwap(nil, err)
			}
			c := s.Complete(addrs[:])
			fl.put(addrs[:c])
			fl.refill(s)
			if err := s.WakeupRx(); err != nil && errOut != nil {
				errOut.CompareAndSwap(nil, err)
			}
			if n == 0 && c == 0 && s.TxPending() == 0 {
				s.Poll(time.Millisecond)
			}
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

var errTimeout = errors.New("timeout")

// echoRound sends count datagrams from c to dst and waits for all echoes.
func echoRound(t testing.TB, c *net.UDPConn, dst string, count int) {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp4", dst)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]bool)
	buf := make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < count {
		// (Re)send what has not come back yet: the first frames may race
		// the socket's registration.
		for i := range count {
			msg := fmt.Sprintf("fwdd-xsk-%d", i)
			if !got[msg] {
				if _, err := c.WriteToUDP([]byte(msg), a); err != nil {
					t.Fatalf("send: %v", err)
				}
			}
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				break
			}
			got[string(buf[:n])] = true
			if len(got) == count {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d echoes from %s came back: %v", len(got), count, dst, errTimeout)
		}
	}
}

// kernelAtLeast reports whether the running kernel is major.minor or newer.
func kernelAtLeast(t testing.TB, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatalf("uname: %v", err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("kernel release %q: %v", unix.ByteSliceToString(u.Release[:]), err)
	}
	return ma > major || ma == major && mi >= minor
}
