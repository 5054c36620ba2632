package fib

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
)

// MaxFIBs is the largest number of FIBs New accepts.
const MaxFIBs = 65536

// GCPercent is the garbage collection target (runtime/debug.SetGCPercent)
// fwdd runs with unless GOGC is set in its environment, and the churn
// benchmarks with it. Route churn makes garbage at the rate snapshots are
// published: each takes a new table header per family changed (2 KiB of dir
// page pointers) and a copy of every dir or header page it changed (2-4
// KiB), ~4-6 KiB per single-change batch (TestChurnGarbage), so 10k
// changes/s make 40-60 MB/s. The Go heap of a full table is ~30 MB (the
// range tables are mapped outside it), so at the default of 100 the GC ran
// every ~0.6 s under that churn, and each cycle delays the control
// goroutine by several ms (its netpoll wake-up waits behind the GC's mark
// workers on the non-worker CPUs) and stops each worker briefly for its
// stack scan. At 400 the heap may grow to five times the live heap
// (~150 MB for a full table) and cycles are four times rarer. Since
// 2026-11-30 fwdd's FIBs reuse the replaced parts for their workers
// (Config.Readers), so a single-change batch leaves ~100 bytes (its
// Snapshot, the RIB's edits) and at 10k changes/s a cycle comes every
// minute or two at 400 (BENCHMARKS.md, FIB under churn); the target stays
// for FIBs without Readers and for bulk loads.
const GCPercent = 400

// Config sets up a FIBs instance.
type Config struct {
	// FIBs is the number of FIBs (net.fibs); 0 means 1.
	FIBs int
	// Readers, if set, makes the FIBs reuse the memory of the snapshot
	// parts a batch replaces (table headers, dir and header pages, lists,
	// segments) once every online reader of the set has passed them
	// (reclaim.go), instead of leaving them to the Go garbage collector.
	// Then every goroutine but the control goroutine must read this
	// FIBs' snapshots only through a Reader of the set, as its contract
	// says, and the control goroutine must not read a snapshot it loaded
	// before an Apply or AddNextHop after it. Without Readers, snapshots
	// may be held and read by anyone for as long as they like.
	Readers *Readers
}

// Errors of Apply and AddNextHop; they are wrapped with the offending change.
var (
	ErrBadPrefix = errors.New("invalid prefix")
	ErrHostBits  = errors.New("host bits set in prefix (use the network address, e.g. 10.0.0.0/8)")
	ErrFIB       = errors.New("FIB number out of range (see net.fibs)")
	ErrNextHop   = errors.New("unknown next hop (add it with AddNextHop first)")
	ErrBadOp     = errors.New("unknown operation")
	ErrBadNH     = errors.New("invalid next hop")
	ErrFull      = errors.New("too many distinct next hops in one FIB's IPv4 table (65534)")
	ErrCapacity  = errors.New("table capacity exceeded")
)

// Capacity limits (FIBs.limits): Apply refuses a batch after which one
// FIB's table of one family would hold more than MaxPrefixes prefixes, or
// one IPv6 /32 more than MaxDeepPrefixes prefixes longer than /32, with
// ErrCapacity, before changing anything. The first bounds the segments
// of every arena (see limits), the second the size of one range table.
const (
	MaxPrefixes     = segIDs * segLen / 16 // 4,194,304 per FIB and family
	MaxDeepPrefixes = 1 << 20              // 1,048,576 under one IPv6 /32
)

// Op is what a Change does.
type Op uint8

const (
	// OpAdd adds a route, or replaces the next hop of an existing one.
	OpAdd Op = iota + 1
	// OpDelete deletes a route; deleting a missing route is a no-op.
	OpDelete
)

// Change is one route change of a batch.
type Change struct {
	Op      Op
	FIB     uint32 // ignored when Connected
	Prefix  netip.Prefix
	NextHop uint32 // OpAdd only
	// Connected applies the change to every FIB (routes from an address on
	// a port). A connected route can still be deleted from one FIB with a
	// plain OpDelete on that FIB.
	Connected bool
}

