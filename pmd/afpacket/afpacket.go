package afpacket

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/pmd/linkmon"
	"github.com/fwdd/fwdd/pmd/mcast"
	"golang.org/x/sys/unix"
)

// DriverName is the name the driver registers under.
const DriverName = "afpacket"

// Limits and defaults of the arguments.
const (
	MaxQueues        = 64
	DefaultFrames    = 1024
	DefaultFrameSize = 2048
	minFrameSize     = 128
	maxFrame         = 1522 // 1500 bytes of IP, Ethernet header and a VLAN tag
	// detachWait bounds how long detaching waits for a poller to finish
	// its burst; bursts never block, so this is generous.
	detachWait = pmd.QuiesceTimeout
)

// Help describes the driver's arguments.
const Help = "AF_PACKET TPACKET_V2 mmap rings on a kernel interface (fallback without XDP)"

// Args describes the driver's arguments.
var Args = []pmd.Arg{
	{Name: "dev", Type: pmd.ArgDev, Required: true, Help: "the kernel interface"},
	{Name: "queues", Type: pmd.ArgInt, Min: 1, Max: MaxQueues, Default: "1", Help: "sockets in a fanout group"},
	{Name: "promisc", Type: pmd.ArgBool, Default: "off", Help: "promiscuous mode"},
	{Name: "bypass", Type: pmd.ArgBool, Default: "on", Help: "PACKET_QDISC_BYPASS"},
	{Name: "frames", Type: pmd.ArgInt, Min: 1, Max: 1 << 20, Help: "frames per ring, a multiple of the frames per block (default 1024)"},
	{Name: "framesize", Type: pmd.ArgInt, Min: minFrameSize, Max: 1 << 16, Default: "2048", Help: "bytes per frame slot, a multiple of 16"},
	{Name: "blocksize", Type: pmd.ArgInt, Min: 4096, Max: 1 << 22, Help: "bytes per ring block, a multiple of the page size and of framesize (default 32 frames)"},
}

var argNames = []string{"dev", "queues", "promisc", "bypass", "frames", "framesize", "blocksize"}

// ErrNoDevice is wrapped when dev names no interface.
var ErrNoDevice = errors.New("no such interface")

func init() {
	pmd.Register(pmd.Driver{Name: DriverName, Help: Help, Args: Args, Open: func(cfg pmd.Config) (pmd.Port, error) { return Open(cfg) }})
}

var (
	_ pmd.Port        = (*Port)(nil)
	_ pmd.Poller      = (*Port)(nil)
	_ pmd.Multicaster = (*Port)(nil)
)

// Params are the parsed driver arguments.
type Params struct {
	Dev       string
	Queues    int
	Promisc   bool
	Bypass    bool
	Frames    int
	FrameSize int
	BlockSize int
}

// ParseArgs checks the driver arguments and fills in defaults.
func ParseArgs(a pmd.Args) (Params, error) {
	var p Params
	if err := a.Check(DriverName, argNames...); err != nil {
		return p, err
	}
	p.Dev = a.Str("dev", "")
	if p.Dev == "" {
		return p, fmt.Errorf("afpacket: argument dev is required: name a kernel interface, e.g. dev=eth1 (see ip link)")
	}
	if len(p.Dev) >= unix.IFNAMSIZ {
		return p, fmt.Errorf("afpacket: dev=%q: interface names have at most %d characters", p.Dev, unix.IFNAMSIZ-1)
	}
	var err error
	if p.Queues, err = a.Int("queues", 1, 1, MaxQueues); err != nil {
		return p, fmt.Errorf("afpacket: %w", err)
	}
	if p.Promisc, err = a.Bool("promisc", false); err != nil {
		return p, fmt.Errorf("afpacket: %w", err)
	}
	if p.Bypass, err = a.Bool("bypass", true); err != nil {
		return p, fmt.Errorf("afpacket: %w", err)
	}
	if p.FrameSize, err = a.Int("framesize", DefaultFrameSize, minFrameSize, 1<<16); err != nil || p.FrameSize%unix.TPACKET_ALIGNMENT != 0 {
		return p, fmt.Errorf("afpacket: argument framesize=%q: want a multiple of %d in [%d, 65536]", a["framesize"], unix.TPACKET_ALIGNMENT, minFrameSize)
	}
	page := os.Getpagesize()
	defBlock := max(page, 32*p.FrameSize)
	defBlock = (defBlock + page - 1) / page * page
	if p.BlockSize, err = a.Int("blocksize", defBlock, page, 1<<22); err != nil || p.BlockSize%page != 0 || p.BlockSize%p.FrameSize != 0 {
		return p, fmt.Errorf("afpacket: argument blocksize=%q: want a multiple of the page size %d and of framesize %d, at most 4 MiB", a["blocksize"], page, p.FrameSize)
	}
	perBlock := p.BlockSize / p.FrameSize
	if p.Frames, err = a.Int("frames", max(DefaultFrames, perBlock), 1, 1<<20); err != nil || p.Frames%perBlock != 0 {
		return p, fmt.Errorf("afpacket: argument frames=%q: want a multiple of %d (frames per block) up to %d", a["frames"], perBlock, 1<<20)
	}
	return p, nil
}

