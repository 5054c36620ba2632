package mbuf

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/fwdd/fwdd/ring"
)

// Defaults for Config.
const (
	DefaultHeadroom  = 256
	DefaultBufSize   = 2048
	DefaultCacheSize = 256
	// MaxBufSize is the largest buffer: lengths and offsets are uint16.
	MaxBufSize = 1 << 16
	// MaxCount bounds a pool's size (the free ring's capacity).
	MaxCount = 1 << 24

	// StaggerLines is how many data offsets fresh mbufs spread over, one
	// cache line (64 bytes) apart, at and below Config.Headroom.
	//
	// Why: buffers are a power of two apart (AF_XDP's aligned chunks), so
	// at one fixed offset every buffer's first data line falls into the
	// same few sets of a set-associative L1 cache (2 KB buffers: 2 of the
	// 64 sets of a 4 KB-way cache, 16-24 lines for a whole burst's
	// headers). A burst's headers then evict each other between the
	// parser and the rewrite, and only a hardware prefetcher that sees the
	// buffers come back in address order hides it: a port that frees its
	// share of a burst separately (a lagg's members, several egress
	// ports) shuffles the order and pays for every header twice. Spread
	// over StaggerLines offsets, a burst's headers use 4 times the sets
	// and far fewer of them are evicted, in whatever order the buffers
	// come back (DPDK pads its mempool objects for the same reason). The
	// stagger goes down into the headroom, never up into the tailroom:
	// what fits after Headroom fits in every fresh mbuf. Frames the kernel
	// places (AF_XDP receive) are where it puts them.
	StaggerLines = 4
	// MinHeadroom is the least room a fresh mbuf keeps in front of its
	// data when staggered (a VLAN tag, lltable's miss tag).
	MinHeadroom = 64
)

// Config describes a pool.
type Config struct {
	// Name appears in errors and statistics.
	Name string
	// ID is copied into every mbuf (Mbuf.PoolID) so the owner of several
	// pools, e.g. one per worker, can tell them apart.
	ID uint16
	// Count is the number of mbufs. Required.
	Count int
	// BufSize is the bytes per buffer, a power of two in [256, 65536]
	// (AF_XDP's aligned mode needs a power of two). Default 2048.
	BufSize int
	// Headroom is the data offset of a fresh mbuf, less its stagger: a
	// fresh mbuf's data starts 0 to 3 cache lines (StaggerLines) before
	// Headroom, by its index, never leaving less than MinHeadroom bytes in
	// front (see Pool.Fresh). The room after a fresh mbuf's data is
	// therefore at least BufSize-Headroom. Default 256, which is also where
	// AF_XDP places received frames (XDP_PACKET_HEADROOM).
	Headroom int
	// CacheSize is the target size of each per-worker Cache. Default 256.
	CacheSize int
	// Region, if set, is the memory the buffers live in: at least
	// Count*BufSize bytes, buffer i at offset i*BufSize. It must not be Go
	// heap memory (mmap it), and it must outlive the pool. The AF_XDP UMEM
	// is such a region. If nil the pool maps its own.
	Region []byte
	// Checked turns on ownership checks: a double free, a free of a foreign
	// mbuf, or (with the mbufcheck build tag) touching the data of a free
	// mbuf panics with a message naming the mbuf. Freed data is poisoned.
	// For tests; it costs a branch and a store per mbuf.
	Checked bool
}

// Errors returned by NewPool.
var (
	ErrConfig = errors.New("mbuf: invalid pool config")
	ErrMemory = errors.New("mbuf: cannot map pool memory")
)

// Pool is a fixed set of mbufs over one memory region, with a shared
// multi-producer/multi-consumer free ring and per-worker caches in front of
// it (rte_mempool). Every method is safe for concurrent use except where
// noted; Cache methods are for the cache's owner only.
//
// Accounting invariant: every mbuf is in exactly one of: the free ring, a
// cache, or owned by someone (a worker, a ring, a device). Pool.InUse counts
// the last group.
type Pool struct {
	name      string
	id        uint16
	count     int
	bufSize   int
	bufShift  uint
	headroom  uint16
	cacheSize int
	checked   bool

	region    []byte
	ownRegion bool
	meta      []byte // mmap'd array of Mbuf
	mbufs     []Mbuf // aliases meta
	free      *ring.Ring[*Mbuf]

	mu     sync.Mutex // guards caches and closed; never taken on the fast path
	caches []*Cache
	closed bool

	allocFails atomic.Uint64 // Alloc calls (pool or cache refills) that fell short
}

