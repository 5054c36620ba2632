package nlmirror

import (
	"net/netip"
)

// Route is one kernel route change, copied out of the netlink message into
// plain values (no pointers into the message). A plain route has one hop in
// Hop; a multipath route has its hops in Multi (Hop is then zero).
type Route struct {
	// Del is true for RTM_DELROUTE.
	Del      bool
	Table    uint32
	Dst      netip.Prefix // masked
	Type     uint8        // unix.RTN_*
	Protocol uint8        // unix.RTPROT_*
	Priority uint32       // the route's metric
	// Unsupported is set when the route has something fwdd cannot do
	// (an encapsulation, an MPLS label, a gateway of the other family).
	Unsupported bool
	Hop         Hop
	Multi       []Hop
}

// Hop is one next hop of a kernel route: the interface and the gateway
// (invalid Addr for an on-link route).
type Hop struct {
	Ifindex int32
	Gw      netip.Addr
}

// Hops returns the route's hops: Multi, or Hop alone.
func (r *Route) Hops() []Hop {
	if len(r.Multi) > 0 {
		return r.Multi
	}
	return []Hop{r.Hop}
}

// Link is a kernel interface's state. In a dump, every interface is listed.
type Link struct {
	Del     bool // RTM_DELLINK
	Index   int32
	Name    string
	AdminUp bool // IFF_UP
}

// Addr is an address added to (Del false) or removed from an interface.
type Addr struct {
	Del     bool
	Ifindex int32
	Prefix  netip.Prefix // the address with its prefix length (not masked)
}

// Dump marks the batches of a full resynchronisation: a dump is
// DumpFirst (its Links and Addrs are complete lists), then any number of
// batches of its routes, DumpLast on the last one (a dump of one batch has
// both). Batches outside a dump (Dump == 0) carry events.
type Dump uint8

const (
	DumpFirst Dump = 1 << iota
	DumpLast
)

// Batch is what the mirror hands to its consumer in one piece. Within a
// batch, apply Links, then Addrs, then Routes, each in order.
type Batch struct {
	Dump   Dump
	Links  []Link
	Addrs  []Addr
	Routes []Route
	// Neighs counts the neighbour events in the batch (they are not
	// mirrored: see doc.go).
	Neighs int
	// Reason, on a DumpFirst batch, says why the dump was taken.
	Reason string
}

func (b *Batch) empty() bool {
	return b.Dump == 0 && len(b.Links) == 0 && len(b.Addrs) == 0 && len(b.Routes) == 0 && b.Neighs == 0
}

func (b *Batch) size() int { return len(b.Links) + len(b.Addrs) + len(b.Routes) + b.Neighs }
