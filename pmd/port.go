package pmd

import (
	"log/slog"
	"net"
	"sync"

	"github.com/fwdd/fwdd/mbuf"
)

// Port is a network port: N receive and N transmit queues moving bursts of
// mbufs. Each queue has one owner at a time (the worker polling it):
// RxBurst and TxBurst on one queue must not run concurrently, while
// different queues run in parallel. Info, Link, Stats and Close are safe to
// call from any goroutine.
type Port interface {
	// RxBurst fills ms with received packets and returns how many, n <=
	// len(ms). The caller owns ms[:n]; each has Port and Queue set. It
	// never blocks.
	RxBurst(queue int, ms []*mbuf.Mbuf) int

	// TxBurst transmits a prefix of ms and returns its length n. The port
	// owns ms[:n] from then on (it frees them once sent); the caller keeps
	// ms[n:] and must retry or free them. It never blocks.
	TxBurst(queue int, ms []*mbuf.Mbuf) int

	// Info describes the port. It does not change after Open, except MTU.
	Info() Info

	// Link reports the link state as last seen by the driver.
	Link() Link

	// Stats returns per-queue counters (index = queue), summed on read.
	Stats() []QueueStats

	// Close stops the port and releases everything it holds: device
	// programs, sockets, and every mbuf still queued (returned to its pool).
	// Polling must have stopped first. Close is idempotent.
	Close() error
}

// Poller is an optional interface of ports whose receive queues can be
// waited on (AF_XDP, AF_PACKET): an idle worker in adaptive mode blocks in
// poll(2) on these descriptors instead of spinning.
type Poller interface {
	// RxFD returns the file descriptor that becomes readable when queue has
	// packets, or -1.
	RxFD(queue int) int
}

// Info describes a port.
type Info struct {
	Name     string           `json:"name"`
	Driver   string           `json:"driver"`
	Device   string           `json:"device,omitempty"` // kernel interface, if any
	IfIndex  int              `json:"ifindex,omitempty"`
	MAC      net.HardwareAddr `json:"mac"`
	MTU      int              `json:"mtu"`
	RxQueues int              `json:"rx_queues"`
	TxQueues int              `json:"tx_queues"`
	// Mode is driver-specific: "zerocopy", "copy", "native", "generic"...
	Mode string `json:"mode,omitempty"`
}

// Link is a port's link state.
type Link struct {
	Up bool `json:"up"`
	// Present is false when the underlying device has disappeared.
	Present bool `json:"present"`
	// Downs counts the times the link went down or away since the port
	// was opened, as the driver saw it (0 for drivers that do not count):
	// a change tells a link flap even when it is up again by the time
	// someone looks (the control plane flushes the port's neighbours).
	Downs uint64 `json:"downs,omitempty"`
}

// Config is what Open passes to a driver.
type Config struct {
	// Name of the port ("p0"), used in errors and logs.
	Name string
	// ID is the port's dense id in its stack, stamped on received mbufs.
	ID uint16
	// Driver is the registered driver name.
	Driver string
	// Args are the driver's key=value arguments (like DPDK devargs).
	Args Args
	// Pools are all mbuf pools of the stack, indexed by mbuf.PoolID.
	Pools []*mbuf.Pool
	// QueuePool returns the index in Pools of the pool serving queue q
	// (receive buffers and transmit completions of that queue): the pool of
	// the worker that polls it. Nil means pool 0 for every queue.
	QueuePool func(q int) int
	// NetNS, if set, is the path of a network namespace (/run/netns/NAME)
	// where the driver finds its device.
	NetNS string
	// Log receives the driver's setup messages; nil means slog.Default().
	Log *slog.Logger
	// Shared is the stack's state shared between ports of one driver (nil:
	// the port shares nothing with other ports).
	Shared *Shared
	// LinkChanged, if set, is called by drivers that follow a kernel
	// device (afxdp, afpacket) each time the port's Link or Info changed
	// (down, up, gone, re-created, new MAC or MTU), from the driver's own
	// goroutine: it must return at once (ctl wakes its control loop, which
	// otherwise polls every 100 ms).
	LinkChanged func()
	// Lookup finds another open port of the stack by name, with its id
	// (for drivers with ArgPort arguments: lagg members, a vlan's parent).
	// The stack opens named ports first and keeps them open while this
	// port is. Nil: no other ports.
	Lookup func(name string) (Port, uint16, bool)
}

// Pool returns the pool serving queue q.
func (c *Config) Pool(q int) *mbuf.Pool {
	if c.QueuePool == nil {
		return c.Pools[0]
	}
	return c.Pools[c.QueuePool(q)]
}

// Logger returns c.Log or the default logger.
func (c *Config) Logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// Shared is per-stack state that a driver shares between the ports it
// opens, such as the afxdp driver's UMEMs (one per mbuf pool, used by every
// socket of that pool's worker). A stack makes one and passes it in every
// Config; drivers keep their entries under keys of their own unexported
// types, so drivers never see each other's state. It replaces
// package-level driver state, so several stacks live in one process.
type Shared struct {
	mu sync.Mutex
	m  map[any]any
}

// NewShared returns an empty Shared.
func NewShared() *Shared { return &Shared{m: map[any]any{}} }

// Do runs f with the entries, under the Shared's lock (control plane only:
// Open and Close, never the fast path).
func (s *Shared) Do(f func(entries map[any]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.m)
}
