package xdpprog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// XDP actions.
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
)

// xdp_md field offsets.
const (
	mdData    = 0
	mdDataEnd = 4
)

func load(name string, insns asm.Instructions) (*ebpf.Program, error) {
	return loadT(ebpf.XDP, name, insns)
}

func loadT(typ ebpf.ProgramType, name string, insns asm.Instructions) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         typ,
		License:      "Dual MIT/GPL",
		Instructions: insns,
	})
	if err != nil {
		return nil, fmt.Errorf("load BPF program %s: %w (needs root and a kernel with BPF)", name, err)
	}
	return p, nil
}

// Pass loads a program that passes every frame. Attached to a veth it turns
// on the veth's NAPI, which XDP_TX and redirected frames need.
func Pass() (*ebpf.Program, error) {
	return load("fwdd_pass", asm.Instructions{
		asm.Mov.Imm(asm.R0, xdpPass),
		asm.Return(),
	})
}

// le32 / le16 give the immediates that store bytes b in memory order.
func le32(b []byte) int64 { return int64(int32(binary.LittleEndian.Uint32(b))) }
func le16(b []byte) int64 { return int64(int16(binary.LittleEndian.Uint16(b))) }

// Forwarder loads the XDP-native forwarder of the benchmark: every frame of
// at least an Ethernet header gets destination MAC dst and source MAC src
// and is redirected (bpf_redirect) to egress ifindex. No lookup, no TTL:
// this is the ceiling of moving a frame from one veth to another.
func Forwarder(egress int, src, dst [6]byte) (*ebpf.Program, error) {
	return load("fwdd_xdpfwd", asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, mdData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "drop"),
		asm.StoreImm(asm.R2, 0, le32(dst[0:4]), asm.Word),
		asm.StoreImm(asm.R2, 4, le16(dst[4:6]), asm.Half),
		asm.StoreImm(asm.R2, 6, le32(src[0:4]), asm.Word),
		asm.StoreImm(asm.R2, 10, le16(src[4:6]), asm.Half),
		asm.Mov.Imm(asm.R1, int32(egress)),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("drop"),
		asm.Return(),
	})
}

// Counters is one CPU's (or the sum of all CPUs') sink counters.
type Counters struct {
	Packets uint64
	Bytes   uint64
}

// Sink is the counting sink: UDP over IPv4/IPv6 is counted per CPU and
// dropped; everything else (ARP, NDP, ...) passes to the stack. It runs as
// XDP (NewSink) or as a tc ingress program (NewTCSink).
type Sink struct {
	Prog *ebpf.Program
	Map  *ebpf.Map
}

// NewSink loads the XDP sink program and its per-CPU counter map.
func NewSink() (*Sink, error) { return newSink(ebpf.XDP, mdData, mdDataEnd, xdpPass, xdpDrop) }

// NewTCSink loads the same sink as a tc (SchedCLS) program for tcx ingress.
// It counts frames that reached the stack as skbs, so the sink costs the
// sender nothing extra: an XDP sink on a veth converts every skb from the
// peer into an xdp_buff (a page allocation and a copy) first.
func NewTCSink() (*Sink, error) { return newSink(ebpf.SchedCLS, 76, 80, 0, 2) }

func newSink(typ ebpf.ProgramType, offData, offEnd int16, pass, drop int32) (*Sink, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "fwdd_sink", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 16, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("sink counter map: %w", err)
	}
	xdpPass, xdpDrop := pass, drop
	var pre asm.Instructions
	if typ == ebpf.SchedCLS {
		// An skb's headers may sit in page fragments (AF_PACKET TX rings
		// put all but the Ethernet header there): pull the first 54
		// bytes into the linear area (fails harmlessly on shorter
		// frames), and take the length from skb->len.
		pre = asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.Mov.Imm(asm.R2, 54),
			asm.FnSkbPullData.Call(),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.LoadMem(asm.R7, asm.R1, 0, asm.Word), // r7 = skb->len
			asm.LoadMem(asm.R2, asm.R1, offData, asm.Word),
			asm.LoadMem(asm.R3, asm.R1, offEnd, asm.Word),
		}
	} else {
		pre = asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, offData, asm.Word),
			asm.LoadMem(asm.R3, asm.R1, offEnd, asm.Word),
			asm.Mov.Reg(asm.R7, asm.R3),
			asm.Sub.Reg(asm.R7, asm.R2), // r7 = frame length
		}
	}
	p, err := loadT(typ, "fwdd_sink", append(pre, asm.Instructions{
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 54),
		asm.JGT.Reg(asm.R4, asm.R3, "short"),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JEq.Imm(asm.R5, 0x0008, "v4"),
		asm.JEq.Imm(asm.R5, 0xDD86, "v6"),
		asm.Ja.Label("pass"),
		// Frames shorter than 54 bytes: only IPv4 can be UDP.
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("short"),
		asm.Add.Imm(asm.R4, 34),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R5, 0x0008, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 23, asm.Byte).WithSymbol("v4"),
		asm.JEq.Imm(asm.R5, 17, "count"),
		asm.Ja.Label("pass"),
		asm.LoadMem(asm.R5, asm.R2, 20, asm.Byte).WithSymbol("v6"),
		asm.JEq.Imm(asm.R5, 17, "count"),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
		asm.StoreImm(asm.R10, -4, 0, asm.Word).WithSymbol("count"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R7),
		asm.StoreMem(asm.R0, 8, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("drop"),
		asm.Return(),
	}...))
	if err != nil {
		m.Close()
		return nil, err
	}
	return &Sink{Prog: p, Map: m}, nil
}

