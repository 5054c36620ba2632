package fib

import (
	"math/bits"
	"slices"
)

// Patching a range table.
//
// A batch that changes a few prefixes of a big /16 region (IPv6 2804::/16
// has ~14k ranges in its L1 table) need not sweep all the region's
// prefixes again. The changes of a slot in a batch lie inside one prefix P
// of the slot's 16-bit key space (dirw.mark keeps the smallest such prefix,
// the common ancestor of the changed ones): outside P, the new table is
// the old one. So the new table is the old ranges before P, a sweep of
// only the region's entries inside P over the value covering P, the old
// value again after P, and the old ranges after that, with adjacent equal
// values merged at the two seams. That is the canonical table a full sweep
// would make (the same ranges: TestPatch compares them), for a memory
// copy of the table plus a sweep of the entries inside P. A change of a
// /0-/16 prefix changes the slot's default and marks the whole region, which
// is swept as before, and so are small tables, where a sweep is as cheap.

// wholeRegion is the dirty prefix of a slot whose whole region changed.
const wholeRegion = 0

// patchMin is the smallest table (in ranges) rebuilt by patching.
const patchMin = 128

// mark records a change of the entry (start, plen) of slot, plen counted
// within the region (1-16; longer: a single key).
func (d *dirw) mark(slot, start uint16, plen int) {
	plen = min(plen, 16)
	p := uint32(plen)<<16 | uint32(start&prefixMask(plen))
	if q, ok := d.dirty[slot]; ok {
		p = ancestor(p, q)
	}
	d.dirty[slot] = p
}

// prefixMask is the mask of the first l of 16 bits.
func prefixMask(l int) uint16 { return uint16(uint32(0xffff) << (16 - l)) }

// ancestor returns the smallest prefix containing dirty prefixes p and q.
func ancestor(p, q uint32) uint32 {
	l := min(int(p>>16), int(q>>16), bits.LeadingZeros16(uint16(p^q)))
	return uint32(l)<<16 | uint32(uint16(p)&prefixMask(l))
}

// patchable reports whether a table with dirty prefix p is rebuilt by
// patching; n is the larger of its ranges (a patch copies them) and its
// region's entries (a sweep visits them): a region of many prefixes with
// the same next hop (more-specifics of one customer) has few ranges, and
// until 2026-11-30 was swept whole for every change (its ranges alone
// decided), 82 % of the control goroutine's CPU in BenchmarkLCPMirrorLag.
func (sc *scratch) patchable(n int, p uint32) bool {
	min := patchMin
	if sc.patchMin != 0 {
		min = sc.patchMin
	}
	return p != wholeRegion && n >= min
}

// inside returns the entries of ents inside dirty prefix p, their first
// and last key, and the value covering p (the innermost entry containing
// it, or def).
func inside(ents []rangeEnt[uint16], p uint32, def uint32) (in []rangeEnt[uint16], s, e uint16, cover uint32) {
	l := int(p >> 16)
	s = uint16(p)
	e = s | ^prefixMask(l)
	i0, _ := slices.BinarySearchFunc(ents, rangeEnt[uint16]{start: s, plen: uint8(l)}, lessEnt)
	i1, _ := slices.BinarySearchFunc(ents, rangeEnt[uint16]{start: e, plen: 255}, lessEnt)
	cover = def
	for k := l - 1; k >= 1; k-- {
		if v, ok := getEnt(ents, s&prefixMask(k), uint8(k)); ok {
			cover = v
			break
		}
	}
	return ents[i0:i1], s, e, cover
}

// splice appends to out the table old (n ranges, no summary) with the
// ranges of keys s..e replaced by sub (keys k<<shift | value, first key
// 0 standing for s, keys past e ignored), merging equal neighbours, and
// returns out and its number of ranges; the caller adds the summary.
func splice[E uint32 | uint64](out, old, sub []E, shift uint, s, e uint16) []E {
	low := E(1)<<shift - 1
	add := func(x E) {
		if n := len(out); n > 0 && out[n-1]>>shift == x>>shift {
			out = out[:n-1]
		}
		if n := len(out); n > 0 && out[n-1]&low == x&low {
			return
		}
		out = append(out, x)
	}
	if s > 0 {
		j := search(old, E(s-1)<<shift|low)
		out = append(out, old[:j+1]...)
	}
	for _, x := range sub {
		k := uint16(x >> shift)
		if k == 0 {
			x = E(s)<<shift | x&low
		} else if k > e {
			break
		}
		add(x)
	}
	if e < 0xffff {
		j := search(old, E(e+1)<<shift|low)
		add(E(e+1)<<shift | old[j]&low)
		for _, x := range old[j+1:] {
			add(x)
		}
	}
	return out
}

// withSummary appends the summary of the n-range table out.
func withSummary[E uint32 | uint64](out []E, shift uint) []E {
	low := E(1)<<shift - 1
	n := len(out)
	for j := range summaryLen(n) {
		out = append(out, out[j*blockLen]&^low)
	}
	return out
}

// patch builds the IPv4 table of slot from its old table (dir entry old)
// and the region's entries inside dirty prefix p, and returns the new dir
// entry.
func (f *fam4) patch(sc *scratch, slot uint16, rc *rc16, old uint64, p uint32, def uint32) uint64 {
	in, s, e, cover := inside(rc.ents, p, def)
	sc.swept += len(in)
	sc.patched++
	sc.k, sc.v, sc.s16 = sweep(in, cover, sc.k[:0], sc.v[:0], sc.s16)
	sub := sc.e4[:0]
	for i, k := range sc.k {
		sub = append(sub, uint32(k)<<16|uint32(f.leafOf(sc.v[i])))
	}
	var rs []uint32 // the old ranges: in the arena, or in sc.r4
	rs, sc.r4 = ranges4(f.a.get(pos4(old), span4(old)), old, sc.r4)
	out := splice(sc.p4[:0], rs, sub, 16, s, e)
	out, l, bk := addBuckets(out, 0, sc.bk, f.bound(len(rc.ents)))
	sc.bk = bk
	sc.e4, sc.p4 = sub, out
	return l.ent(f.a.put(out, uint32(slot)))
}

// patch does the same for an IPv6 L1 table, and sets the inherited
// defaults of the /32 regions inside p.
func (f *fam6) patch(sc *scratch, slot uint16, rc *rc16, old uint64, p uint32, def uint32) uint64 {
	in, s, e, cover := inside(rc.ents, p, def)
	sc.swept += len(in)
	sc.patched++
	sc.k, sc.v, sc.s16 = sweep(in, cover, sc.k[:0], sc.v[:0], sc.s16)
	sub := sc.e8[:0]
	for i, k := range sc.k {
		sub = append(sub, uint64(k)<<32|uint64(sc.v[i]))
	}
	out := splice(sc.p8[:0], f.a16.get(uint32(old), n6(old)), sub, 32, s, e)
	sc.e8, sc.p8 = out, sub
	for _, en := range in {
		if en.v&refFlag != 0 {
			id := en.v &^ refFlag
			kh := f.h.get(id)
			kh.def = en.under
			f.h.set(id, kh)
		}
	}
	return f.putL1(sc, slot)
}
