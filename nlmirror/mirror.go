package nlmirror

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Config sets up a Mirror. Zero values take the defaults.
type Config struct {
	// NetNS is the network namespace path ("" for the caller's).
	NetNS string
	Log   *slog.Logger
	// Coalesce, if set, is how long the first event of a batch may wait
	// for more before the batch is offered. By default (0) there is no
	// wait: the batch is offered as soon as the mirror has taken every
	// event the subscriptions have ready (drained), and events that come
	// while the consumer is busy with it gather in the next one. A batch
	// is offered at once when it holds MaxBatch entries (default 16384).
	Coalesce time.Duration
	MaxBatch int
	// MaxPending bounds the entries kept while the consumer has not taken
	// the previous batch (default 1<<20); beyond it the events are
	// dropped and a full dump replaces them.
	MaxPending int
	// DumpChunk is the number of routes per batch of a dump (default 65536).
	DumpChunk int
	// RcvBuf is the route subscription's socket buffer (default 32 MiB;
	// set with SO_RCVBUFFORCE, which needs CAP_NET_ADMIN).
	RcvBuf int
}

func (c *Config) defaults() {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Coalesce < 0 {
		c.Coalesce = 0
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 16384
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 1 << 20
	}
	if c.DumpChunk <= 0 {
		c.DumpChunk = 65536
	}
	if c.RcvBuf <= 0 {
		c.RcvBuf = 32 << 20
	}
}

// Stats are the mirror goroutine's counters.
type Stats struct {
	Batches      uint64 // batches handed over
	Routes       uint64 // route events and dumped routes handed over
	Dumps        uint64 // full dumps taken (the first one included)
	Overruns     uint64 // a subscription failed (ENOBUFS or other error) and was made again
	Coalesced    uint64 // events that arrived while the consumer was busy with a batch (they wait in the next one)
	Dropped      uint64 // pending events dropped for a dump (MaxPending reached)
	Interrupted  uint64 // dumps the kernel interrupted (taken again)
	NeighEvents  uint64
	AddrWrites   uint64 // addresses added to or removed from kernel interfaces
	AddrWriteErr uint64
}

// Mirror is the netlink mirror: one goroutine that owns the subscriptions
// and hands batches to the consumer through Batches. Make it with Start.
type Mirror struct {
	cfg Config
	ns  netns.NsHandle
	out chan *Batch

	resync chan string
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	writes chan AddrWrite
	wdone  chan struct{}

	batches, routes, dumps, overruns, coalesced, dropped, interrupted, neighs atomic.Uint64
	addrWrites, addrWriteErr                                                  atomic.Uint64
}

// ErrNoNamespace is wrapped when the namespace path cannot be opened.
var ErrNoNamespace = errors.New("nlmirror: cannot open network namespace")

// Start subscribes and starts the mirror goroutine. Its first batches are
// a full dump (Reason "start").
func Start(cfg Config) (*Mirror, error) {
	cfg.defaults()
	m := &Mirror{cfg: cfg, ns: netns.None(), out: make(chan *Batch), resync: make(chan string, 1),
		stop: make(chan struct{}), done: make(chan struct{}), writes: make(chan AddrWrite, 1024), wdone: make(chan struct{})}
	if cfg.NetNS != "" {
		h, err := netns.GetFromPath(cfg.NetNS)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %v (see ip netns list)", ErrNoNamespace, cfg.NetNS, err)
		}
		m.ns = h
	}
	subs, err := m.subscribe()
	if err != nil {
		m.closeNS()
		return nil, err
	}
	h, err := m.handle()
	if err != nil {
		subs.close()
		m.closeNS()
		return nil, err
	}
	wh, err := m.handle()
	if err != nil {
		h.Close()
		subs.close()
		m.closeNS()
		return nil, err
	}
	go m.run(subs, h)
	go m.writer(wh)
	return m, nil
}

func (m *Mirror) handle() (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(m.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("nlmirror: netlink socket: %w", err)
	}
	return h, nil
}

func (m *Mirror) closeNS() {
	if m.ns != netns.None() {
		_ = m.ns.Close()
	}
}

// Batches is where the consumer takes batches from. It is unbuffered: a
// batch is handed over only when the consumer is waiting for one, and
// while the consumer works on a batch the next one gathers (so a busy
// consumer gets bigger batches, not more of them).
func (m *Mirror) Batches() <-chan *Batch { return m.out }

// Resync asks for a full dump (reason says why, for the log). It never
// blocks; requests made while one waits are merged.
func (m *Mirror) Resync(reason string) {
	select {
	case m.resync <- reason:
	default:
	}
}

