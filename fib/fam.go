package fib

// fam4 is the writer state of one FIB's IPv4 table.
type fam4 struct {
	d      dirw
	chunks map[uint16]*rc16
	t      tab4 // working copy; published by value copy
	a      segArena[uint32]
	leaf   []uint16 // next-hop id -> index in t.nh (0: none yet, or NoRoute)
	n      int      // prefixes in the RIB (the capacity checks read it)
	x      int      // entries a table may take beyond 4.2n (extra4)
	// starved counts the full rebuilds done because the incremental one
	// could have run out of segment ids (for tests).
	starved int
}

// count adds what ed did to the prefix count n and reports whether the RIB
// changed.
func count(n *int, ed edit) bool {
	*n += ed.delta()
	return ed != unchanged
}

func newFam4(zero *dirPage, seglen, maxSegs int, rc *reclaim) *fam4 {
	f := &fam4{chunks: make(map[uint16]*rc16), a: newSegArena[uint32](seglen, maxSegs)}
	f.a.rc, f.d.rc = rc, rc
	f.x = extra4(f.a.maxSegs, f.a.seglen)
	f.t.nh = []uint32{NoRoute, subMark}       // subLeaf: see addPop2
	f.t.none = [4]uint32{0, 0, 1, ^uint32(1)} // noneB is zero
	f.d.init(zero)
	f.t.top = f.d.top
	return f
}

// change applies one route change to the RIB and marks what to rebuild.
// It reports whether the RIB changed.
func (f *fam4) change(a uint32, l int, nh uint32, del bool) bool {
	if l <= 16 {
		return count(&f.n, f.d.setShort(uint16(a>>16), l, nh, del))
	}
	slot := uint16(a >> 16)
	rc := f.chunks[slot]
	if rc == nil {
		if del {
			return false
		}
		rc = &rc16{}
		f.chunks[slot] = rc
	}
	if !count(&f.n, setEnt(&rc.ents, uint16(a), uint8(l-16), nh, del)) {
		return false
	}
	if len(rc.ents) == 0 {
		delete(f.chunks, slot)
	}
	f.d.mark(slot, uint16(a), l-16)
	return true
}

// rebuildSlot rebuilds the range table of slot, where the batch changed
// the prefixes inside dirty prefix p: a big table by patching (patch.go),
// others by a sweep of the region.
func (f *fam4) rebuildSlot(sc *scratch, slot uint16, p uint32) {
	old := f.d.get(slot)
	def := f.d.def(slot)
	rc := f.chunks[slot]
	if rc != nil && old&chunkFlag != 0 && sc.patchable(max(int(lay4(old).r), len(rc.ents)), p) {
		n := f.patch(sc, slot, rc, old, p, def)
		f.a.release(pos4(old), span4(old))
		f.d.set(slot, n)
		return
	}
	if old&chunkFlag != 0 {
		f.a.release(pos4(old), span4(old))
	}
	if rc == nil {
		f.d.set(slot, uint64(def))
		return
	}
	f.d.set(slot, f.emit(sc, slot, rc, def))
}

// bound is tableBound4 of a region of n prefixes in this family.
func (f *fam4) bound(n int) int { return tableBound4(n, f.x) }

// leafOf returns the index of next hop v in t.nh, adding it if needed.
func (f *fam4) leafOf(v uint32) uint16 {
	if v == NoRoute {
		return 0
	}
	if int(v) >= len(f.leaf) {
		f.leaf = append(f.leaf, make([]uint16, int(v)+1-len(f.leaf))...)
	}
	li := f.leaf[v]
	if li == 0 {
		li = uint16(len(f.t.nh)) // Apply checked that it fits
		f.leaf[v] = li
		f.t.nh = append(f.t.nh, v)
	}
	return li
}

// hasLeaf reports whether next hop v has an index in t.nh.
func (f *fam4) hasLeaf(v uint32) bool { return int(v) < len(f.leaf) && f.leaf[v] != 0 }

