package xsk

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Mode selects copy or zero-copy operation of a socket.
type Mode int

const (
	// ModeAuto binds with neither XDP_COPY nor XDP_ZEROCOPY: the kernel
	// tries zero-copy and falls back to copy mode. Socket.ZeroCopy says
	// which one is in use.
	ModeAuto Mode = iota
	// ModeCopy forces copy mode (XDP_COPY).
	ModeCopy
	// ModeZeroCopy forces zero-copy (XDP_ZEROCOPY); binding fails where
	// the driver cannot do it.
	ModeZeroCopy
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeCopy:
		return "copy"
	case ModeZeroCopy:
		return "zerocopy"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ModeNames are the Modes' names, in order: the one list the afxdp
// driver's argument description and the traffic generator's flag use.
var ModeNames = []string{"auto", "copy", "zerocopy"}

// ParseMode returns the Mode named s ("auto", "copy" or "zerocopy").
func ParseMode(s string) (Mode, bool) {
	for i, n := range ModeNames {
		if s == n {
			return Mode(i), true
		}
	}
	return 0, false
}

// BusyPoll configures preferred busy polling on a socket (kernel >= 5.11).
// The zero value leaves it off.
type BusyPoll struct {
	// Timeout is SO_BUSY_POLL: how long a kick busy-polls the device's
	// NAPI context. Zero disables busy polling.
	Timeout time.Duration
	// Budget is SO_BUSY_POLL_BUDGET: packets per busy-poll round
	// (0: the kernel default, 8; use the burst size, e.g. 64).
	Budget int
}

// SocketConfig describes one AF_XDP socket.
type SocketConfig struct {
	Ifindex int // interface index (see net.InterfaceByName)
	Queue   int // device queue id, 0 <= Queue < the device's queue count

	// Ring sizes in slots, powers of two. 0 means DefaultRingSize.
	FillSize, CompletionSize, RxSize, TxSize uint32

	// Mode is copy, zero-copy or auto. Only the first socket opened on a
	// Umem chooses; the sockets that share it inherit its mode (a kernel
	// rule), and Mode must then be ModeAuto or match it.
	Mode Mode

	// DisableNeedWakeup turns XDP_USE_NEED_WAKEUP off (it is on by
	// default). Like Mode, only the first socket of a Umem chooses.
	DisableNeedWakeup bool

	// BusyPoll enables SO_PREFER_BUSY_POLL with the given timeout and
	// budget. Kicks (WakeupRx, FlushTx) then drive the device's NAPI.
	BusyPoll BusyPoll

	// TxSkbBudget is XDP_MAX_TX_SKB_BUDGET (Linux >= 6.17): how many
	// frames one transmit kick sends in copy mode, where the kernel builds
	// an skb per frame. The kernel's default is 32, so a 64-frame burst
	// needs two sendto calls. 0 asks for the TX ring size (the largest the
	// kernel accepts), so one kick sends a whole burst; -1 leaves the
	// kernel's default. Older kernels answer ENOPROTOOPT and keep their
	// default: not an error.
	TxSkbBudget int
}

// Socket is one AF_XDP socket bound to (interface, queue), with its own
// fill, completion, RX and TX rings over a shared Umem.
//
// A Socket's burst methods (Fill, Complete, Receive, Transmit, FlushTx,
// WakeupRx, FillFree, TxFree) must be called from one goroutine at a time
// (the worker that owns the queue); they never allocate or block. Stats,
// Err and the accessors may be called from any goroutine while the socket is
// open. Close must not race with any other method: stop the worker first.
type Socket struct {
	fd       int
	umem     *Umem
	ifindex  int
	queue    int
	zeroCopy bool
	wakeup   bool // XDP_USE_NEED_WAKEUP in effect
	busyPoll bool
	txBudget int // XDP_MAX_TX_SKB_BUDGET in effect; 0: the kernel's default

	fill prodRing[uint64]
	comp consRing[uint64]
	rx   consRing[Desc]
	tx   prodRing[Desc]
	maps [4][]byte

	// Counters: written by the owning worker only (atomic stores so that
	// Stats may read them from elsewhere), summed on read.
	rxPackets, txPackets, filled, completed atomic.Uint64
	txKicks, txKicksSkipped, rxKicks        atomic.Uint64
	kickErrors                              atomic.Uint64
	lastErr                                 atomic.Uintptr // last unix.Errno from a kick

	closed bool
}

func ringSize(n uint32, what string) (uint32, error) {
	if n == 0 {
		return DefaultRingSize, nil
	}
	if n&(n-1) != 0 || n > 1<<20 {
		return 0, fmt.Errorf("xsk: %s ring size %d: %w (must be a power of two <= 1M)", what, n, ErrInvalidConfig)
	}
	return n, nil
}

// NewSocket opens an AF_XDP socket on cfg.Ifindex/cfg.Queue over u. The first
// socket of a Umem registers the region with the kernel; the others bind with
// XDP_SHARED_UMEM (their own fill and completion rings, any interface and
// queue, kernel >= 5.10). Each (interface, queue) may be used once per Umem.
//
// Register the socket in the interface's Program for it to receive.
func (u *Umem) NewSocket(cfg SocketConfig) (*Socket, error) {
	var sizes [4]uint32
	var err error
	for i, x := range []struct {
		n    uint32
		what string
	}{{cfg.FillSize, "fill"}, {cfg.CompletionSize, "completion"}, {cfg.RxSize, "rx"}, {cfg.TxSize, "tx"}} {
		if sizes[i], err = ringSize(x.n, x.what); err != nil {
			return nil, err
		}
	}
	if cfg.Ifindex <= 0 || cfg.Queue < 0 {
		return nil, fmt.Errorf("xsk: ifindex %d queue %d: %w", cfg.Ifindex, cfg.Queue, ErrInvalidConfig)
	}
	where := fmt.Sprintf("xsk: ifindex %d queue %d", cfg.Ifindex, cfg.Queue)

	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.live {
		if x.ifindex == cfg.Ifindex && x.queue == cfg.Queue {
			return nil, fmt.Errorf("%s: %w (this Umem already has a socket there)", where, ErrBusy)
		}
	}
	var anchor *Socket
	if len(u.live) > 0 {
		anchor = u.live[0]
		if (cfg.Mode == ModeCopy && anchor.zeroCopy) || (cfg.Mode == ModeZeroCopy && !anchor.zeroCopy) {
			return nil, fmt.Errorf("%s: mode %v: %w (sockets sharing a Umem inherit the mode of its first socket, zero-copy=%v)",
				where, cfg.Mode, ErrInvalidConfig, anchor.zeroCopy)
		}
	}

	// The kernel releases a closed socket's hold on its queue in deferred
	// work (xp_release_deferred), so a bind right after closing the previous
	// socket of the queue may see EBUSY for a moment, longer on a loaded
	// machine. Retry with a fresh socket for up to busyRetry.
	//
	// A shared bind through an anchor whose device was deleted fails with
	// EBADF (the kernel unbound it): try the next open socket as anchor.
	deadline := time.Now().Add(busyRetry)
	next := 1
	for {
		fd, err := newXDPSocket()
		if err != nil {
			return nil, err
		}
		s := &Socket{fd: fd, umem: u, ifindex: cfg.Ifindex, queue: cfg.Queue}
		err = s.setup(cfg, sizes, anchor, where)
		if err == nil {
			u.live = append(u.live, s)
			return s, nil
		}
		s.release()
		switch {
		case anchor != nil && errors.Is(err, unix.EBADF) && next < len(u.live):
			anchor = u.live[next]
			next++
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(5 * time.Millisecond)
		default:
			return nil, err
		}
	}
}

// busyRetry bounds how long NewSocket retries a bind that fails with EBUSY.
const busyRetry = 2 * time.Second

func (s *Socket) setup(cfg SocketConfig, sizes [4]uint32, anchor *Socket, where string) error {
	u := s.umem
	if anchor == nil {
		if err := registerUmem(s.fd, u.region, u.chunk, u.headroom); err != nil {
			return fmt.Errorf("%s: register UMEM (%d bytes, chunk %d): %w (check RLIMIT_MEMLOCK / memory cgroup)", where, len(u.region), u.chunk, err)
		}
	}
	for i, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING, unix.XDP_TX_RING} {
		if err := setsockoptInt(s.fd, unix.SOL_XDP, opt, int(sizes[i])); err != nil {
			return fmt.Errorf("%s: set ring size %d (option %d): %w", where, sizes[i], opt, err)
		}
	}
	off, err := mmapOffsets(s.fd)
	if err != nil {
		return err
	}
	{
		prod, cons, flags, slots, mem, err := mapRing[uint64](s.fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, sizes[0])
		if err != nil {
			return fmt.Errorf("%s: mmap fill ring: %w", where, err)
		}
		s.maps[0], s.fill = mem, newProdRing(prod, cons, flags, slots)
	}
	{
		prod, cons, flags, slots, mem, err := mapRing[uint64](s.fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, sizes[1])
		if err != nil {
			return fmt.Errorf("%s: mmap completion ring: %w", where, err)
		}
		s.maps[1], s.comp = mem, newConsRing(prod, cons, flags, slots)
	}
	{
		prod, cons, flags, slots, mem, err := mapRing[Desc](s.fd, unix.XDP_PGOFF_RX_RING, off.Rx, sizes[2])
		if err != nil {
			return fmt.Errorf("%s: mmap rx ring: %w", where, err)
		}
		s.maps[2], s.rx = mem, newConsRing(prod, cons, flags, slots)
	}
	{
		prod, cons, flags, slots, mem, err := mapRing[Desc](s.fd, unix.XDP_PGOFF_TX_RING, off.Tx, sizes[3])
		if err != nil {
			return fmt.Errorf("%s: mmap tx ring: %w", where, err)
		}
		s.maps[3], s.tx = mem, newProdRing(prod, cons, flags, slots)
	}
	// The TX ring exists now (before it the kernel answers EACCES).
	if budget := txSkbBudget(cfg.TxSkbBudget, sizes[3]); budget > 0 {
		switch err := setsockoptInt(s.fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, budget); {
		case err == nil:
			s.txBudget = budget
		case errors.Is(err, unix.ENOPROTOOPT):
			// Kernel < 6.17: its fixed budget (32) stays.
		default:
			return fmt.Errorf("%s: XDP_MAX_TX_SKB_BUDGET %d: %w (use 32 up to the TX ring size)", where, budget, err)
		}
	}

	if cfg.BusyPoll.Timeout > 0 {
		usecs := int(cfg.BusyPoll.Timeout / time.Microsecond)
		if usecs < 1 {
			usecs = 1
		}
		if err := setsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_PREFER_BUSY_POLL, 1); err != nil {
			return fmt.Errorf("%s: SO_PREFER_BUSY_POLL: %w (%w: needs kernel >= 5.11; turn busy polling off)", where, err, ErrNotSupported)
		}
		if err := setsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, usecs); err != nil {
			return fmt.Errorf("%s: SO_BUSY_POLL %dus: %w", where, usecs, err)
		}
		if cfg.BusyPoll.Budget > 0 {
			if err := setsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL_BUDGET, cfg.BusyPoll.Budget); err != nil {
				return fmt.Errorf("%s: SO_BUSY_POLL_BUDGET %d: %w", where, cfg.BusyPoll.Budget, err)
			}
		}
		s.busyPoll = true
	}

	if anchor != nil {
		if err := bindXDP(s.fd, cfg.Ifindex, cfg.Queue, unix.XDP_SHARED_UMEM, anchor.fd); err != nil {
			return fmt.Errorf("%s: bind with XDP_SHARED_UMEM: %w (%s)", where, err, bindHint(err))
		}
		s.wakeup = anchor.wakeup
	} else {
		var flags uint16
		if !cfg.DisableNeedWakeup {
			flags |= unix.XDP_USE_NEED_WAKEUP
		}
		switch cfg.Mode {
		case ModeCopy:
			flags |= unix.XDP_COPY
		case ModeZeroCopy:
			flags |= unix.XDP_ZEROCOPY
		}
		if err := bindXDP(s.fd, cfg.Ifindex, cfg.Queue, flags, -1); err != nil {
			if cfg.Mode == ModeZeroCopy && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)) {
				return fmt.Errorf("%s: bind zero-copy: %w (%w: the driver cannot do AF_XDP zero-copy; use mode copy or auto)", where, err, ErrNotSupported)
			}
			return fmt.Errorf("%s: bind (mode %v): %w (%s)", where, cfg.Mode, err, bindHint(err))
		}
		s.wakeup = !cfg.DisableNeedWakeup
	}
	zc, err := zeroCopyInUse(s.fd)
	if err != nil {
		return err
	}
	s.zeroCopy = zc
	return nil
}

