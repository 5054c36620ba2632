package mcast

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// Set is one port's memberships.
type Set struct {
	mu      sync.Mutex
	owners  map[string][][6]byte
	fd      int // -1: detached
	ifindex int
	joined  map[[6]byte]bool
}

// New returns an empty, detached Set.
func New() *Set { return &Set{owners: map[string][][6]byte{}, fd: -1, joined: map[[6]byte]bool{}} }

// Want replaces what owner wants (nil: nothing) and, when attached, joins
// and leaves on the device accordingly.
func (s *Set) Want(owner string, macs []net.HardwareAddr) error {
	var list [][6]byte
	for _, m := range macs {
		if len(m) != 6 || m[0]&1 == 0 {
			return fmt.Errorf("multicast %s: not a multicast Ethernet address (the first octet's low bit is set in those, like 01:80:c2:00:00:14 or 33:33:00:00:00:01)", m)
		}
		var a [6]byte
		copy(a[:], m)
		if !slices.Contains(list, a) {
			list = append(list, a)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(list) == 0 {
		delete(s.owners, owner)
	} else {
		s.owners[owner] = list
	}
	return s.syncLocked()
}

// Attach opens the membership socket (call it in the device's network
// namespace: the socket stays there) and joins every wanted group on
// ifindex. A Set attached elsewhere is detached first.
func (s *Set) Attach(ifindex int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd >= 0 && s.ifindex == ifindex {
		return nil
	}
	s.detachLocked()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) // protocol 0: receives nothing
	if err != nil {
		return fmt.Errorf("multicast memberships: packet socket: %w", err)
	}
	s.fd, s.ifindex = fd, ifindex
	return s.syncLocked()
}

// Detach closes the socket: the kernel leaves every group it joined. The
// wanted groups are kept for the next Attach.
func (s *Set) Detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detachLocked()
}

func (s *Set) detachLocked() {
	if s.fd >= 0 {
		unix.Close(s.fd)
	}
	s.fd, s.ifindex = -1, 0
	clear(s.joined)
}

// syncLocked joins the wanted groups not joined and leaves the joined ones
// no owner wants.
func (s *Set) syncLocked() error {
	if s.fd < 0 {
		return nil
	}
	want := map[[6]byte]bool{}
	for _, l := range s.owners {
		for _, a := range l {
			want[a] = true
		}
	}
	var first error
	for a := range s.joined {
		if !want[a] {
			if err := s.member(unix.PACKET_DROP_MEMBERSHIP, a); err != nil && first == nil {
				first = err
			}
			delete(s.joined, a)
		}
	}
	for a := range want {
		if !s.joined[a] {
			if err := s.member(unix.PACKET_ADD_MEMBERSHIP, a); err != nil {
				if first == nil {
					first = err
				}
				continue
			}
			s.joined[a] = true
		}
	}
	return first
}

func (s *Set) member(op int, a [6]byte) error {
	mr := unix.PacketMreq{Ifindex: int32(s.ifindex), Type: unix.PACKET_MR_MULTICAST, Alen: 6}
	copy(mr.Address[:], a[:])
	if err := unix.SetsockoptPacketMreq(s.fd, unix.SOL_PACKET, op, &mr); err != nil {
		what := "join"
		if op == unix.PACKET_DROP_MEMBERSHIP {
			what = "leave"
		}
		return fmt.Errorf("multicast %s %s on ifindex %d: %w", what, net.HardwareAddr(a[:]), s.ifindex, err)
	}
	return nil
}

// Joined returns the groups joined on the device now, sorted.
func (s *Set) Joined() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.joined))
	for a := range s.joined {
		out = append(out, net.HardwareAddr(a[:]).String())
	}
	sort.Strings(out)
	return out
}

// SolicitedNode returns the Ethernet address of the IPv6 solicited-node
// group of ip (RFC 4291 2.7.1, RFC 2464 7): 33:33:ff and its last 24 bits.
func SolicitedNode(ip [16]byte) net.HardwareAddr {
	return net.HardwareAddr{0x33, 0x33, 0xff, ip[13], ip[14], ip[15]}
}

// Well-known groups.
var (
	AllNodes      = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}       // ff02::1
	AllRouters    = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 2}       // ff02::2
	SlowProtocols = net.HardwareAddr{0x01, 0x80, 0xc2, 0, 0, 0x02} // LACP, marker
)
