package xdpprog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

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
	StampOff int // offset of the 18-byte stamp (magic, stream, seq, ts)
	// UDPOff is the offset of the UDP header. The destination address's
	// low 16 bits end where it starts (IPv4 and IPv6 alike): the program
	// writes them and the source port as one 4-byte word at UDPOff-2.
	UDPOff   int
	SrcLoOff int // offset of the source address's low 16 bits
	IPSumOff int // offset of the IPv4 header checksum; 0 for IPv6
	// Lens is the frame length (the bytes handed to the kernel, without
	// FCS) of each entry of a size pattern: frame seq has
	// Lens[seq % len(Lens)]. Run must be given a frame of the longest,
	// built so that every shorter frame is a prefix of it but for the
	// fields written here; the program cuts it per frame with
	// bpf_xdp_adjust_tail and writes the length fields. Empty: one size,
	// the frame's own (no cut, no length written).
	Lens []int
	// L3LenOff is the offset of the IPv4 total length or the IPv6 payload
	// length, L3LenBase the bytes of the frame that field does not count
	// (IPv4: the Ethernet header; IPv6: Ethernet and IPv6 headers). Used
	// with several Lens only.
	L3LenOff, L3LenBase int
	// Flows[i][f] is what flow f writes into a frame of size pattern entry
	// i (only Flows[0] with one size); frame seq is flow seq % the number
	// of flows, the same for every entry.
	Flows [][]LiveFlow
	// NoTime leaves the stamp's send time 0 (the sink then takes no
	// latency sample) and saves the bpf_ktime_get_ns call and its checksum
	// work per frame: for throughput runs, where the generator's own cost
	// per frame is what limits the rig.
	NoTime bool
	// TimeEvery (a power of two; 0 or 1 = every frame) stamps the send
	// time only on frames whose seq is a multiple of it; the others carry
	// 0 and give the sink no latency sample. The clock read (rdtsc in the
	// kernel) is the dearest part of the program: about 15 % of a frame's
	// cost when done for every frame on this machine. Every time written
	// is the frame's own, so sampled latencies stay exact.
	TimeEvery int
	// Rate (frames per second; 0 = flat out) paces the frames inside a
	// run: the program reads the clock for every iteration and drops
	// (XDP_DROP, no sequence number used) until the next frame is due, a
	// token bucket of Burst frames (at least 1). The run then spins on its
	// CPU, as a DPDK generator does, and frames go out one by one at the
	// rate rather than in bursts. Set LiveState.Limit to end the frames
	// after a count (the run itself goes on until its repeat count or a
	// signal).
	Rate  float64
	Burst int
}

// LiveFlow is what the program writes into a frame of one flow. Values are
// host order; the program stores them big-endian.
type LiveFlow struct {
	SrcLo, DstLo uint16 // low 16 bits of the source and destination address
	SrcPort      uint16
	IPSum        uint16 // IPv4 header checksum (final); unused for IPv6
	// UDPSum is the UDP checksum sum (pseudo header included; big-endian
	// words, unfolded) of the flow's frame with the stamp's seq and ts
	// zeroed: the program adds the seq and ts words per frame.
	UDPSum uint32
}

// liveFlowEntry is a LiveFlow of one frame size as the program reads it
// (24 bytes): the bytes to store, and the partial checksum folded and
// byte-swapped so that it adds to little-endian loads of the frame (a
// one's-complement sum does not depend on byte order).
type liveFlowEntry struct {
	DstLoPort [4]byte // destination address low 16 bits, source port (frame order)
	SrcLo     [2]byte
	IPSum     [2]byte
	Partial   uint32
	UDPLen    [2]byte // size patterns only: UDP length, L3 length, bytes to cut
	L3Len     [2]byte
	Cut       uint16
	_         [6]byte
}

// liveMaxEntries bounds flows × pattern entries (24 bytes each).
const liveMaxEntries = 1 << 21