// Stats returns the counters.
func (m *Mirror) Stats() Stats {
	return Stats{
		Batches: m.batches.Load(), Routes: m.routes.Load(), Dumps: m.dumps.Load(), Overruns: m.overruns.Load(),
		Coalesced: m.coalesced.Load(), Dropped: m.dropped.Load(), Interrupted: m.interrupted.Load(),
		NeighEvents: m.neighs.Load(), AddrWrites: m.addrWrites.Load(), AddrWriteErr: m.addrWriteErr.Load(),
	}
}

// Close stops the goroutines and closes the sockets. Batches not taken are
// dropped. It is idempotent.
func (m *Mirror) Close() {
	m.once.Do(func() {
		close(m.stop)
		<-m.done
		<-m.wdone
		m.closeNS()
	})
}

// subs are the four subscriptions; their channels close when the
// subscription fails (the library's goroutine returns after its error
// callback).
type subs struct {
	n      int // subscriptions started (routes, links, addrs, neighs in that order)
	done   chan struct{}
	routes chan netlink.RouteUpdate
	links  chan netlink.LinkUpdate
	addrs  chan netlink.AddrUpdate
	neighs chan netlink.NeighUpdate
	errs   chan error
}

func (s *subs) close() {
	close(s.done)
	// Drain so that the library goroutines see done and return (they
	// close their channel when they do).
	if s.n > 0 {
		go func() {
			for range s.routes {
			}
		}()
	}
	if s.n > 1 {
		go func() {
			for range s.links {
			}
		}()
	}
	if s.n > 2 {
		go func() {
			for range s.addrs {
			}
		}()
	}
	if s.n > 3 {
		go func() {
			for range s.neighs {
			}
		}()
	}
}

// drained reports whether the subscriptions have no event ready: what the
// library's goroutines read from the sockets is all in the pending batch.
func (s *subs) drained() bool {
	return len(s.routes) == 0 && len(s.links) == 0 && len(s.addrs) == 0 && len(s.neighs) == 0
}

func (m *Mirror) subscribe() (*subs, error) {
	s := &subs{
		done:   make(chan struct{}),
		routes: make(chan netlink.RouteUpdate, 4096),
		links:  make(chan netlink.LinkUpdate, 256),
		addrs:  make(chan netlink.AddrUpdate, 256),
		neighs: make(chan netlink.NeighUpdate, 256),
		errs:   make(chan error, 8),
	}
	cb := func(err error) {
		select {
		case s.errs <- err:
		default:
		}
	}
	ns := m.ns
	// SO_RCVBUFFORCE needs CAP_NET_ADMIN: without it, the buffer is what
	// net.core.rmem_max allows.
	force := true
	// Routes first: a large buffer, since a full table arrives at tens of
	// thousands of messages per second.
	err := netlink.RouteSubscribeWithOptions(s.routes, s.done, netlink.RouteSubscribeOptions{
		Namespace: &ns, ErrorCallback: cb, ReceiveBufferSize: m.cfg.RcvBuf, ReceiveBufferForceSize: true,
	})
	if err != nil {
		force = false
		m.cfg.Log.Warn("netlink mirror: cannot force the route socket's buffer (needs CAP_NET_ADMIN); overruns are likelier", "err", err)
		err = netlink.RouteSubscribeWithOptions(s.routes, s.done, netlink.RouteSubscribeOptions{
			Namespace: &ns, ErrorCallback: cb, ReceiveBufferSize: m.cfg.RcvBuf,
		})
	}
	if err != nil {
		close(s.done)
		return nil, fmt.Errorf("nlmirror: route subscription: %w", err)
	}
	s.n = 1
	fail := func(what string, err error) (*subs, error) {
		s.close()
		return nil, fmt.Errorf("nlmirror: %s subscription: %w", what, err)
	}
	small := 4 << 20
	if err := netlink.LinkSubscribeWithOptions(s.links, s.done, netlink.LinkSubscribeOptions{
		Namespace: &ns, ErrorCallback: cb, ReceiveBufferSize: small, ReceiveBufferForceSize: force,
	}); err != nil {
		return fail("link", err)
	}
	s.n = 2
	if err := netlink.AddrSubscribeWithOptions(s.addrs, s.done, netlink.AddrSubscribeOptions{
		Namespace: &ns, ErrorCallback: cb, ReceiveBufferSize: small, ReceiveBufferForceSize: force,
	}); err != nil {
		return fail("address", err)
	}
	s.n = 3
	if err := netlink.NeighSubscribeWithOptions(s.neighs, s.done, netlink.NeighSubscribeOptions{
		Namespace: &ns, ErrorCallback: cb, ReceiveBufferSize: small, ReceiveBufferForceSize: force,
	}); err != nil {
		return fail("neighbour", err)
	}
	s.n = 4
	return s, nil
}