// Read sums the counters of every CPU.
func (s *Sink) Read() (Counters, error) {
	var vals []Counters
	if err := s.Map.Lookup(uint32(0), &vals); err != nil {
		return Counters{}, fmt.Errorf("read sink counters: %w", err)
	}
	var c Counters
	for _, v := range vals {
		c.Packets += v.Packets
		c.Bytes += v.Bytes
	}
	return c, nil
}

// Close releases the program and the map.
func (s *Sink) Close() {
	s.Prog.Close()
	s.Map.Close()
}

// LiveTXSpec describes the frames of the live-frames generator program.
type LiveTXSpec struct {
	StampOff int    // offset of the 18-byte stamp (magic, stream, seq, ts)
	UDPOff   int    // offset of the UDP header
	Flows    int    // source port = BasePort + seq%Flows
	BasePort uint16 // UDP source port of flow 0
	// PartialSum is the UDP checksum sum (big-endian words, unfolded) of the
	// frame with the source port, seq and ts zeroed.
	PartialSum uint32
	// SeqMap, if set, is the sequence counter to share (so that
	// programs for several frame sizes number one stream); nil creates one.
	SeqMap *ebpf.Map
	// NoTime leaves the stamp's send time 0 (the sink then takes no
	// latency sample) and saves the bpf_ktime_get_ns call and its checksum
	// work per frame: for throughput runs, where the generator's own cost
	// per frame is what limits the rig.
	NoTime bool
}

// LiveTX is the live-frames generator program: run with BPF_PROG_RUN and
// BPF_F_TEST_XDP_LIVE_FRAMES it stamps each frame with the stream's sequence
// number and bpf_ktime_get_ns, sets the source port of the frame's flow,
// fixes the UDP checksum and returns XDP_TX.
type LiveTX struct {
	Prog *ebpf.Program
	Map  *ebpf.Map // the stream's u64 sequence counter
	own  bool
}

