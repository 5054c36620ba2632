package afxdp

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/internal/xsk"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DriverName is the name the driver registers under.
const DriverName = "afxdp"

// Burst is the largest burst one RxBurst or TxBurst call moves; longer
// slices are served up to Burst.
const Burst = 64

// Arguments.
const (
	argDev      = "dev"      // kernel interface (required)
	argQueues   = "queues"   // number of queues (default: the device's, ethtool channels)
	argMode     = "mode"     // auto | copy | zerocopy
	argXDPMode  = "xdpmode"  // auto | native | generic
	argBusyPoll = "busypoll" // preferred busy polling timeout in µs (0: off)
	argRing     = "ring"     // ring size (fill, completion, rx, tx), power of two
)

func init() {
	pmd.Register(pmd.Driver{
		Name: DriverName,
		Help: "AF_XDP sockets, UMEM = the mbuf pool: dev=IF [queues=N] [mode=auto|copy|zerocopy] [xdpmode=auto|native|generic] [busypoll=USECS] [ring=2048]",
		Open: open,
	})
}

// The shared UMEMs: one xsk.Umem per mbuf pool, so that every socket whose
// queue uses that pool (on any port) shares it (XDP_SHARED_UMEM) and a
// packet received on one port is transmitted on another by handing over its
// descriptor. Keyed by *mbuf.Pool, which belongs to exactly one stack, so
// stacks never share an entry; an entry lives while a port uses it.
//
// This is the driver's only package-level state besides its registration:
// pmd.Config has no per-stack slot for driver state (see docs/afxdp.md).
var umems = struct {
	sync.Mutex
	m map[*mbuf.Pool]*umemRef
}{m: map[*mbuf.Pool]*umemRef{}}

type umemRef struct {
	u    *xsk.Umem
	refs int
}

func acquireUmem(p *mbuf.Pool) (*xsk.Umem, error) {
	umems.Lock()
	defer umems.Unlock()
	if r := umems.m[p]; r != nil {
		r.refs++
		return r.u, nil
	}
	size := p.Count() * p.BufSize()
	if p.BufSize() < 2048 {
		return nil, fmt.Errorf("mbuf pool %s: buffer size %d: AF_XDP needs buffers of 2048 to 4096 bytes (set the pool's BufSize)", p.Name(), p.BufSize())
	}
	if p.Headroom() != 256 {
		return nil, fmt.Errorf("mbuf pool %s: headroom %d: the afxdp driver needs 256 (XDP_PACKET_HEADROOM, where the kernel puts received frames)", p.Name(), p.Headroom())
	}
	u, err := xsk.NewUmem(p.Region()[:size], xsk.UmemConfig{ChunkSize: uint32(p.BufSize())})
	if err != nil {
		return nil, fmt.Errorf("mbuf pool %s as UMEM: %w", p.Name(), err)
	}
	umems.m[p] = &umemRef{u: u, refs: 1}
	return u, nil
}

func releaseUmem(p *mbuf.Pool) {
	umems.Lock()
	defer umems.Unlock()
	if r := umems.m[p]; r != nil {
		if r.refs--; r.refs == 0 {
			delete(umems.m, p)
		}
	}
}

// Port is an afxdp port: one AF_XDP socket per queue on a kernel interface,
// the interface's XDP program redirecting queue q to socket q.
type Port struct {
	info   pmd.Info
	nsPath string
	log    func(msg string, args ...any)

	prog     *xsk.Program
	queues   []queue
	counters []pmd.QueueCounters
	pools    []*mbuf.Pool // the stack's pools, by PoolID, for foreign mbufs
	held     []*mbuf.Pool // pools whose UMEM we acquired

	mu     sync.Mutex
	closed atomic.Bool
}

var (
	_ pmd.Port   = (*Port)(nil)
	_ pmd.Poller = (*Port)(nil)
)

func open(cfg pmd.Config) (pmd.Port, error) {
	a := cfg.Args
	if err := a.Check(DriverName, argDev, argQueues, argMode, argXDPMode, argBusyPoll, argRing); err != nil {
		return nil, err
	}
	dev := a.Str(argDev, "")
	if dev == "" {
		return nil, fmt.Errorf("driver %s: argument dev=IF is required (the kernel interface, see ip link)", DriverName)
	}
	queues, err := a.Int(argQueues, 0, 1, 4096)
	if err != nil {
		return nil, fmt.Errorf("driver %s: %w", DriverName, err)
	}
	modeS, err := a.Enum(argMode, "auto", "auto", "copy", "zerocopy")
	if err != nil {
		return nil, fmt.Errorf("driver %s: %w", DriverName, err)
	}
	xdpS, err := a.Enum(argXDPMode, "auto", "auto", "native", "generic")
	if err != nil {
		return nil, fmt.Errorf("driver %s: %w", DriverName, err)
	}
	busy, err := a.Int(argBusyPoll, 0, 0, 1000000)
	if err != nil {
		return nil, fmt.Errorf("driver %s: %w", DriverName, err)
	}
	ring, err := a.Int(argRing, xsk.DefaultRingSize, 64, 1<<16)
	if err != nil || ring&(ring-1) != 0 {
		return nil, fmt.Errorf("driver %s: argument ring=%q: want a power of two in [64, 65536]", DriverName, a.Str(argRing, ""))
	}
	mode := map[string]xsk.Mode{"auto": xsk.ModeAuto, "copy": xsk.ModeCopy, "zerocopy": xsk.ModeZeroCopy}[modeS]
	xdpMode := map[string]xsk.XDPMode{"auto": xsk.XDPAuto, "native": xsk.XDPNative, "generic": xsk.XDPGeneric}[xdpS]

	p := &Port{nsPath: cfg.NetNS, pools: cfg.Pools, log: cfg.Logger().Info}
	err = pmd.InNetNS(cfg.NetNS, func() error {
		return p.setup(cfg, dev, queues, mode, xdpMode, busy, uint32(ring))
	})
	if err != nil {
		p.teardown()
		return nil, fmt.Errorf("driver %s: dev %s: %w", DriverName, dev, err)
	}
	zc := "copy"
	if p.queues[0].s.ZeroCopy() {
		zc = "zerocopy"
	}
	p.info.Mode = zc + "," + p.prog.Mode().String()
	p.log("afxdp port open", "port", cfg.Name, "dev", dev, "queues", len(p.queues),
		"mode", zc, "xdp", p.prog.Mode().String(), "need_wakeup", p.queues[0].s.NeedWakeup(), "busypoll_us", busy)
	return p, nil
}