// run is the mirror goroutine: it gathers events into the pending batch and
// offers it to the consumer when it is due (when every ready event is in
// it, or Coalesce after its first event if set, or at MaxBatch entries).
// It never waits for the consumer except while handing over a dump.
func (m *Mirror) run(s *subs, h *netlink.Handle) {
	defer close(m.done)
	defer func() {
		if s != nil {
			s.close()
		}
		h.Close()
	}()
	log := m.cfg.Log
	pending := &Batch{}
	var first time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	dumpReason := "start"
	for {
		if dumpReason != "" {
			if !m.dump(h, dumpReason, pending) {
				return
			}
			pending, dumpReason = &Batch{}, ""
		}
		var out chan<- *Batch
		n := pending.size()
		if n > 0 {
			if n >= m.cfg.MaxBatch || m.cfg.Coalesce == 0 && s.drained() || m.cfg.Coalesce > 0 && time.Since(first) >= m.cfg.Coalesce {
				out = m.out
			} else if m.cfg.Coalesce > 0 && !armed {
				timer.Reset(m.cfg.Coalesce - time.Since(first))
				armed = true
			}
		}
		note := func() {
			if n == 0 {
				first = time.Now()
			}
		}
		lost := ""
		select {
		case out <- pending:
			m.batches.Add(1)
			m.routes.Add(uint64(len(pending.Routes)))
			pending = &Batch{}
			continue
		case <-timer.C:
			armed = false
			continue
		case u, ok := <-s.routes:
			if !ok {
				lost = "route subscription lost"
				break
			}
			note()
			m.addRoute(pending, &u)
			// Take what is already queued without going round the loop.
			for len(s.routes) > 0 && pending.size() < m.cfg.MaxBatch {
				u = <-s.routes
				m.addRoute(pending, &u)
			}
		case u, ok := <-s.links:
			if !ok {
				lost = "link subscription lost"
				break
			}
			note()
			pending.Links = append(pending.Links, linkOf(u.Link, u.Header.Type == unix.RTM_DELLINK))
		case u, ok := <-s.addrs:
			if !ok {
				lost = "address subscription lost"
				break
			}
			if a, ok := addrOf(u.LinkAddress, u.LinkIndex, !u.NewAddr); ok {
				note()
				pending.Addrs = append(pending.Addrs, a)
			}
		case _, ok := <-s.neighs:
			if !ok {
				lost = "neighbour subscription lost"
				break
			}
			note()
			m.neighs.Add(1)
			pending.Neighs++
		case err := <-s.errs:
			log.Warn("netlink mirror: subscription error", "err", err)
			continue
		case r := <-m.resync:
			dumpReason = r
			continue
		case <-m.stop:
			return
		}
		if lost != "" {
			m.overruns.Add(1)
			log.Warn("netlink mirror: subscription lost, resubscribing and taking a full dump", "why", lost)
			s.close()
			s = nil
			for {
				ns, err := m.subscribe()
				if err == nil {
					s = ns
					break
				}
				log.Error("netlink mirror: resubscribe", "err", err)
				select {
				case <-m.stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			dumpReason = lost
			continue
		}
		if pending.size() > m.cfg.MaxPending {
			m.dropped.Add(uint64(pending.size()))
			log.Warn("netlink mirror: consumer too slow, dropping pending events for a full dump", "events", pending.size())
			pending = &Batch{}
			dumpReason = "consumer too slow"
			continue
		}
		if out != nil {
			m.coalesced.Add(1) // an event came while the consumer was busy: it waits in the batch
		}
	}
}

func (m *Mirror) addRoute(b *Batch, u *netlink.RouteUpdate) {
	if u.Type != unix.RTM_NEWROUTE && u.Type != unix.RTM_DELROUTE {
		return
	}
	if r, ok := routeOf(&u.Route, u.Type == unix.RTM_DELROUTE); ok {
		b.Routes = append(b.Routes, r)
	}
}

// dump takes a full dump (links, addresses, then routes in chunks) and
// hands it over, waiting for the consumer. Events gathered before it are
// dropped: the dump holds their effect, and events that arrive during it
// are applied after it (the subscription was made first), so the consumer
// converges. It reports false when the mirror is stopping.
func (m *Mirror) dump(h *netlink.Handle, reason string, pending *Batch) bool {
	log := m.cfg.Log
	for attempt := 0; ; attempt++ {
		m.dumps.Add(1)
		if pending.size() > 0 {
			m.dropped.Add(uint64(pending.size()))
		}
		start := time.Now()
		b := &Batch{Dump: DumpFirst, Reason: reason}
		links, err := h.LinkList()
		if err == nil {
			for _, l := range links {
				b.Links = append(b.Links, linkOf(l, false))
			}
			var addrs []netlink.Addr
			addrs, err = h.AddrList(nil, netlink.FAMILY_ALL)
			if err == nil {
				for _, a := range addrs {
					if x, ok := addrOf(*a.IPNet, a.LinkIndex, false); ok {
						b.Addrs = append(b.Addrs, x)
					}
				}
			}
		}
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			log.Error("netlink mirror: dump", "err", err)
			return m.wait(time.Second)
		}
		interrupted := errors.Is(err, netlink.ErrDumpInterrupted)
		n := 0
		stopped := false
		err = h.RouteListFilteredIter(netlink.FAMILY_ALL, &netlink.Route{}, netlink.RT_FILTER_TABLE, func(r netlink.Route) bool {
			if x, ok := routeOf(&r, false); ok {
				b.Routes = append(b.Routes, x)
				n++
			}
			if len(b.Routes) >= m.cfg.DumpChunk {
				if !m.send(b) {
					stopped = true
					return false
				}
				b = &Batch{}
			}
			return true
		})
		if stopped {
			return false
		}
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			interrupted = true
			err = nil
		}
		if err != nil {
			log.Error("netlink mirror: route dump", "err", err)
			return m.wait(time.Second)
		}
		if interrupted {
			// The kernel changed the tables during the dump: what we
			// sent is applied, a new dump follows and sweeps.
			m.interrupted.Add(1)
			b.Dump |= DumpLast
			if !m.send(b) {
				return false
			}
			if attempt < 3 {
				reason = "dump interrupted"
				continue
			}
			return true
		}
		b.Dump |= DumpLast
		if !m.send(b) {
			return false
		}
		log.Info("netlink mirror: full dump", "why", reason, "routes", n, "took", time.Since(start).Round(time.Millisecond))
		return true
	}
}