// emit appends the range table of rc (tab4.go) and returns its dir
// entry. Values are stored as 16-bit indexes into the table's next-hop
// list.
func (f *fam4) emit(sc *scratch, slot uint16, rc *rc16, def uint32) uint64 {
	sc.swept += len(rc.ents)
	sc.tables++
	sc.k, sc.v, sc.s16 = sweep(rc.ents, def, sc.k[:0], sc.v[:0], sc.s16)
	e := sc.e4[:0]
	for i, v := range sc.v {
		e = append(e, uint32(sc.k[i])<<16|uint32(f.leafOf(v)))
	}
	var l layout4
	e, l, sc.bk = addBuckets(e, 0, sc.bk, f.bound(len(rc.ents)))
	sc.e4 = e
	return l.ent(f.a.put(e, uint32(slot)))
}

// commit rebuilds what the batch touched and returns the new table.
func (f *fam4) commit(sc *scratch) *tab4 {
	bulk := len(f.d.dirty) > len(f.chunks)/2+1024
	if !bulk && !f.room() {
		bulk = true
		f.starved++
	}
	if bulk {
		f.rebuildAll(sc)
		f.t.nh = trim(f.t.nh)
	} else {
		for slot, p := range f.d.dirty {
			f.rebuildSlot(sc, slot, p)
		}
		if id := f.a.victim(); id >= 0 && f.a.room(f.a.used(id)) {
			f.compact(id)
		}
	}
	f.d.dirty = reset(f.d.dirty)
	f.t.ent, f.t.mem = f.a.publish()
	f.t.top = f.d.top
	f.d.endBatch()
	return f.d.rc.newTab4(&f.t)
}

// room reports whether the incremental rebuild of the dirty slots cannot
// run out of segment ids. When it could (only near the prefix limit, with
// much garbage), commit rebuilds the table into a fresh arena instead,
// which the prefix limit makes fit (see FIBs.limits).
func (f *fam4) room() bool {
	e := 0
	for slot := range f.d.dirty {
		if rc := f.chunks[slot]; rc != nil {
			e += f.bound(len(rc.ents))
		}
	}
	return f.a.room(e)
}

// compact is one step of the incremental garbage collection: it moves
// live range tables of segment id into the current segment (a memory copy
// bounded by the step's budget, no re-sweep) and points the dir entries at
// the copies; the segment is dropped when all its tables moved.
func (f *fam4) compact(id int) {
	f.a.collect(id, func(s uint32) int {
		e := f.d.get(uint16(s))
		if e&chunkFlag == 0 || int(uint32(e)>>segBits) != id {
			return 0 // the slot's table was replaced since
		}
		n := span4(e)
		f.d.set(uint16(s), lay4(e).ent(f.a.move(pos4(e), n, s)))
		return n
	})
}

// rebuildAll rebuilds the whole table into fresh arenas (bulk loads).
func (f *fam4) rebuildAll(sc *scratch) {
	f.a.reset()
	f.d.defs = f.d.defaults(f.d.defs)
	for s := 0; s < 1<<16; s++ {
		slot := uint16(s)
		def := f.d.defs[s]
		rc := f.chunks[slot]
		if rc == nil {
			f.d.set(slot, uint64(def))
			continue
		}
		f.d.set(slot, f.emit(sc, slot, rc, def))
	}
}

// span is the arena length of the range table of a dir entry.
func span(e uint64) int {
	n := int(e>>32) & 0x7fffffff
	return n + summaryLen(n)
}

// fam6 is the writer state of one FIB's IPv6 table.
type fam6 struct {
	d      dirw
	chunks map[uint16]*rc16
	h      hdrw
	t      tab6
	d2     map[*rc64]struct{}
	d3     map[*rc32]struct{}
	a16    segArena[uint64] // L1 tables
	a64    segArena[uint64] // L2 tables
	a3     segArena[uint64] // L3 tables (keys, then values two per word)
	l2     []bool           // header id -> it is an L2 table's (owners of a64)
	l3     []bool           // header id -> it is an L3 table's (owners of a3)
	// Words of the L1 and L2 rank indexes in the arenas (at most
	// ixBudget each: see room and FIBs.limits).
	ixw1, ixw2 int
	n          int // prefixes in the RIB (the capacity checks read it)
	starved    int // see fam4.starved
}