func bindHint(err error) string {
	switch {
	case errors.Is(err, unix.EBUSY):
		return "the queue already has an AF_XDP socket: close it or use another queue"
	case errors.Is(err, unix.EINVAL):
		return "queue id out of range for the device? check its channel count"
	case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return "no such interface: check the ifindex (see ip link)"
	case errors.Is(err, unix.EBADF):
		return "every socket sharing this UMEM lost its device: close them and open again"
	case errors.Is(err, unix.EOPNOTSUPP):
		return "the driver cannot do this mode, or shared UMEM across devices needs kernel >= 5.10"
	}
	return "see dmesg"
}

// release unmaps the rings and closes the fd; it does not touch the Umem.
func (s *Socket) release() error {
	s.fill, s.comp, s.rx, s.tx = prodRing[uint64]{}, consRing[uint64]{}, consRing[Desc]{}, prodRing[Desc]{}
	var first error
	for i, m := range s.maps {
		if m != nil {
			if err := unix.Munmap(m); err != nil && first == nil {
				first = err
			}
			s.maps[i] = nil
		}
	}
	if s.fd >= 0 {
		if err := unix.Close(s.fd); err != nil && first == nil {
			first = err
		}
		s.fd = -1
	}
	return first
}

// Close unmaps the rings and closes the socket; the kernel removes it from
// any XSKMAP. Buffers still on its rings are owned by the caller again (the
// caller tracks them; the kernel forgets them). Close is idempotent.
func (s *Socket) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.umem.remove(s)
	if err := s.release(); err != nil {
		return fmt.Errorf("xsk: close socket ifindex %d queue %d: %w", s.ifindex, s.queue, err)
	}
	return nil
}

