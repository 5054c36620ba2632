package fib

import "slices"

// Writer side: the editable RIB of one FIB and family, and the code that
// rebuilds only the parts of the lookup structure a change affects.
// Everything here is owned by the single control goroutine.

// The RIB of a region is a slice of range entries kept sorted by (start,
// length), so a rebuild is one linear sweep (no sort). A prefix is the entry
// (start, len) with its next hop; a deeper region is an entry one bit longer
// than the level's longest prefix whose value is refFlag|header id.

// rc16 holds the prefixes of one /16 region longer than /16: for IPv4 all of
// them (/17-/32), for IPv6 /17-/32 plus the deeper /32 regions (kids).
type rc16 struct {
	ents []rangeEnt[uint16] // plen = len-16; 17 for a kid
	kids map[uint16]*rc64   // IPv6: /32 regions (by bits 16-31) with longer prefixes
}

// rc64 holds the /33-/64 prefixes of one IPv6 /32 (keys: bits 32-63) and
// its /64 regions with longer prefixes.
type rc64 struct {
	ents    []rangeEnt[uint32] // plen = len-32; 33 for a kid
	kids    map[uint32]*rc32
	id      uint32 // header id
	removed bool
	n       int // prefixes /33-/128 under this /32 (the capacity checks read it)
	// The smallest prefix (ds/dl of the 32-bit key space) containing the
	// changes of this batch, if dirty (patch6.go).
	dirty bool
	dl    uint8
	ds    uint32
}

// rc32 holds the /65-/128 prefixes of one IPv6 /64 (keys: bits 64-127).
type rc32 struct {
	ents    []rangeEnt[uint64] // plen = len-64
	id      uint32
	removed bool
}

// edit is what a change did to the RIB.
type edit int8

const (
	unchanged edit = iota
	replaced       // a prefix got a new next hop
	inserted       // a new prefix
	deleted        // a prefix went away
)

// delta is the change in the number of prefixes.
func (e edit) delta() int {
	switch e {
	case inserted:
		return 1
	case deleted:
		return -1
	}
	return 0
}

// setEnt adds, replaces (del false) or deletes the entry (start, plen) of a
// sorted entry slice and says what it did.
func setEnt[K rangeKey](s *[]rangeEnt[K], start K, plen uint8, v uint32, del bool) edit {
	bits := keyBits[K]()
	end := start
	if int(plen) < bits {
		end = start | K(uint64(1)<<(bits-int(plen))-1)
	}
	e := rangeEnt[K]{start: start, end: end, plen: plen, v: v}
	i, found := slices.BinarySearchFunc(*s, e, lessEnt)
	switch {
	case del && !found:
		return unchanged
	case del:
		*s = slices.Delete(*s, i, i+1)
		return deleted
	case found && (*s)[i].v == v:
		return unchanged
	case found:
		(*s)[i].v = v
		return replaced
	default:
		*s = slices.Insert(*s, i, e)
		return inserted
	}
}

// getEnt returns the value of entry (start, plen).
func getEnt[K rangeKey](s []rangeEnt[K], start K, plen uint8) (uint32, bool) {
	i, found := slices.BinarySearchFunc(s, rangeEnt[K]{start: start, plen: plen}, lessEnt)
	if !found {
		return 0, false
	}
	return s[i].v, true
}

func keyBits[K rangeKey]() int {
	n := 0
	for x := ^K(0); x != 0; x >>= 1 {
		n++
	}
	return n
}

// dirw is the writable state of a direct table: the /0-/16 prefixes and the
// working copy of the page pointers; pages are copied at most once per batch.
type dirw struct {
	short map[uint32]uint32 // len<<16 | top bits -> next hop
	top   [256]*dirPage
	own   [256]bool
	zero  *dirPage
	// dirty holds the /16 slots to rebuild in this batch, each with the
	// smallest prefix of the slot's key space containing every change
	// (len<<16 | start; wholeRegion: all of it).
	dirty map[uint16]uint32
	defs  []uint32 // scratch of defaults
	rc    *reclaim // where replaced pages go and copies come from (nil: the Go heap)
}

func (d *dirw) init(zero *dirPage) {
	d.short = make(map[uint32]uint32)
	d.zero = zero
	for i := range d.top {
		d.top[i] = zero
	}
	d.dirty = make(map[uint16]uint32)
}

func (d *dirw) get(slot uint16) uint64 { return d.top[slot>>8][slot&255] }

func (d *dirw) set(slot uint16, e uint64) {
	p := slot >> 8
	if d.top[p][slot&255] == e {
		return
	}
	if !d.own[p] {
		np := d.rc.newDir()
		*np = *d.top[p]
		if d.top[p] != d.zero {
			d.rc.retireDir(d.top[p]) // published: reused after the readers passed it
		}
		d.top[p] = np
		d.own[p] = true
	}
	d.top[p][slot&255] = e
}

func (d *dirw) endBatch() { d.own = [256]bool{} }

// def is the next hop of the longest /0-/16 prefix covering slot.
func (d *dirw) def(slot uint16) uint32 {
	for l := 16; l >= 0; l-- {
		m := uint32(0xffff) << (16 - l) & 0xffff
		if v, ok := d.short[uint32(l)<<16|uint32(slot)&m]; ok {
			return v
		}
	}
	return NoRoute
}

