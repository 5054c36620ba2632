package xsk

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ProgramName is the name of the XDP program this package loads. A program
// of this name found on an interface at start was left by a fwdd that died
// without detaching (only possible for netlink-attached programs: ours are
// attached with a bpf_link, which the kernel detaches when the process
// exits) and is replaced; any other program is left alone.
const ProgramName = "fwdd_xsk"

// xskMapName is the name of the program's XSKMAP.
const xskMapName = "fwdd_xsks"

// XDPMode selects how the XDP program is attached.
type XDPMode int

const (
	// XDPAuto tries native (driver) mode and falls back to generic.
	XDPAuto XDPMode = iota
	// XDPNative attaches in driver mode only (XDP_FLAGS_DRV_MODE).
	XDPNative
	// XDPGeneric attaches in generic, skb mode (XDP_FLAGS_SKB_MODE).
	XDPGeneric
)

func (m XDPMode) String() string {
	switch m {
	case XDPAuto:
		return "auto"
	case XDPNative:
		return "native"
	case XDPGeneric:
		return "generic"
	}
	return fmt.Sprintf("XDPMode(%d)", int(m))
}

// ProgramConfig describes the XDP program of one interface.
type ProgramConfig struct {
	Ifindex int
	// Queues is the XSKMAP size: queue ids 0..Queues-1 can be registered.
	// 0 means the device's queue count (QueueCount).
	Queues int
	Mode   XDPMode
}

// Program is the XDP program of one interface: it redirects every frame
// received on queue q to the AF_XDP socket registered for q in its XSKMAP,
// and passes frames of queues without a socket to the kernel stack
// (bpf_redirect_map with XDP_PASS as the default action).
//
// It is attached through a bpf_link: Close detaches it, and so does the
// kernel if the process dies. Program methods are safe for concurrent use
// (setup time only).
type Program struct {
	ifindex int
	ifname  string
	queues  int
	mode    XDPMode // the mode in use: XDPNative or XDPGeneric

	mu    sync.Mutex
	prog  *ebpf.Program
	xsks  *ebpf.Map
	lnk   link.Link
	regs  map[int]*Socket
	close bool
}

// newRedirectProgram builds the program: r2 = ctx->rx_queue_index;
// return bpf_redirect_map(xsks, r2, XDP_PASS).
func newRedirectProgram(queues int) (*ebpf.Program, *ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: xskMapName, Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(queues),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create XSKMAP: %w (needs CAP_BPF/CAP_SYS_ADMIN)", err)
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    ProgramName,
		Type:    ebpf.XDP,
		License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 16, asm.Word), // struct xdp_md.rx_queue_index
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Imm(asm.R3, 2), // XDP_PASS if the queue has no socket
			asm.FnRedirectMap.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("load XDP program: %w", err)
	}
	return p, m, nil
}

// AttachProgram loads the redirect program and attaches it to
// cfg.Ifindex (native first in XDPAuto, then generic). A program named
// ProgramName left on the interface by a dead fwdd is detached first; any
// other program makes it fail with ErrForeignProgram and stays untouched.
func AttachProgram(cfg ProgramConfig) (*Program, error) {
	nl, err := netlink.LinkByIndex(cfg.Ifindex)
	if err != nil {
		return nil, fmt.Errorf("xsk: ifindex %d: %w (no such interface? see ip link)", cfg.Ifindex, err)
	}
	name := nl.Attrs().Name
	where := fmt.Sprintf("xsk: dev %s", name)
	if cfg.Queues == 0 {
		q, err := QueueCount(name)
		if err != nil {
			return nil, err
		}
		cfg.Queues = q
	}
	if cfg.Queues < 1 || cfg.Queues > 4096 {
		return nil, fmt.Errorf("%s: %d queues: %w", where, cfg.Queues, ErrInvalidConfig)
	}
	if err := removeLeftover(nl, where); err != nil {
		return nil, err
	}
	prog, xsks, err := newRedirectProgram(cfg.Queues)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	p := &Program{ifindex: cfg.Ifindex, ifname: name, queues: cfg.Queues, prog: prog, xsks: xsks, regs: map[int]*Socket{}}
	tries := []XDPMode{XDPNative, XDPGeneric}
	switch cfg.Mode {
	case XDPNative:
		tries = tries[:1]
	case XDPGeneric:
		tries = tries[1:]
	}
	var errs []error
	for _, m := range tries {
		flags := link.XDPDriverMode
		if m == XDPGeneric {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: cfg.Ifindex, Flags: flags})
		if err == nil {
			p.lnk, p.mode = l, m
			return p, nil
		}
		errs = append(errs, fmt.Errorf("%v: %w", m, err))
	}
	prog.Close()
	xsks.Close()
	err = errors.Join(errs...)
	if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("%s: attach XDP: %w (%w: another XDP program was attached meanwhile; see ip link show dev %s)", where, err, ErrBusy, name)
	}
	return nil, fmt.Errorf("%s: attach XDP (mode %v): %w", where, cfg.Mode, err)
}

