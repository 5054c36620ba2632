package afxdp

import (
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	asavie "github.com/asavie/xdp"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/internal/xsk"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The L2 forward benchmark: gen --veth--> [ra  router  rb] --veth--> sink.
//
// The generator is an XDP program returning XDP_TX run with BPF_PROG_RUN and
// BPF_F_TEST_XDP_LIVE_FRAMES on the veth in namespace x (pinned to CPU 0):
// every run sends a 64-byte UDP frame to ra. The sink is an XDP program on
// the veth in namespace y counting frames (per-CPU) and dropping them. The
// forwarders, all in the same run, rewrite both MACs and send the frame out
// of rb:
//
//	xdp-redirect  an XDP program on ra: rewrite, bpf_redirect(rb) (the ceiling)
//	afxdp         this driver: RxBurst(A) -> rewrite -> TxBurst(B), one worker on CPU 1
//	xsk-raw       internal/xsk alone: the same loop on descriptors, no mbufs
//	asavie        github.com/asavie/xdp v0.3.3: its socket API, one UMEM per socket, a copy per frame
//
// Figures are delivered packets per second at the sink over the generator's
// run time. Run: go test -run '^$' -bench L2Forward -benchtime 1x -count 3 ./pmd/afxdp/

const (
	benchPackets = 2_000_000 // per generator run
	xdpFlagsLive = 1 << 1    // BPF_F_TEST_XDP_LIVE_FRAMES
)

type benchTopo struct {
	*topo
	genIfindex  int
	raIfindex   int
	rbIfindex   int
	sinkProg    *ebpf.Program
	sinkCount   *ebpf.Map
	sinkLink    link.Link
	genProg     *ebpf.Program
	frame       []byte
	dstMAC      net.HardwareAddr // rewrite: what leaves rb
	srcMAC      net.HardwareAddr
	workerCPU   int
	genCPU      int
	ncpu        int
	measureOnce sync.Once
}

func ifindexIn(t testing.TB, ns, dev string) int {
	var idx int
	err := pmd.InNetNS(testnet.Path(ns), func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		idx = l.Attrs().Index
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func newBenchTopo(b *testing.B) *benchTopo {
	bt := &benchTopo{ncpu: runtime.NumCPU()}
	bt.topo = newTopoTB(b)
	bt.genIfindex = ifindexIn(b, bt.x, bt.xa)
	bt.raIfindex = ifindexIn(b, bt.r, bt.ra)
	bt.rbIfindex = ifindexIn(b, bt.r, bt.rb)
	bt.genCPU, bt.workerCPU = 0, 1%bt.ncpu
	bt.dstMAC, bt.srcMAC = bt.macYB, bt.macRB

	// Sink: count per CPU and drop.
	var err error
	bt.sinkCount, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bt.sinkCount.Close() })
	bt.sinkProg, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "fwdd_bench_sink", Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.StoreImm(asm.R10, -4, 0, asm.Word),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, bt.sinkCount.FD()),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "drop"),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.Add.Imm(asm.R1, 1),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, 1).WithSymbol("drop"), // XDP_DROP
			asm.Return(),
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bt.sinkProg.Close() })
	sinkIf := ifindexIn(b, bt.y, bt.yb)
	err = pmd.InNetNS(testnet.Path(bt.y), func() error {
		bt.sinkLink, err = link.AttachXDP(link.XDPOptions{Program: bt.sinkProg, Interface: sinkIf, Flags: link.XDPDriverMode})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bt.sinkLink.Close() })

	// Generator: XDP_TX.
	bt.genProg, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "fwdd_bench_gen", Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 3), asm.Return()}, // XDP_TX
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bt.genProg.Close() })

	// 64-byte frame (without FCS): Ethernet, IPv4 198.18.1.1 -> 198.18.2.1, UDP.
	f := make([]byte, 60)
	copy(f[0:6], bt.macRA)
	copy(f[6:12], bt.macXA)
	f[12], f[13] = 0x08, 0x00
	ip := f[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], 46)
	copy(ip[12:16], net.IPv4(198, 18, 1, 1).To4())
	copy(ip[16:20], net.IPv4(198, 18, 2, 1).To4())
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(f[34:], 1024)
	binary.BigEndian.PutUint16(f[36:], 9)
	binary.BigEndian.PutUint16(f[38:], 26)
	bt.frame = f
	return bt
}

