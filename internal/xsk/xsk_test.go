package xsk

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestUDPEcho: the kernel in a namespace sends UDP to 198.18.0.2 over a
// veth; our socket on the other end reflects it; the kernel receives the
// echoes. Both directions, one queue, need_wakeup on.
func TestUDPEcho(t *testing.T) {
	for _, tc := range []struct {
		name string
		xdp  XDPMode
		mode Mode
	}{
		{"native-auto", XDPAuto, ModeAuto},
		{"generic-copy", XDPGeneric, ModeCopy},
		{"native-busypoll", XDPNative, ModeAuto},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ns := e.newNS("n")
			v := e.newVeth("a", ns, 1, "198.18.0.1/24", "198.18.0.2")
			if q, err := QueueCount(v.local); err != nil || q != 1 {
				t.Fatalf("QueueCount = %d, %v; want 1", q, err)
			}
			u := e.newUmem(512)
			p := e.attach(v.ifindex, ProgramConfig{Mode: tc.xdp})
			wantMode := XDPNative
			if tc.xdp == XDPGeneric {
				wantMode = XDPGeneric
			}
			if p.Mode() != wantMode {
				t.Fatalf("XDP mode %v, want %v", p.Mode(), wantMode)
			}
			cfg := SocketConfig{Ifindex: v.ifindex, Queue: 0, Mode: tc.mode}
			if strings.Contains(tc.name, "busypoll") {
				cfg.BusyPoll = BusyPoll{Timeout: 20 * time.Microsecond, Budget: 64}
			}
			s := e.socket(u, cfg)
			if s.ZeroCopy() {
				t.Fatalf("veth reports zero-copy: unexpected on this kernel")
			}
			if !s.NeedWakeup() {
				t.Fatal("need_wakeup not in effect")
			}
			// XDP_MAX_TX_SKB_BUDGET exists from Linux 6.17: there it must be
			// in effect (one kick sends a whole TX ring's worth).
			if kernelAtLeast(t, 6, 17) && s.TxSkbBudget() != DefaultRingSize {
				t.Fatalf("TxSkbBudget = %d on a kernel >= 6.17, want %d", s.TxSkbBudget(), DefaultRingSize)
			}
			if err := p.Register(s); err != nil {
				t.Fatal(err)
			}
			t.Logf("xdp %v, zero-copy %v, need_wakeup %v, busy poll %v", p.Mode(), s.ZeroCopy(), s.NeedWakeup(), s.BusyPolling())
			var kickErr atomic.Value
			stop := e.worker(reflector(s, newFreeList(u, 0, u.Chunks()), &kickErr))
			c := e.udpInNS(ns, "198.18.0.1:7000")
			echoRound(t, c, "198.18.0.2:7", 200)
			stop()
			if err := kickErr.Load(); err != nil {
				t.Fatalf("kick error: %v", err)
			}
			st, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("stats %+v", st)
			if st.RxPackets < 200 || st.Completed < 200 || st.Kernel.Rx_invalid_descs != 0 || st.Kernel.Tx_invalid_descs != 0 {
				t.Fatalf("stats %+v", st)
			}
			e.closeAndVerify()
		})
	}
}

// TestTwoQueues: a 2-queue veth, one socket per queue on one Umem (same
// device, own fill/completion rings), 32 flows spread over both queues.
func TestTwoQueues(t *testing.T) {
	e := newEnv(t)
	ns := e.newNS("n")
	v := e.newVeth("a", ns, 2, "198.18.0.1/24", "198.18.0.2")
	q, err := QueueCount(v.local)
	if err != nil || q != 2 {
		t.Fatalf("QueueCount(%s) = %d, %v; want 2", v.local, q, err)
	}
	u := e.newUmem(1024)
	p := e.attach(v.ifindex, ProgramConfig{}) // queue count from the device
	if p.Queues() != 2 {
		t.Fatalf("XSKMAP size %d", p.Queues())
	}
	var socks [2]*Socket
	for i := range socks {
		socks[i] = e.socket(u, SocketConfig{Ifindex: v.ifindex, Queue: i, FillSize: 512, CompletionSize: 512, RxSize: 512, TxSize: 512})
		if err := p.Register(socks[i]); err != nil {
			t.Fatal(err)
		}
		e.worker(reflector(socks[i], newFreeList(u, i*512, (i+1)*512), nil))
	}
	if u.Sockets() != 2 {
		t.Fatalf("Umem has %d sockets", u.Sockets())
	}
	for f := range 32 {
		c := e.udpInNS(ns, fmt.Sprintf("198.18.0.1:%d", 20000+f))
		echoRound(t, c, "198.18.0.2:7", 4)
	}
	for i, s := range socks {
		st, _ := s.Stats()
		t.Logf("queue %d: %+v", i, st)
		if st.RxPackets == 0 {
			t.Errorf("queue %d received nothing from 32 flows", i)
		}
	}
	e.closeAndVerify()
}