// Route is one route, as enumerated by Routes or returned by RouteGet.
type Route struct {
	FIB     uint32
	Prefix  netip.Prefix
	NextHop uint32
}

// Snapshot is an immutable view of all FIBs and next hops. Workers load it
// once per burst with FIBs.Load and may keep it for the burst; it is never
// modified after publication.
type Snapshot struct {
	v4 []*tab4
	v6 []*tab6
	nh []NextHop
	// gen numbers the snapshots of one FIBs in publication order (the
	// first is 0).
	gen uint64
}

// FIBs owns the routing tables of one stack. All methods but Load must be
// called from the single control goroutine; Load and the Snapshot methods
// may be called from any goroutine at any time.
type FIBs struct {
	cur    atomic.Pointer[Snapshot]
	nfib   int
	zero   *dirPage
	empty4 *tab4
	empty6 *tab6
	f4     []*fam4 // nil until the FIB gets its first IPv4 route
	f6     []*fam6
	nhs    []NextHop
	sc     scratch
	rc     *reclaim // replaced snapshot parts waiting for the readers (nil: no Readers)
	// The FIBs whose IPv4 (IPv6) table the batch being applied changed,
	// each listed once (dirty4[fib] says it is listed): reused by every
	// Apply, so steady-state churn allocates no set per batch.
	touched4, touched6 []int
	dirty4, dirty6     []bool
	seglen             int // arena segment length (0: segLen; tests use small ones)
	// Tests lower the limits: segment ids per arena (0: segIDs) and
	// prefixes under one IPv6 /32 (0: MaxDeepPrefixes).
	maxSegs, maxDeep int
}

// limits returns the prefix limits per FIB and family and under one IPv6
// /32. A region with n entries makes a range table of at most
// tableBound(n) <= 2.13n + 2.07 entries and there are at most as many
// regions as prefixes, so a family of N prefixes has at most 4.2N entries
// per arena level; a rebuild into a fresh arena fills them into fewer than
// 2*4.2N/seglen + 1 segments (seg.go, room), which for N <= segs*seglen/16
// is about half the segment ids. IPv6 rank indexes (rank.go) add at most
// an eighth of an arena's capacity (fam6.ixBudget), a quarter of the ids.
// maxDeep keeps one IPv6 L2 or L3 table under 2.3M entries, below the 4M
// a position can address (segBits); an L2 table whose rank index would
// take it over that gets none.
func (f *FIBs) limits() (perFam, deep int) {
	segs, seglen := f.maxSegs, f.seglen
	if segs == 0 {
		segs = segIDs
	}
	if seglen == 0 {
		seglen = segLen
	}
	deep = f.maxDeep
	if deep == 0 {
		deep = MaxDeepPrefixes
	}
	return segs * seglen / 16, deep
}

// New returns FIBs with cfg.FIBs empty FIBs and next hop NoRoute.
// An empty FIB costs two pointers.
func New(cfg Config) (*FIBs, error) {
	n := cfg.FIBs
	if n == 0 {
		n = 1
	}
	if n < 0 || n > MaxFIBs {
		return nil, fmt.Errorf("fib: %d FIBs: %w (1..%d)", cfg.FIBs, ErrFIB, MaxFIBs)
	}
	f := &FIBs{nfib: n, zero: new(dirPage), f4: make([]*fam4, n), f6: make([]*fam6, n),
		dirty4: make([]bool, n), dirty6: make([]bool, n), rc: newReclaim(cfg.Readers)}
	f.empty4 = &tab4{}
	f.empty6 = &tab6{}
	for i := range 256 {
		f.empty4.top[i] = f.zero
		f.empty6.top[i] = f.zero
	}
	f.nhs = []NextHop{{Kind: KindNone}}
	s := &Snapshot{v4: make([]*tab4, n), v6: make([]*tab6, n), nh: f.nhs}
	for i := range n {
		s.v4[i] = f.empty4
		s.v6[i] = f.empty6
	}
	f.cur.Store(s)
	return f, nil
}

// Load returns the current snapshot. Workers call it once per burst.
func (f *FIBs) Load() *Snapshot { return f.cur.Load() }

