package fib

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"unsafe"
)

// TestRankIndexes checks the rank indexes against a plain search: random
// sorted range tables (L1: 16-bit keys; L2: /48-aligned 32-bit keys,
// dense, sparse and clustered, with starts at the first and last slots,
// and in every other round starts inside /48s too: deep groups), and for
// every slot (L2: the first and last key of every /48, and the keys
// around every start inside a /48) the index's range must be the last
// start <= the key.
func TestRankIndexes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		n := 1 + rng.IntN(3000)
		if round%3 == 0 {
			n = 1 + rng.IntN(20)
		}
		// Slots with a range start: random, clustered or at the edges.
		set := map[uint16]bool{}
		lo, span := 1, 65535
		if round%4 == 1 {
			lo = 1 + rng.IntN(60000)
			span = 1 + rng.IntN(65536-lo)
		}
		for range n {
			set[uint16(lo+rng.IntN(span))] = true
		}
		if round%5 == 0 {
			set[1], set[0xffff] = true, true
		}
		keys := []uint16{0}
		for k := range set {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
		// L1: the flat index over all 16 bits.
		var e1, e2 []uint64
		var k2 []uint32 // the L2 keys
		for i, k := range keys {
			e1 = append(e1, uint64(k)<<32|uint64(i+1))
			k2 = append(k2, uint32(k)<<16)
		}
		var inner []uint32 // starts inside a /48
		if round%2 == 1 {
			for range 1 + rng.IntN(1+n/4) {
				k := uint32(keys[rng.IntN(len(keys))])<<16 | uint32(1+rng.IntN(0xffff))
				if rng.IntN(4) == 0 {
					k = uint32(rng.IntN(1<<16))<<16 | uint32(1+rng.IntN(0xffff))
				}
				inner = append(inner, k)
				k2 = append(k2, k)
			}
			slices.Sort(k2)
			k2 = slices.Compact(k2)
		}
		for i, k := range k2 {
			e2 = append(e2, uint64(k)<<32|uint64(i+1))
		}
		m, m2 := len(keys), len(k2)
		t1 := appendRank(slices.Clone(e1), e1, 0, 0, rankWords1)
		ix, l38 := l2Rank(e2)
		var t2 []uint64
		if ix != 0 {
			t2 = append(appendRank2(nil, e2, ix), e2...)
			if len(t2) != m2+ixWords(ix) {
				t.Fatalf("round %d: L2 index of %d words, header says %d", round, len(t2)-m2, ixWords(ix))
			}
			if (ix&ixDeep != 0) != (len(inner) > 0) {
				t.Fatalf("round %d: %d starts inside a /48, ix %#x", round, len(inner), ix)
			}
		} else if m2 >= rankMin2 {
			t.Fatalf("round %d: %d ranges, no L2 index", round, m2)
		}
		check2 := func(k uint32) {
			if got, want := rank2(unsafe.Pointer(&t2[0]), l38, k), ixWords(ix)+search(k2, k); int(got) != want {
				t.Fatalf("round %d (%d ranges, ix %#x): L2 key %#x: range %d, want %d", round, m2, ix, k, got, want)
			}
		}
		for s := range 1 << 16 {
			want := search(keys, uint16(s))
			w := s >> 5
			if got := rankOf(t1[m+w], s, w); int(got) != want {
				t.Fatalf("round %d (%d ranges): L1 slot %#x: range %d, want %d", round, m, s, got, want)
			}
			if ix != 0 {
				check2(uint32(s) << 16)
				check2(uint32(s)<<16 | 0xffff)
			}
		}
		for _, k := range inner {
			if ix != 0 {
				check2(k - 1)
				check2(k)
				check2(k + 1)
			}
		}
	}
	// Starts inside a /48 make deep groups.
	if ix, _ := l2Rank([]uint64{0, 1 << 48, 1<<48 | 1<<32, 2 << 48}); ix&ixDeep == 0 {
		t.Fatal("a table with a start inside a /48 has no deep group")
	}
}

// TestRankDense builds /16 regions dense enough for L1 indexes (and /32s
// for L2 indexes), with prefixes at the edges of every level (/16, /17,
// /31, /32, /33, /47, /48, /49, /63, /64, /65, /127, /128, the first and
// last slots of a region, ::/0), and churns them in small batches
// (patching, collection), comparing single and batch lookups with the
// reference after every batch.
func TestRankDense(t *testing.T) { rankDense(t, 400, 200, 0, 0) }

// TestRankBudget is TestRankDense in small arenas, whose rank index
// budget (ixBudget) holds only two of the four L1 indexes the regions
// could have: the others are searched, the budget is never exceeded and
// nothing panics.
func TestRankBudget(t *testing.T) { rankDense(t, 150, 30, 2048, 16) }