func newFam6(zero *dirPage, seglen, maxSegs int, rc *reclaim) *fam6 {
	f := &fam6{chunks: make(map[uint16]*rc16), d2: make(map[*rc64]struct{}), d3: make(map[*rc32]struct{}),
		a16: newSegArena[uint64](seglen, maxSegs), a64: newSegArena[uint64](seglen, maxSegs),
		a3: newSegArena[uint64](seglen, maxSegs)}
	f.a16.rc, f.a64.rc, f.a3.rc, f.d.rc, f.h.rc = rc, rc, rc, rc, rc
	f.d.init(zero)
	f.t.top = f.d.top
	return f
}

func (f *fam6) change(hi, lo uint64, l int, nh uint32, del bool) bool {
	if l <= 16 {
		return count(&f.n, f.d.setShort(uint16(hi>>48), l, nh, del))
	}
	slot := uint16(hi >> 48)
	rc := f.chunks[slot]
	if rc == nil {
		if del {
			return false
		}
		rc = &rc16{kids: make(map[uint16]*rc64)}
		f.chunks[slot] = rc
	}
	defer f.dropEmpty(slot, rc)
	k1 := uint16(hi >> 32)
	if l <= 32 {
		if !count(&f.n, setEnt(&rc.ents, k1, uint8(l-16), nh, del)) {
			return false
		}
		f.d.mark(slot, k1, l-16)
		return true
	}
	// A /32 region left without prefixes keeps its (empty) L2 table, so that
	// deleting and re-adding the only /48 of a /32 - the most common IPv6
	// churn - never rebuilds the /16's L1 table; rebuildAll drops them.
	r2 := rc.kids[k1]
	if r2 == nil {
		if del {
			return false
		}
		r2 = &rc64{kids: make(map[uint32]*rc32), id: f.h.alloc()}
		f.setL2(r2.id, true)
		rc.kids[k1] = r2
		setEnt(&rc.ents, k1, 17, refFlag|r2.id, false)
		f.d.mark(slot, k1, 16)
	}
	k2 := uint32(hi)
	if l <= 64 {
		ed := setEnt(&r2.ents, k2, uint8(l-32), nh, del)
		r2.n += ed.delta()
		if !count(&f.n, ed) {
			return false
		}
		f.d2[r2] = struct{}{}
		r2.mark(k2, l-32)
		return true
	}
	r3 := r2.kids[k2]
	if r3 == nil {
		if del {
			return false
		}
		r3 = &rc32{id: f.h.alloc()}
		f.setL3(r3.id, true)
		r2.kids[k2] = r3
		setEnt(&r2.ents, k2, 33, refFlag|r3.id, false)
		f.d2[r2] = struct{}{}
		r2.mark(k2, 32)
	}
	ed := setEnt(&r3.ents, lo, uint8(l-64), nh, del)
	r2.n += ed.delta()
	if !count(&f.n, ed) {
		return false
	}
	f.d3[r3] = struct{}{}
	if len(r3.ents) == 0 {
		delete(r2.kids, k2)
		setEnt(&r2.ents, k2, 33, 0, true)
		f.free3(r3.id)
		r3.removed = true
		f.d2[r2] = struct{}{}
		r2.mark(k2, 32)
	}
	return true
}

// free3 frees the header of an L3 table and releases its table.
func (f *fam6) free3(id uint32) {
	f.a3.release(f.h.get(id).start, size3(int(f.h.get(id).count)))
	f.h.free = append(f.h.free, id)
	f.setL3(id, false)
}

// size3 is the arena length of an L3 table of n ranges: the keys, then the
// values two per word.
func size3(n int) int { return n + (n+1)/2 }

func (f *fam6) setL3(id uint32, v bool) {
	if int(id) >= len(f.l3) {
		f.l3 = append(f.l3, make([]bool, int(id)+1-len(f.l3))...)
	}
	f.l3[id] = v
}