// l2fwd forwards between two sockets of one Umem, rewriting MACs: what
// arrives on a goes out of b with src = b's MAC, dst = b's peer, and back.
// The descriptor is handed over: no byte of payload is copied.
func l2fwd(a, b *Socket, va, vb *vethInfo, fl *freeList, handed *atomic.Uint64) func(stop *atomic.Bool) {
	return func(stop *atomic.Bool) {
		u := a.Umem()
		var descs [64]Desc
		var addrs [64]uint64
		type dir struct {
			in, out  *Socket
			src, dst []byte
		}
		dirs := [2]dir{{a, b, vb.localMAC, vb.peerMAC}, {b, a, va.localMAC, va.peerMAC}}
		fl.refill(a)
		fl.refill(b)
		for !stop.Load() {
			idle := true
			for _, d := range dirs {
				n := d.in.Receive(descs[:])
				for _, x := range descs[:n] {
					f := u.Frame(x.Addr, x.Len)
					copy(f[0:6], d.dst)
					copy(f[6:12], d.src)
				}
				m := d.out.Transmit(descs[:n])
				handed.Add(uint64(m))
				fl.putDescs(u.ChunkSize(), descs[m:n])
				d.out.FlushTx()
				if n > 0 {
					idle = false
				}
			}
			for _, s := range []*Socket{a, b} {
				c := s.Complete(addrs[:])
				fl.put(addrs[:c])
			}
			for _, s := range []*Socket{a, b} {
				fl.refill(s)
				s.WakeupRx()
			}
			if idle {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
}

// TestSharedUmemTwoVeths: one Umem, sockets on two different veths; the
// kernel in ns1 talks UDP to the kernel in ns2 through our forwarder.
func TestSharedUmemTwoVeths(t *testing.T) {
	e := newEnv(t)
	ns1, ns2 := e.newNS("x"), e.newNS("y")
	va := e.newVeth("a", ns1, 1, "198.18.1.1/24", "198.18.1.2")
	vb := e.newVeth("b", ns2, 1, "198.18.2.1/24", "198.18.2.2")
	ipCmd(t, "-n", ns1, "route", "add", "198.18.2.0/24", "via", "198.18.1.2")
	ipCmd(t, "-n", ns2, "route", "add", "198.18.1.0/24", "via", "198.18.2.2")
	u := e.newUmem(1024)
	pa := e.attach(va.ifindex, ProgramConfig{})
	pb := e.attach(vb.ifindex, ProgramConfig{})
	// Fill rings of 512 over 1024 chunks: both sockets get buffers.
	sa := e.socket(u, SocketConfig{Ifindex: va.ifindex, FillSize: 512})
	sb := e.socket(u, SocketConfig{Ifindex: vb.ifindex, FillSize: 512})
	if err := pa.Register(sa); err != nil {
		t.Fatal(err)
	}
	if err := pb.Register(sb); err != nil {
		t.Fatal(err)
	}
	if sa.ZeroCopy() != sb.ZeroCopy() || !sb.NeedWakeup() {
		t.Fatalf("shared socket did not inherit the mode: %v %v %v", sa.ZeroCopy(), sb.ZeroCopy(), sb.NeedWakeup())
	}
	var handed atomic.Uint64
	e.worker(l2fwd(sa, sb, va, vb, newFreeList(u, 0, u.Chunks()), &handed))
	// Echo server in ns2: the forwarder carries requests and replies.
	srv := e.udpInNS(ns2, "198.18.2.1:7")
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
	c := e.udpInNS(ns1, "198.18.1.1:9000")
	echoRound(t, c, "198.18.2.1:7", 100)
	sta, _ := sa.Stats()
	stb, _ := sb.Stats()
	t.Logf("a %+v\nb %+v\nhanded over %d", sta, stb, handed.Load())
	if sta.RxPackets < 100 || stb.RxPackets < 100 || sta.TxPackets < 100 || stb.TxPackets < 100 {
		t.Fatal("traffic did not cross both ways")
	}
	e.closeAndVerify()
}

// TestLinkDownAndDelete: set the interface down, then delete it, while a
// worker polls and transmits: no panic, the errors come back as ENETDOWN /
// ENXIO, and a new interface of the same name works afterwards.
func TestLinkDownAndDelete(t *testing.T) {
	e := newEnv(t)
	ns := e.newNS("n")
	v := e.newVeth("a", ns, 1, "198.18.0.1/24", "198.18.0.2")
	u := e.newUmem(256)
	p := e.attach(v.ifindex, ProgramConfig{})
	s := e.socket(u, SocketConfig{Ifindex: v.ifindex})
	if err := p.Register(s); err != nil {
		t.Fatal(err)
	}
	fl := newFreeList(u, 0, 128)           // for the fill ring
	txl := newFreeList(u, 128, u.Chunks()) // for transmitting
	var lastErr atomic.Value
	var rounds atomic.Uint64
	e.worker(func(stop *atomic.Bool) {
		var descs [64]Desc
		var addrs [64]uint64
		fl.refill(s)
		for !stop.Load() {
			n := s.Receive(descs[:])
			fl.putDescs(u.ChunkSize(), descs[:n])
			// Transmit one small broadcast frame per round.
			if len(txl.a) > 0 && s.TxFree() > 0 {
				a := txl.a[len(txl.a)-1]
				f := u.Frame(a, 60)
				copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
				copy(f[6:], v.localMAC)
				f[12], f[13] = 0x88, 0xb5 // local experimental ethertype
				if s.Transmit([]Desc{{Addr: a, Len: 60}}) == 1 {
					txl.a = txl.a[:len(txl.a)-1]
				}
			}
			if err := s.FlushTx(); err != nil {
				lastErr.Store(err)
			}
			c := s.Complete(addrs[:])
			txl.put(addrs[:c])
			fl.refill(s)
			if err := s.WakeupRx(); err != nil {
				lastErr.Store(err)
			}
			rounds.Add(1)
			time.Sleep(100 * time.Microsecond)
		}
	})
	waitFor(t, "worker rounds", 5*time.Second, func() bool { return rounds.Load() > 100 })
	if err := lastErr.Load(); err != nil {
		t.Fatalf("error while up: %v", err)
	}
	// Down: sendto says ENETDOWN and the kernel leaves the frames on the
	// TX ring (they are the caller's again when the socket is closed).
	ipCmd(t, "link", "set", v.local, "down")
	waitFor(t, "ENETDOWN from FlushTx", 5*time.Second, func() bool {
		err, _ := lastErr.Load().(error)
		return errors.Is(err, unix.ENETDOWN)
	})
	if !errors.Is(s.Err(), unix.ENETDOWN) {
		t.Fatalf("Err() = %v, want ENETDOWN", s.Err())
	}
	ipCmd(t, "link", "del", v.local)
	waitFor(t, "ENXIO from FlushTx after deletion", 5*time.Second, func() bool {
		err, _ := lastErr.Load().(error)
		return errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV)
	})
	r := rounds.Load()
	waitFor(t, "worker still polling", 5*time.Second, func() bool { return rounds.Load() > r+50 })
	t.Logf("after deletion: %v, Err() = %v", lastErr.Load(), s.Err())

	// Re-create an interface of the same name: a new program and socket work.
	v2 := e.newVeth("a", ns, 1, "198.18.0.1/24", "198.18.0.2")
	u2 := e.newUmem(256)
	p2 := e.attach(v2.ifindex, ProgramConfig{})
	s2 := e.socket(u2, SocketConfig{Ifindex: v2.ifindex})
	if err := p2.Register(s2); err != nil {
		t.Fatal(err)
	}
	e.worker(reflector(s2, newFreeList(u2, 0, u2.Chunks()), nil))
	echoRound(t, e.udpInNS(ns, "198.18.0.1:7001"), "198.18.0.2:7", 20)
	e.closeAndVerify()
}

// passProgram loads an XDP program returning XDP_PASS under the given name.
func passProgram(t *testing.T, name string) *ebpf.Program {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: name, Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// attachNetlink attaches prog the old way (netlink, no bpf_link), as a
// crashed fwdd or another tool would leave it, and closes our handle: the
// program stays on the interface.
func attachNetlink(t *testing.T, ifindex int, prog *ebpf.Program) int {
	nl, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetXdpFdWithFlags(nl, prog.FD(), unix.XDP_FLAGS_DRV_MODE); err != nil {
		t.Fatal(err)
	}
	info, _ := prog.Info()
	id, _ := info.ID()
	prog.Close()
	return int(id)
}

func attachedProgID(t *testing.T, ifindex int) uint32 {
	nl, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		t.Fatal(err)
	}
	if x := nl.Attrs().Xdp; x != nil && x.Attached {
		return x.ProgId
	}
	return 0
}

func TestLeftoverAndForeignPrograms(t *testing.T) {
	e := newEnv(t)
	ns := e.newNS("n")
	v := e.newVeth("a", ns, 1, "198.18.0.1/24", "198.18.0.2")

	// A dead fwdd's program (our name, netlink-attached) is replaced.
	stale := attachNetlink(t, v.ifindex, passProgram(t, ProgramName))
	p, err := AttachProgram(ProgramConfig{Ifindex: v.ifindex})
	if err != nil {
		t.Fatalf("stale program not replaced: %v", err)
	}
	if id := attachedProgID(t, v.ifindex); id == 0 || int(id) == stale {
		t.Fatalf("attached program id %d, stale was %d", id, stale)
	}
	// A second fwdd on the same interface fails: ErrBusy.
	if _, err := AttachProgram(ProgramConfig{Ifindex: v.ifindex}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second attach: %v, want ErrBusy", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if id := attachedProgID(t, v.ifindex); id != 0 {
		t.Fatalf("program %d still attached after Close", id)
	}

	// Someone else's program is left alone, and the error says so.
	foreign := attachNetlink(t, v.ifindex, passProgram(t, "not_fwdd"))
	e.defer_(func() {
		if nl, err := netlink.LinkByIndex(v.ifindex); err == nil {
			netlink.LinkSetXdpFdWithFlags(nl, -1, unix.XDP_FLAGS_DRV_MODE)
		}
	})
	_, err = AttachProgram(ProgramConfig{Ifindex: v.ifindex})
	if !errors.Is(err, ErrForeignProgram) || !strings.Contains(err.Error(), v.local) || !strings.Contains(err.Error(), "not_fwdd") {
		t.Fatalf("foreign program: err = %v", err)
	}
	t.Logf("foreign program error: %v", err)
	if id := attachedProgID(t, v.ifindex); int(id) != foreign {
		t.Fatalf("foreign program %d replaced by %d", foreign, id)
	}
	e.closeAndVerify()
}

func TestSetupErrors(t *testing.T) {
	e := newEnv(t)
	ns := e.newNS("n")
	v := e.newVeth("a", ns, 1, "198.18.0.1/24", "198.18.0.2")
	u2 := e.newUmem(64)
	if _, err := u2.NewSocket(SocketConfig{Ifindex: v.ifindex, Mode: ModeZeroCopy, Queue: 0}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("zero-copy bind on veth: err = %v, want ErrNotSupported", err)
	} else {
		t.Logf("zero-copy on veth: %v", err)
	}
	u := e.newUmem(64)
	e.socket(u, SocketConfig{Ifindex: v.ifindex})
	for _, tc := range []struct {
		name string
		cfg  SocketConfig
		want error
	}{
		{"same queue twice", SocketConfig{Ifindex: v.ifindex}, ErrBusy},
		{"queue out of range", SocketConfig{Ifindex: v.ifindex, Queue: 5}, unix.EINVAL},
		{"bad ring size", SocketConfig{Ifindex: v.ifindex, RxSize: 3}, ErrInvalidConfig},
		{"zero-copy on a copy umem", SocketConfig{Ifindex: v.ifindex, Queue: 1, Mode: ModeZeroCopy}, ErrInvalidConfig},
	} {
		_, err := u.NewSocket(tc.cfg)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := AttachProgram(ProgramConfig{Ifindex: 1 << 30}); err == nil {
		t.Error("attach to a missing ifindex succeeded")
	}
	if _, err := QueueCount("nonexistent0"); err == nil {
		t.Error("QueueCount of a missing interface succeeded")
	}
	e.closeAndVerify()
}

// TestReopenQueue: closing a socket and binding a new one on the same queue
// right away works (the kernel frees the queue in deferred work; NewSocket
// retries EBUSY for a bounded time).
func TestReopenQueue(t *testing.T) {
	e := newEnv(t)
	ns := e.newNS("n")
	v := e.newVeth("a", ns, 1, "198.18.0.1/24", "198.18.0.2")
	u := e.newUmem(64)
	for i := range 10 {
		s, err := u.NewSocket(SocketConfig{Ifindex: v.ifindex, FillSize: 64, CompletionSize: 64, RxSize: 64, TxSize: 64})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	e.closeAndVerify()
}

// TestSharedAnchorGone: the Umem's first socket (the one later sockets
// share through) loses its device; a new socket still joins the Umem,
// through another open socket.
func TestSharedAnchorGone(t *testing.T) {
	e := newEnv(t)
	ns := e.newNS("n")
	v1 := e.newVeth("a", ns, 1, "198.18.1.1/24", "198.18.1.2")
	v2 := e.newVeth("b", ns, 1, "198.18.2.1/24", "198.18.2.2")
	v3 := e.newVeth("c", ns, 1, "198.18.3.1/24", "198.18.3.2")
	u := e.newUmem(256)
	cfg := func(ifindex int) SocketConfig {
		return SocketConfig{Ifindex: ifindex, FillSize: 64, CompletionSize: 64, RxSize: 64, TxSize: 64}
	}
	e.socket(u, cfg(v1.ifindex))
	e.socket(u, cfg(v2.ifindex))
	ipCmd(t, "link", "del", v1.local)
	s3, err := u.NewSocket(cfg(v3.ifindex))
	if err != nil {
		t.Fatalf("join after the anchor's device went away: %v", err)
	}
	if err := s3.Close(); err != nil {
		t.Fatal(err)
	}
	e.closeAndVerify()
}
