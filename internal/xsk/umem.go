package xsk

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Sentinel errors. Setup errors wrap one of these (test with errors.Is) and
// say what to do; the datapath returns counts, not errors.
var (
	// ErrInvalidConfig: a size, count or index is out of range.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrNotSupported: the kernel or the driver lacks a feature asked for
	// explicitly (zero-copy, native XDP, shared UMEM).
	ErrNotSupported = errors.New("not supported")
	// ErrBusy: the queue or interface is already in use (by this Umem, by
	// another socket, or by a running process's XDP program).
	ErrBusy = errors.New("in use")
	// ErrForeignProgram: the interface carries an XDP program that fwdd did
	// not load; it is left alone.
	ErrForeignProgram = errors.New("interface has an XDP program that does not belong to fwdd")
	// ErrClosed: the object was closed.
	ErrClosed = errors.New("closed")
)

// Defaults.
const (
	DefaultChunkSize = 4096
	DefaultRingSize  = 2048
)

// UmemConfig describes how a region is cut into chunks (aligned mode: every
// chunk starts at a multiple of ChunkSize from the region's start).
type UmemConfig struct {
	// ChunkSize is the size of one frame buffer: a power of two between
	// 2048 and the page size. 0 means DefaultChunkSize.
	ChunkSize uint32
	// Headroom is the number of bytes the kernel leaves free in each chunk
	// on top of its own XDP_PACKET_HEADROOM (256): a received packet starts
	// at chunk base + 256 + Headroom. Desc.Addr always says where.
	Headroom uint32
}

// Umem is a UMEM region registered with the kernel, shared by the sockets
// made from it (XDP_SHARED_UMEM: each socket has its own fill and completion
// rings and may be on any interface and queue).
//
// The caller owns the region (e.g. an mbuf pool's arena) and must keep it
// mapped and unmoved until every socket of the Umem is closed. The Umem only
// keeps the bookkeeping: which sockets are open. The kernel registration is
// made by the first socket opened and lives until the last one is closed.
//
// A Umem's methods are safe for concurrent use; they are setup-time only.
type Umem struct {
	region   []byte
	chunk    uint32
	headroom uint32
	chunks   uint32

	mu   sync.Mutex
	live []*Socket // open sockets, in opening order; live[0] anchors sharing
}

// NewUmem validates region and cfg and returns a Umem over region. region
// must be page-aligned, and its length a multiple of the chunk size.
func NewUmem(region []byte, cfg UmemConfig) (*Umem, error) {
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	page := uint32(unix.Getpagesize())
	if cfg.ChunkSize < 2048 || cfg.ChunkSize > page || cfg.ChunkSize&(cfg.ChunkSize-1) != 0 {
		return nil, fmt.Errorf("xsk: chunk size %d: %w (aligned mode needs a power of two in [2048, %d])", cfg.ChunkSize, ErrInvalidConfig, page)
	}
	if len(region) == 0 || len(region)%int(cfg.ChunkSize) != 0 {
		return nil, fmt.Errorf("xsk: region of %d bytes: %w (must be a non-zero multiple of the chunk size %d)", len(region), ErrInvalidConfig, cfg.ChunkSize)
	}
	if regionAddr(region)%uintptr(page) != 0 {
		return nil, fmt.Errorf("xsk: region at %#x: %w (must be page-aligned: use MapRegion or mmap)", regionAddr(region), ErrInvalidConfig)
	}
	if len(region)/int(cfg.ChunkSize) > 1<<31 {
		return nil, fmt.Errorf("xsk: %d chunks: %w", len(region)/int(cfg.ChunkSize), ErrInvalidConfig)
	}
	// The kernel needs room for the XDP headroom and at least an Ethernet
	// frame after the user headroom.
	if cfg.Headroom > cfg.ChunkSize-256-256 {
		return nil, fmt.Errorf("xsk: headroom %d with chunk size %d: %w", cfg.Headroom, cfg.ChunkSize, ErrInvalidConfig)
	}
	return &Umem{
		region:   region,
		chunk:    cfg.ChunkSize,
		headroom: cfg.Headroom,
		chunks:   uint32(len(region) / int(cfg.ChunkSize)),
	}, nil
}

// ChunkSize returns the size of one chunk.
func (u *Umem) ChunkSize() uint32 { return u.chunk }

// Headroom returns the configured per-chunk headroom.
func (u *Umem) Headroom() uint32 { return u.headroom }

// Chunks returns the number of chunks in the region.
func (u *Umem) Chunks() int { return int(u.chunks) }

// Region returns the region the Umem was made over.
func (u *Umem) Region() []byte { return u.region }

// ChunkAddr returns the UMEM address of chunk i (0 <= i < Chunks()).
func (u *Umem) ChunkAddr(i int) uint64 { return uint64(i) * uint64(u.chunk) }

// Frame returns the n bytes at UMEM address addr (a Desc's Addr and Len),
// aliasing the region. It returns nil if the range is outside the region or
// crosses a chunk boundary.
func (u *Umem) Frame(addr uint64, n uint32) []byte {
	end := addr + uint64(n)
	if end > uint64(len(u.region)) || end < addr || (n > 0 && addr/uint64(u.chunk) != (end-1)/uint64(u.chunk)) {
		return nil
	}
	return u.region[addr:end:end]
}

// Sockets returns how many sockets of this Umem are open.
func (u *Umem) Sockets() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.live)
}

func (u *Umem) remove(s *Socket) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, x := range u.live {
		if x == s {
			u.live = append(u.live[:i], u.live[i+1:]...)
			return
		}
	}
}