// FD returns the socket's file descriptor (for an XSKMAP or poll).
func (s *Socket) FD() int { return s.fd }

// Ifindex returns the interface index the socket is bound to.
func (s *Socket) Ifindex() int { return s.ifindex }

// Queue returns the queue id the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// Umem returns the Umem the socket uses.
func (s *Socket) Umem() *Umem { return s.umem }

// ZeroCopy reports whether the kernel runs this socket in zero-copy mode
// (XDP_OPTIONS_ZEROCOPY); false means copy mode.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// NeedWakeup reports whether XDP_USE_NEED_WAKEUP is in effect.
func (s *Socket) NeedWakeup() bool { return s.wakeup }

// BusyPolling reports whether preferred busy polling is on.
func (s *Socket) BusyPolling() bool { return s.busyPoll }

// TxSkbBudget is the XDP_MAX_TX_SKB_BUDGET in effect: frames one transmit
// kick sends in copy mode; 0 when the kernel keeps its default (32).
func (s *Socket) TxSkbBudget() int { return s.txBudget }

// txSkbBudget resolves SocketConfig.TxSkbBudget against the TX ring size:
// the kernel accepts 32 up to the ring size.
func txSkbBudget(want int, txRing uint32) int {
	switch {
	case want < 0, txRing < 32:
		return 0
	case want == 0 || want > int(txRing):
		return int(txRing)
	case want < 32:
		return 32
	}
	return want
}

