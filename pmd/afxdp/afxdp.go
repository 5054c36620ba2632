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
	"github.com/fwdd/fwdd/pmd/linkmon"
	"github.com/fwdd/fwdd/pmd/mcast"
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
		Help: "AF_XDP sockets on a kernel interface; the UMEM is the mbuf pool (main driver)",
		Args: []pmd.Arg{
			{Name: argDev, Type: pmd.ArgDev, Required: true, Help: "the kernel interface"},
			{Name: argQueues, Type: pmd.ArgInt, Min: 1, Max: 4096, Help: "queues to open (default: the device's channels, ethtool -l)"},
			{Name: argMode, Type: pmd.ArgEnum, Choices: xsk.ModeNames, Default: "auto", Help: "AF_XDP bind mode"},
			{Name: argXDPMode, Type: pmd.ArgEnum, Choices: []string{"auto", "native", "generic"}, Default: "auto", Help: "XDP attach mode"},
			{Name: argBusyPoll, Type: pmd.ArgInt, Min: 0, Max: 1000000, Default: "0", Help: "preferred busy-polling timeout in µs (0: off)"},
			{Name: argRing, Type: pmd.ArgInt, Min: 64, Max: 1 << 16, PowerOfTwo: true, Default: fmt.Sprint(xsk.DefaultRingSize), Help: "size of the fill, completion, RX and TX rings"},
		},
		Open:    open,
		Buffers: buffers,
	})
}

// buffers is the driver's pmd.Driver.Buffers: every socket keeps its fill
// ring full of the pool's mbufs (ring per queue, the kernel's until a
// frame lands in them), so a pool must hold that many more than the
// stack's working set.
func buffers(a pmd.Args, nsPath string) (pmd.BufferNeed, error) {
	ring, err := a.Int(argRing, xsk.DefaultRingSize, 64, 1<<16)
	if err != nil {
		return pmd.BufferNeed{}, fmt.Errorf("driver %s: %w", DriverName, err)
	}
	queues, err := a.Int(argQueues, 0, 1, 4096)
	if err != nil {
		return pmd.BufferNeed{}, fmt.Errorf("driver %s: %w", DriverName, err)
	}
	if queues == 0 {
		dev := a.Str(argDev, "")
		err = pmd.InNetNS(nsPath, func() error {
			queues, err = xsk.QueueCount(dev)
			return err
		})
		if err != nil {
			return pmd.BufferNeed{}, fmt.Errorf("driver %s: dev %s: %w", DriverName, dev, err)
		}
	}
	return pmd.BufferNeed{PerQueue: ring, Queues: queues, Arg: argRing}, nil
}

// The shared UMEMs: one xsk.Umem per mbuf pool, so that every socket whose
// queue uses that pool (on any port) shares it (XDP_SHARED_UMEM) and a
// packet received on one port is transmitted on another by handing over its
// descriptor. They live in the stack's pmd.Shared (keyed by umemKey), so
// stacks never share one; an entry lives while a port uses it.
type umemKey struct{ pool *mbuf.Pool }

type umemRef struct {
	u    *xsk.Umem
	refs int
}

func acquireUmem(sh *pmd.Shared, p *mbuf.Pool) (u *xsk.Umem, err error) {
	sh.Do(func(m map[any]any) {
		if r, ok := m[umemKey{p}].(*umemRef); ok {
			r.refs++
			u = r.u
			return
		}
		size := p.Count() * p.BufSize()
		if p.BufSize() < 2048 {
			err = fmt.Errorf("mbuf pool %s: buffer size %d: AF_XDP needs buffers of 2048 to 4096 bytes (set the pool's BufSize)", p.Name(), p.BufSize())
			return
		}
		if p.Headroom() != 256 {
			err = fmt.Errorf("mbuf pool %s: headroom %d: the afxdp driver needs 256 (XDP_PACKET_HEADROOM, where the kernel puts received frames)", p.Name(), p.Headroom())
			return
		}
		u, err = xsk.NewUmem(p.Region()[:size], xsk.UmemConfig{ChunkSize: uint32(p.BufSize())})
		if err != nil {
			err = fmt.Errorf("mbuf pool %s as UMEM: %w", p.Name(), err)
			return
		}
		m[umemKey{p}] = &umemRef{u: u, refs: 1}
	})
	return u, err
}

func releaseUmem(sh *pmd.Shared, p *mbuf.Pool) {
	sh.Do(func(m map[any]any) {
		if r, ok := m[umemKey{p}].(*umemRef); ok {
			if r.refs--; r.refs == 0 {
				delete(m, umemKey{p})
			}
		}
	})
}