// queue is one queue's state. sock is published by the control side
// (Open, the link monitor, Close) and loaded once per burst by the poller;
// busy is set by the poller for the duration of a burst so that the control
// side can wait before unmapping a sock it unpublished.
type queue struct {
	sock   atomic.Pointer[sock]
	busy   atomic.Uint32
	_      [52]byte
	cache  *mbuf.Cache
	pool   *mbuf.Pool
	kdrops uint64 // kernel ring drops, summed under Port.mu
	_      [40]byte
}

// Port is an AF_PACKET port.
type Port struct {
	id     uint16
	name   string
	netns  string
	prm    Params
	pools  []*mbuf.Pool
	qs     []queue
	ctr    []pmd.QueueCounters
	log    func(msg string, args ...any)
	logErr func(msg string, args ...any)

	link atomic.Pointer[pmd.Link]

	linkChanges atomic.Uint64
	reopens     atomic.Uint64

	mu sync.Mutex // control side: attach, detach, Stats, Info, Close
	mc *mcast.Set // link-layer multicast memberships, attached with the sockets
	// linkChanged is pmd.Config.LinkChanged, called after each link change.
	linkChanged func()
	mon         *linkmon.Monitor
	info        pmd.Info
	bound       int // ifindex the sockets are bound to, 0 when detached
	closed      bool
}

// Open creates a port on the interface dev (in cfg.NetNS if set). The
// interface must exist; if it is down the port opens with its link down
// and attaches when it comes up.
func Open(cfg pmd.Config) (*Port, error) {
	prm, err := ParseArgs(cfg.Args)
	if err != nil {
		return nil, err
	}
	if len(cfg.Pools) == 0 {
		return nil, fmt.Errorf("afpacket: no mbuf pool given")
	}
	lg := cfg.Logger().With("port", cfg.Name, "driver", DriverName, "dev", prm.Dev)
	p := &Port{
		id: cfg.ID, name: cfg.Name, netns: cfg.NetNS, prm: prm, pools: cfg.Pools, mc: mcast.New(),
		qs:  make([]queue, prm.Queues),
		ctr: make([]pmd.QueueCounters, prm.Queues),
		log: lg.Info, logErr: lg.Error, linkChanged: cfg.LinkChanged,
		info: pmd.Info{Name: cfg.Name, Driver: DriverName, Device: prm.Dev, RxQueues: prm.Queues, TxQueues: prm.Queues, Mode: "tpacket_v2"},
	}
	p.link.Store(&pmd.Link{})
	for q := range p.qs {
		pool := cfg.Pool(q)
		if pool == nil {
			return nil, fmt.Errorf("afpacket: queue %d has no pool", q)
		}
		// Larger frames (jumbo MTUs) need larger buffers; those that do
		// not fit are dropped and counted as RxErrors.
		if room := pool.BufSize() - pool.Headroom(); room < maxFrame {
			return nil, fmt.Errorf("afpacket: pool %s has %d bytes after headroom, less than a %d-byte Ethernet frame (use larger buffers)", pool.Name(), room, maxFrame)
		}
		p.qs[q].pool = pool
	}
	mon, err := linkmon.Watch(prm.Dev, cfg.NetNS, p.onLink)
	if err != nil {
		return nil, fmt.Errorf("afpacket: dev %s: %w", prm.Dev, err)
	}
	p.mu.Lock()
	st := mon.State()
	if !st.Present {
		p.mu.Unlock()
		mon.Close()
		return nil, fmt.Errorf("afpacket: dev %s: %w (%s)", prm.Dev, ErrNoDevice, pmd.SeeIPLink(cfg.NetNS))
	}
	for q := range p.qs {
		p.qs[q].cache = p.qs[q].pool.NewCache()
	}
	p.mon = mon
	err = p.reconcile(st)
	p.mu.Unlock()
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("afpacket: dev %s: %w", prm.Dev, err)
	}
	if !st.Up {
		p.log("interface is down; the port will attach when it comes up")
	}
	return p, nil
}

