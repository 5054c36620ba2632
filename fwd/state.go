package fwd

import (
	"net"
	"net/netip"
)

// State is the per-stack configuration the workers read, published whole by
// the control plane (PublishState) and loaded by each worker once per burst.
// It is immutable once published.
type State struct {
	// Ports by port id; absent ports have Present false.
	Ports []PortState
	// Rules is the FIB-selection classifier, in order. Nil: no rules.
	Rules *Rules
	// ICMPRate and ICMPBurst limit ICMP errors per worker (token bucket,
	// packets per second; FreeBSD icmplim). 0 rate: unlimited.
	ICMPRate  int
	ICMPBurst int
}

// PortState is what the workers need to know about a port.
type PortState struct {
	Present bool
	Up      bool
	MAC     [6]byte
	MTU     int
	// FIB is the port's default FIB (FreeBSD's per-interface fib).
	FIB uint16
	// TxQueues is the number of transmit queues txq uses on the port
	// (min(device queues, workers)); 0 counts as 1.
	TxQueues int
	// Addr4 / Addr6 are the port's first IPv4 and IPv6 addresses (zero
	// if none): the source of ICMP errors generated for packets that
	// arrived on the port.
	Addr4    uint32
	Addr6    [16]byte
	HasAddr4 bool
	HasAddr6 bool
	// LCP: the port has a kernel interface; host-bound traffic goes to
	// it (punt.go) instead of being dropped.
	LCP bool
}

// NewPortState builds a PortState from control-plane values.
func NewPortState(mac net.HardwareAddr, mtu int, fib uint16, up bool, addrs []netip.Prefix) PortState {
	ps := PortState{Present: true, Up: up, MTU: mtu, FIB: fib}
	copy(ps.MAC[:], mac)
	for _, a := range addrs {
		ip := a.Addr()
		switch {
		case ip.Is4() && !ps.HasAddr4:
			b := ip.As4()
			ps.Addr4 = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			ps.HasAddr4 = true
		case ip.Is6() && !ip.IsLinkLocalUnicast() && !ps.HasAddr6:
			ps.Addr6 = ip.As16()
			ps.HasAddr6 = true
		}
	}
	return ps
}

// port returns the state of port id, or a zero (absent) state.
func (s *State) port(id uint16) *PortState {
	if int(id) < len(s.Ports) {
		return &s.Ports[id]
	}
	return &absentPort
}

// absentPort is the read-only state of a port that does not exist.
var absentPort PortState

// PublishState gives the workers a new configuration with the current FIB
// set (see Publish to change both). The caller (the control goroutine) must
// not modify st afterwards.
func (e *Engine) PublishState(st *State) { e.Publish(st, nil) }

// State returns the configuration the workers currently use.
func (e *Engine) State() *State { return e.dp.view.Load().st }