// free2 does the same for an L2 table.
func (f *fam6) free2(id uint32) {
	h := f.h.get(id)
	f.a64.release(h.start, h.size())
	f.unrank2(h)
	f.h.free = append(f.h.free, id)
	f.setL2(id, false)
}

func (f *fam6) setL2(id uint32, v bool) {
	if int(id) >= len(f.l2) {
		f.l2 = append(f.l2, make([]bool, int(id)+1-len(f.l2))...)
	}
	f.l2[id] = v
}

func (f *fam6) dropEmpty(slot uint16, rc *rc16) {
	if len(rc.ents) == 0 {
		delete(f.chunks, slot)
		f.d.dirty[slot] = wholeRegion
	}
}

// build3 rebuilds the L3 table of r: keys (bits 64-127), then the values
// two per word (value j in the low half of word j/2 if j is even).
func (f *fam6) build3(sc *scratch, r *rc32) {
	h := f.h.get(r.id)
	if h.count > 0 {
		f.a3.release(h.start, size3(int(h.count)))
	}
	sc.swept += len(r.ents)
	sc.tables++
	sc.k3, sc.v, sc.s64 = sweep(r.ents, 0, sc.k3[:0], sc.v[:0], sc.s64)
	e := append(sc.e8[:0], sc.k3...)
	for j := 0; j < len(sc.v); j += 2 {
		w := uint64(sc.v[j])
		if j+1 < len(sc.v) {
			w |= uint64(sc.v[j+1]) << 32
		}
		e = append(e, w)
	}
	sc.e8 = e
	h.start, h.count = f.a3.put(e, r.id), uint32(len(sc.k3))
	f.h.set(r.id, h)
}

// compact3 is one incremental collection step of the L3 arena (see
// compact2; l3 tells the L3 headers).
func (f *fam6) compact3(id int) {
	f.a3.collect(id, func(hid uint32) int {
		if int(hid) >= len(f.l3) || !f.l3[hid] {
			return 0
		}
		h := f.h.get(hid)
		if int(h.start>>segBits) != id || h.count == 0 {
			return 0
		}
		n := size3(int(h.count))
		h.start = f.a3.move(h.start, n, hid)
		f.h.set(hid, h)
		return n
	})
}

func (f *fam6) build2(sc *scratch, r *rc64) {
	h := f.h.get(r.id)
	f.a64.release(h.start, h.size())
	f.unrank2(h)
	f.ranges2(sc, r, h) // patched or swept (patch6.go)
	r.dirty = false
	e := sc.e8
	n := len(e)
	h.ix, h.l38 = l2Rank(e)
	if w := ixWords(h.ix); h.ix != 0 && (f.ixw2+w > f.ixBudget() || n+w > segMask+1) {
		h.ix, h.l38 = 0, 0 // over the budget, or too big for a segment: search
	}
	if h.ix != 0 {
		f.ixw2 += ixWords(h.ix)
		sc.ix8 = append(appendRank2(sc.ix8[:0], e, h.ix), e...) // the index first
		e = sc.ix8
	} else {
		e = withSummary(e, 32)
		sc.e8 = e
	}
	h.start, h.count = f.a64.put(e, r.id), uint32(n)
	f.h.set(r.id, h)
}

// buildSlot rebuilds the L1 table of slot (see fam4.rebuildSlot).
func (f *fam6) buildSlot(sc *scratch, slot uint16, def uint32, p uint32) {
	old := f.d.get(slot)
	rc := f.chunks[slot]
	if rc != nil && old&chunkFlag != 0 && sc.patchable(max(n6(old), len(rc.ents)), p) {
		f.a16.release(uint32(old), span6(old))
		f.unrank1(old)
		f.d.set(slot, f.patch(sc, slot, rc, old, p, def))
		return
	}
	if old&chunkFlag != 0 {
		f.a16.release(uint32(old), span6(old))
		f.unrank1(old)
	}
	if rc == nil {
		f.d.set(slot, uint64(def))
		return
	}
	sc.swept += len(rc.ents)
	sc.tables++
	sc.k, sc.v, sc.s16 = sweep(rc.ents, def, sc.k[:0], sc.v[:0], sc.s16)
	e := sc.e8[:0]
	for i, k := range sc.k {
		e = append(e, uint64(k)<<32|uint64(sc.v[i]))
	}
	sc.e8 = e
	f.d.set(slot, f.putL1(sc, slot))
	for _, e := range rc.ents {
		if e.v&refFlag != 0 {
			id := e.v &^ refFlag
			kh := f.h.get(id)
			kh.def = e.under
			f.h.set(id, kh)
		}
	}
}

