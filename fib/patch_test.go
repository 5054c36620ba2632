package fib

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func TestAncestor(t *testing.T) {
	for _, c := range []struct {
		p, q, want uint32
	}{
		{16<<16 | 0x1234, 16<<16 | 0x1234, 16<<16 | 0x1234},
		{16<<16 | 0x1234, 16<<16 | 0x1235, 15<<16 | 0x1234},
		{8<<16 | 0x1200, 16<<16 | 0x12ff, 8<<16 | 0x1200},
		{1<<16 | 0x8000, 16<<16 | 0x0001, wholeRegion},
		{wholeRegion, 16<<16 | 0x0001, wholeRegion},
		{4<<16 | 0xa000, 3<<16 | 0xe000, 1<<16 | 0x8000}, // 1010 and 111: common 1
	} {
		if got := ancestor(c.p, c.q); got != c.want {
			t.Errorf("ancestor(%#x, %#x) = %#x, want %#x", c.p, c.q, got, c.want)
		}
	}
}

// TestPatch drives small batches through dense regions with patching on
// for every table, checks lookups against the reference after every batch,
// and checks every range table against the one a full sweep makes (the
// patched table must be exactly the canonical one).
func TestPatch(t *testing.T) {
	f := newWithNH(t, 1)
	f.sc.patchMin = 1
	r := newRef(1)
	rng := rand.New(rand.NewPCG(31, 32))
	var ps []netip.Prefix
	for range 1500 {
		p, _ := netip.AddrFrom4([4]byte{10, byte(1 + rng.IntN(2)), byte(rng.IntN(256)), byte(rng.IntN(256))}).Prefix(17 + rng.IntN(16))
		ps = append(ps, p)
		var b [16]byte
		b[0], b[1], b[2], b[3], b[4], b[5] = 0x20, 0x01, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))
		q, _ := netip.AddrFrom16(b).Prefix(17 + rng.IntN(32)) // L1 prefixes and /32 regions with longer ones
		ps = append(ps, q)
	}
	// Covering prefixes whose changes mark whole regions.
	ps = append(ps, mp("10.0.0.0/8"), mp("10.1.0.0/16"), mp("2001::/16"), mp("2000::/3"))
	cs := adds(0, ps)
	applyBoth(t, f, r, cs)
	rounds := 2000
	if raceEnabled {
		rounds = 400
	}
	for round := range rounds {
		b := churnStep(t, f, r, rng, ps)
		if round%200 == 199 {
			checkCanonical(t, f)
			check(t, f, r, 0, probesFor2(rng, ps, true))
		}
		if t.Failed() {
			t.Fatalf("round %d: batch %v", round, b)
		}
	}
	if f.sc.patched < rounds/2 {
		t.Errorf("%d tables patched in %d batches", f.sc.patched, rounds)
	}
}

// checkCanonical compares every IPv4 and IPv6 L1 range table (ranges and
// summary or bucket index) with the one a full sweep of its region makes.
func checkCanonical(t *testing.T, f *FIBs) {
	t.Helper()
	var sc scratch
	f4, f6 := f.f4[0], f.f6[0]
	for s := range 1 << 16 {
		slot := uint16(s)
		if e := f4.d.get(slot); e&chunkFlag != 0 {
			l := lay4(e)
			got := f4.a.get(pos4(e), span4(e))
			rs, _ := ranges4(got, e, nil)
			keys, vals, _ := sweep(f4.chunks[slot].ents, f4.d.def(slot), nil, nil, nil)
			if len(rs) != len(keys) {
				t.Fatalf("IPv4 slot %#x: %d ranges, a sweep makes %d", slot, len(rs), len(keys))
			}
			for i, k := range keys {
				v := f4.t.nh[rs[i]&0xffff]
				if uint16(rs[i]>>16) != k || v != vals[i] {
					t.Fatalf("IPv4 slot %#x entry %d: key %#x value %d, a sweep makes %#x %d", slot, i, rs[i]>>16, v, k, vals[i])
				}
			}
			want, wl, _ := addBuckets(slices.Clone(rs), 0, nil, f4.bound(len(f4.chunks[slot].ents)))
			if wl != l || !slices.Equal(want, got) {
				t.Fatalf("IPv4 slot %#x: layout %+v, index %x; the ranges make %+v, %x", slot, l, got[l.r:], wl, want[l.r:])
			}
		}
		if e := f6.d.get(slot); e&chunkFlag != 0 {
			n := n6(e)
			got := f6.a16.get(uint32(e), span6(e))
			keys, vals, m := sc.build16(f6.chunks[slot].ents, f6.d.def(slot), nil, nil)
			var want []uint64
			for i, k := range keys[:m] {
				want = append(want, uint64(k)<<32|uint64(vals[i]))
			}
			if m >= rankMin1 {
				want = appendRank(want, want, 0, 0, rankWords1)
			} else {
				want = withSummary(want, 32)
			}
			if m != n || len(want) != len(got) || (e&rankFlag != 0) != (m >= rankMin1) {
				t.Fatalf("IPv6 slot %#x: %d ranges (%d entries, dir %#x), a sweep makes %d (%d)", slot, n, len(got), e, m, len(want))
			}
			for i, w := range want {
				if got[i] != w {
					t.Fatalf("IPv6 slot %#x entry %d: %#x, a sweep makes %#x", slot, i, got[i], w)
				}
			}
		}
	}
}

