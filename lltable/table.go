package lltable

import (
	"container/heap"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/ring"
)

// State is a neighbour entry's reachability state (RFC 4861 §7.3.2, used
// for ARP too).
type State uint8

// States. Static entries are in StateStatic for their whole life.
const (
	StateIncomplete State = iota + 1
	StateReachable
	StateStale
	StateDelay
	StateProbe
	StateFailed
	StateStatic
)

var stateNames = [...]string{"", "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "PERMANENT"}

func (s State) String() string {
	if int(s) < len(stateNames) && s != 0 {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// usable reports whether packets may be sent with the entry's MAC.
func (s State) usable() bool {
	return s == StateReachable || s == StateStale || s == StateDelay || s == StateProbe || s == StateStatic
}

// Clock gives the current time. Tests use a fake one.
type Clock interface {
	Now() time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Stack is what the table needs from the rest of the router. Its methods
// are called from the control goroutine only, synchronously from Table
// methods; they must not call back into the Table.
type Stack interface {
	// Transmit sends complete Ethernet frames on port (through txq). It
	// takes ownership of every mbuf in ms; ms itself is only valid during
	// the call.
	Transmit(port uint16, ms []*mbuf.Mbuf)
	// Free returns mbufs to their pools (they may come from any worker's
	// pool: use Mbuf.PoolID). It takes ownership.
	Free(ms []*mbuf.Mbuf)
	// Unreachable receives packets that waited for target on port when its
	// entry FAILED, or that arrived for a FAILED entry: the stack answers
	// each with ICMP host unreachable (IPv4, type 3 code 1) or ICMPv6
	// address unreachable (type 1 code 3), using the packet's FIB, then
	// frees it. It takes ownership. Frames start at the Ethernet header;
	// the TTL/hop limit was already decremented by the pipeline.
	Unreachable(port uint16, target netip.Addr, ms []*mbuf.Mbuf)
}

// Config sets up a Table. Zero values take the defaults.
type Config struct {
	// Stack transmits, frees and answers ICMP. Required.
	Stack Stack
	// Pool provides the mbufs of the requests and answers the table
	// builds, through a Cache owned by the control goroutine. Required.
	Pool *mbuf.Pool
	// Clock; nil is the wall clock.
	Clock Clock

	// MaxEntries bounds entries of all ports (static ones included).
	// Default 16384. A new entry beyond it (or beyond MaxPerPort) first
	// evicts the entry of that port (any port, for MaxEntries) that has
	// been STALE and unused, or FAILED, the longest; only when there is
	// none is it refused (Linux's forced GC at gc_thresh3). The four
	// limits and RequestsPerSecond can be changed later with
	// Table.SetLimits.
	MaxEntries int
	// MaxPerPort bounds the entries of one port. Default 4096.
	MaxPerPort int
	// MaxIncomplete bounds the INCOMPLETE entries (being resolved) of all
	// ports. Default 1024. A miss for a new destination beyond it first
	// evicts an INCOMPLETE entry that only one packet wanted and that has
	// no answer coming (Table.evictIncomplete: no request sent, or asked
	// RetransTimer/10 ago), and is refused when there is none (both
	// counted). So a flood of misses to unresolvable destinations holds at
	// most MaxIncomplete entries being resolved, each for at most
	// MaxMulticastSolicit * RetransTimer, and a neighbour that is wanted
	// again (the next packet of its flow) is kept until answered.
	MaxIncomplete int
	// HoldLen is the packets one unresolved entry keeps; the oldest is
	// dropped beyond it. Default 4.
	HoldLen int
	// MaxHeld bounds held packets over all entries (they are mbufs of the
	// workers' pools); beyond it missed packets are refused (freed and
	// counted), while their entries are still created and solicited.
	// Default 1024.
	MaxHeld int

	// BaseReachableTime: REACHABLE lasts a uniform random time in
	// [0.5, 1.5] * BaseReachableTime, drawn at each confirmation
	// (RFC 4861 §6.3.2). Default 30 s.
	BaseReachableTime time.Duration
	// RetransTimer separates requests for one entry: at most one request
	// per RetransTimer per entry. Default 1 s; at least 100 ms.
	RetransTimer time.Duration
	// DelayFirstProbe is DELAY_FIRST_PROBE_TIME. Default 5 s.
	DelayFirstProbe time.Duration
	// MaxMulticastSolicit and MaxUnicastSolicit: default 3 each.
	MaxMulticastSolicit int
	MaxUnicastSolicit   int
	// StaleTime: a STALE entry unused this long is deleted. Default 10 min.
	StaleTime time.Duration
	// FailedTime: a FAILED entry answers unreachable this long, then is
	// deleted (FreeBSD arpt_down). Default 20 s.
	FailedTime time.Duration
	// RequestsPerSecond bounds requests (ARP requests, NS) over the whole
	// table, so a flood of unresolvable destinations cannot flood the
	// links. Default 1000; burst of the same size.
	RequestsPerSecond int
	// UseScanInterval is how often the control goroutine reads the
	// workers' use marks of STALE entries. Default 100 ms.
	UseScanInterval time.Duration
	// LazyPublish bounds how long changes that do not affect forwarding
	// (an entry going STALE or leaving it, an unused STALE entry deleted)
	// wait to be published, so that a table with many entries is not
	// rebuilt at every control iteration. Changes to usable entries and
	// MACs are published at the end of the iteration. Default 200 ms.
	LazyPublish time.Duration

	// MissRing and InputRing size the MPSC rings from the workers (a power
	// of two). Default 1024 each.
	MissRing  int
	InputRing int

	// Seed seeds the ReachableTime randomisation (0: random).
	Seed uint64

	// Notify, if set, is told of every entry created, deleted or moved to
	// another state (old is the previous state; deleted entries have
	// their last state; a new entry has old 0), on the control goroutine, synchronously: it must
	// not block nor call back into the Table (fwdctl monitor neigh).
	Notify func(e Entry, old State, deleted bool)
}

// Errors of the control API.
var (
	ErrConfig   = errors.New("lltable: invalid config")
	ErrNoPort   = errors.New("lltable: unknown port")
	ErrAddr     = errors.New("lltable: invalid neighbour address")
	ErrFull     = errors.New("lltable: table full")
	ErrNotFound = errors.New("lltable: no such entry")
)

func (c *Config) setDefaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxEntries, 16384)
	def(&c.MaxPerPort, 4096)
	def(&c.MaxIncomplete, 1024)
	def(&c.HoldLen, 4)
	def(&c.MaxHeld, 1024)
	def(&c.MaxMulticastSolicit, 3)
	def(&c.MaxUnicastSolicit, 3)
	def(&c.RequestsPerSecond, 1000)
	def(&c.MissRing, 1024)
	def(&c.InputRing, 1024)
	defd(&c.BaseReachableTime, 30*time.Second)
	defd(&c.RetransTimer, time.Second)
	defd(&c.DelayFirstProbe, 5*time.Second)
	defd(&c.StaleTime, 10*time.Minute)
	defd(&c.FailedTime, 20*time.Second)
	defd(&c.UseScanInterval, 100*time.Millisecond)
	defd(&c.LazyPublish, 200*time.Millisecond)
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	switch {
	case c.Stack == nil:
		return fmt.Errorf("%w: Stack is required (the router's transmit/free/ICMP hooks)", ErrConfig)
	case c.Pool == nil:
		return fmt.Errorf("%w: Pool is required (mbufs for requests and answers)", ErrConfig)
	}
	if err := c.limits().check(); err != nil {
		return err
	}
	switch {
	case c.RetransTimer < 100*time.Millisecond:
		return fmt.Errorf("%w: RetransTimer %v below 100ms", ErrConfig, c.RetransTimer)
	case c.MaxMulticastSolicit < 1 || c.MaxUnicastSolicit < 1:
		return fmt.Errorf("%w: solicit counts must be positive", ErrConfig)
	case c.BaseReachableTime < time.Second || c.DelayFirstProbe <= 0 || c.StaleTime <= 0 || c.FailedTime <= 0 || c.UseScanInterval <= 0 || c.LazyPublish < 0:
		return fmt.Errorf("%w: timers must be positive (BaseReachableTime >= 1s)", ErrConfig)
	}
	return nil
}

// Limits are the table's size limits (Config's fields of the same names),
// changeable at run time with Table.SetLimits.
type Limits struct {
	MaxEntries int // entries of all ports, in [1, 2^24]
	MaxPerPort int // entries of one port, >= 1
	// MaxIncomplete: INCOMPLETE entries of all ports, >= 1 (0 in SetLimits
	// keeps the current value).
	MaxIncomplete int
	HoldLen       int // packets held per unresolved entry, in [1, 256]
	MaxHeld       int // packets held over all entries, >= 1
	// RequestsPerSecond: ARP requests and NS sent per second over the
	// table (token bucket, burst of the same size), >= 1.
	RequestsPerSecond int
}

// Limit ranges.
const (
	MaxMaxEntries = 1 << 24
	MaxHoldLen    = 256
)

func (l Limits) check() error {
	switch {
	case l.MaxEntries < 1 || l.MaxEntries > MaxMaxEntries:
		return fmt.Errorf("%w: MaxEntries %d out of range [1, %d]", ErrConfig, l.MaxEntries, MaxMaxEntries)
	case l.MaxPerPort < 1:
		return fmt.Errorf("%w: MaxPerPort %d must be positive", ErrConfig, l.MaxPerPort)
	case l.MaxIncomplete < 0:
		return fmt.Errorf("%w: MaxIncomplete %d must be positive", ErrConfig, l.MaxIncomplete)
	case l.HoldLen < 1 || l.HoldLen > MaxHoldLen:
		return fmt.Errorf("%w: HoldLen %d out of range [1, %d]", ErrConfig, l.HoldLen, MaxHoldLen)
	case l.MaxHeld < 1:
		return fmt.Errorf("%w: MaxHeld %d must be positive", ErrConfig, l.MaxHeld)
	case l.RequestsPerSecond < 1:
		return fmt.Errorf("%w: RequestsPerSecond %d must be positive", ErrConfig, l.RequestsPerSecond)
	}
	return nil
}

func (c *Config) limits() Limits {
	return Limits{MaxEntries: c.MaxEntries, MaxPerPort: c.MaxPerPort, MaxIncomplete: c.MaxIncomplete, HoldLen: c.HoldLen,
		MaxHeld: c.MaxHeld, RequestsPerSecond: c.RequestsPerSecond}
}

// Limits returns the limits in force.
func (t *Table) Limits() Limits { return t.cfg.limits() }

// SetLimits changes the limits. Lowering one deletes nothing at once:
// entries and held packets beyond it stay until they go; meanwhile a new
// entry first evicts unused STALE and FAILED entries down to the limit
// (see Config.MaxEntries) or is refused, and new packets are not held. On
// error nothing changes.
func (t *Table) SetLimits(l Limits) error {
	if err := l.check(); err != nil {
		return err
	}
	t.cfg.MaxEntries, t.cfg.MaxPerPort, t.cfg.HoldLen, t.cfg.MaxHeld = l.MaxEntries, l.MaxPerPort, l.HoldLen, l.MaxHeld
	if l.MaxIncomplete > 0 && l.MaxIncomplete != t.cfg.MaxIncomplete {
		t.cfg.MaxIncomplete = l.MaxIncomplete
		if n := ghostSlots(l.MaxIncomplete); n != len(t.ghosts) {
			t.ghosts = make([]ghost, n) // forgets: a few flows re-prove they are flows
		}
	}
	t.cfg.RequestsPerSecond = l.RequestsPerSecond
	t.tokens = min(t.tokens, float64(l.RequestsPerSecond)) // a lower rate takes effect at once
	return nil
}

type key struct {
	port uint16
	addr netip.Addr
}

type entry struct {
	id       uint32
	key      key
	mac      [6]byte
	state    State
	router   bool
	probes   int
	lastReq  time.Time
	updated  time.Time
	deadline time.Time
	hidx     int    // index in the timer heap, -1 when not armed
	staleGen uint64 // first snapshot generation showing the entry STALE
	hold     []*mbuf.Mbuf
	dead     bool

	// prev, next link the entry in list (nil: in none): its port's
	// eviction list while it is STALE or FAILED, the table's list of
	// evictable INCOMPLETE entries while it is INCOMPLETE and wanted by
	// one packet only.
	prev, next *entry
	list       *elist
}

type portState struct {
	mac   [6]byte
	addrs []netip.Prefix
	n     int
	// gc lists the port's STALE and FAILED entries in the order they
	// entered that state (oldest first): the eviction candidates.
	gc elist
}

// elist is an intrusive list of entries, oldest first. An entry is in at
// most one list (entry.list); the states that put it in one exclude each
// other.
type elist struct{ head, tail *entry }

// push appends e to the tail of l.
func (l *elist) push(e *entry) {
	e.prev, e.next, e.list = l.tail, nil, l
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

// unlink removes e from the list it is in, if any.
func (e *entry) unlink() {
	l := e.list
	if l == nil {
		return
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next, e.list = nil, nil, nil
}

// timerHeap is a min-heap of entries by deadline; each entry is in it at
// most once (entry.hidx), so its size is bounded by the entry count however
// often timers are re-armed.
type timerHeap []*entry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *timerHeap) Push(x any) {
	e := x.(*entry)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.hidx = -1
	return e
}

// arm sets e's timer to fire at now+d; d <= 0 disarms it.
func (t *Table) arm(e *entry, now time.Time, d time.Duration) {
	if d <= 0 {
		e.deadline = time.Time{}
		if e.hidx >= 0 {
			heap.Remove(&t.timers, e.hidx)
		}
		return
	}
	e.deadline = now.Add(d)
	if e.hidx >= 0 {
		heap.Fix(&t.timers, e.hidx)
	} else {
		heap.Push(&t.timers, e)
	}
}

// Table is the neighbour table of one stack: every port's ARP and NDP
// entries. All methods except NewReader must be called from the control
// goroutine, one at a time; workers use Readers.
type Table struct {
	cfg   Config
	stack Stack
	clock Clock
	cache *mbuf.Cache
	rnd   *rand.Rand

	snap    atomic.Pointer[Snapshot]
	gen     uint64
	dirty   bool // the usable set or a MAC changed: publish this iteration
	lazy    bool // only STALE flags or STALE entries changed: publish within LazyPublish
	lastPub time.Time

	entries map[key]*entry
	byID    []*entry
	freeIDs []uint32
	ports   map[uint16]*portState
	stale   map[*entry]struct{}
	timers  timerHeap
	held    int
	// incUnsent and incSent list the INCOMPLETE entries wanted by one
	// packet so far, by creation (the INCOMPLETE eviction candidates):
	// those no request was sent for yet (the request budget was spent),
	// and those asked for. nInc counts every INCOMPLETE entry, listed or
	// not.
	incUnsent, incSent elist
	nInc               int
	// ghosts remember destinations whose INCOMPLETE entry was evicted or
	// refused without a request sent (direct-mapped by hash, fixed size):
	// a miss for one of them within RetransTimer is a flow wanting its
	// neighbour again, not a scan (evictIncomplete).
	ghosts    []ghost
	ghostSeed maphash.Seed
	epoch     time.Time

	tokens    float64
	tokensAt  time.Time
	lastScan  time.Time
	ctr       Counters
	missRing  *ring.Ring[*mbuf.Mbuf]
	inputRing *ring.Ring[*mbuf.Mbuf]
	readersMu sync.Mutex
	readers   []*Reader
	marksLen  int // length of the readers' marks arrays (under readersMu)
	scratch   []snapEntry
	burst     [32]*mbuf.Mbuf
	one       [1]*mbuf.Mbuf
	txBuf     []*mbuf.Mbuf
}

// New returns an empty table. It publishes an empty snapshot at once.
func New(cfg Config) (*Table, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	mr, err := ring.New[*mbuf.Mbuf](cfg.MissRing, ring.MPSC)
	if err != nil {
		return nil, fmt.Errorf("%w: MissRing: %w", ErrConfig, err)
	}
	ir, err := ring.New[*mbuf.Mbuf](cfg.InputRing, ring.MPSC)
	if err != nil {
		return nil, fmt.Errorf("%w: InputRing: %w", ErrConfig, err)
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t := &Table{
		cfg: cfg, stack: cfg.Stack, clock: cfg.Clock, cache: cfg.Pool.NewCache(),
		rnd:     rand.New(rand.NewPCG(seed, seed^0x5bd1e995)),
		entries: map[key]*entry{}, ports: map[uint16]*portState{}, stale: map[*entry]struct{}{},
		missRing: mr, inputRing: ir,
		tokens: float64(cfg.RequestsPerSecond),
	}
	t.tokensAt = t.clock.Now()
	t.lastScan = t.tokensAt
	t.epoch = t.tokensAt
	t.ghostSeed = maphash.MakeSeed()
	t.ghosts = make([]ghost, ghostSlots(cfg.MaxIncomplete))
	t.snap.Store(buildSnapshot(0, nil))
	t.lastPub = t.tokensAt
	return t, nil
}

// NewReader returns a Reader for one worker. cache is the worker's mbuf
// cache, used to free what the rings refuse (nil: Stack.Free, which must
// then be safe to call from the worker). Safe to call from any goroutine.
func (t *Table) NewReader(cache *mbuf.Cache) *Reader {
	r := &Reader{t: t, snap: &t.snap, miss: t.missRing, input: t.inputRing, cache: cache}
	t.readersMu.Lock()
	r.marks.Store(&markArray{m: make([]atomic.Uint64, t.marksLen)})
	t.readers = append(t.readers, r)
	t.readersMu.Unlock()
	return r
}

// growMarks makes every reader's marks array hold entry id. Arrays grow by
// doubling (entry ids are dense: the freed ones are reused first), so
// memory follows the entries there are, not MaxEntries. A worker that
// marks its old array while it is copied loses that mark: the entry may
// then be evicted or collected as unused, and the next use re-resolves it.
func (t *Table) growMarks(id uint32) {
	t.readersMu.Lock()
	defer t.readersMu.Unlock()
	if int(id) < t.marksLen {
		return
	}
	n := max(2*t.marksLen, int(id)+1, 64)
	t.marksLen = n
	for _, r := range t.readers {
		old := r.marks.Load().m
		m := make([]atomic.Uint64, n)
		for i := range old {
			m[i].Store(old[i].Load())
		}
		r.marks.Store(&markArray{m: m})
	}
}

// Snapshot returns the current snapshot (for readers without usage
// feedback, and tests).
func (t *Table) Snapshot() *Snapshot { return t.snap.Load() }

// Counters returns the table's counters, ring refusals summed over readers.
func (t *Table) Counters() Counters {
	c := t.ctr
	t.readersMu.Lock()
	for _, r := range t.readers {
		c.MissRingFull += r.missNo.Load()
		c.InputRingFull += r.inNo.Load()
		c.BadMissTag += r.tagNo.Load()
	}
	t.readersMu.Unlock()
	return c
}

// Poll runs one control iteration: it drains the input and miss rings (at
// most one ring capacity each), reads the workers' use marks (at most every
// UseScanInterval), runs the timers that are due and publishes one snapshot
// if anything usable changed (lazy changes within LazyPublish). Call it
// from the control loop when woken and at least every 100 ms or so.
func (t *Table) Poll() {
	// Each ring is drained of at most its capacity per iteration, so
	// workers that keep it full cannot starve the timers and publication.
	for budget := t.inputRing.Cap(); budget > 0; {
		n := t.inputRing.DequeueBurst(t.burst[:min(len(t.burst), budget)])
		for _, m := range t.burst[:n] {
			t.input(m)
		}
		clear(t.burst[:n])
		budget -= n
		if n < len(t.burst) {
			break
		}
	}
	for budget := t.missRing.Cap(); budget > 0; {
		n := t.missRing.DequeueBurst(t.burst[:min(len(t.burst), budget)])
		for _, m := range t.burst[:n] {
			t.missTagged(m)
		}
		clear(t.burst[:n])
		budget -= n
		if n < len(t.burst) {
			break
		}
	}
	now := t.clock.Now()
	if now.Sub(t.lastScan) >= t.cfg.UseScanInterval {
		t.lastScan = now
		t.scanUse()
	}
	t.runTimers(now)
	if t.dirty || (t.lazy && now.Sub(t.lastPub) >= t.cfg.LazyPublish) {
		t.publish(now)
	}
}

// Publish publishes a new snapshot now if anything changed since the last
// one. Poll publishes by itself; control code that wants a change visible
// at once (a static entry added by the CLI) may call it.
func (t *Table) Publish() {
	if t.dirty || t.lazy {
		t.publish(t.clock.Now())
	}
}

func (t *Table) publish(now time.Time) {
	t.dirty, t.lazy = false, false
	t.lastPub = now
	t.gen++
	es := t.scratch[:0]
	for _, e := range t.entries {
		if !e.state.usable() {
			continue
		}
		se := snapEntry{port: e.key.port, mac: e.mac, wantUse: e.state == StateStale, id: e.id}
		if e.key.addr.Is4() {
			b := e.key.addr.As4()
			copy(se.ip[:4], b[:])
		} else {
			se.v6 = true
			se.ip = e.key.addr.As16()
		}
		es = append(es, se)
	}
	t.scratch = es[:0]
	t.snap.Store(buildSnapshot(t.gen, es))
	t.ctr.Publishes++
}

// ---- ports ----

// SetPort declares or updates port: its MAC and its addresses with their
// prefixes (the on-link subnets; IPv6 link-local included). Addresses that
// are new are announced: a gratuitous ARP (request form, RFC 5227 §3) for
// IPv4, an unsolicited Neighbor Advertisement to all-nodes with O set
// (RFC 4861 §7.2.6) for IPv6.
func (t *Table) SetPort(port uint16, mac [6]byte, addrs []netip.Prefix) error {
	if isMulticastMAC(mac) || mac == [6]byte{} {
		return fmt.Errorf("%w: port %d: MAC %x is not a unicast address", ErrConfig, port, mac)
	}
	for _, a := range addrs {
		if !a.IsValid() || a.Addr().Is4In6() || a.Addr().IsMulticast() || a.Addr().IsUnspecified() || a.Addr().Zone() != "" {
			return fmt.Errorf("%w: port %d: address %v is not a unicast address", ErrConfig, port, a)
		}
	}
	ps := t.ports[port]
	if ps == nil {
		ps = &portState{}
		t.ports[port] = ps
	}
	old := ps.addrs
	macChanged := ps.mac != mac
	ps.mac = mac
	ps.addrs = append([]netip.Prefix(nil), addrs...)
	for _, a := range addrs {
		if !containsAddr(old, a.Addr()) || macChanged {
			t.announce(port, ps, a.Addr())
		}
	}
	return nil
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// RemovePort forgets port: every entry of it is deleted (held packets are
// freed) and its addresses are dropped. Use it when a port is removed.
func (t *Table) RemovePort(port uint16) {
	t.FlushPort(port)
	delete(t.ports, port)
}

// FlushPort deletes every entry of port, static ones included, and frees
// their held packets. It returns how many entries it deleted.
func (t *Table) FlushPort(port uint16) int {
	n := 0
	for k, e := range t.entries {
		if k.port == port {
			t.delete(e)
			n++
		}
	}
	return n
}

// FlushDynamic deletes every entry of port but the static ones, and frees
// their held packets: for a port whose device vanished or was replaced
// (its neighbours were learned on a link that is gone). It returns how
// many entries it deleted.
func (t *Table) FlushDynamic(port uint16) int {
	n := 0
	for k, e := range t.entries {
		if k.port == port && e.state != StateStatic {
			t.delete(e)
			n++
		}
	}
	return n
}

// ours reports whether a is one of port's addresses.
func (ps *portState) ours(a netip.Addr) bool { return containsAddr(ps.addrs, a) }

// learnable reports whether a may become a neighbour of the port from a
// request it sent: a valid unicast address (not multicast, unspecified or
// limited broadcast), not one of ours, inside one of the port's prefixes,
// and for IPv4 neither the network nor the broadcast address of that
// prefix (for prefixes shorter than /31).
func (ps *portState) learnable(a netip.Addr) bool {
	if !validNeighbour(a) || ps.ours(a) {
		return false
	}
	for _, p := range ps.addrs {
		if !p.Contains(a) {
			continue
		}
		if a.Is4() && p.Bits() < 31 {
			host := ip4(a) &^ (^uint32(0) << (32 - p.Bits()))
			if host == 0 || host == ^uint32(0)>>p.Bits() {
				continue
			}
		}
		return true
	}
	return false
}

// onLink reports whether a lies in one of port's prefixes of its family.
func (ps *portState) onLink(a netip.Addr) bool {
	for _, p := range ps.addrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// source picks our address to send a request for target from: one whose
// prefix contains target, else (IPv6) a link-local, else the first of the
// family.
func (ps *portState) source(target netip.Addr) (netip.Addr, bool) {
	var first, ll netip.Addr
	for _, p := range ps.addrs {
		a := p.Addr()
		if a.Is4() != target.Is4() {
			continue
		}
		if p.Contains(target) {
			return a, true
		}
		if !first.IsValid() {
			first = a
		}
		if !ll.IsValid() && a.IsLinkLocalUnicast() {
			ll = a
		}
	}
	if ll.IsValid() {
		return ll, true
	}
	return first, first.IsValid()
}

// ---- entries ----

func validNeighbour(a netip.Addr) bool {
	return a.IsValid() && !a.Is4In6() && a.Zone() == "" && !a.IsMulticast() && !a.IsUnspecified() &&
		!(a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}))
}

// create makes an entry for a on port, in no state yet: the caller moves
// it to its first state with setState (so that publication, the STALE use
// generation and the eviction list follow the same path as every other
// transition). At a limit it first evicts (evict), and refuses and counts
// when nothing can be evicted.
func (t *Table) create(port uint16, ps *portState, a netip.Addr, now time.Time) *entry {
	for ps.n >= t.cfg.MaxPerPort {
		if !t.evict(ps, now) {
			t.ctr.RefusedPort++
			return nil
		}
	}
	for len(t.entries) >= t.cfg.MaxEntries {
		if !t.evict(nil, now) {
			t.ctr.RefusedTotal++
			return nil
		}
	}
	var id uint32
	if n := len(t.freeIDs); n > 0 {
		id = t.freeIDs[n-1]
		t.freeIDs = t.freeIDs[:n-1]
	} else {
		id = uint32(len(t.byID))
		t.byID = append(t.byID, nil)
	}
	if int(id) >= t.marksLen {
		t.growMarks(id)
	}
	e := &entry{id: id, key: key{port, a}, updated: now, hidx: -1}
	t.byID[id] = e
	t.entries[e.key] = e
	ps.n++
	// Notify is told by the setState that follows (old state 0).
	return e
}

// victim returns ps's eviction candidate: the entry STALE and unused, or
// FAILED, the longest, or nil. STALE entries found used on the way are
// moved to DELAY (they are referenced), so each is skipped at most once.
func (t *Table) victim(ps *portState, now time.Time) *entry {
	for e := ps.gc.head; e != nil; e = ps.gc.head {
		if e.state == StateStale && t.usedSince(e) {
			t.toDelay(e, now) // leaves the list
			continue
		}
		return e
	}
	return nil
}

// evict deletes one unreferenced entry to make room: on port ps, or on any
// port when ps is nil (the one that entered its state first). Static,
// INCOMPLETE, REACHABLE, DELAY and PROBE entries are never evicted: they
// are configured, being resolved, or in use. It reports whether it freed
// an entry.
func (t *Table) evict(ps *portState, now time.Time) bool {
	var v *entry
	if ps != nil {
		v = t.victim(ps, now)
	} else {
		for _, p := range t.ports {
			if c := t.victim(p, now); c != nil && (v == nil || c.updated.Before(v.updated)) {
				v = c
			}
		}
	}
	if v == nil {
		return false
	}
	t.ctr.Evicted++
	t.delete(v)
	return true
}

func (t *Table) delete(e *entry) {
	if e.dead {
		return
	}
	if len(e.hold) > 0 {
		t.ctr.HoldDropped += uint64(len(e.hold))
		t.held -= len(e.hold)
		t.stack.Free(e.hold)
		clear(e.hold)
		e.hold = e.hold[:0]
	}
	switch {
	case e.state == StateStale:
		t.lazy = true // unused neighbour collected: no hurry
	case e.state.usable():
		t.dirty = true
	}
	delete(t.stale, e)
	delete(t.entries, e.key)
	e.unlink()
	if e.state == StateIncomplete {
		t.nInc--
	}
	if ps := t.ports[e.key.port]; ps != nil {
		ps.n--
	}
	t.byID[e.id] = nil
	t.freeIDs = append(t.freeIDs, e.id)
	e.dead = true
	t.arm(e, time.Time{}, 0)
	if t.cfg.Notify != nil {
		t.cfg.Notify(e.info(t.clock.Now()), e.state, true)
	}
}

// setState moves e to st, arming its timer for d (0: no timer).
func (t *Table) setState(e *entry, st State, now time.Time, d time.Duration) {
	switch {
	case e.state.usable() != st.usable():
		t.dirty = true
	case (e.state == StateStale) != (st == StateStale):
		t.lazy = true // only the use-report flag changes
	}
	if st == StateStale && e.state != StateStale {
		e.staleGen = t.gen + 1 // the next published snapshot is the first showing it
		t.stale[e] = struct{}{}
	} else if st != StateStale {
		delete(t.stale, e)
	}
	old := e.state
	// The eviction lists are ordered by entry into the state: STALE or
	// FAILED (per port; a STALE entry whose MAC changed goes to the tail
	// again), INCOMPLETE (the table's).
	e.unlink()
	switch {
	case st == StateStale || st == StateFailed:
		if ps := t.ports[e.key.port]; ps != nil {
			ps.gc.push(e)
		}
	case st == StateIncomplete && old != StateIncomplete:
		t.incUnsent.push(e) // solicit moves it to incSent
	}
	if (old == StateIncomplete) != (st == StateIncomplete) {
		if st == StateIncomplete {
			t.nInc++
		} else {
			t.nInc--
		}
	}
	e.state = st
	e.updated = now
	t.arm(e, now, d)
	if t.cfg.Notify != nil && old != st {
		t.cfg.Notify(e.info(now), old, false)
	}
}

func (t *Table) reachableTime() time.Duration {
	b := t.cfg.BaseReachableTime
	return b/2 + time.Duration(t.rnd.Int64N(int64(b)+1))
}

func (t *Table) setMAC(e *entry, mac [6]byte) {
	if e.mac != mac {
		if e.state.usable() {
			t.dirty = true
		}
		e.mac = mac
	}
}

// confirm: the entry is REACHABLE now.
func (t *Table) toReachable(e *entry, now time.Time) {
	e.probes = 0
	t.setState(e, StateReachable, now, t.reachableTime())
}

func (t *Table) toStale(e *entry, now time.Time) {
	e.probes = 0
	t.setState(e, StateStale, now, t.cfg.StaleTime)
}

// resolved: an INCOMPLETE (or FAILED) entry learned its MAC; held packets
// leave in order.
func (t *Table) resolved(e *entry, mac [6]byte, reachable bool, now time.Time) {
	e.mac = mac
	if reachable {
		t.toReachable(e, now)
	} else {
		t.toStale(e, now)
	}
	t.ctr.Resolved++
	if len(e.hold) > 0 {
		n := len(e.hold)
		t.held -= n
		t.send(e, e.hold)
		clear(e.hold)
		e.hold = e.hold[:0]
	}
}

func (t *Table) fail(e *entry, now time.Time) {
	t.ctr.Failed++
	e.probes = 0
	t.setState(e, StateFailed, now, t.cfg.FailedTime)
	if len(e.hold) > 0 {
		t.held -= len(e.hold)
		t.ctr.Unreachable += uint64(len(e.hold))
		t.stack.Unreachable(e.key.port, e.key.addr, e.hold)
		clear(e.hold)
		e.hold = e.hold[:0]
	}
}

// ---- timers ----

func (t *Table) runTimers(now time.Time) {
	for len(t.timers) > 0 && !t.timers[0].deadline.After(now) {
		e := heap.Pop(&t.timers).(*entry)
		e.deadline = time.Time{}
		t.expire(e, now)
	}
}

func (t *Table) expire(e *entry, now time.Time) {
	switch e.state {
	case StateIncomplete:
		if e.probes >= t.cfg.MaxMulticastSolicit {
			t.fail(e, now)
			return
		}
		t.solicit(e, false, now)
		t.rearm(e, now, t.cfg.RetransTimer)
	case StateReachable:
		t.toStale(e, now)
	case StateStale:
		if t.usedSince(e) {
			t.toDelay(e, now)
			return
		}
		t.delete(e)
	case StateDelay:
		e.probes = 0
		t.setState(e, StateProbe, now, t.cfg.RetransTimer)
		t.solicit(e, true, now)
	case StateProbe:
		if e.probes >= t.cfg.MaxUnicastSolicit {
			t.fail(e, now)
			return
		}
		t.solicit(e, true, now)
		t.rearm(e, now, t.cfg.RetransTimer)
	case StateFailed:
		t.delete(e)
	}
}

// rearm re-arms e's timer without changing its state.
func (t *Table) rearm(e *entry, now time.Time, d time.Duration) { t.arm(e, now, d) }

func (t *Table) toDelay(e *entry, now time.Time) {
	t.setState(e, StateDelay, now, t.cfg.DelayFirstProbe)
}

// usedSince reports whether a worker used STALE entry e since it became
// STALE (a mark at least as new as the first snapshot showing it STALE).
func (t *Table) usedSince(e *entry) bool {
	for _, r := range t.readerList() {
		if m := r.marks.Load().m; int(e.id) < len(m) && m[e.id].Load() >= e.staleGen {
			return true
		}
	}
	return false
}

// readerList returns the readers registered so far (append-only).
func (t *Table) readerList() []*Reader {
	t.readersMu.Lock()
	rs := t.readers
	t.readersMu.Unlock()
	return rs
}

func (t *Table) scanUse() {
	if len(t.stale) == 0 {
		return
	}
	now := t.clock.Now()
	for e := range t.stale {
		if t.usedSince(e) {
			t.toDelay(e, now)
		}
	}
}

// ---- sending ----

// allowRequest takes a token of the request budget, keeping reserve
// tokens back.
func (t *Table) allowRequest(now time.Time, reserve float64) bool {
	rate := float64(t.cfg.RequestsPerSecond)
	t.tokens = min(rate, t.tokens+now.Sub(t.tokensAt).Seconds()*rate)
	t.tokensAt = now
	if t.tokens < 1+reserve {
		t.ctr.RateLimited++
		return false
	}
	t.tokens--
	return true
}

// solicitFirst sends the first request of a new entry. It leaves a quarter
// of the request budget (RequestsPerSecond/4, rounded down) to the retries
// and probes of existing entries: a flood of misses to new destinations
// spends the rest, and a neighbour whose first request it crowded out is
// still asked RetransTimer later.
func (t *Table) solicitFirst(e *entry, now time.Time) {
	t.solicitReserve(e, false, now, float64(t.cfg.RequestsPerSecond/4))
}

// solicit sends a request for e: broadcast ARP / multicast NS, or with
// unicast the same aimed at e's cached MAC (RFC 4861 §7.3.3 PROBE). At
// most one per RetransTimer per entry; each call counts as one probe.
func (t *Table) solicit(e *entry, unicast bool, now time.Time) {
	t.solicitReserve(e, unicast, now, 0)
}

func (t *Table) solicitReserve(e *entry, unicast bool, now time.Time, reserve float64) {
	e.probes++
	if !e.lastReq.IsZero() && now.Sub(e.lastReq) < t.cfg.RetransTimer {
		return
	}
	ps := t.ports[e.key.port]
	if ps == nil {
		return
	}
	src, ok := ps.source(e.key.addr)
	if !ok {
		t.ctr.NoSource++
		return
	}
	if !t.allowRequest(now, reserve) {
		return
	}
	e.lastReq = now
	if e.list == &t.incUnsent {
		e.unlink()
		t.incSent.push(e)
	}
	m := t.alloc()
	if m == nil {
		return
	}
	b := m.Append(ndFrameLen)
	var n int
	if e.key.addr.Is4() {
		dst, tha := broadcastMAC, [6]byte{}
		if unicast {
			dst = e.mac
		}
		n = buildARP(b, dst, ps.mac, arpOpRequest, ps.mac, ip4(src), tha, ip4(e.key.addr))
		t.ctr.ARPRequestsSent++
	} else {
		tgt := e.key.addr.As16()
		dstIP := solicitedNode(tgt)
		dst := multicastMAC6(dstIP)
		if unicast {
			dstIP, dst = tgt, e.mac
		}
		n = buildND(b, dst, ps.mac, src.As16(), dstIP, icmp6NS, 0, tgt, &ps.mac)
		t.ctr.NSSent++
	}
	m.SetLen(n)
	t.transmit(e.key.port, m)
}

func (t *Table) alloc() *mbuf.Mbuf {
	if t.cache.Alloc(t.one[:]) != 1 {
		t.ctr.AllocFailed++
		return nil
	}
	m := t.one[0]
	t.one[0] = nil
	if m.Tailroom() < ndFrameLen {
		t.cache.Free([]*mbuf.Mbuf{m})
		t.ctr.AllocFailed++
		return nil
	}
	return m
}

func (t *Table) transmit(port uint16, m *mbuf.Mbuf) {
	t.one[0] = m
	t.stack.Transmit(port, t.one[:])
	t.one[0] = nil
}

// announce sends a gratuitous ARP request or an unsolicited NA for a.
func (t *Table) announce(port uint16, ps *portState, a netip.Addr) {
	m := t.alloc()
	if m == nil {
		return
	}
	b := m.Append(ndFrameLen)
	var n int
	if a.Is4() {
		n = buildARP(b, broadcastMAC, ps.mac, arpOpRequest, ps.mac, ip4(a), [6]byte{}, ip4(a))
	} else {
		n = buildND(b, multicastMAC6(allNodes), ps.mac, a.As16(), allNodes, icmp6NA,
			naFlagRouter|naFlagOverride, a.As16(), &ps.mac)
	}
	m.SetLen(n)
	t.ctr.Announcements++
	t.transmit(port, m)
}

// send rewrites the Ethernet header of routed packets for e (destination
// e's MAC, source the port's MAC, any 802.1Q tag removed: ports are
// untagged) and transmits them in order. It takes ownership of ms.
func (t *Table) send(e *entry, ms []*mbuf.Mbuf) {
	ps := t.ports[e.key.port]
	if ps == nil {
		t.stack.Free(ms)
		return
	}
	out := t.txBuf[:0]
	for _, m := range ms {
		if !rewrite(m, e.mac, ps.mac) {
			t.one[0] = m
			t.stack.Free(t.one[:])
			t.one[0] = nil
			t.ctr.Dropped[DropShort]++
			continue
		}
		out = append(out, m)
	}
	t.ctr.Released += uint64(len(out))
	if len(out) > 0 {
		t.stack.Transmit(e.key.port, out)
	}
	clear(out)
	t.txBuf = out[:0]
}

// rewrite sets the Ethernet addresses of a routed frame, dropping an
// 802.1Q tag first (as fwd/'s send does).
func rewrite(m *mbuf.Mbuf, dst, src [6]byte) bool {
	d := m.Data()
	if len(d) < etherLen {
		return false
	}
	if typ := uint16(d[12])<<8 | uint16(d[13]); typ == etherTypeVLAN {
		if len(d) < etherLen+4 || !m.Adj(4) {
			return false
		}
		if m.Flags&mbuf.FlagVLAN != 0 {
			m.Flags &^= mbuf.FlagVLAN
			if m.L3Off >= 4 {
				m.L3Off -= 4
			}
			if m.L4Off >= 4 {
				m.L4Off -= 4
			}
		}
		d = m.Data()
	}
	copy(d[0:6], dst[:])
	copy(d[6:12], src[:])
	return true
}

// ---- misses ----

// Resolve takes a routed packet m whose next hop target on port had no
// usable entry in the snapshot (the control-side entry point for stacks
// that punt through their own ring). It takes ownership: m is sent at
// once if the entry became usable meanwhile, held while the entry is
// INCOMPLETE (a request is sent when the entry is created), handed to
// Stack.Unreachable if the entry FAILED, or freed and counted if refused.
func (t *Table) Resolve(m *mbuf.Mbuf, port uint16, target netip.Addr) {
	t.ctr.Misses++
	now := t.clock.Now()
	ps := t.ports[port]
	if ps == nil {
		t.ctr.Dropped[DropNoPort]++
		t.freeOne(m)
		return
	}
	if !validNeighbour(target) || ps.ours(target) {
		t.ctr.Dropped[DropBadTarget]++
		t.freeOne(m)
		return
	}
	e := t.entries[key{port, target}]
	if e == nil {
		k := key{port, target}
		again := t.recalled(k, now)
		if t.nInc >= t.cfg.MaxIncomplete && !t.evictIncomplete(now) {
			t.ctr.RefusedIncomplete++
			t.remember(k, now)
			t.freeOne(m)
			return
		}
		// The entry is made and solicited even when MaxHeld is reached (the
		// packet alone is refused, in hold): misses to unresolvable
		// destinations must not keep a new neighbour from resolving.
		e = t.create(port, ps, target, now)
		if e == nil {
			t.freeOne(m)
			return
		}
		t.setState(e, StateIncomplete, now, 0)
		e.hold = make([]*mbuf.Mbuf, 0, t.cfg.HoldLen)
		t.hold(e, m)
		if again {
			// Wanted again after its entry was crowded out: kept, and
			// asked for from the budget's reserve.
			e.unlink()
			t.solicit(e, false, now)
		} else {
			t.solicitFirst(e, now)
		}
		t.rearm(e, now, t.cfg.RetransTimer)
		return
	}
	switch e.state {
	case StateIncomplete:
		// Wanted again: never evicted for a new miss, and asked for now if
		// the first request was crowded out, from the budget's reserve
		// (a scan wants each destination once; a real flow wants its
		// neighbour again).
		if e.list != nil {
			unsent := e.lastReq.IsZero()
			e.unlink()
			if unsent {
				t.solicit(e, false, now)
			}
		}
		t.hold(e, m)
	case StateFailed:
		t.ctr.Unreachable++
		t.one[0] = m
		t.stack.Unreachable(port, target, t.one[:])
		t.one[0] = nil
	case StateStale:
		t.toDelay(e, now)
		t.sendOne(e, m)
	default:
		t.sendOne(e, m)
	}
}

// evictIncomplete deletes one INCOMPLETE entry to make room for a new one
// at MaxIncomplete (Config.MaxIncomplete): the oldest that one packet only
// wanted and that no request was sent for (the request budget was spent
// on others: it has no chance of an answer before its retry), else the
// oldest that one packet only wanted, was asked for at least
// answerWindow ago and got no answer. A scan of unresolvable destinations
// sends one packet to each; a neighbour that is wanted again, by the next
// packet of its flow, is kept until answered or failed. It reports
// whether it freed an entry.
func (t *Table) evictIncomplete(now time.Time) bool {
	v := t.incUnsent.head
	if v == nil {
		if v = t.incSent.head; v == nil || now.Sub(v.lastReq) < t.answerWindow() {
			return false
		}
	} else {
		t.remember(v.key, now)
	}
	t.ctr.EvictedIncomplete++
	t.delete(v)
	return true
}

// answerWindow is how long a request gets to be answered before its
// entry may be evicted for a new one: RetransTimer/10 (100 ms by default,
// far beyond a link's round trip).
func (t *Table) answerWindow() time.Duration { return t.cfg.RetransTimer / 10 }

// ghost is one remembered destination: a fingerprint of its key and when
// (milliseconds since the table's epoch, wrapping).
type ghost struct{ fp, ms uint32 }

// ghostSlots is the number of ghost slots for maxIncomplete: 16 per
// entry, a power of two, at most 2^20 (8 MiB).
func ghostSlots(maxIncomplete int) int {
	n := 64
	for n < 16*maxIncomplete && n < 1<<20 {
		n *= 2
	}
	return n
}

func (t *Table) ghostSlot(k key) (*ghost, uint32) {
	h := maphash.Comparable(t.ghostSeed, k)
	return &t.ghosts[h&uint64(len(t.ghosts)-1)], uint32(h>>32) | 1
}

// remember records k as a destination wanted once and crowded out.
func (t *Table) remember(k key, now time.Time) {
	g, fp := t.ghostSlot(k)
	*g = ghost{fp: fp, ms: uint32(now.Sub(t.epoch).Milliseconds())}
}

// recalled reports whether k was remembered within RetransTimer (and
// forgets it).
func (t *Table) recalled(k key, now time.Time) bool {
	g, fp := t.ghostSlot(k)
	if g.fp != fp || time.Duration(uint32(now.Sub(t.epoch).Milliseconds())-g.ms)*time.Millisecond > t.cfg.RetransTimer {
		return false
	}
	*g = ghost{}
	return true
}

func (t *Table) sendOne(e *entry, m *mbuf.Mbuf) {
	ms := [1]*mbuf.Mbuf{m}
	t.send(e, ms[:])
}

func (t *Table) freeOne(m *mbuf.Mbuf) {
	t.one[0] = m
	t.stack.Free(t.one[:])
	t.one[0] = nil
}

func (t *Table) hold(e *entry, m *mbuf.Mbuf) {
	if len(e.hold) >= t.cfg.HoldLen {
		old := e.hold[0]
		copy(e.hold, e.hold[1:])
		e.hold[len(e.hold)-1] = m
		t.ctr.HoldDropped++
		t.ctr.Held++
		t.freeOne(old)
		return
	}
	if t.held >= t.cfg.MaxHeld {
		t.ctr.HoldRefused++
		t.freeOne(m)
		return
	}
	e.hold = append(e.hold, m)
	t.held++
	t.ctr.Held++
}

func (t *Table) missTagged(m *mbuf.Mbuf) {
	off := m.Offset()
	if off < missTagLen {
		t.ctr.BadMissTag++
		t.freeOne(m)
		return
	}
	tag := m.Buf()[off-missTagLen : off]
	if uint32(tag[0])|uint32(tag[1])<<8|uint32(tag[2])<<16|uint32(tag[3])<<24 != missTagMagic {
		t.ctr.BadMissTag++
		t.freeOne(m)
		return
	}
	clear(tag[0:4])
	port := uint16(tag[4]) | uint16(tag[5])<<8
	var a netip.Addr
	switch tag[6] {
	case 4:
		a = netip.AddrFrom4([4]byte(tag[8:12]))
	case 6:
		a = netip.AddrFrom16([16]byte(tag[8:24]))
	default:
		t.ctr.BadMissTag++
		t.freeOne(m)
		return
	}
	t.Resolve(m, port, a)
}