// onLink is the link monitor's callback.
func (p *Port) onLink(linkmon.State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mon == nil || p.closed {
		return // Open has not finished (it reconciles itself) or closing
	}
	p.linkChanges.Add(1)
	st := p.mon.State()
	if err := p.reconcile(st); err != nil {
		p.logErr("cannot attach to the interface; waiting for the next link change", "err", err)
	}
	if p.linkChanged != nil {
		p.linkChanged()
	}
}

// reconcile makes the sockets match the interface's state: bound to its
// current ifindex while it is present and up, released otherwise. Called
// with p.mu held.
func (p *Port) reconcile(st linkmon.State) error {
	want := st.Present && st.Up
	if p.bound != 0 && (!want || p.bound != st.Index) {
		p.detach()
		p.log("released sockets", "link", st.String())
	}
	if st.Present {
		p.info.IfIndex, p.info.MTU = st.Index, st.MTU
		p.info.MAC = st.MAC
	}
	var err error
	if want && p.bound == 0 {
		if err = p.attach(st.Index); err == nil {
			if p.reopens.Add(1) > 1 {
				p.log("re-attached", "ifindex", st.Index)
			}
		}
	}
	p.link.Store(&pmd.Link{Up: want && p.bound != 0, Present: st.Present, Downs: p.mon.Downs()})
	return err
}

// attach opens one socket per queue bound to ifindex (in the port's
// namespace), joined in one fanout group when there are several, and
// publishes them to the pollers.
func (p *Port) attach(ifindex int) error {
	rp := ringParams{frameSize: p.prm.FrameSize, frames: p.prm.Frames, blockSize: p.prm.BlockSize}
	socks := make([]*sock, len(p.qs))
	err := pmd.InNetNS(p.netns, func() error {
		o := sockOpts{ifindex: ifindex, promisc: p.prm.Promisc, bypass: p.prm.Bypass}
		if len(socks) > 1 {
			o.fanout = -1
		}
		if err := p.mc.Attach(ifindex); err != nil {
			p.logErr("multicast memberships", "err", err)
		}
		for q := range socks {
			s, group, err := openSock(rp, o)
			if err != nil {
				return fmt.Errorf("queue %d: %w", q, err)
			}
			socks[q] = s
			if o.fanout != 0 {
				o.fanout = group
			}
		}
		return nil
	})
	if err != nil {
		for _, s := range socks {
			if s != nil {
				s.close()
			}
		}
		p.mc.Detach()
		return err
	}
	for q, s := range socks {
		p.qs[q].sock.Store(s)
	}
	p.bound = ifindex
	return nil
}

// detach unpublishes every queue's socket, waits for each poller to leave
// its burst, and closes the sockets. Called with p.mu held.
func (p *Port) detach() {
	for q := range p.qs {
		qu := &p.qs[q]
		s := qu.sock.Swap(nil)
		if s == nil {
			continue
		}
		if !pmd.Quiesce(&qu.busy, detachWait) {
			p.logErr("poller did not leave its burst; leaking the socket rather than unmapping under it", "queue", q)
			s = nil
		}
		if s != nil {
			qu.kdrops += s.kernelDrops()
			s.close()
		}
	}
	p.mc.Detach()
	p.bound = 0
}