// LiveState is the value of a live-frames program's state map: the next
// sequence number, the flow and the size pattern entry it uses (Seq % flows
// and Seq % sizes, kept as counters so that the program needs no division),
// and for a paced program its clock.
type LiveState struct {
	Seq  uint64
	Flow uint32
	Size uint32
	// Start is the pacing origin (bpf_ktime_get_ns; 0 = the first
	// iteration's time), Due the time the next frame is due, in 1/256 ns
	// since Start.
	Start, Due uint64
	// Limit, if not 0, is the Seq at which frames stop (iterations drop).
	Limit uint64
}

// liveStateSize is the state map's value size.
const liveStateSize = 40

// LiveTX is the live-frames generator program: run with BPF_PROG_RUN and
// BPF_F_TEST_XDP_LIVE_FRAMES it stamps each frame with the stream's sequence
// number and (unless NoTime) bpf_ktime_get_ns, writes the addresses and
// source port of the frame's flow and the checksums, and returns XDP_TX.
// Per frame it reads the state through a direct map-value pointer (no helper
// call), cycles the flow by a compare (no division), reads the flow's
// precomputed words from an array (inlined lookup) and folds seq and ts
// into the checksum as two 32-bit halves each. Past the state's limit, or
// paced and early, it returns XDP_DROP without using a sequence number.
type LiveTX struct {
	Prog  *ebpf.Program
	State *ebpf.Map // the stream's LiveState
	table *ebpf.Map
	flows uint32
	sizes uint32
	// Run's syscall arguments: on the heap, so that the kernel's pointers
	// stay valid (Run is not safe for concurrent use).
	attr progRunAttr
	md   xdpMD
}