// NumFIBs is the number of FIBs.
func (f *FIBs) NumFIBs() int { return f.nfib }

// AddNextHop registers a next hop and publishes it; it returns its id.
// ECMP members must already exist and must not be groups themselves.
func (f *FIBs) AddNextHop(nh NextHop) (uint32, error) {
	switch nh.Kind {
	case KindGateway:
		if !nh.Addr.IsValid() {
			return 0, fmt.Errorf("fib: gateway next hop without address: %w", ErrBadNH)
		}
	case KindLocal:
		if !nh.Addr.IsValid() {
			return 0, fmt.Errorf("fib: local next hop without address: %w", ErrBadNH)
		}
	case KindConnected, KindBlackhole, KindReject:
	case KindECMP:
		if len(nh.Members) == 0 {
			return 0, fmt.Errorf("fib: ECMP group without members: %w", ErrBadNH)
		}
		for _, m := range nh.Members {
			if m == NoRoute || int(m) >= len(f.nhs) || f.nhs[m].Kind == KindECMP {
				return 0, fmt.Errorf("fib: ECMP member %d: %w (members must be existing non-group next hops)", m, ErrBadNH)
			}
		}
		nh.Members = slices.Clone(nh.Members)
	default:
		return 0, fmt.Errorf("fib: next hop kind %v: %w", nh.Kind, ErrBadNH)
	}
	if len(f.nhs) >= MaxNextHops {
		return 0, fmt.Errorf("fib: %w: %d next hops is the limit", ErrBadNH, MaxNextHops)
	}
	id := uint32(len(f.nhs))
	f.nhs = append(f.nhs, nh)
	s := *f.cur.Load()
	s.nh = f.nhs
	s.gen++
	f.cur.Store(&s)
	return id, nil
}

func (f *FIBs) validate(i int, c *Change) error {
	bad := func(err error) error {
		return fmt.Errorf("fib: change %d (op %d fib %d %v nexthop %d): %w", i, c.Op, c.FIB, c.Prefix, c.NextHop, err)
	}
	if c.Op != OpAdd && c.Op != OpDelete {
		return bad(ErrBadOp)
	}
	if !c.Connected && int64(c.FIB) >= int64(f.nfib) {
		return bad(ErrFIB)
	}
	p := c.Prefix
	if !p.IsValid() || p.Addr().Zone() != "" {
		return bad(ErrBadPrefix)
	}
	if p.Masked() != p {
		return bad(ErrHostBits)
	}
	if c.Op == OpAdd && (c.NextHop == NoRoute || int64(c.NextHop) >= int64(len(f.nhs))) {
		return bad(ErrNextHop)
	}
	return nil
}

// Apply validates the whole batch, then applies it and publishes one new
// snapshot. If any change is invalid, nothing is applied and the error
// names the first bad change. Changes apply in order (a later change to the
// same prefix wins).
func (f *FIBs) Apply(changes []Change) error {
	for i := range changes {
		if err := f.validate(i, &changes[i]); err != nil {
			return err
		}
	}
	if err := f.checkLeafRoom(changes); err != nil {
		return err
	}
	if err := f.checkCapacity(changes); err != nil {
		return err
	}
	if len(changes) > 4096 && !slices.IsSortedFunc(changes, cmpChange) {
		// Bulk loads: in address order every insert into a region's sorted
		// entries is an append. Stable, so the last change to a prefix wins.
		changes = slices.Clone(changes)
		slices.SortStableFunc(changes, cmpChange)
	}
	for i := range changes {
		c := &changes[i]
		if c.Connected {
			for fib := range f.nfib {
				f.change(fib, c)
			}
			continue
		}
		f.change(int(c.FIB), c)
	}
	t4, t6 := f.touched4, f.touched6
	f.touched4, f.touched6 = t4[:0], t6[:0]
	if len(t4) == 0 && len(t6) == 0 {
		return nil
	}
	old := f.cur.Load()
	f.rc.collect()
	// The Snapshot itself is always new (a few words): workers compare
	// snapshot pointers (fwd's adjacency cache), which reuse would fool.
	s := &Snapshot{v4: old.v4, v6: old.v6, nh: f.nhs, gen: old.gen + 1}
	if len(t4) > 0 {
		s.v4 = f.rc.cloneV4(old.v4)
		for _, fib := range t4 {
			f.dirty4[fib] = false
			s.v4[fib] = f.f4[fib].commit(&f.sc)
			if t := old.v4[fib]; t != f.empty4 && f.rc != nil {
				f.rc.t4.retire(t)
			}
		}
	}
	if len(t6) > 0 {
		s.v6 = f.rc.cloneV6(old.v6)
		for _, fib := range t6 {
			f.dirty6[fib] = false
			s.v6[fib] = f.f6[fib].commit(&f.sc)
			if t := old.v6[fib]; t != f.empty6 && f.rc != nil {
				f.rc.t6.retire(t)
			}
		}
	}
	f.cur.Store(s)
	f.rc.published()
	return nil
}