// rankDense runs TestRankDense with n /32s (and /48s) per /16 region,
// dense /48s under four /32s each, and arenas of segs segments of seglen
// entries (0: the defaults).
func rankDense(t *testing.T, n, dense, seglen, segs int) {
	rng := rand.New(rand.NewPCG(5, 6))
	f := newWithNH(t, 1)
	f.seglen, f.maxSegs = seglen, segs
	r := newRef(1)
	regions := []uint64{0x2001, 0x2a02, 0xffff, 0x0000}
	var all []netip.Prefix
	add := func(hi, lo uint64, l int) {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], hi)
		binary.BigEndian.PutUint64(b[8:], lo)
		p, err := netip.AddrFrom16(b).Prefix(l)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p)
	}
	for _, reg := range regions {
		base := reg << 48
		add(base, 0, 16)
		add(base, 0, 17)
		add(base|0x8000<<32, 0, 17)
		add(base|0xfffe<<32, 0, 31)
		// Many /32s with /48s: dense enough for an L1 index (>= rankMin1
		// ranges), a few /32s dense enough for L2 indexes.
		for range n {
			k1 := uint64(rng.IntN(1 << 16))
			add(base|k1<<32, 0, 32)
			add(base|k1<<32|uint64(rng.IntN(1<<16))<<16, 0, 48)
		}
		for _, k1 := range []uint64{0, 1, 0x1234, 0xffff} {
			h := base | k1<<32
			add(h, 0, 32)
			add(h, 0, 33)
			add(h|0xffff<<16, 0, 48)
			add(h|0x7fff<<16, 0, 47)
			for range dense {
				add(h|uint64(rng.IntN(1<<16))<<16, 0, 48)
			}
		}
		// Longer prefixes under one /32: its L2 table has starts inside
		// a /48 (deep groups).
		h := base | 0x4242<<32 | 0x10<<16
		add(h, 0, 48)
		add(h, 0, 49)
		add(h|0x8000, 0, 49)
		add(h|0xff, 0, 63)
		add(h|0xff, 0, 64)
		add(h|0xff, 1<<63, 65)
		add(h|0xff, 0x1234, 127)
		add(h|0xff, 0x1234, 128)
		add(base|0xffff<<32|0xffffffff, ^uint64(0), 128)
	}
	add(0, 0, 0)
	slices.SortFunc(all, func(a, b netip.Prefix) int { return cmpChange(Change{Prefix: a}, Change{Prefix: b}) })
	all = slices.Compact(all)
	cs := append(adds(0, all), Change{Op: OpAdd, Prefix: mp("198.18.0.0/15"), NextHop: 1}) // checkCanonical wants both families
	applyBoth(t, f, r, cs)
	f6 := f.f6[0]
	ranked1, ranked2, deep := 0, 0, 0
	for _, reg := range regions {
		if f6.d.get(uint16(reg))&rankFlag != 0 {
			ranked1++
		}
	}
	for _, rc := range f6.chunks {
		for _, r2 := range rc.kids {
			if ix := f6.h.get(r2.id).ix; ix != 0 {
				ranked2++
				deep += int(ix >> 24 & 1)
			}
		}
	}
	budget := f6.ixBudget()
	if want := min(len(regions), budget/rankWords1); ranked1 < want || ranked2 < 16 || deep == 0 {
		t.Fatalf("%d L1 (want %d) and %d L2 rank indexes (%d with deep groups): the test does not exercise them", ranked1, want, ranked2, deep)
	}
	rngP := rand.New(rand.NewPCG(7, 8))
	check(t, f, r, 0, probesFor(rngP, all))
	present := map[netip.Prefix]bool{}
	for _, p := range all {
		present[p] = true
	}
	rounds := 200
	if raceEnabled {
		rounds = 40
	}
	for round := range rounds {
		var b []Change
		for range 1 + rng.IntN(20) {
			p := all[rng.IntN(len(all))]
			if present[p] {
				b = append(b, Change{Op: OpDelete, Prefix: p})
			} else {
				b = append(b, Change{Op: OpAdd, Prefix: p, NextHop: 1 + uint32(rng.IntN(60))})
			}
			present[p] = !present[p]
		}
		if err := f.Apply(b); err != nil {
			t.Fatal(err)
		}
		r.apply(b)
		var ps []netip.Prefix
		for _, c := range b {
			ps = append(ps, c.Prefix)
		}
		for range 50 {
			ps = append(ps, all[rng.IntN(len(all))])
		}
		check(t, f, r, 0, probesFor(rngP, ps))
		checkIndexWords(t, f6)
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
	}
	if budget >= len(regions)*rankWords1 {
		checkCanonical(t, f)
	}
}

// checkIndexWords checks the rank index budget's accounting: the words
// counted are those of the live tables' indexes, and within the budget.
func checkIndexWords(t *testing.T, f6 *fam6) {
	t.Helper()
	w1, w2 := 0, 0
	for s := range 1 << 16 {
		if e := f6.d.get(uint16(s)); e&chunkFlag != 0 && e&rankFlag != 0 {
			w1 += rankWords1
		}
	}
	for _, rc := range f6.chunks {
		for _, r2 := range rc.kids {
			if h := f6.h.get(r2.id); h.ix != 0 {
				w2 += ixWords(h.ix)
			}
		}
	}
	if w1 != f6.ixw1 || w2 != f6.ixw2 || w1 > f6.ixBudget() || w2 > f6.ixBudget() {
		t.Fatalf("rank index words: L1 %d (counted %d), L2 %d (counted %d), budget %d", w1, f6.ixw1, w2, f6.ixw2, f6.ixBudget())
	}
}