// removeLeftover checks the XDP programs attached to the interface: none,
// or only ours left by a dead fwdd (detached here), or a foreign one (error).
func removeLeftover(nl netlink.Link, where string) error {
	x := nl.Attrs().Xdp
	if x == nil || (!x.Attached && x.ProgId == 0) {
		return nil
	}
	name := nl.Attrs().Name
	id := x.ProgId
	pname := "?"
	if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id)); err == nil {
		if info, err := p.Info(); err == nil {
			pname = info.Name
		}
		p.Close()
	}
	if pname != ProgramName {
		return fmt.Errorf("%s: %w: program %q (id %d, attach mode %d) is left alone; remove it (ip link set dev %s xdp off) or use another interface",
			where, ErrForeignProgram, pname, id, x.AttachMode, name)
	}
	// Ours, left behind. Detach it in whatever mode it is attached.
	var modes []int
	switch x.AttachMode {
	case 1: // XDP_ATTACHED_DRV
		modes = []int{unix.XDP_FLAGS_DRV_MODE}
	case 2: // XDP_ATTACHED_SKB
		modes = []int{unix.XDP_FLAGS_SKB_MODE}
	case 3: // XDP_ATTACHED_HW
		modes = []int{unix.XDP_FLAGS_HW_MODE}
	default: // XDP_ATTACHED_MULTI or unknown: try them all
		modes = []int{unix.XDP_FLAGS_DRV_MODE, unix.XDP_FLAGS_SKB_MODE, unix.XDP_FLAGS_HW_MODE}
	}
	var lastErr error
	for _, m := range modes {
		if err := netlink.LinkSetXdpFdWithFlags(nl, -1, m); err != nil {
			lastErr = err
		}
	}
	now, err := netlink.LinkByIndex(nl.Attrs().Index)
	if err != nil {
		return fmt.Errorf("%s: re-read after detaching leftover program: %w", where, err)
	}
	if nx := now.Attrs().Xdp; nx != nil && (nx.Attached || nx.ProgId != 0) {
		return fmt.Errorf("%s: %w: fwdd's program %q (id %d) is held by a bpf_link of a running process (another fwdd on this interface?): stop it first (detach error: %v)",
			where, ErrBusy, pname, id, lastErr)
	}
	return nil
}

// Ifindex returns the interface index the program is attached to.
func (p *Program) Ifindex() int { return p.ifindex }

// Mode returns the attach mode in use: XDPNative or XDPGeneric.
func (p *Program) Mode() XDPMode { return p.mode }

// Queues returns the XSKMAP size.
func (p *Program) Queues() int { return p.queues }

// Register directs the frames of s's queue to s. s must be bound to this
// program's interface.
func (p *Program) Register(s *Socket) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.close {
		return fmt.Errorf("xsk: dev %s: register: %w", p.ifname, ErrClosed)
	}
	if s.Ifindex() != p.ifindex {
		return fmt.Errorf("xsk: dev %s: socket is bound to ifindex %d, not %d: %w", p.ifname, s.Ifindex(), p.ifindex, ErrInvalidConfig)
	}
	if s.Queue() >= p.queues {
		return fmt.Errorf("xsk: dev %s: queue %d >= XSKMAP size %d: %w", p.ifname, s.Queue(), p.queues, ErrInvalidConfig)
	}
	if err := p.xsks.Put(uint32(s.Queue()), uint32(s.FD())); err != nil {
		return fmt.Errorf("xsk: dev %s: XSKMAP[%d] = socket: %w", p.ifname, s.Queue(), err)
	}
	p.regs[s.Queue()] = s
	return nil
}

// RegisterFD directs the frames of queue to an AF_XDP socket made outside
// this package (e.g. by another library), given by its descriptor, bound to
// this interface and queue.
func (p *Program) RegisterFD(queue, fd int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.close {
		return fmt.Errorf("xsk: dev %s: register: %w", p.ifname, ErrClosed)
	}
	if queue < 0 || queue >= p.queues || fd < 0 {
		return fmt.Errorf("xsk: dev %s: queue %d fd %d: %w", p.ifname, queue, fd, ErrInvalidConfig)
	}
	if err := p.xsks.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("xsk: dev %s: XSKMAP[%d] = fd %d: %w", p.ifname, queue, fd, err)
	}
	return nil
}

// Unregister stops redirecting queue's frames to a socket: they go to the
// kernel stack again. Closing a socket also removes it from the map.
func (p *Program) Unregister(queue int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.close {
		return nil
	}
	delete(p.regs, queue)
	if err := p.xsks.Delete(uint32(queue)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("xsk: dev %s: delete XSKMAP[%d]: %w", p.ifname, queue, err)
	}
	return nil
}

// Close detaches the program from the interface and frees it and its map.
// It is idempotent and succeeds if the interface is already gone.
func (p *Program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.close {
		return nil
	}
	p.close = true
	var errs []error
	if p.lnk != nil {
		if err := p.lnk.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach: %w", err))
		}
	}
	if err := p.prog.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := p.xsks.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("xsk: dev %s: close XDP program: %w", p.ifname, err)
	}
	return nil
}

// QueueCount returns the number of receive queues of the interface ifname
// from ethtool channels (combined + rx-only), ioctl SIOCETHTOOL
// ETHTOOL_GCHANNELS. Devices without channel support (EOPNOTSUPP) count 1.
func QueueCount(ifname string) (int, error) {
	ch, err := getChannels(ifname)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return 1, nil
		}
		return 0, fmt.Errorf("xsk: dev %s: ethtool channels: %w (no such interface? see ip link; or pass the queue count explicitly)", ifname, err)
	}
	n := int(ch.CombinedCount + ch.RxCount)
	if n < 1 {
		n = 1
	}
	return n, nil
}
