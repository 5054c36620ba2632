package pmd

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Table maps port ids and kernel ifindexes to ports (FreeBSD's
// ifnet_byindex). Lookups are lock-free reads of an immutable snapshot, safe
// while ports come and go; Add and Remove copy the snapshot under a mutex
// (control plane only, never on the fast path).
type Table struct {
	mu   sync.Mutex
	snap atomic.Pointer[tableSnap]
}

type tableSnap struct {
	byID      []Port // index = port id; nil where free
	byIfIndex map[int]Port
	byName    map[string]uint16
}

// NewTable returns an empty table.
func NewTable() *Table {
	t := &Table{}
	t.snap.Store(&tableSnap{byIfIndex: map[int]Port{}, byName: map[string]uint16{}})
	return t
}

// Add registers p under id (its Config.ID). It fails if the id or name is
// taken.
func (t *Table) Add(id uint16, p Port) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.snap.Load()
	info := p.Info()
	if int(id) < len(old.byID) && old.byID[id] != nil {
		return fmt.Errorf("port id %d is taken by %s", id, old.byID[id].Info().Name)
	}
	if _, dup := old.byName[info.Name]; dup {
		return fmt.Errorf("port %s exists already (remove it first: port del %s)", info.Name, info.Name)
	}
	n := &tableSnap{
		byID:      make([]Port, max(len(old.byID), int(id)+1)),
		byIfIndex: make(map[int]Port, len(old.byIfIndex)+1),
		byName:    make(map[string]uint16, len(old.byName)+1),
	}
	copy(n.byID, old.byID)
	for k, v := range old.byIfIndex {
		n.byIfIndex[k] = v
	}
	for k, v := range old.byName {
		n.byName[k] = v
	}
	n.byID[id] = p
	n.byName[info.Name] = id
	if info.IfIndex > 0 {
		n.byIfIndex[info.IfIndex] = p
	}
	t.snap.Store(n)
	return nil
}

// Remove unregisters the port with id and returns it, or nil.
func (t *Table) Remove(id uint16) Port {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.snap.Load()
	if int(id) >= len(old.byID) || old.byID[id] == nil {
		return nil
	}
	p := old.byID[id]
	n := &tableSnap{
		byID:      append([]Port(nil), old.byID...),
		byIfIndex: make(map[int]Port, len(old.byIfIndex)),
		byName:    make(map[string]uint16, len(old.byName)),
	}
	n.byID[id] = nil
	for k, v := range old.byIfIndex {
		if v != p {
			n.byIfIndex[k] = v
		}
	}
	for k, v := range old.byName {
		if v != id {
			n.byName[k] = v
		}
	}
	t.snap.Store(n)
	return p
}

// ByID returns the port with id, or nil. Lock-free.
func (t *Table) ByID(id uint16) Port {
	s := t.snap.Load()
	if int(id) >= len(s.byID) {
		return nil
	}
	return s.byID[id]
}

// ByIfIndex returns the port on kernel interface ifindex, or nil. Lock-free.
func (t *Table) ByIfIndex(ifindex int) Port { return t.snap.Load().byIfIndex[ifindex] }

// ByName returns the port named name and its id. Lock-free.
func (t *Table) ByName(name string) (Port, uint16, bool) {
	s := t.snap.Load()
	id, ok := s.byName[name]
	if !ok {
		return nil, 0, false
	}
	return s.byID[id], id, true
}

// FreeID returns the lowest unused port id.
func (t *Table) FreeID() uint16 {
	s := t.snap.Load()
	for i, p := range s.byID {
		if p == nil {
			return uint16(i)
		}
	}
	return uint16(len(s.byID))
}

// All returns the registered ports indexed by id (nil where free). The
// slice is shared and must not be modified.
func (t *Table) All() []Port { return t.snap.Load().byID }
