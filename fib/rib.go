package fib

import "slices"

// Writer side: the editable RIB of one FIB and family, and the code that
// rebuilds only the parts of the lookup structure a change affects.
// Everything here is owned by the single control goroutine.

// rc16 holds the prefixes of one /16 region longer than /16: for IPv4 all of
// them (/17-/32), for IPv6 /17-/32 plus the deeper regions (kids).
type rc16 struct {
	pfx  map[uint32]uint32 // (len-16)<<16 | bits 16-31 -> next hop
	kids map[uint16]*rc64  // IPv6: /32 regions (by bits 16-31) with longer prefixes
}

type pk64 struct {
	bits uint64 // address bits 32-95
	len  uint8  // prefix length - 32 (1..64)
}

type pk32 struct {
	bits uint32 // address bits 96-127
	len  uint8  // prefix length - 96 (1..32)
}

// rc64 holds the /33-/96 prefixes of one IPv6 /32 and its /96 regions with
// longer prefixes.
type rc64 struct {
	pfx     map[pk64]uint32
	kids    map[uint64]*rc32
	id      uint32 // header id
	removed bool
}

// rc32 holds the /97-/128 prefixes of one IPv6 /96.
type rc32 struct {
	pfx     map[pk32]uint32
	id      uint32
	removed bool
}

// dirw is the writable state of a direct table: the /0-/16 prefixes and the
// working copy of the page pointers; pages are copied at most once per batch.
type dirw struct {
	short map[uint32]uint32 // len<<16 | top bits -> next hop
	top   [256]*dirPage
	own   [256]bool
	zero  *dirPage
	dirty map[uint16]struct{} // /16 slots to rebuild in this batch
	defs  []uint32            // scratch of defaults
}

func (d *dirw) init(zero *dirPage) {
	d.short = make(map[uint32]uint32)
	d.zero = zero
	for i := range d.top {
		d.top[i] = zero
	}
	d.dirty = make(map[uint16]struct{})
}

func (d *dirw) get(slot uint16) uint64 { return d.top[slot>>8][slot&255] }

func (d *dirw) set(slot uint16, e uint64) {
	p := slot >> 8
	if d.top[p][slot&255] == e {
		return
	}
	if !d.own[p] {
		np := new(dirPage)
		*np = *d.top[p]
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

func (d *dirw) setShort(top uint16, l int, nh uint32, del bool) bool {
	k := uint32(l)<<16 | uint32(top)
	if del {
		if _, ok := d.short[k]; !ok {
			return false
		}
		delete(d.short, k)
	} else {
		if old, ok := d.short[k]; ok && old == nh {
			return false
		}
		d.short[k] = nh
	}
	n := 1 << (16 - l)
	for i := 0; i < n; i++ {
		d.dirty[top+uint16(i)] = struct{}{}
	}
	return true
}

// hdrw is the writable header table of an IPv6 family.
type hdrw struct {
	pages []*hdrPage
	own   []bool
	free   []uint32
	next   uint32
	cloned bool // pages is a private copy in this batch
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
		h.pages = append(h.pages, new(hdrPage))
		h.own = append(h.own, true)
	}
	return id
}

func (h *hdrw) get(id uint32) hdr { return h.pages[id>>8][id&255] }

func (h *hdrw) set(id uint32, v hdr) {
	p := id >> 8
	if h.pages[p][id&255] == v {
		return
	}
	if !h.own[p] {
		if !h.cloned {
			// The published snapshot holds the old slice: never write
			// into its backing array.
			h.pages = slices.Clone(h.pages)
			h.cloned = true
		}
		np := new(hdrPage)
		*np = *h.pages[p]
		h.pages[p] = np
		h.own[p] = true
	}
	h.pages[p][id&255] = v
}

func (h *hdrw) endBatch() {
	h.pages = slices.Clip(h.pages) // the next append copies: published pages stay as they are
	h.cloned = false
	for i := range h.own {
		h.own[i] = false
	}
}

// arena tracks the garbage of one arena pair.
type arena struct{ garbage int }

// scratch holds reusable sweep buffers.
type scratch struct {
	e16 []rangeEnt[uint16]
	s16 []rangeEnt[uint16]
	e64 []rangeEnt[uint64]
	s64 []rangeEnt[uint64]
	e32 []rangeEnt[uint32]
	s32 []rangeEnt[uint32]
	k   []uint16
	v   []uint32
}

// build16 appends the range table (keys, then summary) of one /16 region
// and returns the grown arenas, the sorted entries (with their under
// values) and the number of ranges.
func (sc *scratch) build16(pfx map[uint32]uint32, kids map[uint16]*rc64, def uint32, keys []uint16, vals []uint32) ([]uint16, []uint32, []rangeEnt[uint16], int) {
	ents := sc.e16[:0]
	for k, nh := range pfx {
		rel := k >> 16
		b := uint16(k)
		ents = append(ents, rangeEnt[uint16]{start: b, end: b | uint16(1<<(16-rel)-1), plen: uint8(rel), v: nh})
	}
	for k, kid := range kids {
		ents = append(ents, rangeEnt[uint16]{start: k, end: k, plen: 17, v: refFlag | kid.id})
	}
	slices.SortFunc(ents, lessEnt)
	base := len(keys)
	keys, vals, sc.s16 = sweep(ents, def, keys, vals, sc.s16)
	n := len(keys) - base
	keys, vals = addSummary(keys, vals, base)
	sc.e16 = ents
	return keys, vals, ents, n
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

func addSummary[V any](keys []uint16, vals []V, base int) ([]uint16, []V) {
	n := len(keys) - base
	var zero V
	for j := range summaryLen(n) {
		keys = append(keys, keys[base+j*blockLen])
		vals = append(vals, zero)
	}
	return keys, vals
}

func (sc *scratch) build64(r *rc64, keys []uint64, vals []uint32) ([]uint64, []uint32, []rangeEnt[uint64]) {
	ents := sc.e64[:0]
	for k, nh := range r.pfx {
		ents = append(ents, rangeEnt[uint64]{start: k.bits, end: k.bits | (uint64(1)<<(64-k.len) - 1), plen: k.len, v: nh})
	}
	for k, kid := range r.kids {
		ents = append(ents, rangeEnt[uint64]{start: k, end: k, plen: 65, v: refFlag | kid.id})
	}
	slices.SortFunc(ents, lessEnt)
	keys, vals, sc.s64 = sweep(ents, 0, keys, vals, sc.s64)
	sc.e64 = ents
	return keys, vals, ents
}

func (sc *scratch) build32(r *rc32, keys []uint32, vals []uint32) ([]uint32, []uint32) {
	ents := sc.e32[:0]
	for k, nh := range r.pfx {
		ents = append(ents, rangeEnt[uint32]{start: k.bits, end: k.bits | uint32(uint64(1)<<(32-k.len)-1), plen: k.len, v: nh})
	}
	slices.SortFunc(ents, lessEnt)
	keys, vals, sc.s32 = sweep(ents, 0, keys, vals, sc.s32)
	sc.e32 = ents
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
