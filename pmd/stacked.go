package pmd

import (
	"net"
	"sync/atomic"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd/flowhash"
	"github.com/fwdd/fwdd/ring"
)

// Stacked is implemented by virtual ports that receive through other ports
// of the stack (FreeBSD's if_vlan and if_lagg): they have no receive queues
// of their own. The stack reads Lowers when the port is attached and when
// it calls Rebind, and from then on the workers, polling the lower ports,
// take those frames as received on this port: its addresses, FIB, rules,
// neighbours and counters. A lower port bound with AllFrames (a lagg
// member) is never routed as itself.
type Stacked interface {
	Port
	// Lowers returns where the port receives from. Control plane only.
	Lowers() []Lower
}

// AllFrames binds every frame of the lower port (a lagg member); a VLAN id
// binds only frames tagged with it.
const AllFrames = -1

// Lower is one binding of a Stacked port to a port below it.
type Lower struct {
	// Port is the lower port's id (a vlan's parent, a lagg's member).
	Port uint16
	// VID is AllFrames, or the VLAN id 1..4094 whose tagged frames are
	// this port's (the tag is removed before the pipeline sees them).
	VID int
	// Rx, if not nil, counts the frames taken (index: worker id; the
	// workers' number plus one entries, for the control path).
	Rx []QueueCounters
	// Collecting, if not nil, gates an AllFrames binding: while it is
	// false the lower port's frames are dropped (a lagg member not
	// collecting), except slow-protocol frames.
	Collecting *atomic.Bool
	// Control, if not nil, receives the lower port's slow-protocol frames
	// (EtherType 0x8809: LACP, marker) with mbuf.Port set to the lower
	// port; it is multi-producer (several workers). A full ring drops and
	// counts. Nil: such frames are dropped.
	Control *ring.Ring[*mbuf.Mbuf]
}

// TxHasher is implemented by ports that spread their transmitted frames
// over lower ports by a flow hash (a lagg's loadbalance and lacp). TxHash
// returns that hash (nil: the port needs none, e.g. failover); the stack
// reads it when the port is attached and on Rebind. Its pipeline then
// computes the hash of the frames it routes to the port where it rewrites
// their headers, and passes it in mbuf.Hash with mbuf.FlagTxHash (and
// FlagHashValid) set: the port reads the mbuf instead of the frame. The
// value must equal TxHash().Frame of the frame as transmitted; frames
// without the flag the port hashes itself. Only honoured on Stacked
// ports.
type TxHasher interface {
	TxHash() *flowhash.Hash
}

// Servicer is implemented by ports that run a protocol of their own on the
// stack's control goroutine (a lagg's LACP): the stack calls Service about
// every 100 ms and when woken, never concurrently with itself.
type Servicer interface {
	Service(io ControlIO)
}

// ControlIO is what the stack gives a Servicer: buffers and transmission
// through the stack's control path (which reaches every port's transmit
// queues safely, whichever worker owns them).
type ControlIO interface {
	// Alloc fills ms with empty mbufs and returns how many.
	Alloc(ms []*mbuf.Mbuf) int
	// Send transmits complete frames on port id and takes ownership of
	// them.
	Send(port uint16, ms []*mbuf.Mbuf)
	// Rebind tells the stack the Servicer's Lowers changed.
	Rebind()
}

// Statuser is implemented by ports with state to show beyond Info and
// Stats (a lagg's members and LACP): "show DRIVER" renders Status as a
// table, and the metrics export its gauges. Control plane only.
type Statuser interface {
	Status() Status
}

// Status is a port's state as a table and as gauges.
type Status struct {
	Columns []string
	Rows    [][]string
	Gauges  []Gauge
}

// Gauge is one metric sample, exported as
// fwdd_port_status{port, member, name, info} VALUE.
type Gauge struct {
	Port   string // the port
	Member string // a part of it (a lagg member), or ""
	Name   string // what: lagg_member_active, lagg_lacp_actor_state...
	Info   string // a textual value (a partner system), or ""
	Value  float64
}

// Multicaster is implemented by ports that can join link-layer multicast
// groups on their device (afxdp, afpacket) or pass them on to the ports
// under them (vlan: its parent; lagg: every member). Each owner (the
// stack's addresses, the operator's joins, a lagg) sets its own list; a
// group stays joined while one owner wants it. Control plane only.
type Multicaster interface {
	// SetMulticast replaces owner's groups (nil: none).
	SetMulticast(owner string, macs []net.HardwareAddr) error
	// Multicast returns the groups joined on the device (or wanted, for
	// ports without one), sorted.
	Multicast() []string
}