// Fill gives the chunks at the UMEM addresses addrs to the kernel for
// receiving (fill ring). It produces the longest prefix of addrs that fits
// and returns its length; the caller keeps addrs[n:]. One release store per
// call. Addresses must be chunk-aligned offsets into the region, each owned
// by the caller until the kernel hands it back through Receive.
func (s *Socket) Fill(addrs []uint64) int {
	n := s.fill.produce(addrs)
	if n > 0 {
		s.filled.Store(s.filled.Load() + uint64(n))
	}
	return n
}

// FillFree returns how many addresses Fill would accept now.
func (s *Socket) FillFree() int { return int(s.fill.free(s.fill.size)) }

// Complete consumes up to len(addrs) addresses of transmitted frames from
// the completion ring into addrs[:n] and returns n. The chunks are the
// caller's again.
func (s *Socket) Complete(addrs []uint64) int {
	n := s.comp.consume(addrs)
	if n > 0 {
		s.completed.Store(s.completed.Load() + uint64(n))
	}
	return n
}

// Receive consumes up to len(descs) received descriptors into descs[:n] and
// returns n. The chunks they point into are the caller's until given back
// with Fill or Transmit (on any socket of the same Umem).
func (s *Socket) Receive(descs []Desc) int {
	n := s.rx.consume(descs)
	if n > 0 {
		s.rxPackets.Store(s.rxPackets.Load() + uint64(n))
	}
	return n
}