// Stats is a snapshot of a pool's counters.
type Stats struct {
	Name      string `json:"name"`
	Count     int    `json:"count"`
	Free      int    `json:"free"`       // in the shared ring
	Cached    int    `json:"cached"`     // in per-worker caches
	InUse     int    `json:"in_use"`     // owned by workers, rings, devices
	AllocMiss uint64 `json:"alloc_miss"` // allocations that got fewer mbufs than asked
}

// NewPool creates a pool. It succeeds completely or returns an error having
// released everything it took.
func NewPool(cfg Config) (*Pool, error) {
	if cfg.BufSize == 0 {
		cfg.BufSize = DefaultBufSize
	}
	if cfg.Headroom == 0 {
		cfg.Headroom = DefaultHeadroom
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	name := cfg.Name
	if name == "" {
		name = "pool"
	}
	switch {
	case cfg.Count <= 0 || cfg.Count > MaxCount:
		return nil, fmt.Errorf("%w %q: count %d out of range [1, %d]", ErrConfig, name, cfg.Count, MaxCount)
	case cfg.BufSize < 256 || cfg.BufSize > MaxBufSize || cfg.BufSize&(cfg.BufSize-1) != 0:
		return nil, fmt.Errorf("%w %q: buffer size %d must be a power of two in [256, %d]", ErrConfig, name, cfg.BufSize, MaxBufSize)
	case cfg.Headroom < 0 || cfg.Headroom >= cfg.BufSize:
		return nil, fmt.Errorf("%w %q: headroom %d must be below the buffer size %d", ErrConfig, name, cfg.Headroom, cfg.BufSize)
	case cfg.CacheSize < 1 || cfg.CacheSize > cfg.Count:
		return nil, fmt.Errorf("%w %q: cache size %d out of range [1, count %d]", ErrConfig, name, cfg.CacheSize, cfg.Count)
	case cfg.Region != nil && len(cfg.Region) < cfg.Count*cfg.BufSize:
		return nil, fmt.Errorf("%w %q: region of %d bytes is smaller than %d buffers of %d", ErrConfig, name, len(cfg.Region), cfg.Count, cfg.BufSize)
	}
	p := &Pool{
		name:      name,
		id:        cfg.ID,
		count:     cfg.Count,
		bufSize:   cfg.BufSize,
		bufShift:  uint(bits.TrailingZeros(uint(cfg.BufSize))),
		headroom:  uint16(cfg.Headroom),
		cacheSize: cfg.CacheSize,
		checked:   cfg.Checked,
		region:    cfg.Region,
	}
	free, err := ring.New[*Mbuf](1<<bits.Len(uint(cfg.Count-1)), ring.MPMC)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrConfig, name, err)
	}
	p.free = free
	if p.region == nil {
		r, err := mapAnon(cfg.Count * cfg.BufSize)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %d buffers of %d bytes: %v", ErrMemory, name, cfg.Count, cfg.BufSize, err)
		}
		p.region, p.ownRegion = r, true
	}
	meta, err := mapAnon(cfg.Count * mbufSize)
	if err != nil {
		p.unmap()
		return nil, fmt.Errorf("%w %q: metadata for %d mbufs: %v", ErrMemory, name, cfg.Count, err)
	}
	p.meta = meta
	p.mbufs = mbufsIn(meta, cfg.Count)
	base := unsafe.Pointer(unsafe.SliceData(p.region))
	all := make([]*Mbuf, cfg.Count)
	for i := range p.mbufs {
		m := &p.mbufs[i]
		// Safe: i*BufSize+BufSize <= len(region), checked above.
		m.buf = unsafe.Add(base, i*cfg.BufSize)
		m.idx = uint32(i)
		m.bufLen = uint32(cfg.BufSize)
		m.home = p.fresh(uint32(i))
		if cfg.Checked {
			m.state = stateFree
		}
		m.poolID = cfg.ID
		all[i] = m
	}
	p.free.EnqueueBulk(all)
	return p, nil
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// ID returns the pool's Config.ID.
func (p *Pool) ID() uint16 { return p.id }

// Count returns the number of mbufs.
func (p *Pool) Count() int { return p.count }

// BufSize returns the bytes per buffer.
func (p *Pool) BufSize() int { return p.bufSize }

// Headroom returns Config.Headroom: the largest data offset of a fresh
// mbuf (Fresh gives each mbuf's own).
func (p *Pool) Headroom() int { return int(p.headroom) }

// Fresh returns the data offset mbuf i has when allocated: Headroom less
// its stagger, s cache lines with s in [0, StaggerLines), as many as
// Headroom allows above MinHeadroom. s is the number of the 4 KB page
// the buffer starts in (the buffer's index for buffers of 4 KB and more),
// modulo StaggerLines: buffers in the same page already start in
// different cache sets, buffers in neighbouring pages get different
// offsets.
func (p *Pool) Fresh(i uint32) int { return int(p.fresh(i)) }

