package fib

import (
	"fmt"
	"net/netip"
)

// Kind says what a next hop does with a packet.
type Kind uint8

const (
	// KindNone is next hop 0, NoRoute: the lookup found no route.
	KindNone Kind = iota
	// KindGateway forwards to Addr through port Port.
	KindGateway
	// KindConnected delivers to the destination itself on port Port.
	KindConnected
	// KindLocal is one of our own addresses (Addr): deliver locally.
	KindLocal
	// KindBlackhole drops silently.
	KindBlackhole
	// KindReject drops and answers ICMP unreachable.
	KindReject
	// KindECMP is a group: the member is picked by the packet's flow hash.
	KindECMP
)

var kindNames = [...]string{"none", "gateway", "connected", "local", "blackhole", "reject", "ecmp"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// NoRoute is the next-hop id every lookup miss returns. It is always present
// in a snapshot's next-hop table with KindNone.
const NoRoute uint32 = 0

// MaxNextHops bounds next-hop ids: the top bit of a value in the lookup
// structure marks a reference to a deeper level.
const MaxNextHops = 1 << 31

// NextHop is a next-hop object; routes refer to it by its id.
// Port ids are opaque integers owned by the port model.
type NextHop struct {
	Kind    Kind
	Port    uint32     // gateway, connected
	Addr    netip.Addr // gateway address, or the local address
	Members []uint32   // ECMP: member next-hop ids (none of them ECMP); read-only once added
}

func (nh NextHop) String() string {
	switch nh.Kind {
	case KindGateway:
		return fmt.Sprintf("gateway %v port %d", nh.Addr, nh.Port)
	case KindConnected:
		return fmt.Sprintf("connected port %d", nh.Port)
	case KindLocal:
		return fmt.Sprintf("local %v", nh.Addr)
	case KindECMP:
		return fmt.Sprintf("ecmp %v", nh.Members)
	}
	return nh.Kind.String()
}
