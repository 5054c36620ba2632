package fib

import (
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Segmented arenas.
//
// The range tables of one level live in segments: separate Go slices of
// segLen entries (a bigger table gets a segment of its own size). A table
// never straddles two segments. Its position is one uint32: the segment id
// in the top bits, the offset in the segment in the low segBits bits.
//
// Segments are listed at their full length (len == cap); the writer keeps
// how much of each it has filled (segArena.n) and appends new tables past
// that, so putting a table leaves the list as it is. A published snapshot
// holds its own copy of the list, which the writer copies again only in a
// batch that starts or drops a segment (like the dir and header pages,
// copied on the first change in a batch), and reads only the entries its
// dir entries and headers point at, which the writer never writes again.
// So a batch that only puts tables makes no garbage for the list.
// Garbage is collected incrementally: at the end of a batch whose arena has
// too much garbage, the live tables of at most one segment (the one with
// the most garbage) are copied into the current segment and the emptied
// segment is dropped from the list; the Go garbage collector frees it when
// no published snapshot refers to it any more. So no batch copies more than
// one segment (256-512 KiB) and growth never copies an arena.
const (
	segBits = 22 // offset bits: a table holds at most 4M entries
	segMask = 1<<segBits - 1
	segIDs  = 1 << (32 - segBits) // at most 1024 segments per arena
	segLen  = 1 << 16             // entries of a normal segment
)

// segArena is the writer side of one level's segmented arena.
type segArena[T any] struct {
	s    [][]T          // segments by id, at full length (nil: free id); shared with the last snapshot until cloned
	n    []int          // entries filled per segment (tables are put from there)
	mem  []*segMem      // the memory of each segment (nil: on the Go heap), like s
	maps *atomic.Int64  // segments mapped and in use (for tests)
	pool chan *spareSeg // spare segments (see segMem)
	// filling is set while a goroutine maps a spare segment (prefill).
	filling          *atomic.Bool
	prefills, reused int   // prefill goroutines started, spare segments used (for tests)
	live             []int // live entries per segment
	// owners lists per segment the owner of every table put there (a dir
	// slot or a header id), so that a collection step visits only the
	// segment's own tables; an owner whose table moved on is skipped.
	owners [][]uint32
	cur    int  // segment tables are appended to; -1: none
	cloned bool // s is a private copy in this batch
	// garbage counts the entries of replaced tables still in segments.
	garbage, nlive int
	rc             *reclaim // the FIBs' store of replaced parts (nil: none)
	bulk           bool     // a full rebuild: releases are not counted
	drops          int      // segments collected (for tests)
	seglen         int      // entries of a normal segment
	maxSegs        int      // segment ids (segIDs; tests use fewer)
	// Cumulative work counters (benchmarks attribute batch costs with
	// them): segments started, entries moved by collection steps.
	started, moved int
	// coll is the segment being collected plus one (0: none) and collAt
	// the number of its owners visited: a collection spreads over batches.
	coll, collAt int
	put0         int // entries put in this batch
	partial      int // collection steps that ended before their segment (for tests)
}

// newSegArena returns an empty arena with segments of n entries (0:
// segLen) and at most m segments (0: segIDs); tests use small ones.
func newSegArena[T any](n, m int) segArena[T] {
	if n == 0 {
		n = segLen
	}
	if m == 0 {
		m = segIDs
	}
	return segArena[T]{cur: -1, seglen: n, maxSegs: m, maps: new(atomic.Int64), pool: make(chan *spareSeg, segPool),
		filling: new(atomic.Bool)}
}

// segMem is the memory of one segment, mapped outside the Go heap. The
// garbage collector neither scans nor sweeps it, so starting a segment
// costs the control goroutine no GC assist or sweep credit (with Go heap
// segments, batches that started one took 1-8 ms of CPU time while the GC
// ran; BenchmarkApplyBatches), and the heap the GC marks is smaller. The
// writer's arena and every snapshot that lists the segment hold its segMem
// (tab4.mem...), and the lookups keep their table alive (runtime.KeepAlive)
// until their last read of segment memory. When the segMem becomes
// unreachable, a cleanup returns the memory to the arena's pool of spare
// segments (its pages are already faulted in, so reusing it costs no page
// faults) or unmaps it if the pool is full. A pooled segment has a cleanup
// of its own that unmaps it, so a pool that becomes garbage with its FIBs
// leaks nothing. With Readers (reclaim.go), a dropped segment goes back
// to the pool as soon as every reader has passed it, without waiting for
// a GC cycle (pool; the cleanup is then stopped).
type segMem struct {
	m    segMemory
	stop runtime.Cleanup
}

// segMemory is what the cleanups of a segment need.
type segMemory struct {
	b      []byte
	pool   chan *spareSeg
	maps   *atomic.Int64
	normal bool // a normal segment (poolable), not a big table's own
}

// spareSeg is a pooled segment's memory.
type spareSeg struct {
	b    []byte
	stop runtime.Cleanup
}

// segPool is how many spare segments an arena keeps.
const segPool = 4

// newSegMem returns an empty slice of capacity c in mapped memory (a
// spare segment of the same size if there is one) and its handle; if
// mapping fails, a Go heap slice and nil.
func newSegMem[T any](c int, a *segArena[T]) ([]T, *segMem) {
	var t T
	size := c * int(unsafe.Sizeof(t))
	normal := a.seglen * int(unsafe.Sizeof(t))
	var b []byte
	if size == normal {
		select {
		case sp := <-a.pool: // only normal segments are pooled
			sp.stop.Stop()
			b = sp.b
			a.reused++
		default:
		}
	}
	if b == nil {
		var err error
		b, err = syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
		if err != nil {
			return make([]T, 0, c), nil
		}
	}
	m := &segMem{m: segMemory{b, a.pool, a.maps, size == normal}}
	a.maps.Add(1)
	m.stop = runtime.AddCleanup(m, recycle, m.m)
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), c)[:0], m
}