// Port is an afxdp port: one AF_XDP socket per queue on a kernel interface,
// the interface's XDP program redirecting queue q to socket q.
//
// The sockets follow the interface (pmd/linkmon): released, with every
// buffer they held, when it goes down or disappears; re-created when it is
// up again, under the same name (a new ifindex if it was re-created).
type Port struct {
	shared  *pmd.Shared
	name    string
	nsPath  string
	dev     string
	mode    xsk.Mode
	xdpMode xsk.XDPMode
	busyUs  int
	ring    uint32
	queues  []queue
	ctr     []pmd.QueueCounters
	pools   []*mbuf.Pool // the stack's pools, by PoolID, for foreign mbufs
	log     func(msg string, args ...any)
	logErr  func(msg string, args ...any)

	link    atomic.Pointer[pmd.Link]
	reopens atomic.Uint64

	mu sync.Mutex // control side: attach, detach, Info, Close
	// mc holds the link-layer multicast memberships on the device,
	// attached while the sockets are.
	mc *mcast.Set
	// linkChanged is pmd.Config.LinkChanged, called after each link change.
	linkChanged func()
	// sockMu orders closing a queue's socket (detach) against reading its
	// kernel counters (Stats, XSKStats): held only around the close and
	// the getsockopt, so a reader never waits for a whole detach (which
	// may wait seconds for a poller) and never uses a closed or reused
	// descriptor.
	sockMu sync.Mutex
	mon    *linkmon.Monitor
	info   pmd.Info
	prog   *xsk.Program
	bound  int          // ifindex the sockets are bound to, 0 when detached
	held   []*mbuf.Pool // pools whose UMEM we acquired
	closed bool
	// busyRetries counts attach attempts refused with xsk.ErrBusy since the
	// last success (onLink retries up to busyRetries times).
	busyRetries int
}

var (
	_ pmd.Port        = (*Port)(nil)
	_ pmd.Poller      = (*Port)(nil)
	_ pmd.Multicaster = (*Port)(nil)
)

