package events

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is an event's family; monitors subscribe to a set of kinds.
type Kind uint8

const (
	Route Kind = iota
	Neigh
	Port
	Rule
	LCP
	Config
	numKinds
)

var kindNames = [numKinds]string{Route: "routes", Neigh: "neigh", Port: "ports", Rule: "rules", LCP: "lcp", Config: "config"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// MarshalText renders the kind's monitor name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// ParseKind returns the kind named as in fwdctl monitor.
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n == s {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown event kind %q (want routes, neigh, ports, rules, lcp or config)", s)
}

// Mask is a set of kinds.
type Mask uint32

// All is every kind.
const All Mask = 1<<numKinds - 1

// Has reports whether k is in m.
func (m Mask) Has(k Kind) bool { return m&(1<<k) != 0 }

// MaskOf returns the set of kinds.
func MaskOf(ks ...Kind) Mask {
	var m Mask
	for _, k := range ks {
		m |= 1 << k
	}
	return m
}

// Event is one change. Only the fields of its kind are set.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   Kind      `json:"kind"`
	Action string    `json:"action"` // add, del, change, reload...

	// Routes.
	FIB    *int         `json:"fib,omitempty"`
	Prefix netip.Prefix `json:"prefix,omitzero"`
	Via    []netip.Addr `json:"via,omitempty"`
	Dev    string       `json:"dev,omitempty"`
	Type   string       `json:"type,omitempty"`   // unicast, blackhole, reject, local, connected
	Origin string       `json:"origin,omitempty"` // static, connected, local, lcp...
	// Neighbours (Port also for ports and rules' in).
	Port   string     `json:"port,omitempty"`
	Addr   netip.Addr `json:"addr,omitzero"`
	LLAddr string     `json:"lladdr,omitempty"`
	State  string     `json:"state,omitempty"`
	Old    string     `json:"old_state,omitempty"`
	// Rules.
	Rule int `json:"rule,omitempty"`
	// Free text: a rule's or a port's description, a reload's source.
	Info string `json:"info,omitempty"`
}

// String renders the event like ip monitor: one line, no newline.
func (e *Event) String() string {
	var b strings.Builder
	if e.Action == "del" {
		b.WriteString("Deleted ")
	}
	switch e.Kind {
	case Route:
		b.WriteString(e.Prefix.String())
		if e.Type != "" && e.Type != "unicast" {
			b.WriteString(" " + e.Type)
		}
		for _, v := range e.Via {
			b.WriteString(" via " + v.String())
		}
		if e.Dev != "" {
			b.WriteString(" dev " + e.Dev)
		}
		if e.FIB != nil {
			fmt.Fprintf(&b, " fib %d", *e.FIB)
		} else {
			b.WriteString(" fib all")
		}
		if e.Origin != "" {
			b.WriteString(" proto " + e.Origin)
		}
	case Neigh:
		b.WriteString(e.Addr.String() + " dev " + e.Port)
		if e.LLAddr != "" {
			b.WriteString(" lladdr " + e.LLAddr)
		}
		if e.State != "" {
			b.WriteString(" " + strings.ToUpper(e.State))
		}
		if e.Old != "" {
			b.WriteString(" (was " + strings.ToUpper(e.Old) + ")")
		}
	case Port:
		b.WriteString("port " + e.Port)
		if e.Action != "del" && e.Action != "add" {
			b.WriteString(" " + e.Action)
		}
		if e.Info != "" {
			b.WriteString(" " + e.Info)
		}
	case Rule:
		fmt.Fprintf(&b, "rule %d", e.Rule)
		if e.Info != "" {
			b.WriteString(" " + e.Info)
		}
	case LCP:
		b.WriteString("lcp")
		if e.Port != "" {
			b.WriteString(" port " + e.Port)
		}
		if e.Action != "add" && e.Action != "del" {
			b.WriteString(" " + e.Action)
		}
		if e.Info != "" {
			b.WriteString(" " + e.Info)
		}
	default:
		b.WriteString(e.Kind.String() + " " + e.Action)
		if e.Info != "" {
			b.WriteString(" " + e.Info)
		}
	}
	return b.String()
}

// DefaultQueue is a subscriber's queue length when Subscribe gets 0.
const DefaultQueue = 4096

// Bus fans events out to subscribers.
type Bus struct {
	mu   sync.Mutex
	subs map[*Sub]struct{}
	// wants is the union of the subscribers' masks (read without the
	// lock by Wants).
	wants atomic.Uint32
}

// NewBus returns a bus without subscribers.
func NewBus() *Bus { return &Bus{subs: map[*Sub]struct{}{}} }

// Sub is one subscriber.
type Sub struct {
	b    *Bus
	mask Mask
	c    chan Event
	// dropped is set when the queue overflowed; lost counts the events
	// that did not fit (only the first, since the sub is closed then).
	dropped atomic.Bool
	closed  bool // under b.mu
}

// Subscribe returns a subscriber to the kinds in mask with a queue of n
// events (DefaultQueue if n <= 0).
func (b *Bus) Subscribe(mask Mask, n int) *Sub {
	if n <= 0 {
		n = DefaultQueue
	}
	s := &Sub{b: b, mask: mask, c: make(chan Event, n)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.recompute()
	b.mu.Unlock()
	return s
}

func (b *Bus) recompute() {
	var m Mask
	for s := range b.subs {
		m |= s.mask
	}
	b.wants.Store(uint32(m))
}

// Wants reports whether any subscriber wants kind k: publishers skip
// building events nobody reads.
func (b *Bus) Wants(k Kind) bool { return Mask(b.wants.Load()).Has(k) }

// Subscribers returns the number of subscribers.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Publish hands e to every subscriber of its kind without blocking; a
// subscriber whose queue is full is dropped. A zero Time is set to now.
func (b *Bus) Publish(e Event) {
	if !b.Wants(e.Kind) {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if !s.mask.Has(e.Kind) {
			continue
		}
		select {
		case s.c <- e:
		default:
			s.dropped.Store(true)
			s.closeLocked()
		}
	}
}

// C delivers the events; it is closed when the subscriber is dropped
// (Dropped then reports true) or closed.
func (s *Sub) C() <-chan Event { return s.c }

// Dropped reports whether the subscriber was dropped for not keeping up.
func (s *Sub) Dropped() bool { return s.dropped.Load() }

// Close unsubscribes; it is idempotent.
func (s *Sub) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.closeLocked()
}

func (s *Sub) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	delete(s.b.subs, s)
	close(s.c)
	s.b.recompute()
}