func (f *fam6) commit(sc *scratch) *tab6 {
	bulk := len(f.d.dirty) > len(f.chunks)/2+1024 || len(f.d2) > 4096 && len(f.d2) > int(f.h.next)/2
	if !bulk && !f.room() {
		bulk = true
		f.starved++
	}
	if bulk {
		f.rebuildAll(sc)
	} else {
		for r := range f.d3 {
			if !r.removed {
				f.build3(sc, r)
			}
		}
		for r := range f.d2 {
			if !r.removed {
				f.build2(sc, r)
			}
		}
		for slot, p := range f.d.dirty {
			f.buildSlot(sc, slot, f.d.def(slot), p)
		}
		// Collect garbage: one bounded step per arena and batch at most.
		if id := f.a3.victim(); id >= 0 && f.a3.room(f.a3.used(id)) {
			f.compact3(id)
		}
		if id := f.a64.victim(); id >= 0 && f.a64.room(f.a64.used(id)) {
			f.compact2(id)
		}
		if id := f.a16.victim(); id >= 0 && f.a16.room(f.a16.used(id)) {
			f.compact1(id)
		}
	}
	f.d.dirty = reset(f.d.dirty)
	f.d2 = reset(f.d2)
	f.d3 = reset(f.d3)
	f.t.top = f.d.top
	f.t.e16, f.t.mem16 = f.a16.publish()
	f.t.e2, f.t.mem2 = f.a64.publish()
	f.t.e3, f.t.mem3 = f.a3.publish()
	f.t.hdrs = f.h.pages
	f.d.endBatch()
	f.h.endBatch()
	return f.d.rc.newTab6(&f.t)
}

// room is fam4.room for the L1, L2 and L3 arenas.
// Rank indexes add at most ixBudget words per arena.
func (f *fam6) room() bool {
	e1, e2, x1, x2 := 0, 0, 0, 0
	for slot := range f.d.dirty {
		if rc := f.chunks[slot]; rc != nil {
			e1 += tableBound(len(rc.ents))
			if 2*len(rc.ents)+1 >= rankMin1 {
				x1 += rankWords1
			}
		}
	}
	for r := range f.d2 {
		if !r.removed {
			e2 += tableBound(len(r.ents))
			x2 += 2*len(r.ents) + 1 + 67 // ixWords <= 64 + 2 + ranges + 1 (l2Rank)
		}
	}
	e3 := 0
	for r := range f.d3 {
		if !r.removed {
			e3 += size3(2*len(r.ents) + 1)
		}
	}
	b := f.ixBudget()
	return f.a16.room(e1+min(x1, b)) && f.a64.room(e2+min(x2, b)) && f.a3.room(e3)
}

// rebuildAll rebuilds every table into fresh arenas (bulk loads), first
// dropping the /32 regions left without prefixes.
func (f *fam6) rebuildAll(sc *scratch) {
	for slot, rc := range f.chunks {
		for k1, r2 := range rc.kids {
			if len(r2.ents) == 0 {
				delete(rc.kids, k1)
				setEnt(&rc.ents, k1, 17, 0, true)
				f.free2(r2.id)
				r2.removed = true
			}
		}
		if len(rc.ents) == 0 {
			delete(f.chunks, slot)
		}
	}
	f.compact(sc, true, true, true)
}