// detachWait bounds how long detaching waits for a poller to leave its
// burst before giving up on that socket (leaking it rather than unmapping
// it under the poller).
const detachWait = pmd.QuiesceTimeout

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
	modeS, err := a.Enum(argMode, "auto", xsk.ModeNames...)
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
	where := fmt.Sprintf("driver %s: dev %s", DriverName, dev)
	if queues == 0 {
		err = pmd.InNetNS(cfg.NetNS, func() error {
			queues, err = xsk.QueueCount(dev)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	lg := cfg.Logger().With("port", cfg.Name, "driver", DriverName, "dev", dev)
	p := &Port{
		name: cfg.Name, nsPath: cfg.NetNS, dev: dev, mc: mcast.New(),
		mode:    must(xsk.ParseMode(modeS)),
		xdpMode: map[string]xsk.XDPMode{"auto": xsk.XDPAuto, "native": xsk.XDPNative, "generic": xsk.XDPGeneric}[xdpS],
		busyUs:  busy, ring: uint32(ring),
		queues: make([]queue, queues), ctr: make([]pmd.QueueCounters, queues),
		pools: cfg.Pools, log: lg.Info, logErr: lg.Error,
		info: pmd.Info{Name: cfg.Name, Driver: DriverName, Device: dev, RxQueues: queues, TxQueues: queues},
	}
	p.shared = cfg.Shared
	p.linkChanged = cfg.LinkChanged
	if p.shared == nil {
		p.shared = pmd.NewShared()
	}
	p.link.Store(&pmd.Link{})
	for q := range p.queues {
		pool := cfg.Pool(q)
		if pool == nil {
			p.releaseUmems()
			return nil, fmt.Errorf("%s: queue %d has no mbuf pool", where, q)
		}
		u, err := acquireUmem(p.shared, pool)
		if err != nil {
			p.releaseUmems()
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		p.held = append(p.held, pool)
		p.queues[q].init(u, pool, &p.ctr[q], cfg.ID, uint16(q), cfg.Pools)
	}
	mon, err := linkmon.Watch(dev, cfg.NetNS, p.onLink)
	if err != nil {
		p.releaseUmems()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	p.mu.Lock()
	st := mon.State()
	if !st.Present {
		p.mu.Unlock()
		mon.Close()
		p.releaseUmems()
		return nil, fmt.Errorf("%s: no such interface (%s)", where, pmd.SeeIPLink(cfg.NetNS))
	}
	p.mon = mon
	err = p.reconcile(st)
	p.mu.Unlock()
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if !st.Up {
		p.log("interface is down; the port attaches when it comes up")
	}
	return p, nil
}

// An attach refused because an fwdd program is still attached (xsk.ErrBusy)
// is retried every busyRetryEvery, busyRetries times (2 s), before the port
// logs it and waits for the next link change.
const (
	busyRetries    = 40
	busyRetryEvery = 50 * time.Millisecond
)

// onLink is the link monitor's callback (and the busy retry's).
func (p *Port) onLink(linkmon.State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mon == nil || p.closed {
		return // Open reconciles itself; Close detaches
	}
	err := p.reconcile(p.mon.State())
	switch {
	case err == nil:
		p.busyRetries = 0
	case errors.Is(err, xsk.ErrBusy) && p.busyRetries < busyRetries:
		// The bpf_link this port closed when the link went away can outlive
		// its Close by a moment: a fork elsewhere in the process holds a
		// copy of the descriptor until the child execs. Try again shortly
		// instead of waiting for a link change that may never come.
		if p.busyRetries++; p.busyRetries == 1 {
			p.log("the interface still holds an fwdd program; retrying the attach for 2 s", "err", err)
		}
		time.AfterFunc(busyRetryEvery, func() { p.onLink(linkmon.State{}) })
	default:
		p.busyRetries = 0
		p.logErr("cannot attach to the interface; waiting for the next link change", "err", err)
	}
	if p.linkChanged != nil {
		p.linkChanged()
	}
}

// reconcile makes the sockets match the interface: attached to its current
// ifindex while present and up, released otherwise. Called with p.mu held.
func (p *Port) reconcile(st linkmon.State) error {
	want := st.Present && st.Up
	if p.bound != 0 && (!want || p.bound != st.Index) {
		p.detach()
		p.log("released sockets and buffers", "link", st.String())
	}
	if st.Present {
		p.info.IfIndex, p.info.MTU = st.Index, st.MTU
		p.info.MAC = append(net.HardwareAddr(nil), st.MAC...)
	}
	var err error
	if want && p.bound == 0 {
		if err = p.attach(st.Index); err == nil && p.reopens.Add(1) > 1 {
			p.log("re-attached", "ifindex", st.Index)
		}
	}
	p.link.Store(&pmd.Link{Up: want && p.bound != 0, Present: st.Present, Downs: p.mon.Downs()})
	return err
}

// attach loads the XDP program, opens one socket per queue (in the port's
// namespace), gives each a fill ring's worth of buffers, registers it and
// publishes it to the pollers. Called with p.mu held.
func (p *Port) attach(ifindex int) error {
	sts := make([]*qsock, len(p.queues))
	var prog *xsk.Program
	err := pmd.InNetNS(p.nsPath, func() error {
		var err error
		if prog, err = xsk.AttachProgram(xsk.ProgramConfig{Ifindex: ifindex, Queues: len(p.queues), Mode: p.xdpMode}); err != nil {
			return err
		}
		if err := p.mc.Attach(ifindex); err != nil {
			p.logErr("multicast memberships", "err", err)
		}
		for q := range p.queues {
			sc := xsk.SocketConfig{Ifindex: ifindex, Queue: q, Mode: p.mode,
				FillSize: p.ring, CompletionSize: p.ring, RxSize: p.ring, TxSize: p.ring}
			if p.busyUs > 0 {
				sc.BusyPoll = xsk.BusyPoll{Timeout: time.Duration(p.busyUs) * time.Microsecond, Budget: Burst}
			}
			s, err := p.queues[q].umem.NewSocket(sc)
			if err != nil {
				return fmt.Errorf("queue %d: %w", q, err)
			}
			sts[q] = &qsock{s: s, inKernel: make([]uint64, (p.queues[q].pool.Count()+63)/64)}
			p.queues[q].prime(sts[q])
			if err := prog.Register(s); err != nil {
				return fmt.Errorf("queue %d: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		for q, st := range sts {
			if st != nil {
				p.queues[q].release(st)
			}
		}
		if prog != nil {
			prog.Close()
		}
		p.mc.Detach()
		return err
	}
	for q, st := range sts {
		p.queues[q].cur.Store(st)
	}
	p.prog, p.bound = prog, ifindex
	zc := "copy"
	if sts[0].s.ZeroCopy() {
		zc = "zerocopy"
	}
	p.info.Mode = zc + "," + prog.Mode().String()
	p.log("afxdp attached", "ifindex", ifindex, "queues", len(p.queues), "mode", zc,
		"xdp", prog.Mode().String(), "need_wakeup", sts[0].s.NeedWakeup(), "busypoll_us", p.busyUs)
	return nil
}

// detach unpublishes every queue's socket, waits for its poller to leave
// the burst, closes it and gives the buffers the kernel held back to the
// pool; then detaches the program. Called with p.mu held.
func (p *Port) detach() {
	for q := range p.queues {
		qu := &p.queues[q]
		st := qu.cur.Swap(nil)
		if st == nil {
			continue
		}
		if !pmd.Quiesce(&qu.busy, detachWait) {
			p.logErr("poller did not leave its burst; leaking the socket rather than unmapping it under the poller", "queue", q)
			st = nil
		}
		if st != nil {
			p.sockMu.Lock()
			qu.release(st)
			p.sockMu.Unlock()
		}
	}
	if p.prog != nil {
		if err := p.prog.Close(); err != nil {
			p.logErr("detach XDP program", "err", err)
		}
		p.prog = nil
	}
	p.mc.Detach()
	p.bound = 0
}

func (p *Port) releaseUmems() {
	for _, pool := range p.held {
		releaseUmem(p.shared, pool)
	}
	p.held = nil
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

// RxFD returns queue q's socket, readable when it has packets, or -1 while
// the port is detached.
func (p *Port) RxFD(q int) int {
	if uint(q) >= uint(len(p.queues)) {
		return -1
	}
	p.sockMu.Lock() // the socket is not closed while we read its descriptor
	defer p.sockMu.Unlock()
	if st := p.queues[q].cur.Load(); st != nil {
		return st.s.FD()
	}
	return -1
}

// Info describes the port (MAC, MTU and ifindex follow the interface).
func (p *Port) Info() pmd.Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.info
	i.MAC = append(net.HardwareAddr(nil), p.info.MAC...)
	return i
}

// Link returns the link state as last reconciled: Up while the sockets are
// attached, Present while the interface exists.
func (p *Port) Link() pmd.Link { return *p.link.Load() }

// Stats returns per-queue counters. Receive drops and invalid descriptors
// include what the kernel counted on the queue's current socket
// (XDP_STATISTICS: frames dropped because the RX ring was full or no fill
// buffer was there), which the driver itself never sees.
func (p *Port) Stats() []pmd.QueueStats {
	out := pmd.Snapshots(p.ctr)
	p.sockMu.Lock()
	defer p.sockMu.Unlock()
	for q := range out {
		// Loaded under sockMu: detach unpublishes a socket before it
		// closes it under sockMu, so a socket seen here is still open.
		st := p.queues[q].cur.Load()
		if st == nil {
			continue
		}
		ks, err := st.s.Stats()
		if err != nil {
			continue
		}
		out[q].RxDrops += ks.Kernel.Rx_dropped + ks.Kernel.Rx_ring_full
		out[q].RxErrors += ks.Kernel.Rx_invalid_descs
		out[q].TxErrors += ks.Kernel.Tx_invalid_descs
	}
	return out
}

// XSKStats returns the AF_XDP socket counters of queue q (kicks, kernel
// drops, ring-empty events), for diagnostics.
func (p *Port) XSKStats(q int) (xsk.Stats, error) {
	p.sockMu.Lock()
	defer p.sockMu.Unlock()
	if uint(q) >= uint(len(p.queues)) {
		return xsk.Stats{}, xsk.ErrClosed
	}
	st := p.queues[q].cur.Load()
	if st == nil {
		return xsk.Stats{}, xsk.ErrClosed
	}
	return st.s.Stats()
}

// SetMulticast sets owner's link-layer multicast groups on the device
// (joined now if attached, else at the next attach).
func (p *Port) SetMulticast(owner string, macs []net.HardwareAddr) error {
	return p.mc.Want(owner, macs)
}

// Multicast returns the groups joined on the device.
func (p *Port) Multicast() []string { return p.mc.Joined() }

// Close stops following the interface, detaches the XDP program, closes the
// sockets and returns every mbuf the port holds to its pool. Polling must
// have stopped. Idempotent.
func (p *Port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	mon := p.mon
	p.mu.Unlock()
	if mon != nil {
		mon.Close() // waits for a callback in progress; it must not hold p.mu
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.detach()
	for q := range p.queues {
		if c := p.queues[q].cache; c != nil {
			c.Flush()
		}
	}
	p.releaseUmems()
	p.link.Store(&pmd.Link{})
	return nil
}

// must returns the mode of a name the argument check accepted.
func must(m xsk.Mode, ok bool) xsk.Mode {
	if !ok {
		return xsk.ModeAuto
	}
	return m
}