// NewLiveTX loads the generator program for spec.
func NewLiveTX(spec LiveTXSpec) (*LiveTX, error) {
	if spec.Flows < 1 {
		spec.Flows = 1
	}
	m, own := spec.SeqMap, false
	if m == nil {
		var err error
		// A plain array, not per-CPU: the thread running the program may
		// migrate between runs, and a per-CPU counter would then repeat
		// sequence numbers. One stream's program runs on one thread at a
		// time (BPF_PROG_RUN disables migration during a run), so the
		// non-atomic increment is safe.
		m, err = ebpf.NewMap(&ebpf.MapSpec{Name: "fwdd_gen_seq", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
		if err != nil {
			return nil, fmt.Errorf("live-frames seq map: %w", err)
		}
		own = true
	}
	// The checksum is computed on little-endian words: a one's-complement
	// sum is byte-order independent, so the big-endian partial sum is folded
	// and byte-swapped once here.
	s := spec.PartialSum
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	k := int32(s>>8 | (s&0xff)<<8)
	so, uo := int16(spec.StampOff), int16(spec.UDPOff)
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.R10, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "abort"),
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord), // r7 = seq
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
	}
	stamped := []asm.Register{asm.R7}
	if !spec.NoTime {
		insns = append(insns,
			asm.FnKtimeGetNs.Call(),
			asm.Mov.Reg(asm.R9, asm.R0), // r9 = ts
		)
		stamped = append(stamped, asm.R9)
	}
	insns = append(insns,
		asm.LoadMem(asm.R2, asm.R6, mdData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, int32(spec.StampOff+18)),
		asm.JGT.Reg(asm.R4, asm.R3, "abort"),
		asm.StoreMem(asm.R2, so+2, asm.R7, asm.DWord),
	)
	if !spec.NoTime {
		insns = append(insns, asm.StoreMem(asm.R2, so+10, asm.R9, asm.DWord))
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R4, asm.R7),
		asm.Mod.Imm(asm.R4, int32(spec.Flows)),
		asm.Add.Imm(asm.R4, int32(spec.BasePort)),
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.StoreMem(asm.R2, uo, asm.R4, asm.Half),
		asm.Mov.Imm(asm.R5, k),
		asm.Add.Reg(asm.R5, asm.R4),
	)
	for _, r := range stamped {
		for sh := int32(0); sh < 64; sh += 16 {
			insns = append(insns,
				asm.Mov.Reg(asm.R1, r),
				asm.RSh.Imm(asm.R1, sh),
				asm.And.Imm(asm.R1, 0xffff),
				asm.Add.Reg(asm.R5, asm.R1),
			)
		}
	}
	for i := 0; i < 2; i++ {
		insns = append(insns,
			asm.Mov.Reg(asm.R1, asm.R5),
			asm.RSh.Imm(asm.R1, 16),
			asm.And.Imm(asm.R5, 0xffff),
			asm.Add.Reg(asm.R5, asm.R1),
		)
	}
	insns = append(insns,
		asm.Xor.Imm(asm.R5, 0xffff),
		asm.JNE.Imm(asm.R5, 0, "store"),
		asm.Mov.Imm(asm.R5, 0xffff),
		asm.StoreMem(asm.R2, uo+6, asm.R5, asm.Half).WithSymbol("store"),
		asm.Mov.Imm(asm.R0, xdpTX),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpAborted).WithSymbol("abort"),
		asm.Return(),
	)
	p, err := load("fwdd_gen_tx", insns)
	if err != nil {
		if own {
			m.Close()
		}
		return nil, err
	}
	return &LiveTX{Prog: p, Map: m, own: own}, nil
}

// Close releases the program and the map if it created it.
func (l *LiveTX) Close() {
	l.Prog.Close()
	if l.own {
		l.Map.Close()
	}
}

// xdpMD is struct xdp_md, the context passed to BPF_PROG_RUN.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// ErrLiveFrames is returned when the kernel cannot run live frames.
var ErrLiveFrames = errors.New("BPF_F_TEST_XDP_LIVE_FRAMES not supported (needs Linux ≥ 5.18)")

// Run transmits repeat copies of frame (stamped by the program) out of
// ifindex from the calling thread's CPU. The device must have an XDP
// program attached (see Pass). It returns when all were run, with the
// number of frames the program really stamped: the kernel may run it more
// often than repeat (an interrupted batch is run again), so callers count
// this, not repeat. The count comes from the sequence map, so streams
// sharing a map must not run at the same time.
func (l *LiveTX) Run(frame []byte, ifindex int, repeat uint32, batch uint32) (uint64, error) {
	var before, after uint64
	if err := l.Map.Lookup(uint32(0), &before); err != nil {
		return 0, fmt.Errorf("live-frames seq map: %w", err)
	}
	md := xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}
	_, err := l.Prog.Run(&ebpf.RunOptions{
		Data:      frame,
		Repeat:    repeat,
		Flags:     unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		Context:   md,
		BatchSize: batch,
	})
	if err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, ebpf.ErrNotSupported) {
			return 0, fmt.Errorf("%w: %w", ErrLiveFrames, err)
		}
		return 0, fmt.Errorf("live-frames run: %w", err)
	}
	if err := l.Map.Lookup(uint32(0), &after); err != nil {
		return uint64(repeat), nil
	}
	return after - before, nil
}

// Attach attaches prog to ifindex in generic-free native/driver mode (veth
// supports it) through a bpf_link, which the kernel detaches when the link
// is closed or the process dies.
func Attach(prog *ebpf.Program, ifindex int) (link.Link, error) {
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex})
	if err != nil {
		return nil, fmt.Errorf("attach XDP to ifindex %d: %w (is another XDP program attached? see ip link)", ifindex, err)
	}
	return l, nil
}

// AttachTCIngress attaches a SchedCLS program to ifindex's tcx ingress
// (Linux ≥ 6.6) through a bpf_link.
func AttachTCIngress(prog *ebpf.Program, ifindex int) (link.Link, error) {
	l, err := link.AttachTCX(link.TCXOptions{Program: prog, Attach: ebpf.AttachTCXIngress, Interface: ifindex})
	if err != nil {
		return nil, fmt.Errorf("attach tcx ingress to ifindex %d: %w (needs Linux ≥ 6.6)", ifindex, err)
	}
	return l, nil
}
