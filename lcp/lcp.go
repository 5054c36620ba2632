package lcp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/ring"
	"github.com/fwdd/fwdd/txq"
	"golang.org/x/sys/unix"
)

// Burst is the most frames the punt goroutine moves per ring or TAP per
// iteration, and the size of a Producer's buffer.
const Burst = 32

// DefaultRingSize is the capacity of each worker's punt ring.
const DefaultRingSize = 1024

// Config builds an LCP.
type Config struct {
	// Workers is the number of producers (fwd's workers, ids 0..Workers-1).
	Workers int
	// Pools are the mbuf pools by id (mbuf.PoolID), to free punted frames.
	Pools []*mbuf.Pool
	// Cache is the punt goroutine's own cache: injected frames are
	// allocated from it. Owned by the punt goroutine from New on.
	Cache *mbuf.Cache
	// Sender transmits injected frames; owned by the punt goroutine.
	Sender *txq.Sender
	// MaxPorts bounds port ids.
	MaxPorts int
	// RingSize is each worker's ring capacity (power of two). Default
	// DefaultRingSize.
	RingSize int
	// TunDevice overrides the TUN clone device (tests). Default TunDevice.
	TunDevice string
	Log       *slog.Logger
}

// Stats are a port's kernel-interface counters.
type Stats struct {
	Punted     uint64 `json:"punted"`      // frames written to the kernel interface
	PuntDrop   uint64 `json:"punt_drop"`   // frames not punted: ring full, kernel refused, interface gone
	Injected   uint64 `json:"injected"`    // frames the kernel sent, handed to the port
	InjectDrop uint64 `json:"inject_drop"` // frames the kernel sent that were dropped: no mbuf, too big
}

// Info describes a port's kernel interface.
type Info struct {
	Name    string
	Ifindex int // in the interface's namespace
}

// LCP is one stack's set of kernel interfaces and its punt path.
type LCP struct {
	cfg   Config
	log   *slog.Logger
	rings []*ring.Ring[*mbuf.Mbuf]
	prods []*Producer

	// taps is the published table, indexed by port id (nil: none).
	taps atomic.Pointer[[]*tap]

	// Punt goroutine state.
	efd      int // eventfd: wakes the punt goroutine
	sleeping atomic.Bool
	epoch    atomic.Uint64
	stop     atomic.Bool
	running  bool
	done     chan struct{}
	ctr      []portCounters // punt goroutine's, by port (last: out of range)
	scratch  [Burst]*mbuf.Mbuf
	one      [1]*mbuf.Mbuf
	discard  [64]byte
	fds      []unix.PollFd

	mu sync.Mutex // control side
}

// portCounters are written by one goroutine only.
type portCounters struct {
	punted, puntDrop, injected, injectDrop pmd.Counter
	_                                      [32]byte
}

// New makes the rings and the eventfd; the punt goroutine starts with the
// first Add.
func New(cfg Config) (*LCP, error) {
	if cfg.Workers < 1 || cfg.MaxPorts < 1 || cfg.Cache == nil || cfg.Sender == nil {
		return nil, errors.New("lcp: Workers, MaxPorts, Cache and Sender are required")
	}
	if cfg.RingSize == 0 {
		cfg.RingSize = DefaultRingSize
	}
	if cfg.TunDevice == "" {
		cfg.TunDevice = TunDevice
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	l := &LCP{cfg: cfg, log: cfg.Log, ctr: make([]portCounters, cfg.MaxPorts+1), done: make(chan struct{})}
	for w := 0; w < cfg.Workers; w++ {
		r, err := ring.New[*mbuf.Mbuf](cfg.RingSize, ring.SPSC)
		if err != nil {
			return nil, fmt.Errorf("lcp: punt ring: %w", err)
		}
		l.rings = append(l.rings, r)
		l.prods = append(l.prods, &Producer{l: l, r: r, ctr: make([]pmd.Counter, cfg.MaxPorts+1)})
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("lcp: eventfd: %w", err)
	}
	l.efd = efd
	empty := make([]*tap, cfg.MaxPorts)
	l.taps.Store(&empty)
	return l, nil
}

// Producer returns worker's producer (owned by that worker).
func (l *LCP) Producer(worker int) *Producer { return l.prods[worker] }

// Add creates port's kernel interface name with mac, mtu and carrier, in
// the namespace at nsPath ("" = fwdd's own), and starts punting to it. On
// error nothing was created: a taken name (ErrExists) or a missing TUN
// device (ErrNoTun) say what to do.
func (l *LCP) Add(port uint16, name, nsPath string, mac net.HardwareAddr, mtu int, carrier bool) (Info, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if int(port) >= l.cfg.MaxPorts {
		return Info{}, fmt.Errorf("lcp %s: port id %d out of range", name, port)
	}
	cur := *l.taps.Load()
	if cur[port] != nil {
		return Info{}, fmt.Errorf("lcp %s: the port has kernel interface %s already", name, cur[port].name)
	}
	if max := l.maxMTU(); mtu > max {
		l.log.Warn("lcp: kernel interface MTU limited by the mbuf size", "lcp", name, "mtu", mtu, "max", max)
		mtu = max
	}
	t, err := openTap(l.cfg.TunDevice, nsPath, name, mac, mtu, carrier)
	if err != nil {
		return Info{}, err
	}
	t.port = port
	next := append([]*tap(nil), cur...)
	next[port] = t
	l.taps.Store(&next)
	if !l.running {
		l.running = true
		go l.run()
	} else {
		l.wake()
	}
	l.log.Info("lcp: kernel interface up", "lcp", name, "ifindex", t.ifindex, "port", port)
	return Info{Name: t.name, Ifindex: t.ifindex}, nil
}

// maxMTU is the largest MTU whose frames fit an mbuf.
func (l *LCP) maxMTU() int {
	p := l.cfg.Cache.Pool()
	return p.BufSize() - p.Headroom() - 14 - 1
}

// Remove deletes port's kernel interface (nothing if it has none). Frames
// still in the rings for it are freed and counted.
func (l *LCP) Remove(port uint16) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := *l.taps.Load()
	if int(port) >= len(cur) || cur[port] == nil {
		return nil
	}
	t := cur[port]
	next := append([]*tap(nil), cur...)
	next[port] = nil
	l.taps.Store(&next)
	l.synchronize()
	l.log.Info("lcp: kernel interface removed", "lcp", t.name, "port", port)
	return t.close()
}