func (bt *benchTopo) sinkTotal(b *testing.B) uint64 {
	var vals []uint64
	if err := bt.sinkCount.Lookup(uint32(0), &vals); err != nil {
		b.Fatal(err)
	}
	var s uint64
	for _, v := range vals {
		s += v
	}
	return s
}

func pin(cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	unix.SchedSetaffinity(0, &set)
}

func unpin(ncpu int) {
	var set unix.CPUSet
	for i := range ncpu {
		set.Set(i)
	}
	unix.SchedSetaffinity(0, &set)
}

// generate sends benchPackets frames from x to ra and returns the elapsed time.
func (bt *benchTopo) generate(b *testing.B) time.Duration {
	var elapsed time.Duration
	err := pmd.InNetNS(testnet.Path(bt.x), func() error {
		pin(bt.genCPU)
		defer unpin(bt.ncpu)
		// struct xdp_md: data = 0, data_end = len(frame) (the kernel insists),
		// ingress_ifindex = the veth XDP_TX sends out of.
		ctx := [6]uint32{1: uint32(len(bt.frame)), 3: uint32(bt.genIfindex)}
		start := time.Now()
		_, err := bt.genProg.Run(&ebpf.RunOptions{Data: bt.frame, Repeat: benchPackets, Flags: xdpFlagsLive, Context: ctx[:]})
		elapsed = time.Since(start)
		return err
	})
	if err != nil {
		b.Fatalf("generator (BPF_PROG_RUN live frames): %v", err)
	}
	return elapsed
}

// measure runs the generator once with the forwarder running and reports
// delivered Mpps. stop, if not nil, stops the forwarder and returns the CPU
// time its thread used (user + system, which includes the kernel's transmit
// work done in sendto): delivered packets per worker CPU-second is the
// figure that survives a shared, loaded machine.
func (bt *benchTopo) measure(b *testing.B, stop func() time.Duration) {
	before := bt.sinkTotal(b)
	b.ResetTimer()
	el := bt.generate(b)
	b.StopTimer()
	// Let the forwarder drain what it holds: wait until the sink stops moving.
	last := bt.sinkTotal(b)
	for range 100 {
		time.Sleep(5 * time.Millisecond)
		n := bt.sinkTotal(b)
		if n == last {
			break
		}
		last = n
	}
	got := last - before
	b.ReportMetric(float64(got)/el.Seconds()/1e6, "Mpps")
	b.ReportMetric(float64(benchPackets)/el.Seconds()/1e6, "offered-Mpps")
	b.ReportMetric(float64(got)/float64(benchPackets)*100, "delivered-%")
	if stop != nil {
		if cpu := stop(); cpu > 0 {
			b.ReportMetric(float64(got)/cpu.Seconds()/1e6, "Mpps/worker-cpu")
		}
	}
}

// worker runs step pinned to the worker CPU until stopped; stop returns the
// CPU time the worker's thread used.
func (bt *benchTopo) worker(b *testing.B, step func() int) (stop func() time.Duration) {
	var st atomic.Bool
	var wg sync.WaitGroup
	var cpu time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		pin(bt.workerCPU)
		defer unpin(bt.ncpu)
		t0 := threadCPU()
		for !st.Load() {
			step()
		}
		cpu = threadCPU() - t0
	}()
	var once sync.Once
	return func() time.Duration {
		once.Do(func() { st.Store(true); wg.Wait() })
		return cpu
	}
}