// send hands b over, waiting for the consumer (dumps only).
func (m *Mirror) send(b *Batch) bool {
	select {
	case m.out <- b:
		m.batches.Add(1)
		m.routes.Add(uint64(len(b.Routes)))
		return true
	case <-m.stop:
		return false
	}
}

func (m *Mirror) wait(d time.Duration) bool {
	select {
	case <-m.stop:
		return false
	case <-time.After(d):
		m.Resync("retry after a failed dump")
		return true
	}
}

// routeOf copies a netlink route into a Route. It reports false for routes
// that are not the kernel's tables' content (cloned cache entries, other
// families).
func routeOf(r *netlink.Route, del bool) (Route, bool) {
	if r.Flags&unix.RTM_F_CLONED != 0 {
		return Route{}, false
	}
	var dst netip.Prefix
	switch {
	case r.Dst != nil:
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			return Route{}, false
		}
		if r.Family == unix.AF_INET || len(r.Dst.IP) == 4 {
			a = a.Unmap()
		}
		ones, _ := r.Dst.Mask.Size()
		dst = netip.PrefixFrom(a, ones).Masked()
	case r.Family == unix.AF_INET:
		dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	case r.Family == unix.AF_INET6:
		dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	default:
		return Route{}, false
	}
	if !dst.IsValid() {
		return Route{}, false
	}
	out := Route{Del: del, Table: uint32(r.Table), Dst: dst, Type: uint8(r.Type), Protocol: uint8(r.Protocol), Priority: uint32(r.Priority)}
	out.Unsupported = r.Encap != nil || r.Via != nil || r.MPLSDst != nil || r.NewDst != nil
	if len(r.MultiPath) > 0 {
		out.Multi = make([]Hop, 0, len(r.MultiPath))
		for _, nh := range r.MultiPath {
			if nh.Encap != nil || nh.Via != nil || nh.NewDst != nil {
				out.Unsupported = true
			}
			out.Multi = append(out.Multi, Hop{Ifindex: int32(nh.LinkIndex), Gw: ipAddr(nh.Gw)})
		}
	} else {
		out.Hop = Hop{Ifindex: int32(r.LinkIndex), Gw: ipAddr(r.Gw)}
		// A unicast route with neither interface nor gateway uses a
		// kernel nexthop object (RTA_NH_ID), which this mirror does not
		// follow.
		if r.Type == unix.RTN_UNICAST && r.LinkIndex == 0 && r.Gw == nil {
			out.Unsupported = true
		}
	}
	return out, true
}

func ipAddr(ip net.IP) netip.Addr {
	if ip == nil {
		return netip.Addr{}
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func linkOf(l netlink.Link, del bool) Link {
	a := l.Attrs()
	return Link{Del: del, Index: int32(a.Index), Name: a.Name, AdminUp: a.Flags&net.FlagUp != 0}
}

// addrOf copies an interface address; IPv6 link-local addresses are left
// out (every interface has its own fe80::/64: they are not port addresses).
func addrOf(n net.IPNet, ifindex int, del bool) (Addr, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return Addr{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 0 || a.Is6() && a.IsLinkLocalUnicast() {
		return Addr{}, false
	}
	return Addr{Del: del, Ifindex: int32(ifindex), Prefix: netip.PrefixFrom(a, ones)}, true
}
