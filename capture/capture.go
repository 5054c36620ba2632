package capture

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/mbuf"
)

// Direction of a captured frame.
type Direction uint8

const (
	Rx Direction = 1 << iota
	Tx
	Both = Rx | Tx
)

func (d Direction) String() string {
	switch d {
	case Rx:
		return "rx"
	case Tx:
		return "tx"
	case Both:
		return "both"
	}
	return "none"
}

// Config arms a capture session.
type Config struct {
	// Port is the port id to capture on; Name its name (pcapng interface
	// name).
	Port uint16
	Name string
	Dir  Direction
	// Snaplen bounds the bytes kept of each frame (default and at most
	// MaxSnaplen).
	Snaplen int
	// Rings is the number of producers: workers + 1 (the control path).
	Rings int
	// Slots per ring, a power of two (DefaultSlots if 0).
	Slots int
}

// Limits.
const (
	MaxSnaplen   = 9216 // jumbo frames; the mbufs are smaller anyway
	DefaultSlots = 1024
	maxSlots     = 1 << 16
)

// ErrConfig is wrapped by New's errors.
var ErrConfig = errors.New("capture: invalid config")

// Session is one armed capture.
type Session struct {
	port    uint16
	name    string
	dir     Direction
	snaplen int
	rings   []ring
	stopped atomic.Bool
	frame   Frame // the reader's, reused for each frame handed out
}

// ring is one producer's SPSC ring of frames.
type ring struct {
	// Producer side (the worker).
	tail    atomic.Uint64
	dropped atomic.Uint64 // frames that did not fit
	_       [48]byte
	// Consumer side (the reader).
	head atomic.Uint64
	_    [56]byte
	// Read-only after New.
	mask  uint64
	slot  int // bytes per slot
	data  []byte
	metas []meta
}

// meta describes one slot.
type meta struct {
	ts     int64 // ns since the epoch
	wire   uint32
	caplen uint32
	dir    Direction
}

// New arms nothing yet: it makes a session whose rings are allocated;
// publish it to the workers to start capturing.
func New(c Config) (*Session, error) {
	if c.Snaplen <= 0 || c.Snaplen > MaxSnaplen {
		c.Snaplen = MaxSnaplen
	}
	if c.Slots == 0 {
		c.Slots = DefaultSlots
	}
	if c.Slots < 2 || c.Slots > maxSlots || c.Slots&(c.Slots-1) != 0 {
		return nil, fmt.Errorf("%w: %d slots (a power of two from 2 to %d)", ErrConfig, c.Slots, maxSlots)
	}
	if c.Rings <= 0 {
		return nil, fmt.Errorf("%w: %d rings", ErrConfig, c.Rings)
	}
	if c.Dir&Both == 0 {
		c.Dir = Both
	}
	s := &Session{port: c.Port, name: c.Name, dir: c.Dir, snaplen: c.Snaplen, rings: make([]ring, c.Rings)}
	for i := range s.rings {
		r := &s.rings[i]
		r.mask = uint64(c.Slots - 1)
		r.slot = c.Snaplen
		r.data = make([]byte, c.Slots*c.Snaplen)
		r.metas = make([]meta, c.Slots)
	}
	return s, nil
}

// Port returns the captured port id.
func (s *Session) Port() uint16 { return s.port }

// Name returns the captured port's name.
func (s *Session) Name() string { return s.name }

// Snaplen returns the snap length.
func (s *Session) Snaplen() int { return s.snaplen }

// Rx copies the frames of a received burst on port into ring w (the
// caller's own). It never waits; frames that do not fit are counted.
func (s *Session) Rx(w int, port uint16, ms []*mbuf.Mbuf) {
	if port == s.port && s.dir&Rx != 0 {
		s.put(w, Rx, ms)
	}
}

// Tx copies the frames of a burst about to be transmitted on port.
func (s *Session) Tx(w int, port uint16, ms []*mbuf.Mbuf) {
	if port == s.port && s.dir&Tx != 0 {
		s.put(w, Tx, ms)
	}
}

func (s *Session) put(w int, dir Direction, ms []*mbuf.Mbuf) {
	if w < 0 || w >= len(s.rings) || len(ms) == 0 || s.stopped.Load() {
		return
	}
	r := &s.rings[w]
	tail := r.tail.Load()
	head := r.head.Load()
	now := time.Now().UnixNano()
	n := uint64(len(r.metas))
	lost := 0
	for _, m := range ms {
		if tail-head == n {
			lost++
			continue
		}
		d := m.Data()
		i := tail & r.mask
		k := copy(r.data[int(i)*r.slot:int(i+1)*r.slot], d)
		r.metas[i] = meta{ts: now, wire: uint32(len(d)), caplen: uint32(k), dir: dir}
		tail++
	}
	r.tail.Store(tail) // release: the reader sees the slots' contents
	if lost > 0 {
		r.dropped.Store(r.dropped.Load() + uint64(lost))
	}
}

// Stop makes Rx and Tx no-ops from now on (the workers may still be
// inside one: unpublish the session and wait for a grace period before
// reusing anything).
func (s *Session) Stop() { s.stopped.Store(true) }

// Dropped returns the frames lost because a ring was full.
func (s *Session) Dropped() uint64 {
	var n uint64
	for i := range s.rings {
		n += s.rings[i].dropped.Load()
	}
	return n
}

// Frame is one captured frame as the reader sees it: Data is valid only
// during the callback.
type Frame struct {
	Time   time.Time
	Dir    Direction
	Wire   int // length on the wire
	Data   []byte
	Worker int
}

// Read hands every frame waiting in the rings to fn, at most max frames
// (0: no bound), oldest ring first; it returns how many it handed. It is
// the single consumer: one goroutine at a time. An error from fn stops the
// read (the frame counts as read).
func (s *Session) Read(max int, fn func(*Frame) error) (int, error) {
	n := 0
	f := &s.frame
	for w := range s.rings {
		r := &s.rings[w]
		head := r.head.Load()
		tail := r.tail.Load() // acquire
		for head != tail {
			if max > 0 && n >= max {
				r.head.Store(head)
				return n, nil
			}
			i := head & r.mask
			mt := &r.metas[i]
			*f = Frame{Time: time.Unix(0, mt.ts), Dir: mt.dir, Wire: int(mt.wire), Data: r.data[int(i)*r.slot : int(i)*r.slot+int(mt.caplen)], Worker: w}
			err := fn(f)
			head++
			n++
			if err != nil {
				r.head.Store(head)
				return n, err
			}
		}
		r.head.Store(head)
	}
	return n, nil
}