func cmpChange(a, b Change) int {
	if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
		return c
	}
	return a.Prefix.Bits() - b.Prefix.Bits()
}

// checkLeafRoom checks that no IPv4 table would need more than 65534
// distinct next-hop ids (its range values are 16-bit indexes).
func (f *FIBs) checkLeafRoom(changes []Change) error {
	var extra map[int]map[uint32]struct{}
	for i := range changes {
		c := &changes[i]
		if c.Op != OpAdd || !c.Prefix.Addr().Is4() {
			continue
		}
		lo, hi := int(c.FIB), int(c.FIB)+1
		if c.Connected {
			lo, hi = 0, f.nfib
		}
		for fib := lo; fib < hi; fib++ {
			have := 2 // NoRoute and subMark (fam4.t.nh)
			if fm := f.f4[fib]; fm != nil {
				if fm.hasLeaf(c.NextHop) {
					continue
				}
				have = len(fm.t.nh)
			}
			if extra == nil {
				extra = make(map[int]map[uint32]struct{})
			}
			m := extra[fib]
			if m == nil {
				m = make(map[uint32]struct{})
				extra[fib] = m
			}
			m[c.NextHop] = struct{}{}
			if have+len(m) > 1<<16 {
				return fmt.Errorf("fib: change %d (fib %d %v nexthop %d): %w", i, fib, c.Prefix, c.NextHop, ErrFull)
			}
		}
	}
	return nil
}

func (f *FIBs) change(fib int, c *Change) {
	del := c.Op == OpDelete
	a := c.Prefix.Addr()
	l := c.Prefix.Bits()
	if a.Is4() {
		fm := f.f4[fib]
		if fm == nil {
			if del {
				return
			}
			fm = newFam4(f.zero, f.seglen, f.maxSegs, f.rc)
			f.f4[fib] = fm
		}
		b := a.As4()
		if fm.change(binary.BigEndian.Uint32(b[:]), l, c.NextHop, del) && !f.dirty4[fib] {
			f.dirty4[fib] = true
			f.touched4 = append(f.touched4, fib)
		}
		return
	}
	fm := f.f6[fib]
	if fm == nil {
		if del {
			return
		}
		fm = newFam6(f.zero, f.seglen, f.maxSegs, f.rc)
		f.f6[fib] = fm
	}
	b := a.As16()
	if fm.change(binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), l, c.NextHop, del) && !f.dirty6[fib] {
		f.dirty6[fib] = true
		f.touched6 = append(f.touched6, fib)
	}
}

// Generation is the snapshot's number: the snapshots of one FIBs are
// numbered in the order they were published, from 0, so a later one has
// a greater number.
func (s *Snapshot) Generation() uint64 { return s.gen }

// NumFIBs is the number of FIBs in the snapshot (that of the FIBs it came
// from).
func (s *Snapshot) NumFIBs() int { return len(s.v4) }

// Lookup4 returns the next-hop id of the longest prefix in FIB fib matching
// the IPv4 address dst (host order, e.g. binary.BigEndian.Uint32 of the
// header field), or NoRoute. fib must be < NumFIBs (it panics otherwise,
// like an index out of range: the caller checks the FIB number once when
// configuring the port or socket).
func (s *Snapshot) Lookup4(fib uint32, dst uint32) uint32 {
	return s.v4[fib].lookup(dst)
}