// Transmit produces the longest prefix of descs that fits into the TX ring
// and returns its length; the frames of descs[:n] belong to the kernel until
// they come back through Complete, the caller keeps descs[n:]. It publishes
// with one release store and makes no system call: call FlushTx once per
// burst (or per poll round) to kick the kernel when it asks for it.
func (s *Socket) Transmit(descs []Desc) int {
	n := s.tx.produce(descs)
	if n > 0 {
		s.txPackets.Store(s.txPackets.Load() + uint64(n))
	}
	return n
}

// TxFree returns how many descriptors Transmit would accept now.
func (s *Socket) TxFree() int { return int(s.tx.free(s.tx.size)) }

// TxPending returns how many transmitted descriptors the kernel has not
// consumed from the TX ring yet.
func (s *Socket) TxPending() int { return int(s.tx.outstanding()) }

// FlushTx kicks the kernel (sendto, non-blocking) if the TX ring holds
// descriptors it has not consumed and, with need_wakeup, only if the kernel
// set XDP_RING_NEED_WAKEUP on the TX ring; while the kernel answers EAGAIN
// (copy mode: it took its budget of 32 and more are waiting) it kicks again,
// at most maxTxKicks times. Transient conditions (EAGAIN,
// EBUSY, ENOBUFS: the kernel consumed part of the ring) return nil; call
// again next round. Other errors (ENETDOWN: link down; ENXIO: interface
// gone) are returned as a unix.Errno (no allocation) and remembered in Err.
func (s *Socket) FlushTx() error {
	if s.tx.slots == nil {
		return ErrClosed
	}
	if s.tx.outstanding() == 0 {
		return nil
	}
	if s.wakeup && !s.busyPoll && !s.tx.needWakeup() {
		s.txKicksSkipped.Store(s.txKicksSkipped.Load() + 1)
		return nil
	}
	// In copy mode the kernel sends at most 32 frames per sendto and says
	// EAGAIN when more are waiting: kick again, a bounded number of times,
	// so that a 64-frame burst leaves in one FlushTx instead of piling up.
	var e unix.Errno
	kicks := uint64(0)
	for range maxTxKicks {
		kicks++
		if e = kickTx(s.fd); e != unix.EAGAIN {
			break
		}
	}
	s.txKicks.Store(s.txKicks.Load() + kicks)
	return s.kickResult(e)
}

// maxTxKicks bounds the sendto calls of one FlushTx (4 x 32 frames in copy
// mode covers two 64-frame bursts).
const maxTxKicks = 4