// NewLiveTX loads the generator program for spec.
func NewLiveTX(spec LiveTXSpec) (*LiveTX, error) {
	nsizes := max(len(spec.Lens), 1)
	if len(spec.Flows) != nsizes || len(spec.Flows[0]) < 1 {
		return nil, fmt.Errorf("live-frames program: flows for %d of %d frame sizes", len(spec.Flows), nsizes)
	}
	nflows := len(spec.Flows[0])
	for _, fl := range spec.Flows {
		if len(fl) != nflows {
			return nil, errors.New("live-frames program: not the same flows for every frame size")
		}
	}
	if nflows*nsizes > liveMaxEntries {
		return nil, fmt.Errorf("live-frames program: %d flows × %d frame sizes is more than %d (use fewer flows)", nflows, nsizes, liveMaxEntries)
	}
	if spec.UDPOff < 2 || spec.SrcLoOff < 0 || spec.StampOff < spec.UDPOff+8 {
		return nil, errors.New("live-frames program: bad offsets")
	}
	maxLen := 0
	for _, n := range spec.Lens {
		if n < spec.StampOff+18 || n > 1<<16-1 {
			return nil, fmt.Errorf("live-frames program: frame length %d does not hold the stamp", n)
		}
		maxLen = max(maxLen, n)
	}
	if nsizes > 1 && (spec.L3LenOff < 0 || spec.L3LenBase < 0 || spec.L3LenBase > spec.UDPOff) {
		return nil, errors.New("live-frames program: bad length field")
	}
	if spec.TimeEvery < 0 || spec.TimeEvery&(spec.TimeEvery-1) != 0 || spec.TimeEvery > 1<<30 {
		return nil, fmt.Errorf("live-frames program: stamp interval %d is not a power of two", spec.TimeEvery)
	}
	// The pacing interval in 1/256 ns: 1 frame/s to 256 G frames/s.
	var interval, burst int64
	if spec.Rate != 0 {
		if !(spec.Rate >= 1 && spec.Rate <= 1e11) {
			return nil, fmt.Errorf("live-frames program: rate %g out of range 1..1e11 frames/s", spec.Rate)
		}
		interval = int64(256e9/spec.Rate + 0.5)
		burst = interval * int64(max(spec.Burst, 1))
	}
	// A plain array, not per-CPU: the thread running the program may
	// migrate between runs, and a per-CPU counter would then repeat
	// sequence numbers. A program runs on one thread at a time (Run is
	// not safe for concurrent use; BPF_PROG_RUN disables migration during
	// a run, and a batch runs with bottom halves off), so the non-atomic
	// increments are safe.
	state, err := ebpf.NewMap(&ebpf.MapSpec{Name: "fwdd_gen_state", Type: ebpf.Array, KeySize: 4, ValueSize: liveStateSize, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("live-frames state map: %w", err)
	}
	l := &LiveTX{State: state, flows: uint32(nflows), sizes: uint32(nsizes)}
	entries := nflows * nsizes
	table, err := ebpf.NewMap(&ebpf.MapSpec{Name: "fwdd_gen_flows", Type: ebpf.Array, KeySize: 4,
		ValueSize: uint32(binary.Size(liveFlowEntry{})), MaxEntries: uint32(entries)})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("live-frames flow table (%d flows × %d sizes): %w", nflows, nsizes, err)
	}
	l.table = table
	keys := make([]uint32, entries)
	vals := make([]liveFlowEntry, entries)
	for i, fl := range spec.Flows {
		for j, f := range fl {
			k := i*nflows + j
			keys[k] = uint32(k)
			e := &vals[k]
			binary.BigEndian.PutUint16(e.DstLoPort[0:], f.DstLo)
			binary.BigEndian.PutUint16(e.DstLoPort[2:], f.SrcPort)
			binary.BigEndian.PutUint16(e.SrcLo[:], f.SrcLo)
			binary.BigEndian.PutUint16(e.IPSum[:], f.IPSum)
			s := f.UDPSum
			s = (s & 0xffff) + (s >> 16)
			s = (s & 0xffff) + (s >> 16)
			e.Partial = s>>8 | (s&0xff)<<8
			if nsizes > 1 {
				n := spec.Lens[i]
				binary.BigEndian.PutUint16(e.UDPLen[:], uint16(n-spec.UDPOff))
				binary.BigEndian.PutUint16(e.L3Len[:], uint16(n-spec.L3LenBase))
				e.Cut = uint16(maxLen - n)
			}
		}
	}
	for i := 0; i < len(keys); i += 1 << 16 {
		j := min(i+1<<16, len(keys))
		if _, err := table.BatchUpdate(keys[i:j], vals[i:j], nil); err != nil {
			l.Close()
			return nil, fmt.Errorf("live-frames flow table: %w", err)
		}
	}
	so, uo := int16(spec.StampOff), int16(spec.UDPOff)
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMapValue(asm.R8, state.FD(), 0), // r8 = &state
		// No frames past the limit.
		asm.LoadMem(asm.R1, asm.R8, 32, asm.DWord),
		asm.JEq.Imm(asm.R1, 0, "nolimit"),
		asm.LoadMem(asm.R2, asm.R8, 0, asm.DWord),
		asm.JGE.Reg(asm.R2, asm.R1, "drop"),
	}
	if interval > 0 {
		// rel = (now - start) in 1/256 ns; drop until rel ≥ due; a due
		// time more than burst behind catches up to rel - burst only.
		insns = append(insns,
			asm.FnKtimeGetNs.Call().WithSymbol("nolimit"),
			asm.Mov.Reg(asm.R9, asm.R0), // r9 = now (also the stamp)
			asm.LoadMem(asm.R1, asm.R8, 16, asm.DWord),
			asm.JNE.Imm(asm.R1, 0, "started"),
			asm.Mov.Reg(asm.R1, asm.R9),
			asm.StoreMem(asm.R8, 16, asm.R1, asm.DWord),
			asm.Mov.Reg(asm.R2, asm.R9).WithSymbol("started"),
			asm.Sub.Reg(asm.R2, asm.R1),
			asm.LSh.Imm(asm.R2, 8), // r2 = rel
			asm.LoadMem(asm.R3, asm.R8, 24, asm.DWord),
			asm.JLT.Reg(asm.R2, asm.R3, "drop"),
			asm.LoadImm(asm.R4, burst, asm.DWord),
			asm.Add.Reg(asm.R4, asm.R3),
			asm.JGE.Reg(asm.R4, asm.R2, "intime"),
			asm.Mov.Reg(asm.R3, asm.R2),
			asm.LoadImm(asm.R4, burst, asm.DWord),
			asm.Sub.Reg(asm.R3, asm.R4),
			asm.LoadImm(asm.R4, interval, asm.DWord).WithSymbol("intime"),
			asm.Add.Reg(asm.R3, asm.R4),
			asm.StoreMem(asm.R8, 24, asm.R3, asm.DWord),
		)
	}
	seqLoad := asm.LoadMem(asm.R7, asm.R8, 0, asm.DWord) // r7 = seq
	if interval == 0 {
		seqLoad = seqLoad.WithSymbol("nolimit")
	}
	insns = append(insns,
		seqLoad,
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R8, 0, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R8, 8, asm.Word), // r1 = flow
		asm.StoreMem(asm.R10, -4, asm.R1, asm.Word),
		asm.Add.Imm(asm.R1, 1),
		asm.JLT.Imm(asm.R1, int32(nflows), "keep"),
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.R8, 8, asm.R1, asm.Word).WithSymbol("keep"),
	)
	if nsizes > 1 {
		// key = size entry × flows + flow; the size entry cycles too.
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R8, 12, asm.Word), // r1 = size entry
			asm.Mov.Reg(asm.R2, asm.R1),
			asm.Add.Imm(asm.R2, 1),
			asm.JLT.Imm(asm.R2, int32(nsizes), "keepsize"),
			asm.Mov.Imm(asm.R2, 0),
			asm.StoreMem(asm.R8, 12, asm.R2, asm.Word).WithSymbol("keepsize"),
			asm.Mul.Imm(asm.R1, int32(nflows)),
			asm.LoadMem(asm.R2, asm.R10, -4, asm.Word),
			asm.Add.Reg(asm.R1, asm.R2),
			asm.StoreMem(asm.R10, -4, asm.R1, asm.Word),
		)
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, table.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "abort"),
		asm.Mov.Reg(asm.R8, asm.R0), // r8 = &flow entry
	)
	if nsizes > 1 {
		// Cut the frame to the entry's size (the kernel restores the
		// full length for the page's next frame).
		insns = append(insns,
			asm.LoadMem(asm.R3, asm.R8, 16, asm.Half),
			asm.JEq.Imm(asm.R3, 0, "uncut"),
			asm.Mov.Imm(asm.R2, 0),
			asm.Sub.Reg(asm.R2, asm.R3),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.FnXdpAdjustTail.Call(),
			asm.JNE.Imm(asm.R0, 0, "abort"),
			asm.Mov.Reg(asm.R8, asm.R8).WithSymbol("uncut"),
		)
	}
	stamped := []asm.Register{asm.R7}
	if !spec.NoTime && interval > 0 {
		// The pacing clock read is the stamp.
		if spec.TimeEvery > 1 {
			insns = append(insns,
				asm.Mov.Reg(asm.R1, asm.R7),
				asm.And.Imm(asm.R1, int32(spec.TimeEvery-1)),
				asm.JEq.Imm(asm.R1, 0, "clockdone"),
				asm.Mov.Imm(asm.R9, 0),
			)
		}
		stamped = append(stamped, asm.R9)
	} else if !spec.NoTime {
		if spec.TimeEvery > 1 {
			// The page keeps the previous frame's bytes: ts 0 is written.
			insns = append(insns,
				asm.Mov.Imm(asm.R9, 0),
				asm.Mov.Reg(asm.R1, asm.R7),
				asm.And.Imm(asm.R1, int32(spec.TimeEvery-1)),
				asm.JNE.Imm(asm.R1, 0, "clockdone"),
			)
		}
		insns = append(insns,
			asm.FnKtimeGetNs.Call(),
			asm.Mov.Reg(asm.R9, asm.R0), // r9 = ts
		)
		stamped = append(stamped, asm.R9)
	}
	ld := asm.LoadMem(asm.R2, asm.R6, mdData, asm.Word)
	if !spec.NoTime && spec.TimeEvery > 1 {
		ld = ld.WithSymbol("clockdone")
	}
	insns = append(insns,
		ld,
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
		asm.LoadMem(asm.R1, asm.R8, 0, asm.Word),
		asm.StoreMem(asm.R2, uo-2, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R8, 4, asm.Half),
		asm.StoreMem(asm.R2, int16(spec.SrcLoOff), asm.R1, asm.Half),
	)
	if spec.IPSumOff > 0 {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R8, 6, asm.Half),
			asm.StoreMem(asm.R2, int16(spec.IPSumOff), asm.R1, asm.Half),
		)
	}
	if nsizes > 1 {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R8, 12, asm.Half),
			asm.StoreMem(asm.R2, uo+4, asm.R1, asm.Half),
			asm.LoadMem(asm.R1, asm.R8, 14, asm.Half),
			asm.StoreMem(asm.R2, int16(spec.L3LenOff), asm.R1, asm.Half),
		)
	}
	insns = append(insns, asm.LoadMem(asm.R5, asm.R8, 8, asm.Word))
	// A 64-bit value's 16-bit words sum to the value itself modulo
	// 0xffff (2^16 ≡ 1), and so do its two 32-bit halves: adding the
	// halves is enough for the one's-complement sum.
	for _, r := range stamped {
		insns = append(insns,
			asm.Mov.Reg(asm.R1, r),
			asm.RSh.Imm(asm.R1, 32),
			asm.Add.Reg(asm.R5, asm.R1),
			asm.Mov.Reg32(asm.R1, r),
			asm.Add.Reg(asm.R5, asm.R1),
		)
	}
	// r5 < 2^35: three folds bring it to 16 bits.
	for i := 0; i < 3; i++ {
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
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("drop"),
		asm.Return(),
	)
	p, err := load("fwdd_gen_tx", insns)
	if err != nil {
		l.Close()
		return nil, err
	}
	l.Prog = p
	return l, nil
}