// TestPatchL2 is TestPatch for IPv6 L2 tables: prefixes /33-/128 under a
// few /32s (so their tables are big and often patched: patching forced
// from 1 range on), churned in small batches, with /32s and /0-/31
// prefixes whose changes reach the L2 tables' inherited defaults. After
// every batch the lookups match the reference, and now and then every L2
// table is the one a full sweep makes.
func TestPatchL2(t *testing.T) {
	f := newWithNH(t, 1)
	f.sc.patchMin = 1
	r := newRef(1)
	rng := rand.New(rand.NewPCG(33, 34))
	var ps []netip.Prefix
	for range 1500 {
		var b [16]byte
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, byte(0xb0+rng.IntN(3))
		for i := 4; i < 16; i++ {
			b[i] = byte(rng.IntN(256))
		}
		if rng.IntN(2) == 0 {
			b[4], b[5] = 0, byte(rng.IntN(4)) // clustered at the bottom of the /32
		}
		l := 33 + rng.IntN(32)
		switch rng.IntN(8) {
		case 0:
			l = 65 + rng.IntN(64) // /64 regions: references in L2
		case 1, 2, 3:
			l = 48
		}
		p, _ := netip.AddrFrom16(b).Prefix(l)
		ps = append(ps, p)
	}
	ps = append(ps, mp("2001:db0::/32"), mp("2001:db1::/32"), mp("2001:db0::/31"), mp("2001:d00::/24"), mp("2001::/16"), mp("::/0"),
		mp("2001:db2::/33"), mp("2001:db2:8000::/33"), mp("2001:db2::/48"), mp("2001:db2:ffff::/48"), mp("2001:db2:ffff:ffff::/64"),
		mp("2001:db2:ffff:ffff:ffff:ffff:ffff:ffff/128"))
	cs := adds(0, ps)
	applyBoth(t, f, r, cs)
	rounds := 1500
	if raceEnabled {
		rounds = 300
	}
	for round := range rounds {
		b := randomChanges(rng, ps, 1+rng.IntN(4))
		if err := f.Apply(b); err != nil {
			t.Fatal(err)
		}
		r.apply(b)
		var probes []netip.Addr
		for _, c := range b {
			probes = append(probes, c.Prefix.Addr(), lastIn(c.Prefix), randIn(rng, c.Prefix))
			if n := lastIn(c.Prefix).Next(); n.IsValid() {
				probes = append(probes, n)
			}
			if n := c.Prefix.Addr().Prev(); n.IsValid() {
				probes = append(probes, n)
			}
		}
		check(t, f, r, 0, probes)
		if round%150 == 149 {
			checkCanonical2(t, f)
			check(t, f, r, 0, probesFor2(rng, ps, true))
		}
		if t.Failed() {
			t.Fatalf("round %d: batch %v", round, b)
		}
	}
	if f.sc.patched < rounds/2 {
		t.Errorf("%d tables patched in %d batches", f.sc.patched, rounds)
	}
}