// setup runs inside the port's namespace.
func (p *Port) setup(cfg pmd.Config, dev string, queues int, mode xsk.Mode, xdpMode xsk.XDPMode, busy int, ring uint32) error {
	nl, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("no such interface (see ip link%s): %w", nsHint(cfg.NetNS), err)
	}
	at := nl.Attrs()
	if queues == 0 {
		if queues, err = xsk.QueueCount(dev); err != nil {
			return err
		}
	}
	p.info = pmd.Info{
		Name: cfg.Name, Driver: DriverName, Device: dev, IfIndex: at.Index,
		MAC: append(net.HardwareAddr(nil), at.HardwareAddr...), MTU: at.MTU,
		RxQueues: queues, TxQueues: queues,
	}
	p.counters = make([]pmd.QueueCounters, queues)
	p.queues = make([]queue, queues)
	if p.prog, err = xsk.AttachProgram(xsk.ProgramConfig{Ifindex: at.Index, Queues: queues, Mode: xdpMode}); err != nil {
		return err
	}
	for q := range queues {
		pool := cfg.Pool(q)
		u, err := acquireUmem(pool)
		if err != nil {
			return err
		}
		p.held = append(p.held, pool)
		sc := xsk.SocketConfig{Ifindex: at.Index, Queue: q, Mode: mode,
			FillSize: ring, CompletionSize: ring, RxSize: ring, TxSize: ring}
		if busy > 0 {
			sc.BusyPoll = xsk.BusyPoll{Timeout: time.Duration(busy) * time.Microsecond, Budget: Burst}
		}
		s, err := u.NewSocket(sc)
		if err != nil {
			return fmt.Errorf("queue %d: %w", q, err)
		}
		qq := &p.queues[q]
		qq.init(s, pool, &p.counters[q], cfg.ID, uint16(q), p.pools)
		qq.refill()
		if err := p.prog.Register(s); err != nil {
			return fmt.Errorf("queue %d: %w", q, err)
		}
	}
	return nil
}

func nsHint(ns string) string {
	if ns == "" {
		return ""
	}
	return " in " + ns
}

// RxBurst receives up to min(len(ms), Burst) packets into ms.
func (p *Port) RxBurst(q int, ms []*mbuf.Mbuf) int {
	if uint(q) >= uint(len(p.queues)) {
		return 0
	}
	return p.queues[q].rxBurst(ms)
}

// TxBurst transmits a prefix of ms (at most Burst) and returns its length.
func (p *Port) TxBurst(q int, ms []*mbuf.Mbuf) int {
	if uint(q) >= uint(len(p.queues)) {
		return 0
	}
	return p.queues[q].txBurst(ms)
}

// RxFD returns queue q's socket, readable when it has packets.
func (p *Port) RxFD(q int) int {
	if uint(q) >= uint(len(p.queues)) || p.queues[q].s == nil {
		return -1
	}
	return p.queues[q].s.FD()
}

// Info describes the port.
func (p *Port) Info() pmd.Info { return p.info }

// Link reads the interface's state (netlink; control plane, any goroutine).
// Present is false once the interface is gone; the sockets then report
// ENXIO and the port stays down (close and reopen it when the interface is
// back).
func (p *Port) Link() pmd.Link {
	var l pmd.Link
	pmd.InNetNS(p.nsPath, func() error {
		nl, err := netlink.LinkByIndex(p.info.IfIndex)
		if err != nil || nl.Attrs().Name != p.info.Device {
			return nil
		}
		l.Present = true
		l.Up = nl.Attrs().Flags&net.FlagUp != 0 && nl.Attrs().RawFlags&unix.IFF_RUNNING != 0
		return nil
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.queues {
		if e := p.queues[i].s; e != nil && errors.Is(e.Err(), unix.ENXIO) {
			l.Present, l.Up = false, false
		}
	}
	return l
}

// Stats returns per-queue counters.
func (p *Port) Stats() []pmd.QueueStats { return pmd.Snapshots(p.counters) }

// XSKStats returns the AF_XDP socket counters of queue q (kicks, kernel
// drops, ring-empty events), for diagnostics.
func (p *Port) XSKStats(q int) (xsk.Stats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if uint(q) >= uint(len(p.queues)) || p.queues[q].s == nil {
		return xsk.Stats{}, xsk.ErrClosed
	}
	return p.queues[q].s.Stats()
}

// Close detaches the XDP program, closes the sockets and returns every mbuf
// the port holds (fill ring, RX, TX in flight) to its pool. Polling must
// have stopped. Idempotent.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return p.teardown()
}

func (p *Port) teardown() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if p.prog != nil {
		if err := p.prog.Close(); err != nil {
			errs = append(errs, err)
		}
		p.prog = nil
	}
	for i := range p.queues {
		if err := p.queues[i].close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, pool := range p.held {
		releaseUmem(pool)
	}
	p.held = nil
	return errors.Join(errs...)
}