func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkL2Forward(b *testing.B) {
	testnet.Skip(b)
	bt := newBenchTopo(b)

	b.Run("xdp-redirect", func(b *testing.B) {
		prog, err := redirectProgram(bt.dstMAC, bt.srcMAC, bt.rbIfindex)
		if err != nil {
			b.Fatal(err)
		}
		defer prog.Close()
		var l link.Link
		err = pmd.InNetNS(testnet.Path(bt.r), func() error {
			l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: bt.raIfindex, Flags: link.XDPDriverMode})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		bt.measure(b, nil)
	})

	b.Run("afxdp", func(b *testing.B) {
		pool, err := mbuf.NewPool(mbuf.Config{Name: "bench", Count: 8192})
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		pools := []*mbuf.Pool{pool}
		pa := openPortTB(b, "A", 0, bt.r, bt.ra, pools, ",ring=2048")
		defer pa.Close()
		pb := openPortTB(b, "B", 1, bt.r, bt.rb, pools, ",ring=2048")
		defer pb.Close()
		// (stop is deferred after the closes so that it runs before them.)
		// One direction, as the ceiling does.
		f := &forwarder{a: pa, b: pb, dstB: bt.dstMAC, srcB: bt.srcMAC, dstA: bt.macXA, srcA: bt.macRA, caches: []*mbuf.Cache{pool.NewCache()}}
		stop := bt.worker(b, func() int { return f.round(0) })
		defer stop()
		bt.measure(b, stop)
		sa, sb := sum(pa.Stats()), sum(pb.Stats())
		xa, _ := pa.(*Port).XSKStats(0)
		xb, _ := pb.(*Port).XSKStats(0)
		b.Logf("A %+v\nB %+v\nxsk A %+v\nxsk B %+v", sa, sb, xa, xb)
		if sb.Copies != 0 {
			b.Errorf("copies on a shared UMEM: %d", sb.Copies)
		}
		f.caches[0].Flush()
	})

	b.Run("xsk-raw", func(b *testing.B) {
		stop, closeAll := bt.rawXSK(b)
		defer closeAll()
		defer stop()
		bt.measure(b, stop)
	})

	b.Run("asavie", func(b *testing.B) {
		// asavie's Close never unmaps its rings, so its sockets stay bound
		// until the process exits and the queue cannot be used again: each
		// run gets a topology of its own.
		bt := newBenchTopo(b)
		stop, closeAll := bt.asavieLoop(b)
		defer closeAll()
		defer stop()
		bt.measure(b, stop)
	})
}

// redirectProgram: rewrite dst/src MAC, bpf_redirect(ifindex, 0).
func redirectProgram(dst, src net.HardwareAddr, ifindex int) (*ebpf.Program, error) {
	le32 := func(b []byte) int64 { return int64(int32(binary.LittleEndian.Uint32(b))) }
	le16 := func(b []byte) int64 { return int64(int16(binary.LittleEndian.Uint16(b))) }
	mac := append(append([]byte{}, dst...), src...)
	return ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "fwdd_bench_fwd", Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
			asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, 14),
			asm.JGT.Reg(asm.R4, asm.R3, "pass"),
			asm.StoreImm(asm.R2, 0, le32(mac[0:4]), asm.Word),
			asm.StoreImm(asm.R2, 4, le16(mac[4:6]), asm.Half),
			asm.StoreImm(asm.R2, 6, le16(mac[6:8]), asm.Half),
			asm.StoreImm(asm.R2, 8, le32(mac[8:12]), asm.Word),
			asm.Mov.Imm(asm.R1, int32(ifindex)),
			asm.Mov.Imm(asm.R2, 0),
			asm.FnRedirect.Call(),
			asm.Return(),
			asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"),
			asm.Return(),
		},
	})
}

// rawXSK: the internal/xsk burst loop on one shared Umem, forwarding
// descriptors from ra to rb with the MAC rewrite, no mbuf layer.
func (bt *benchTopo) rawXSK(b *testing.B) (stop func() time.Duration, closeAll func()) {
	region, err := xsk.MapRegion(8192 * 2048)
	if err != nil {
		b.Fatal(err)
	}
	u, err := xsk.NewUmem(region, xsk.UmemConfig{ChunkSize: 2048})
	if err != nil {
		b.Fatal(err)
	}
	var prog *xsk.Program
	var sa, sbk *xsk.Socket
	err = pmd.InNetNS(testnet.Path(bt.r), func() error {
		if prog, err = xsk.AttachProgram(xsk.ProgramConfig{Ifindex: bt.raIfindex, Queues: 1}); err != nil {
			return err
		}
		if sa, err = u.NewSocket(xsk.SocketConfig{Ifindex: bt.raIfindex}); err != nil {
			return err
		}
		if sbk, err = u.NewSocket(xsk.SocketConfig{Ifindex: bt.rbIfindex}); err != nil {
			return err
		}
		return prog.Register(sa)
	})
	if err != nil {
		b.Fatal(err)
	}
	closeAll = func() {
		prog.Close()
		sa.Close()
		sbk.Close()
		xsk.UnmapRegion(region)
	}
	free := make([]uint64, 0, 8192)
	for i := range 8192 {
		free = append(free, u.ChunkAddr(i))
	}
	var descs [Burst]xsk.Desc
	var addrs [Burst]uint64
	dst, src := bt.dstMAC, bt.srcMAC
	step := func() int {
		n := sa.Receive(descs[:])
		for _, d := range descs[:n] {
			f := u.Frame(d.Addr, d.Len)
			copy(f[0:6], dst)
			copy(f[6:12], src)
		}
		k := sbk.Transmit(descs[:n])
		for _, d := range descs[k:n] {
			free = append(free, d.Addr&^2047)
		}
		sbk.FlushTx()
		c := sbk.Complete(addrs[:])
		for _, a := range addrs[:c] {
			free = append(free, a&^2047)
		}
		if m := min(sa.FillFree(), len(free)); m >= Burst {
			got := sa.Fill(free[len(free)-m:])
			free = free[:len(free)-got]
		}
		sa.WakeupRx()
		return n
	}
	return bt.worker(b, step), closeAll
}