// recycle is the cleanup of a segMem: it pools or unmaps the memory.
func recycle(m segMemory) {
	m.maps.Add(-1)
	if !m.normal {
		unmap(m.b)
		return
	}
	spare(m.pool, m.b)
}

// spare puts b into pool, or unmaps it if the pool is full.
func spare(pool chan *spareSeg, b []byte) {
	sp := &spareSeg{b: b}
	sp.stop = runtime.AddCleanup(sp, unmap, b)
	select {
	case pool <- sp:
	default:
		sp.stop.Stop()
		unmap(b)
	}
}

// prefill starts, if the pool is empty and none is under way, a goroutine
// that maps a normal segment with its pages populated and pools it, so
// that the next segment costs the control goroutine neither the mapping
// nor its page faults (fresh pages fault in at a few µs each on a VM: a
// 512 KiB segment is 128 faults). The goroutine only maps and sends (never
// blocking) and then ends.
func (a *segArena[T]) prefill() {
	if len(a.pool) > 0 || !a.filling.CompareAndSwap(false, true) {
		return
	}
	a.prefills++
	var t T
	size := a.seglen * int(unsafe.Sizeof(t))
	pool, filling := a.pool, a.filling
	go func() {
		defer filling.Store(false)
		b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_POPULATE)
		if err == nil {
			spare(pool, b)
		}
	}()
}

func unmap(b []byte) { _ = syscall.Munmap(b) }

// tableBound is the most entries the range table of a region with n
// entries (prefixes and references to deeper regions) can take: at most
// 2n+1 ranges and their summary.
func tableBound(n int) int {
	r := 2*n + 1
	return r + summaryLen(r)
}

// room reports whether putting tables of e entries in all can never run
// out of segment ids. Of two segments started one after the other, the
// second starts with a table that did not fit in the first, so together
// they hold more than a segment: k new segments hold more than
// (k-1)/2 segments' worth of entries, so k < 2e/seglen + 1.
func (a *segArena[T]) room(e int) bool {
	used := 0
	for _, s := range a.s {
		if s != nil {
			used++
		}
	}
	return a.maxSegs-used >= 2*e/a.seglen+2
}

func (a *segArena[T]) own() {
	if !a.cloned {
		a.s = slices.Clone(a.s)
		a.mem = slices.Clone(a.mem)
		a.cloned = true
	}
}

// reset starts a fresh, empty arena (full rebuilds). Published snapshots
// keep the old segments.
func (a *segArena[T]) reset() {
	*a = segArena[T]{cur: -1, cloned: true, seglen: a.seglen, maxSegs: a.maxSegs, rc: a.rc,
		maps: a.maps, pool: a.pool, filling: a.filling,
		prefills: a.prefills, reused: a.reused, drops: a.drops, started: a.started, moved: a.moved, partial: a.partial}
}

// put copies the table of owner into the current segment (starting a new
// one if it does not fit) and returns its position.
func (a *segArena[T]) put(tab []T, owner uint32) uint32 {
	n := len(tab)
	if a.cur < 0 || a.n[a.cur]+n > len(a.s[a.cur]) {
		a.newSeg(max(n, a.seglen))
	}
	off := a.n[a.cur]
	copy(a.s[a.cur][off:off+n], tab)
	a.n[a.cur] += n
	a.live[a.cur] += n
	a.nlive += n
	a.put0 += n
	a.owners[a.cur] = append(a.owners[a.cur], owner)
	return uint32(a.cur<<segBits | off)
}