// SetMulticast sets owner's link-layer multicast groups on the device
// (joined now if attached, else at the next attach).
func (p *Port) SetMulticast(owner string, macs []net.HardwareAddr) error {
	return p.mc.Want(owner, macs)
}

// Multicast returns the groups joined on the device.
func (p *Port) Multicast() []string { return p.mc.Joined() }

// RxBurst copies received frames from queue q's RX ring into mbufs of the
// queue's pool and returns how many (counted as Copies too). The caller
// owns ms[:n], stamped with port and queue and flagged FlagCopied. A VLAN
// tag the kernel stripped is put back into the frame. Truncated frames
// (longer than a ring frame) are dropped and counted as RxErrors. If the
// pool is exhausted the frames stay in the ring for the next burst.
func (p *Port) RxBurst(q int, ms []*mbuf.Mbuf) int {
	if uint(q) >= uint(len(p.qs)) || len(ms) == 0 {
		return 0
	}
	qu := &p.qs[q]
	qu.busy.Store(1)
	s := qu.sock.Load()
	if s == nil {
		qu.busy.Store(0)
		return 0
	}
	fs, nf := s.rp.frameSize, s.rp.frames
	ready := 0
	for i := s.rxHead; ready < len(ms); ready++ {
		if loadStatus(s.hdr(i*fs))&unix.TP_STATUS_USER == 0 {
			break
		}
		if i++; i == nf {
			i = 0
		}
	}
	if ready == 0 {
		qu.busy.Store(0)
		return 0
	}
	got := qu.cache.Alloc(ms[:ready])
	n, bytes, errs := 0, 0, 0
	for k := 0; k < got; k++ {
		off := s.rxHead * fs
		h := s.hdr(off)
		st := loadStatus(h)
		length, snap, mac := loadSnap(h)
		m := ms[n]
		ok := snap == length && int(mac)+int(snap) <= fs
		if ok {
			frame := s.mem[off+int(mac) : off+int(mac)+int(snap)]
			if tci, tpid, tagged := vlanOf(h, st); tagged && len(frame) >= 12 {
				if d := m.Append(len(frame) + 4); d != nil {
					copy(d[:12], frame[:12])
					d[12], d[13], d[14], d[15] = byte(tpid>>8), byte(tpid), byte(tci>>8), byte(tci)
					copy(d[16:], frame[12:])
				} else {
					ok = false
				}
			} else if d := m.Append(len(frame)); d != nil {
				copy(d, frame)
			} else {
				ok = false
			}
		}
		storeStatus(h, unix.TP_STATUS_KERNEL)
		if s.rxHead++; s.rxHead == nf {
			s.rxHead = 0
		}
		if !ok {
			errs++ // m stays empty and takes the next frame
			continue
		}
		m.Port, m.Queue, m.Flags = p.id, uint16(q), mbuf.FlagCopied
		bytes += m.Len()
		n++
	}
	qu.busy.Store(0)
	if n < got {
		qu.cache.Free(ms[n:got])
	}
	c := &p.ctr[q]
	c.RxPackets.Add(uint64(n))
	c.RxBytes.Add(uint64(bytes))
	c.Copies.Add(uint64(n))
	if errs > 0 {
		c.RxErrors.Add(uint64(errs))
	}
	return n
}