// compact1 is one incremental collection step of the L1 arena (see
// fam4.compact).
func (f *fam6) compact1(id int) {
	f.a16.collect(id, func(s uint32) int {
		e := f.d.get(uint16(s))
		if e&chunkFlag == 0 || int(uint32(e)>>segBits) != id {
			return 0 // the slot's table was replaced since
		}
		n := span6(e)
		f.d.set(uint16(s), e&^(1<<32-1)|uint64(f.a16.move(uint32(e), n, s)))
		return n
	})
}

// compact2 does the same for the L2 arena, through the headers. A header
// id listed as an owner may have been freed (and reused by an L3 table)
// since: l2 tells.
func (f *fam6) compact2(id int) {
	f.a64.collect(id, func(hid uint32) int {
		if !f.l2[hid] {
			return 0
		}
		h := f.h.get(hid)
		if int(h.start>>segBits) != id || h.count == 0 {
			return 0
		}
		n := h.size()
		h.start = f.a64.move(h.start, n, hid)
		f.h.set(hid, h)
		return n
	})
}

// compact rebuilds the tables of the chosen levels into fresh arenas.
func (f *fam6) compact(sc *scratch, l3, l2, l1 bool) {
	if l3 {
		f.a3.reset()
		f.a3.bulk = true
		for _, rc := range f.chunks {
			for _, r2 := range rc.kids {
				for _, r3 := range r2.kids {
					f.build3(sc, r3)
				}
			}
		}
		f.a3.bulk = false
	}
	if l2 {
		f.a64.reset()
		f.ixw2 = 0
		f.a64.bulk = true
		for _, rc := range f.chunks {
			for _, r2 := range rc.kids {
				f.build2(sc, r2)
			}
		}
		f.a64.bulk = false
	}
	if l1 {
		f.a16.reset()
		f.ixw1 = 0
		f.a16.bulk = true
		f.d.defs = f.d.defaults(f.d.defs)
		for s := 0; s < 1<<16; s++ {
			f.buildSlot(sc, uint16(s), f.d.defs[s], wholeRegion)
		}
		f.a16.bulk = false
	}
}

// reset empties a dirty set. A cleared Go map keeps its buckets and ranging
// over it costs its peak size, so a set that grew (a bulk load) is replaced.
func reset[K comparable, V any](m map[K]V) map[K]V {
	if len(m) > 64 {
		return make(map[K]V)
	}
	clear(m)
	return m
}

// putL1 puts the IPv6 L1 table of slot whose ranges (key<<32 | value) are
// in sc.e8 into the arena, followed by its rank index if it has at least
// rankMin1 ranges and by its summary otherwise, and returns the dir entry.
func (f *fam6) putL1(sc *scratch, slot uint16) uint64 {
	e := sc.e8
	n := len(e)
	flag := uint64(0)
	if n >= rankMin1 && f.ixw1+rankWords1 <= f.ixBudget() {
		e = appendRank(e, e, 0, 0, rankWords1)
		flag = rankFlag
		f.ixw1 += rankWords1
	} else {
		e = withSummary(e, 32)
	}
	sc.e8 = e
	return chunkEnt(int(f.a16.put(e, uint32(slot))), n) | flag
}

// ixBudget is the most words the rank indexes of one arena may take: an
// eighth of the arena's capacity (8M words, 4096 L1 indexes, with the
// default segments; the full table's take ~0.1M each). It keeps the
// arithmetic of FIBs.limits: an arena at the prefix limit still fits in
// its segment ids with its indexes.
func (f *fam6) ixBudget() int { return f.a16.maxSegs * f.a16.seglen / 8 }

// unrank1 and unrank2 take the rank index of a replaced L1 table (dir
// entry e) or L2 table (header h) off the budget (not in a full rebuild,
// which starts from zero).
func (f *fam6) unrank1(e uint64) {
	if e&chunkFlag != 0 && e&rankFlag != 0 && !f.a16.bulk {
		f.ixw1 -= rankWords1
	}
}

func (f *fam6) unrank2(h hdr) {
	if h.ix != 0 && !f.a64.bulk {
		f.ixw2 -= ixWords(h.ix)
	}
}