// Seq returns the next sequence number the program will stamp.
func (l *LiveTX) Seq() (uint64, error) {
	var st LiveState
	if err := l.State.Lookup(uint32(0), &st); err != nil {
		return 0, fmt.Errorf("live-frames state map: %w", err)
	}
	return st.Seq, nil
}

// SetSeq makes seq the next sequence number (and seq % flows the next
// flow, seq % sizes the next size), restarts the pacing clock and clears
// the limit. Not while the program runs.
func (l *LiveTX) SetSeq(seq uint64) error {
	st := LiveState{Seq: seq, Flow: uint32(seq % uint64(l.flows)), Size: uint32(seq % uint64(l.sizes))}
	if err := l.State.Update(uint32(0), &st, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("live-frames state map: %w", err)
	}
	return nil
}

// SetLimit makes the program send no frame once the sequence number
// reaches limit (0 = no limit), and restarts the pacing clock at the next
// iteration. Not while the program runs.
func (l *LiveTX) SetLimit(limit uint64) error {
	var st LiveState
	if err := l.State.Lookup(uint32(0), &st); err != nil {
		return fmt.Errorf("live-frames state map: %w", err)
	}
	st.Limit, st.Start, st.Due = limit, 0, 0
	if err := l.State.Update(uint32(0), &st, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("live-frames state map: %w", err)
	}
	return nil
}