// TxBurst copies a prefix of ms into free frames of queue q's TX ring,
// asks the kernel to send them (one sendto per burst), frees those mbufs
// and returns how many it took. When the ring is full it takes fewer; the
// caller keeps ms[n:]. Frames longer than a ring frame are taken, dropped
// and counted as TxErrors. While the link is down or the interface absent
// the port takes everything and drops it (counted as TxDrops), as a NIC
// without carrier does.
func (p *Port) TxBurst(q int, ms []*mbuf.Mbuf) int {
	if uint(q) >= uint(len(p.qs)) || len(ms) == 0 {
		return 0
	}
	qu := &p.qs[q]
	c := &p.ctr[q]
	qu.busy.Store(1)
	s := qu.sock.Load()
	if s == nil {
		qu.busy.Store(0)
		p.free(qu, ms)
		c.TxDrops.Add(uint64(len(ms)))
		return len(ms)
	}
	fs, nf := s.rp.frameSize, s.rp.frames
	n, sent, bytes, errs := 0, 0, 0, 0
	for n < len(ms) {
		off := s.txBase + s.txHead*fs
		h := s.hdr(off)
		if st := loadStatus(h); st == unix.TP_STATUS_WRONG_FORMAT {
			errs++ // an earlier frame the kernel refused; reuse the slot
		} else if st != unix.TP_STATUS_AVAILABLE {
			break // ring full: the kernel still owns the oldest frames
		}
		d := ms[n].Data()
		n++
		if len(d) > fs-txOff {
			errs++
			continue
		}
		copy(s.mem[off+txOff:off+txOff+len(d)], d)
		storeLen(h, len(d))
		storeStatus(h, unix.TP_STATUS_SEND_REQUEST)
		if s.txHead++; s.txHead == nf {
			s.txHead = 0
		}
		sent++
		bytes += len(d)
	}
	if sent > 0 {
		switch e := kick(s.fd); e {
		case 0, unix.EAGAIN, unix.ENOBUFS:
			// Sent, or queued in the ring for the next kick.
		default:
			errs++
		}
	}
	qu.busy.Store(0)
	p.free(qu, ms[:n])
	c.TxPackets.Add(uint64(sent))
	c.TxBytes.Add(uint64(bytes))
	c.Copies.Add(uint64(sent))
	if errs > 0 {
		c.TxErrors.Add(uint64(errs))
	}
	return n
}

// free returns mbufs to their pools: the queue's own through its cache,
// others to the pool Config.Pools names by mbuf.PoolID.
func (p *Port) free(qu *queue, ms []*mbuf.Mbuf) {
	for i := 0; i < len(ms); {
		id := ms[i].PoolID()
		j := i + 1
		for j < len(ms) && ms[j].PoolID() == id {
			j++
		}
		if int(id) < len(p.pools) && p.pools[id] != nil {
			if pool := p.pools[id]; pool == qu.pool {
				qu.cache.Free(ms[i:j])
			} else {
				pool.Free(ms[i:j])
			}
		}
		i = j
	}
}

// RxFD returns the socket of queue q for poll(2), or -1 while detached.
// The descriptor is closed when the link goes away: re-read it after a
// wake-up with POLLERR/POLLNVAL.
func (p *Port) RxFD(q int) int {
	if uint(q) >= uint(len(p.qs)) {
		return -1
	}
	if s := p.qs[q].sock.Load(); s != nil {
		return s.fd
	}
	return -1
}

// Info describes the port; IfIndex and MAC follow a re-created interface.
func (p *Port) Info() pmd.Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.info
	i.MAC = append(net.HardwareAddr(nil), p.info.MAC...)
	return i
}

// Link reports whether the interface is present, and up with the port's
// sockets attached to it.
func (p *Port) Link() pmd.Link { return *p.link.Load() }

// LinkChanges returns how many link changes the port has seen.
func (p *Port) LinkChanges() uint64 { return p.linkChanges.Load() }

// Attaches returns how many times the port bound its sockets (1 after an
// Open on an up interface, +1 per recovery).
func (p *Port) Attaches() uint64 { return p.reopens.Load() }

// Stats returns per-queue counters; RxDrops includes the frames the kernel
// dropped because a queue's RX ring was full.
func (p *Port) Stats() []pmd.QueueStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := pmd.Snapshots(p.ctr)
	for q := range p.qs {
		if s := p.qs[q].sock.Load(); s != nil && !p.closed {
			p.qs[q].kdrops += s.kernelDrops()
		}
		out[q].RxDrops += p.qs[q].kdrops
	}
	return out
}

// Close stops watching the link, closes the sockets and returns the queue
// caches' mbufs to their pools. Polling must have stopped. Idempotent.
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
		mon.Close() // waits for a callback in progress; later ones see closed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.detach()
	p.link.Store(&pmd.Link{})
	for q := range p.qs {
		if c := p.qs[q].cache; c != nil {
			c.Flush()
		}
	}
	return nil
}