// Lookup returns port's kernel interface.
func (l *LCP) Lookup(port uint16) (Info, bool) {
	cur := *l.taps.Load()
	if int(port) >= len(cur) || cur[port] == nil {
		return Info{}, false
	}
	return Info{Name: cur[port].name, Ifindex: cur[port].ifindex}, true
}

// SetCarrier sets the carrier of port's kernel interface (the port's link).
func (l *LCP) SetCarrier(port uint16, on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := *l.taps.Load()
	if int(port) >= len(cur) || cur[port] == nil {
		return nil
	}
	if err := setCarrier(cur[port].fd, on); err != nil {
		return fmt.Errorf("lcp %s: %w", cur[port].name, err)
	}
	return nil
}

// SetMTU sets the MTU of port's kernel interface.
func (l *LCP) SetMTU(port uint16, mtu int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := *l.taps.Load()
	if int(port) >= len(cur) || cur[port] == nil {
		return nil
	}
	return cur[port].setMTU(min(mtu, l.maxMTU()))
}

// SetMAC sets the MAC of port's kernel interface (the port's, which
// changes when its device is re-created with another).
func (l *LCP) SetMAC(port uint16, mac net.HardwareAddr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := *l.taps.Load()
	if int(port) >= len(cur) || cur[port] == nil {
		return nil
	}
	return cur[port].setMAC(mac)
}

// Stats returns port's counters, summed over the workers and the punt
// goroutine.
func (l *LCP) Stats(port uint16) Stats {
	i := min(int(port), l.cfg.MaxPorts)
	c := &l.ctr[i]
	s := Stats{Punted: c.punted.Load(), PuntDrop: c.puntDrop.Load(), Injected: c.injected.Load(), InjectDrop: c.injectDrop.Load()}
	for _, p := range l.prods {
		s.PuntDrop += p.ctr[i].Load()
	}
	return s
}

// Close stops the punt goroutine, removes every kernel interface and frees
// what the rings hold. Call it after the workers stopped.
func (l *LCP) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running {
		l.stop.Store(true)
		l.wake()
		<-l.done
		l.running = false
	}
	cur := *l.taps.Load()
	empty := make([]*tap, l.cfg.MaxPorts)
	l.taps.Store(&empty)
	for _, t := range cur {
		if t != nil {
			_ = t.close()
		}
	}
	for _, r := range l.rings {
		for {
			n := r.DequeueBurst(l.scratch[:])
			if n == 0 {
				break
			}
			l.free(l.scratch[:n])
		}
	}
	l.cfg.Sender.Close()
	l.cfg.Cache.Flush()
	if l.efd >= 0 {
		unix.Close(l.efd)
		l.efd = -1
	}
}

// wake makes the punt goroutine look at its rings and table now.
func (l *LCP) wake() {
	var one = [8]byte{1}
	_, _ = unix.Write(l.efd, one[:])
}

// synchronize waits until the punt goroutine finished the iteration it was
// in (it loads the table once per iteration), so that nothing it holds
// refers to an unpublished TAP.
func (l *LCP) synchronize() {
	if !l.running {
		return
	}
	start := l.epoch.Load()
	l.wake()
	for spins := 0; l.epoch.Load() < start+1; spins++ {
		if spins < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// free returns punt-goroutine-owned mbufs to their pools.
func (l *LCP) free(ms []*mbuf.Mbuf) {
	own := l.cfg.Cache.Pool().ID()
	for i, m := range ms {
		if m.PoolID() == own {
			l.cfg.Cache.Free(ms[i : i+1])
		} else {
			l.cfg.Pools[m.PoolID()].Free(ms[i : i+1])
		}
	}
}