// asavieLoop: github.com/asavie/xdp's socket API as its README uses it:
// a socket (own UMEM) on ra and one on rb, a frame copy per packet, its
// Transmit (sendto every call), its GetDescs bitmap scan. The XDP program
// and XSKMAP are ours (RegisterFD), so only the socket layer differs.
func (bt *benchTopo) asavieLoop(b *testing.B) (stop func() time.Duration, closeAll func()) {
	opts := &asavie.SocketOptions{NumFrames: 4096, FrameSize: 2048, FillRingNumDescs: 2048,
		CompletionRingNumDescs: 2048, RxRingNumDescs: 2048, TxRingNumDescs: 2048}
	var prog *xsk.Program
	var ra, rb *asavie.Socket
	var err error
	err = pmd.InNetNS(testnet.Path(bt.r), func() error {
		if prog, err = xsk.AttachProgram(xsk.ProgramConfig{Ifindex: bt.raIfindex, Queues: 1}); err != nil {
			return err
		}
		// asavie does not retry the bind while the kernel still releases the
		// previous socket of the queue (EBUSY for a moment): do it here.
		retry := func(ifindex int) (*asavie.Socket, error) {
			deadline := time.Now().Add(2 * time.Second)
			for {
				s, err := asavie.NewSocket(ifindex, 0, opts)
				if err == nil || !strings.Contains(err.Error(), "busy") || time.Now().After(deadline) {
					return s, err
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if ra, err = retry(bt.raIfindex); err != nil {
			return err
		}
		if rb, err = retry(bt.rbIfindex); err != nil {
			return err
		}
		return prog.RegisterFD(0, ra.FD())
	})
	if err != nil {
		b.Fatal(err)
	}
	closeAll = func() {
		prog.Close()
		ra.Close()
		rb.Close()
	}
	dst, src := bt.dstMAC, bt.srcMAC
	step := func() int {
		ra.Fill(ra.GetDescs(ra.NumFreeFillSlots()))
		rx := ra.Receive(ra.NumReceived())
		if len(rx) == 0 {
			if n := rb.NumCompleted(); n > 0 {
				rb.Complete(n)
			}
			return 0
		}
		if n := rb.NumCompleted(); n > 0 {
			rb.Complete(n)
		}
		tx := rb.GetDescs(len(rx))
		for i := range tx {
			in := ra.GetFrame(rx[i])
			out := rb.GetFrame(tx[i])
			copy(out, in)
			copy(out[0:6], dst)
			copy(out[6:12], src)
			tx[i].Len = rx[i].Len
		}
		rb.Transmit(tx)
		return len(rx)
	}
	return bt.worker(b, step), closeAll
}

// newTopoTB and openPortTB are newTopo and openPort for benchmarks.
func newTopoTB(b *testing.B) *topo { return newTopoT(b) }

func openPortTB(b *testing.B, name string, id uint16, ns, dev string, pools []*mbuf.Pool, extra string) pmd.Port {
	b.Helper()
	args, err := pmd.ParseArgs("dev=" + dev + extra)
	if err != nil {
		b.Fatal(err)
	}
	p, err := pmd.Open(pmd.Config{Name: name, ID: id, Driver: DriverName, Args: args, Pools: pools, NetNS: testnet.Path(ns), Shared: sharedFor(pools)})
	if err != nil {
		b.Fatal(fmt.Errorf("open %s: %w", name, err))
	}
	return p
}