// Close releases the program, its flow table and its state map.
func (l *LiveTX) Close() {
	if l.Prog != nil {
		l.Prog.Close()
	}
	if l.table != nil {
		l.table.Close()
	}
	if l.State != nil {
		l.State.Close()
	}
}

// xdpMD is struct xdp_md, the context passed to BPF_PROG_RUN.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// progRunAttr is the BPF_PROG_TEST_RUN part of union bpf_attr.
type progRunAttr struct {
	ProgFD, Retval          uint32
	DataSizeIn, DataSizeOut uint32
	DataIn, DataOut         uint64
	Repeat, Duration        uint32
	CtxSizeIn, CtxSizeOut   uint32
	CtxIn, CtxOut           uint64
	Flags, CPU, BatchSize   uint32
	_                       uint32
}

// ErrLiveFrames is returned when the kernel cannot run live frames.
var ErrLiveFrames = errors.New("BPF_F_TEST_XDP_LIVE_FRAMES not supported (needs Linux ≥ 5.18)")

// Run transmits repeat copies of frame (stamped by the program) out of
// ifindex from the calling thread's CPU, batch frames per kernel batch (see
// RunLive). It returns the number of frames the program stamped (from the
// state map, so streams sharing a state must not run at the same time) and
// the kernel's time per frame. A signal ends the call early with
// interrupted set. Not safe for concurrent use.
func (l *LiveTX) Run(frame []byte, ifindex int, repeat uint32, batch uint32) (ran uint64, perFrame time.Duration, interrupted bool, err error) {
	before, err := l.Seq()
	if err != nil {
		return 0, 0, false, err
	}
	perFrame, interrupted, err = runLive(&l.attr, &l.md, l.Prog, frame, ifindex, repeat, batch)
	if err != nil {
		return 0, 0, false, err
	}
	after, err := l.Seq()
	if err != nil {
		return 0, 0, false, err
	}
	return after - before, perFrame, interrupted, nil
}