// newSeg starts a segment of capacity c. Apply's capacity checks (the
// prefix limits, room) make sure that a table fits in a segment and that
// a batch never runs out of segment ids: the panics are for bugs only.
func (a *segArena[T]) newSeg(c int) {
	if c > segMask+1 {
		panic("fib: internal error: range table larger than a segment")
	}
	a.own()
	id := slices.IndexFunc(a.s, func(s []T) bool { return s == nil })
	if id < 0 {
		if len(a.s) >= a.maxSegs {
			panic("fib: internal error: out of arena segments")
		}
		id = len(a.s)
		a.s = append(a.s, nil)
		a.mem = append(a.mem, nil)
		a.n = append(a.n, 0)
		a.live = append(a.live, 0)
		a.owners = append(a.owners, nil)
	}
	a.owners[id] = a.owners[id][:0]
	seg, m := newSegMem(c, a)
	a.s[id], a.mem[id], a.n[id] = seg[:c], m, 0
	if c == a.seglen {
		a.prefill() // for the segment after this one
	}
	a.started++
	a.live[id] = 0
	a.cur = id
}

// move copies the table of owner at pos with n entries into the current
// segment (a collection step) and returns its new position.
func (a *segArena[T]) move(pos uint32, n int, owner uint32) uint32 {
	a.moved += n
	p := a.put(a.get(pos, n), owner)
	a.release(pos, n)
	return p
}

// get returns the n entries at pos.
func (a *segArena[T]) get(pos uint32, n int) []T {
	off := int(pos & segMask)
	return a.s[pos>>segBits][off : off+n]
}

// release marks the n entries at pos as garbage.
func (a *segArena[T]) release(pos uint32, n int) {
	if a.bulk || n == 0 {
		return
	}
	a.live[pos>>segBits] -= n
	a.nlive -= n
	a.garbage += n
}

// victim returns the segment whose live tables the next collection step
// should move: the one being collected, or when the arena's garbage
// exceeds its bound (half the live entries plus two segments) the one with
// the most garbage; -1 if none. Random churn spreads garbage over all
// segments, so a tighter bound would pick victims that are mostly live
// and copy several live entries per entry of garbage reclaimed.
func (a *segArena[T]) victim() int {
	if a.coll > 0 {
		return a.coll - 1
	}
	if a.garbage <= a.nlive/2+2*a.seglen {
		return -1
	}
	best, bg := -1, 0
	for id, s := range a.s {
		if s == nil || id == a.cur {
			continue
		}
		if g := a.n[id] - a.live[id]; g > bg {
			best, bg = id, g
		}
	}
	a.coll, a.collAt = best+1, 0
	if best >= 0 {
		// Owners in order (dir slots, header ids), so that the tables a
		// step moves share dir and header pages: a step copies each page
		// it touches once (the batch's copy), and fewer pages copied is
		// less garbage for the Go heap. Which owners a step visits is not
		// otherwise affected: collect checks each one.
		slices.Sort(a.owners[best])
	}
	return best
}

// collect is one bounded step of collecting segment id: it visits the
// owners of its tables with moveOne, which moves the owner's table if it
// is still live in the segment and returns the entries moved, until the
// step's budget is spent, and drops the segment once every owner was
// visited. The budget is twice the entries this batch put (so collection
// outpaces the garbage the batch made) and at least an eighth of a
// segment; an arena far over its garbage bound moves a whole segment.
func (a *segArena[T]) collect(id int, moveOne func(owner uint32) int) {
	budget := max(a.seglen/8, 2*a.put0)
	if a.garbage > a.nlive+4*a.seglen {
		budget = int(^uint(0) >> 1)
	}
	own := a.owners[id]
	for moved := 0; a.collAt < len(own) && moved < budget; a.collAt++ {
		moved += moveOne(own[a.collAt])
	}
	if a.collAt == len(own) {
		a.drop(id)
	} else {
		a.partial++
	}
}

// drop removes segment id after its live tables were moved (move
// released them, so all of it is garbage).
func (a *segArena[T]) drop(id int) {
	a.own()
	a.garbage -= a.n[id] - a.live[id]
	a.nlive -= a.live[id]
	if a.coll == id+1 {
		a.coll = 0
	}
	if a.rc != nil && a.mem[id] != nil {
		a.rc.segs.retire(a.mem[id])
	}
	a.s[id], a.mem[id], a.n[id] = nil, nil, 0
	a.live[id] = 0
	a.owners[id] = a.owners[id][:0]
	a.drops++
}

// publish returns the segment list and its memory handles for a snapshot
// and ends the batch.
func (a *segArena[T]) publish() ([][]T, []*segMem) {
	a.cloned = false
	a.put0 = 0
	return a.s, a.mem
}

// used is the number of entries filled in segment id (the size of a
// collection step that moves all of it, at most).
func (a *segArena[T]) used(id int) int { return a.n[id] }

// bytes is the memory of the arena's segments.
func segBytes[T any](s [][]T, size int) int {
	n := cap(s) * 24
	for _, x := range s {
		n += cap(x) * size
	}
	return n
}