// defaults returns def for every slot, computed by painting the short
// prefixes from the shortest to the longest (for full rebuilds).
func (d *dirw) defaults(buf []uint32) []uint32 {
	if cap(buf) < 1<<16 {
		buf = make([]uint32, 1<<16)
	}
	buf = buf[:1<<16]
	clear(buf)
	for l := 0; l <= 16; l++ {
		for k, nh := range d.short {
			if int(k>>16) != l {
				continue
			}
			s := k & 0xffff
			for i := range uint32(1) << (16 - l) {
				buf[s+i] = nh
			}
		}
	}
	return buf
}

func (d *dirw) setShort(top uint16, l int, nh uint32, del bool) edit {
	k := uint32(l)<<16 | uint32(top)
	ed := inserted
	if del {
		if _, ok := d.short[k]; !ok {
			return unchanged
		}
		delete(d.short, k)
		ed = deleted
	} else {
		if old, ok := d.short[k]; ok && old == nh {
			return unchanged
		} else if ok {
			ed = replaced
		}
		d.short[k] = nh
	}
	n := 1 << (16 - l)
	for i := 0; i < n; i++ {
		d.dirty[top+uint16(i)] = wholeRegion // the default below changes
	}
	return ed
}

// hdrw is the writable header table of an IPv6 family: the writer's view
// of every header (w, by id) and the published pages of their packed form
// (hdr6, what lookups read).
type hdrw struct {
	w      []hdr
	pages  []*hdrPage
	own    []bool
	free   []uint32
	next   uint32
	cloned bool     // pages is a private copy in this batch
	rc     *reclaim // see dirw.rc
}

// ownList makes pages a private copy for this batch: the published
// snapshot holds the old list, whose backing array is never written.
func (h *hdrw) ownList() {
	if !h.cloned {
		old := h.pages
		h.pages = h.rc.hdrList(old)
		h.rc.retireHdrList(old)
		h.cloned = true
	}
}

func (h *hdrw) alloc() uint32 {
	if n := len(h.free); n > 0 {
		id := h.free[n-1]
		h.free = h.free[:n-1]
		h.set(id, hdr{})
		return id
	}
	id := h.next
	h.next++
	if int(id>>8) >= len(h.pages) {
		h.ownList()
		np := h.rc.newHdr()
		*np = hdrPage{}
		h.pages = append(h.pages, np)
		h.own = append(h.own, true)
	}
	return id
}

func (h *hdrw) get(id uint32) hdr {
	if int(id) >= len(h.w) {
		return hdr{}
	}
	return h.w[id]
}

func (h *hdrw) set(id uint32, v hdr) {
	p := id >> 8
	for int(id) >= len(h.w) {
		h.w = append(h.w, hdr{})
	}
	if h.w[id] == v {
		return
	}
	h.w[id] = v
	if !h.own[p] {
		h.ownList()
		np := h.rc.newHdr()
		*np = *h.pages[p]
		h.rc.retireHdr(h.pages[p])
		h.pages[p] = np
		h.own[p] = true
	}
	h.pages[p][id&255] = v.pack()
}

func (h *hdrw) endBatch() {
	h.cloned = false // the list is published: the next change copies it (ownList)
	for i := range h.own {
		h.own[i] = false
	}
}

// scratch holds reusable sweep buffers.
type scratch struct {
	s16 []rangeEnt[uint16]
	s64 []rangeEnt[uint64]
	s32 []rangeEnt[uint32]
	k2  []uint32
	k3  []uint64 // an L3 table's keys being built
	v2  []uint32
	k   []uint16
	v   []uint32
	e4  []uint32 // a range table being built (IPv4)
	bk  []uint32 // bucket counts (IPv4, addBuckets)
	e8  []uint64 // a range table being built (IPv6 L1, L2)
	ix8 []uint64 // an IPv6 L2 table with its rank index being built
	// swept counts the entries swept, cumulatively (benchmarks attribute
	// batch costs with it).
	swept, tables, patched int
	p4                     []uint32 // a patched table being built (IPv4)
	r4                     []uint32 // an IPv4 table's canonical ranges (ranges4)
	p8                     []uint64 // a patched table being built (IPv6 L1)
	patchMin               int      // tests: patch tables from this size (0: patchMin)
}

// build16 appends the range table (keys, then summary) of one /16 region
// and returns the grown arenas and the number of ranges. The entries get
// their under values (the inherited defaults of the kids).
func (sc *scratch) build16(ents []rangeEnt[uint16], def uint32, keys []uint16, vals []uint32) ([]uint16, []uint32, int) {
	base := len(keys)
	sc.swept += len(ents)
	sc.tables++
	keys, vals, sc.s16 = sweep(ents, def, keys, vals, sc.s16)
	n := len(keys) - base
	keys, vals = addSummary(keys, vals, base)
	return keys, vals, n
}

// Range tables of uint16 keys longer than blockLen carry a summary after
// their keys: the first key of every block of blockLen keys. A lookup
// searches the summary (one or two cache lines), then one block, instead of
// touching log2(n) lines of a plain binary search.
const blockLen = 16

func summaryLen(n int) int {
	if n <= blockLen {
		return 0
	}
	return (n + blockLen - 1) / blockLen
}

func addSummary[K rangeKey, V any](keys []K, vals []V, base int) ([]K, []V) {
	n := len(keys) - base
	var zero V
	for j := range summaryLen(n) {
		keys = append(keys, keys[base+j*blockLen])
		vals = append(vals, zero)
	}
	return keys, vals
}

// trim reallocates an arena whose capacity is far above its length, so the
// memory figure stays honest after a bulk load. Indexes do not change.
func trim[T any](s []T) []T {
	if cap(s) > 4096 && cap(s) > len(s)+len(s)/2 {
		n := make([]T, len(s), len(s)+len(s)/8)
		copy(n, s)
		return n
	}
	return s
}