// checkCanonical2 compares every IPv6 L2 table (ranges and index or
// summary) with the one a full sweep of its region makes.
func checkCanonical2(t *testing.T, f *FIBs) {
	t.Helper()
	f6 := f.f6[0]
	var st []rangeEnt[uint32]
	for _, rc := range f6.chunks {
		for k1, r2 := range rc.kids {
			h := f6.h.get(r2.id)
			got := f6.a64.get(h.start, h.size())
			ents := slices.Clone(r2.ents)
			keys, vals, _ := sweep(ents, 0, nil, nil, st)
			var want []uint64
			for i, k := range keys {
				want = append(want, uint64(k)<<32|uint64(vals[i]))
			}
			ix, l38 := l2Rank(want)
			if ix != 0 {
				want = append(appendRank2(nil, want, ix), want...) // the index first
			} else {
				want = withSummary(want, 32)
			}
			if ix != h.ix || l38 != h.l38 || len(keys) != int(h.count) || !slices.Equal(got, want) {
				i := 0
				for i < min(len(got), len(want)) && got[i] == want[i] {
					i++
				}
				t.Fatalf("L2 table of /32 %#x: %d ranges, ix %#x, %d entries; a sweep makes %d, %#x, %d; first difference at entry %d",
					k1, h.count, h.ix, len(got), len(keys), ix, len(want), i)
			}
		}
	}
}

// TestPatchTwoLevel is TestPatch over regions like the Internet's: /24s
// and shorter with a few /25-/32s among them, whose tables have two-level
// bitmap indexes (and, as the batches change them, single-level bitmap or
// bucket ones): every table is patched (the old one read back with
// ranges4), lookups are checked against the reference after every batch
// and every table against the canonical one.
func TestPatchTwoLevel(t *testing.T) {
	f := newWithNH(t, 1)
	f.sc.patchMin = 1
	r := newRef(1)
	rng := rand.New(rand.NewPCG(33, 34))
	var ps []netip.Prefix
	for reg := range 4 {
		for range 150 {
			p, _ := netip.AddrFrom4([4]byte{10, byte(1 + reg), byte(rng.IntN(256)), 0}).Prefix(21 + rng.IntN(4))
			ps = append(ps, p)
		}
		for range 6 {
			p, _ := netip.AddrFrom4([4]byte{10, byte(1 + reg), byte(rng.IntN(256)), byte(rng.IntN(256))}).Prefix(25 + rng.IntN(8))
			ps = append(ps, p)
		}
	}
	// Small regions (single-level bitmap indexes) next to them: a patch
	// of one of these between two of the big ones reads a table of
	// another size back.
	for reg := range 4 {
		for range 3 {
			p, _ := netip.AddrFrom4([4]byte{10, byte(5 + reg), byte(rng.IntN(256)), 0}).Prefix(24)
			ps = append(ps, p)
		}
	}
	ps = append(ps, mp("10.0.0.0/8"), mp("2001::/16"))
	applyBoth(t, f, r, adds(0, ps))
	twoLevel := func() int {
		f4, n := f.f4[0], 0
		for s := range 1 << 16 {
			if e := f4.d.get(uint16(s)); e&chunkFlag != 0 && lay4(e).ws == wsPop {
				if rs, _ := ranges4(f4.a.get(pos4(e), span4(e)), e, nil); len(rs) != int(lay4(e).r) {
					n++
				}
			}
		}
		return n
	}
	if n := twoLevel(); n < 3 {
		t.Fatalf("%d tables with a two-level index, want 3 or more", n)
	}
	rounds := 1500
	if raceEnabled {
		rounds = 300
	}
	seen := 0
	for round := range rounds {
		b := churnStep(t, f, r, rng, ps)
		if round%20 == 19 {
			checkCanonical(t, f)
			check(t, f, r, 0, probesFor2(rng, ps, true))
			seen += twoLevel()
		}
		if t.Failed() {
			t.Fatalf("round %d: batch %v", round, b)
		}
	}
	if seen == 0 {
		t.Error("no table with a two-level index during the churn")
	}
}

// churnStep applies a batch of 1-3 random changes to prefixes of ps to f
// and the reference r, checks FIB 0 at the first, last and a random
// address of every changed prefix, and returns the batch.
func churnStep(t *testing.T, f *FIBs, r *ref, rng *rand.Rand, ps []netip.Prefix) []Change {
	t.Helper()
	b := randomChanges(rng, ps, 1+rng.IntN(3))
	if err := f.Apply(b); err != nil {
		t.Fatal(err)
	}
	r.apply(b)
	var probes []netip.Addr
	for _, c := range b {
		probes = append(probes, c.Prefix.Addr(), lastIn(c.Prefix), randIn(rng, c.Prefix))
	}
	check(t, f, r, 0, probes)
	return b
}