// RunLive runs prog on repeat copies of frame with BPF_PROG_RUN and
// BPF_F_TEST_XDP_LIVE_FRAMES, ingress ifindex (which must have an XDP
// program attached, see Pass; the kernel resolves it in the calling
// thread's network namespace), batch frames per kernel batch, on the
// calling thread's CPU. perFrame is the kernel's own measure: run time per
// frame, without the call's setup and teardown and without the time the
// thread was descheduled.
//
// A signal to the calling thread ends the call early (the kernel checks
// between batches) with interrupted set: that is how a caller stops a long
// run at a deadline (tgkill with SIGURG, which the Go runtime ignores when
// it did not send it). Unlike ebpf.Program.Run, RunLive does not restart
// an interrupted call.
func RunLive(prog *ebpf.Program, frame []byte, ifindex int, repeat, batch uint32) (perFrame time.Duration, interrupted bool, err error) {
	args := new(struct {
		attr progRunAttr
		md   xdpMD
	})
	return runLive(&args.attr, &args.md, prog, frame, ifindex, repeat, batch)
}

// runLive is RunLive with the syscall's arguments in caller-owned heap
// memory. Their addresses, and the frame's, go to the kernel as integers:
// safe because Go's collector does not move heap objects and the
// KeepAlives hold frame and md until the syscall has returned (attr's
// owner holds it).
func runLive(attr *progRunAttr, md *xdpMD, prog *ebpf.Program, frame []byte, ifindex int, repeat, batch uint32) (time.Duration, bool, error) {
	if len(frame) == 0 {
		return 0, false, errors.New("live-frames run: empty frame")
	}
	*md = xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}
	*attr = progRunAttr{
		ProgFD:     uint32(prog.FD()),
		DataSizeIn: uint32(len(frame)),
		DataIn:     uint64(uintptr(unsafe.Pointer(&frame[0]))),
		Repeat:     repeat,
		CtxSizeIn:  uint32(unsafe.Sizeof(*md)),
		CtxIn:      uint64(uintptr(unsafe.Pointer(md))),
		Flags:      unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		BatchSize:  batch,
	}
	_, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(attr)), unsafe.Sizeof(*attr))
	runtime.KeepAlive(frame)
	runtime.KeepAlive(md)
	switch {
	case e == 0:
		return time.Duration(attr.Duration), false, nil
	case e == unix.EINTR:
		return 0, true, nil
	case e == unix.EINVAL || e == unix.EOPNOTSUPP || e == unix.ENOTSUP:
		return 0, false, fmt.Errorf("%w: %w", ErrLiveFrames, e)
	default:
		return 0, false, fmt.Errorf("live-frames run: %w", e)
	}
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