func (p *Pool) fresh(i uint32) uint16 {
	steps := 1
	if h := int(p.headroom); h > MinHeadroom {
		steps = min(StaggerLines, 1+(h-MinHeadroom)/64)
	}
	page := i
	if p.bufShift < 12 {
		page = i >> (12 - p.bufShift)
	}
	return p.headroom - uint16(page%uint32(steps))*64
}

// Region returns the memory the buffers live in (the AF_XDP UMEM).
func (p *Pool) Region() []byte { return p.region }

// Addr returns the offset in Region of m's buffer start.
func (p *Pool) Addr(m *Mbuf) uint64 { return uint64(m.idx) << p.bufShift }

// DataAddr returns the offset in Region of m's first data byte.
func (p *Pool) DataAddr(m *Mbuf) uint64 { return uint64(m.idx)<<p.bufShift + uint64(m.off) }

// ByAddr returns the mbuf whose buffer holds Region offset addr, or nil if
// addr is outside the region's buffers.
func (p *Pool) ByAddr(addr uint64) *Mbuf {
	i := addr >> p.bufShift
	if i >= uint64(p.count) {
		return nil
	}
	return &p.mbufs[i]
}

// ByIndex returns mbuf i, or nil if i is out of range.
func (p *Pool) ByIndex(i uint32) *Mbuf {
	if int(i) >= p.count {
		return nil
	}
	return &p.mbufs[i]
}

// Contains reports whether m belongs to this pool.
func (p *Pool) Contains(m *Mbuf) bool {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(p.mbufs)))
	off := uintptr(unsafe.Pointer(m)) - base
	return off < uintptr(len(p.mbufs))*mbufSize && off%mbufSize == 0
}

// Alloc fills ms with fresh mbufs from the shared ring and returns how many
// it got; fewer than len(ms) means the pool is (nearly) exhausted and is
// counted. Safe for concurrent use; workers should use a Cache.
func (p *Pool) Alloc(ms []*Mbuf) int {
	n := p.free.DequeueBurst(ms)
	if n < len(ms) {
		p.allocFails.Add(1)
	}
	p.prepare(ms[:n])
	return n
}

// Free returns mbufs to the shared ring. Safe for concurrent use; workers
// should use a Cache. The caller must own every mbuf in ms.
func (p *Pool) Free(ms []*Mbuf) {
	p.release(ms)
	// The ring holds every mbuf of the pool, so this cannot fall short
	// unless an mbuf is freed twice (caught in checked mode).
	p.free.EnqueueBurst(ms)
}

func (p *Pool) prepare(ms []*Mbuf) {
	for _, m := range ms {
		if p.checked {
			if m.state != stateFree {
				panic(fmt.Sprintf("mbuf: pool %q: mbuf %d handed out while in use (corrupt free list)", p.name, m.idx))
			}
			m.state = stateInUse
		}
		m.reset()
	}
}

func (p *Pool) release(ms []*Mbuf) {
	if !p.checked {
		return
	}
	for _, m := range ms {
		if m == nil || !p.Contains(m) {
			panic(fmt.Sprintf("mbuf: pool %q: free of an mbuf that is not from this pool (%p)", p.name, m))
		}
		if m.state != stateInUse {
			panic(fmt.Sprintf("mbuf: pool %q: double free of mbuf %d", p.name, m.idx))
		}
		m.state = stateFree
		b := unsafe.Slice((*byte)(m.buf), int(m.bufLen))
		for i := range b {
			b[i] = poison
		}
	}
}

// poison fills freed buffers in checked pools, so that a reader of freed
// data sees obvious garbage.
const poison = 0x6b

// Stats returns the pool's counters. Free and Cached are read while workers
// run, so they are approximate.
func (p *Pool) Stats() Stats {
	s := Stats{Name: p.name, Count: p.count, Free: p.free.Len(), AllocMiss: p.allocFails.Load()}
	p.mu.Lock()
	for _, c := range p.caches {
		s.Cached += int(c.held.Load())
		s.AllocMiss += c.misses.Load()
	}
	p.mu.Unlock()
	s.InUse = p.count - s.Free - s.Cached
	return s
}

// Close releases the pool's memory. Every user of the pool (workers,
// drivers, the kernel through a UMEM) must have stopped first: a *Mbuf used
// after Close faults. Close is idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.unmap()
	return nil
}

func (p *Pool) unmap() {
	if p.meta != nil {
		unmap(p.meta)
		p.meta, p.mbufs = nil, nil
	}
	if p.ownRegion && p.region != nil {
		unmap(p.region)
	}
	p.region = nil
}