// WakeupRx kicks the kernel's receive side (recvfrom, non-blocking) when it
// needs it: with busy polling on (that is what drives the NAPI context), or
// with need_wakeup when the kernel set XDP_RING_NEED_WAKEUP on the fill
// ring. Otherwise it makes no system call. Errors as for FlushTx.
func (s *Socket) WakeupRx() error {
	if s.fill.slots == nil {
		return ErrClosed
	}
	if !s.busyPoll && !(s.wakeup && s.fill.needWakeup()) {
		return nil
	}
	s.rxKicks.Store(s.rxKicks.Load() + 1)
	return s.kickResult(kickRx(s.fd))
}

// FillNeedsWakeup reports whether the kernel asked to be woken up to
// process the fill ring (always false without need_wakeup).
func (s *Socket) FillNeedsWakeup() bool { return s.wakeup && s.fill.needWakeup() }

// TxNeedsWakeup reports whether the kernel asked to be woken up to process
// the TX ring (always false without need_wakeup).
func (s *Socket) TxNeedsWakeup() bool { return s.wakeup && s.tx.needWakeup() }

func (s *Socket) kickResult(e unix.Errno) error {
	switch e {
	case 0, unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.EINTR:
		return nil
	}
	s.kickErrors.Store(s.kickErrors.Load() + 1)
	s.lastErr.Store(uintptr(e))
	return e
}

// Err returns the last error a kick reported (a unix.Errno such as ENETDOWN
// or ENXIO), or nil.
func (s *Socket) Err() error {
	if e := unix.Errno(s.lastErr.Load()); e != 0 {
		return e
	}
	return nil
}

// Poll blocks until the RX ring has descriptors, the socket reports an error,
// or timeout passes (negative: forever). It is for idle workers; a busy
// worker just calls Receive. It returns whether RX has data.
func (s *Socket) Poll(timeout time.Duration) (bool, error) {
	if s.fd < 0 {
		return false, ErrClosed
	}
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	rev, err := pollFD(s.fd, unix.POLLIN, ms)
	if err != nil {
		return false, fmt.Errorf("xsk: poll ifindex %d queue %d: %w", s.ifindex, s.queue, err)
	}
	if rev&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
		return false, fmt.Errorf("xsk: poll ifindex %d queue %d: revents %#x: %w (interface down or gone?)", s.ifindex, s.queue, rev, unix.ENETDOWN)
	}
	return rev&unix.POLLIN != 0, nil
}

// Stats are a socket's counters: ring traffic counted by this package and
// the kernel's XDP_STATISTICS.
type Stats struct {
	RxPackets      uint64 // descriptors consumed from the RX ring
	TxPackets      uint64 // descriptors produced into the TX ring
	Filled         uint64 // addresses produced into the fill ring
	Completed      uint64 // addresses consumed from the completion ring
	TxKicks        uint64 // sendto calls made by FlushTx
	TxKicksSkipped uint64 // FlushTx calls that skipped sendto (need_wakeup not set)
	RxKicks        uint64 // recvfrom calls made by WakeupRx
	KickErrors     uint64 // kicks that failed with a non-transient errno

	Kernel unix.XDPStatistics // rx_dropped, rx_invalid_descs, tx_invalid_descs, rx_ring_full, ...
}

// Stats returns the socket's counters. The kernel part is read with
// getsockopt; its error (e.g. after Close) is returned with the rest filled.
func (s *Socket) Stats() (Stats, error) {
	st := Stats{
		RxPackets: s.rxPackets.Load(), TxPackets: s.txPackets.Load(),
		Filled: s.filled.Load(), Completed: s.completed.Load(),
		TxKicks: s.txKicks.Load(), TxKicksSkipped: s.txKicksSkipped.Load(),
		RxKicks: s.rxKicks.Load(), KickErrors: s.kickErrors.Load(),
	}
	if s.fd < 0 {
		return st, ErrClosed
	}
	k, err := xdpStatistics(s.fd)
	if err != nil {
		return st, fmt.Errorf("xsk: XDP_STATISTICS: %w", err)
	}
	st.Kernel = k
	return st, nil
}
