package fib

import (
	"math/bits"
	"slices"
)

// Patching IPv6 L2 tables (see patch.go for L1).
//
// An L2 table (the /33-/64 prefixes of a /32 and its /64 regions; the
// biggest, 2001:559::/32, has ~4k prefixes) was swept whole on every
// change. Like a big L1 table it is now patched: the /32 region remembers
// the smallest prefix of its 32-bit key space (bits 32-63) containing the
// changes of the batch (rc64.mark), and a table of at least patchMin
// ranges is rebuilt as its old ranges before that prefix, a sweep of only
// the entries inside it (over the value covering it), and its old ranges
// after it, merged at the seams: the canonical table a full sweep makes
// (TestPatchL2 compares every table), for a memory copy plus a sweep of
// the entries inside the prefix. Its rank index or summary is rebuilt from
// the new ranges (linear in the table).

// mark records a change of the entry (start, plen) of the L2 region
// (plen within the region, 1-32; a /64 region's reference: 32).
func (r *rc64) mark(start uint32, plen int) {
	plen = min(plen, 32)
	start &= mask32(plen)
	if !r.dirty {
		r.dirty, r.dl, r.ds = true, uint8(plen), start
		return
	}
	l := min(int(r.dl), plen, bits.LeadingZeros32(r.ds^start))
	r.dl, r.ds = uint8(l), start&mask32(l)
}

// mask32 is the mask of the first l of 32 bits.
func mask32(l int) uint32 { return uint32(uint64(0xffffffff) << (32 - l)) }

// inside32 returns the entries of ents inside prefix (s, l) of the 32-bit
// key space, the prefix's last key, and the value covering it (the
// innermost entry containing it; 0, inherit, if none).
func inside32(ents []rangeEnt[uint32], s uint32, l int) (in []rangeEnt[uint32], e uint32, cover uint32) {
	e = s | ^mask32(l)
	i0, _ := slices.BinarySearchFunc(ents, rangeEnt[uint32]{start: s, plen: uint8(l)}, lessEnt)
	i1, _ := slices.BinarySearchFunc(ents, rangeEnt[uint32]{start: e, plen: 255}, lessEnt)
	for k := l - 1; k >= 1; k-- {
		if v, ok := getEnt(ents, s&mask32(k), uint8(k)); ok {
			return ents[i0:i1], e, v
		}
	}
	return ents[i0:i1], e, 0
}

// splice32 is splice for the 32-bit keys of L2 tables (key<<32 | value):
// it appends to out the ranges old with those of keys s..e replaced by
// sub (first key 0 standing for s), merging equal neighbours.
func splice32(out, old, sub []uint64, s, e uint32) []uint64 {
	add := func(x uint64) {
		if n := len(out); n > 0 && out[n-1]>>32 == x>>32 {
			out = out[:n-1]
		}
		if n := len(out); n > 0 && uint32(out[n-1]) == uint32(x) {
			return
		}
		out = append(out, x)
	}
	if s > 0 {
		j := search(old, uint64(s-1)<<32|0xffffffff)
		out = append(out, old[:j+1]...)
	}
	for _, x := range sub {
		k := uint32(x >> 32)
		if k == 0 {
			x = uint64(s)<<32 | x&0xffffffff
		} else if k > e {
			break
		}
		add(x)
	}
	if e < 0xffffffff {
		j := search(old, uint64(e+1)<<32|0xffffffff)
		add(uint64(e+1)<<32 | old[j]&0xffffffff)
		for _, x := range old[j+1:] {
			add(x)
		}
	}
	return out
}

// ranges2 leaves in sc.e8 the ranges (key<<32 | value) of the L2 table of
// r, whose current table has header h: patched from the old table when r's
// changes lie inside one prefix and the table is big, swept otherwise. It
// sets the inherited defaults of the /64 regions it swept.
func (f *fam6) ranges2(sc *scratch, r *rc64, h hdr) {
	ents := r.ents
	// Not in a full rebuild (the old table is in the old arena) nor for a
	// new table; patchable's second argument only needs to be a prefix
	// other than the whole region (r.dl > 0 says that).
	patch := r.dirty && r.dl > 0 && h.count > 0 && !f.a64.bulk && sc.patchable(max(int(h.count), len(ents)), 1)
	var s, e, cover uint32
	if patch {
		ents, e, cover = inside32(r.ents, r.ds, int(r.dl))
		s = r.ds
		sc.patched++
	}
	sc.swept += len(ents)
	sc.tables++
	sc.k2, sc.v2, sc.s32 = sweep(ents, cover, sc.k2[:0], sc.v2[:0], sc.s32)
	out := sc.e8[:0]
	for i, k := range sc.k2 {
		out = append(out, uint64(k)<<32|uint64(sc.v2[i]))
	}
	if patch {
		sc.e8 = out
		out = splice32(sc.p8[:0], f.a64.get(h.ents(), int(h.count)), sc.e8, s, e)
		sc.p8 = sc.e8
	}
	sc.e8 = out
	for _, en := range ents {
		if en.v&refFlag != 0 {
			id := en.v &^ refFlag
			kh := f.h.get(id)
			kh.def = en.under
			f.h.set(id, kh)
		}
	}
}