// Lookup4Batch looks dst[i] up in FIB fib and stores the next-hop id in
// out[i]. len(out) must be >= len(dst). It does not allocate.
func (s *Snapshot) Lookup4Batch(fib uint32, dst []uint32, out []uint32) {
	_ = out[:len(dst)]
	s.v4[fib].lookupBatch(dst, out)
}

// Scratch4 is the working memory of Lookup4BatchScratch (~2.2 KB): the
// state of a block of addresses between the stages of the lookup. A worker
// keeps one (fwd's pipeline does) so that its batch lookups do not zero
// that much stack per call, as Lookup4Batch does. The zero value is ready
// to use; one Scratch4 must not be used by two goroutines at once. Between
// calls it holds stale addresses (uintptr, into segment memory and the
// last table) that are never read again.
type Scratch4 struct{ b blk4 }

// Lookup4BatchScratch is Lookup4Batch with the working memory sc.
func (s *Snapshot) Lookup4BatchScratch(sc *Scratch4, fib uint32, dst []uint32, out []uint32) {
	_ = out[:len(dst)]
	s.v4[fib].lookupBlocks(&sc.b, dst, out)
}

// Lookup6 returns the next-hop id of the longest prefix in FIB fib matching
// the IPv6 address dst (network order), or NoRoute.
func (s *Snapshot) Lookup6(fib uint32, dst *[16]byte) uint32 {
	return s.v6[fib].lookup(binary.BigEndian.Uint64(dst[:8]), binary.BigEndian.Uint64(dst[8:]))
}

// Lookup6Batch looks dst[i] up in FIB fib and stores the next-hop id in
// out[i]. len(out) must be >= len(dst). It does not allocate.
func (s *Snapshot) Lookup6Batch(fib uint32, dst [][16]byte, out []uint32) {
	_ = out[:len(dst)]
	s.v6[fib].lookupBatch(dst, out)
}

// Scratch6 is the working memory of Lookup6BatchScratch (~3.6 KB): the
// state of a block of addresses between the stages of the lookup. A worker
// keeps one (fwd's pipeline does) so that its batch lookups do not zero
// that much stack per call, as Lookup6Batch does. The zero value is ready
// to use; one Scratch6 must not be used by two goroutines at once. Between
// calls it holds stale table addresses and search pointers (into segment
// memory, or to the last table's zero word) that are never read again:
// every stage writes what it reads first.
type Scratch6 struct{ b blk6 }

// Lookup6BatchScratch is Lookup6Batch with the working memory sc.
func (s *Snapshot) Lookup6BatchScratch(sc *Scratch6, fib uint32, dst [][16]byte, out []uint32) {
	_ = out[:len(dst)]
	s.v6[fib].lookupBlocks(&sc.b, dst, out)
}

// NextHop returns the next hop with id id. The pointer is into the
// immutable snapshot: do not modify it.
func (s *Snapshot) NextHop(id uint32) *NextHop { return &s.nh[id] }

// Select resolves an ECMP group to the member chosen by the packet's flow
// hash; any other id is returned unchanged.
func (s *Snapshot) Select(id uint32, hash uint32) uint32 {
	nh := &s.nh[id]
	if nh.Kind != KindECMP {
		return id
	}
	m := nh.Members
	return m[uint64(hash)*uint64(len(m))>>32]
}

// SelectBatch applies Select to ids[i] with hash[i], in place.
// len(hash) must be >= len(ids).
func (s *Snapshot) SelectBatch(ids []uint32, hash []uint32) {
	_ = hash[:len(ids)]
	for i, id := range ids {
		ids[i] = s.Select(id, hash[i])
	}
}

// MemStats reports the bytes of the lookup structures of FIB fib.
func (s *Snapshot) MemStats(fib uint32) (v4, v6 int) {
	return s.v4[fib].bytes(), s.v6[fib].bytes()
}
