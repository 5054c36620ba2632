package lltable

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// AddStatic adds or replaces a static entry (`neigh add PORT ADDR lladdr
// MAC`): it never expires and no received packet changes it. An existing
// dynamic entry becomes static; packets it held leave at once.
func (t *Table) AddStatic(port uint16, addr netip.Addr, mac [6]byte) error {
	ps := t.ports[port]
	if ps == nil {
		return fmt.Errorf("%w %d: declare the port first", ErrNoPort, port)
	}
	addr = addr.Unmap()
	if !validNeighbour(addr) {
		return fmt.Errorf("%w: %v (a unicast IPv4 or IPv6 address without zone)", ErrAddr, addr)
	}
	if isMulticastMAC(mac) || mac == [6]byte{} {
		return fmt.Errorf("%w: lladdr %s is not a unicast MAC", ErrAddr, net.HardwareAddr(mac[:]))
	}
	if ps.ours(addr) {
		return fmt.Errorf("%w: %v is one of port %d's own addresses", ErrAddr, addr, port)
	}
	now := t.clock.Now()
	e := t.entries[key{port, addr}]
	if e == nil {
		if e = t.create(port, ps, addr, now); e == nil {
			return fmt.Errorf("%w: %d entries on port %d, %d in all (raise the limits or delete some)",
				ErrFull, ps.n, port, len(t.entries))
		}
		e.mac = mac
		t.setState(e, StateStatic, now, 0)
		t.dirty = true
		return nil
	}
	old := e.state
	t.setMAC(e, mac)
	t.setState(e, StateStatic, now, 0)
	if old == StateIncomplete && len(e.hold) > 0 {
		t.held -= len(e.hold)
		t.send(e, e.hold)
		clear(e.hold)
		e.hold = e.hold[:0]
	}
	return nil
}

// Delete removes the entry for addr on port, static or not (`neigh del`).
// Packets it held are freed.
func (t *Table) Delete(port uint16, addr netip.Addr) error {
	e := t.entries[key{port, addr.Unmap()}]
	if e == nil {
		return fmt.Errorf("%w: %v on port %d", ErrNotFound, addr, port)
	}
	t.delete(e)
	return nil
}

// Entry describes one neighbour entry for `show neigh`.
type Entry struct {
	Port    uint16        `json:"port"`
	Addr    netip.Addr    `json:"addr"`
	MAC     [6]byte       `json:"-"`
	LLAddr  string        `json:"lladdr,omitempty"` // MAC as text; empty while unresolved
	State   State         `json:"-"`
	StateS  string        `json:"state"`
	Router  bool          `json:"router,omitempty"`
	Age     time.Duration `json:"age"`               // since the last state change
	Expires time.Duration `json:"expires,omitempty"` // until the next timer; 0 for none
	Probes  int           `json:"probes,omitempty"`
	Held    int           `json:"held,omitempty"`
}

// List returns every entry, sorted by port then address (IPv4 first).
func (t *Table) List() []Entry {
	now := t.clock.Now()
	out := make([]Entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e.info(now))
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := cmp.Compare(a.Port, b.Port); c != 0 {
			return c
		}
		return a.Addr.Compare(b.Addr)
	})
	return out
}

// Lookup returns the entry for addr on port, if any (control side).
func (t *Table) Lookup(port uint16, addr netip.Addr) (Entry, bool) {
	e := t.entries[key{port, addr.Unmap()}]
	if e == nil {
		return Entry{}, false
	}
	return e.info(t.clock.Now()), true
}

func (e *entry) info(now time.Time) Entry {
	x := Entry{Port: e.key.port, Addr: e.key.addr, MAC: e.mac, State: e.state, StateS: e.state.String(),
		Router: e.router, Age: now.Sub(e.updated), Probes: e.probes, Held: len(e.hold)}
	if e.state != StateIncomplete && e.mac != [6]byte{} {
		x.LLAddr = net.HardwareAddr(e.mac[:]).String()
	}
	if !e.deadline.IsZero() {
		x.Expires = max(0, e.deadline.Sub(now))
	}
	return x
}

// Len returns the number of entries and of held packets.
func (t *Table) Len() (entries, held int) { return len(t.entries), t.held }

// String formats an entry like `arp -an` / `ndp -an`.
func (e Entry) String() string {
	ll := e.LLAddr
	if ll == "" {
		ll = "(incomplete)"
	}
	s := fmt.Sprintf("port %d %v lladdr %s %s", e.Port, e.Addr, ll, e.State)
	if e.Router {
		s += " router"
	}
	if e.State != StateStatic {
		s += fmt.Sprintf(" age %s", e.Age.Truncate(time.Second))
	}
	if e.Expires > 0 {
		s += fmt.Sprintf(" expires %s", e.Expires.Truncate(time.Millisecond))
	}
	return s
}

// ParseMAC parses a unicast Ethernet address for `neigh add ... lladdr`.
func ParseMAC(s string) ([6]byte, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return [6]byte{}, fmt.Errorf("%w: lladdr %q: want six hex bytes like 02:00:5e:10:00:01", ErrAddr, s)
	}
	mac := [6]byte(hw)
	if isMulticastMAC(mac) || mac == [6]byte{} {
		return [6]byte{}, fmt.Errorf("%w: lladdr %s is not a unicast MAC", ErrAddr, s)
	}
	return mac, nil
}
