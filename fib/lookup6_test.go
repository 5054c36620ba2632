package fib

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"unsafe"
)

// TestStages6Vec compares the AVX-512 stages (lookup6_amd64.s) with the Go
// stages of the same names on random block states, for every lane count:
// the same words read, the same fields written for the lanes below the
// count, and nothing written for the others. The differential tests
// (check) run the whole lookup both ways too.
func TestStages6Vec(t *testing.T) {
	if !vec6OK() {
		t.Skip("this CPU has no AVX-512 stages")
	}
	rng := rand.New(rand.NewPCG(6, 6))
	mem := make([]uint64, 1<<12)
	for i := range mem {
		mem[i] = rng.Uint64()
		if rng.IntN(2) == 0 {
			mem[i] &^= deepBit
		}
	}
	// A table address such that words up to 64+span past it lie in mem.
	addr := func(span int) tptr { return tp(unsafe.Pointer(&mem[rng.IntN(len(mem)-64-span)])) }
	var a, v blk6
	// fill gives a and v the same random state: every field the stages
	// read or write.
	fill := func() {
		for j := range batchLen {
			a.tab[j] = addr(1 << 10)
			a.q[j] = uint32(rng.IntN(1 << 10))
			a.hi[j] = rng.Uint64()
			a.l0[j] = rng.Uint64() >> rng.IntN(64)
			a.sl[j] = uint16(rng.IntN(1 << 11))
			a.msk[j] = rng.Uint32()
			a.dl[j] = uint8(rng.IntN(batchLen))
		}
		v = a
	}
	for round := range 50 {
		for n := 0; n <= batchLen; n++ {
			fill()
			a.words1(n)
			words1Vec(&v.tab, &v.q, &v.hi, n)
			if a.q != v.q {
				t.Fatalf("round %d: words1(%d): q %v, words1Vec: %v", round, n, a.q, v.q)
			}
			fill()
			a.level1(n)
			level1Vec(&v.tab, &v.q, &v.l0, &v.sl, &v.msk, n)
			if a.q != v.q || a.msk != v.msk {
				t.Fatalf("round %d: level1(%d): q %v msk %v, level1Vec: %v %v", round, n, a.q, a.msk, v.q, v.msk)
			}
			fill()
			nd := a.groups(n)
			dm := groupsVec(&v.tab, &v.q, &v.msk, n)
			if a.q != v.q {
				t.Fatalf("round %d: groups(%d): q %v, groupsVec: %v", round, n, a.q, v.q)
			}
			vd := laneList(&v.dl, dm)
			if nd != vd || !slices.Equal(a.dl[:nd], v.dl[:nd]) {
				t.Fatalf("round %d: groups(%d): deep lanes %v, groupsVec: %v (mask %#x)", round, n, a.dl[:nd], v.dl[:vd], dm)
			}
		}
	}
	runtime.KeepAlive(mem)
}

// TestStages6VecTable compares every AVX-512 stage with its Go stage on
// the blocks of a table that has every kind of lane: dir values, L1
// tables with and without a rank index, L2 tables with and without one
// (a single range; tables beyond the index budget), deep groups and L3
// tables, for every block length 1-64. Each vector stage starts from the
// state the Go stages left (so a difference is that stage's), and the
// whole lookup must give the same results both ways and as Lookup6.
func TestStages6VecTable(t *testing.T) {
	if !vec6OK() {
		t.Skip("this CPU has no AVX-512 stages")
	}
	rng := rand.New(rand.NewPCG(16, 17))
	f := newWithNH(t, 1)
	f.seglen, f.maxSegs = 4096, 16 // a small index budget: some tables are searched
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
	for ri, reg := range []uint64{0x2001, 0x2a02, 0x2c0f, 0xffff} {
		base := reg << 48
		add(base, 0, 16)
		n := 150
		if ri == 2 {
			n = 20 // an L1 table without a rank index
		}
		for range n {
			k1 := uint64(rng.IntN(1 << 16))
			add(base|k1<<32, 0, 32)
			for range rng.IntN(4) {
				add(base|k1<<32|uint64(rng.IntN(1<<16))<<16, 0, 48)
			}
			if rng.IntN(8) == 0 {
				add(base|k1<<32|uint64(rng.IntN(1<<16))<<16, 0, 33+rng.IntN(15))
			}
		}
		for _, k1 := range []uint64{0, 1, 0x1234} {
			h := base | k1<<32
			add(h, 0, 32)
			for range 100 {
				add(h|uint64(rng.IntN(1<<16))<<16, 0, 48)
			}
		}
		h := base | 0x4242<<32 | 0x10<<16 // deep groups, L3
		add(h, 0, 48)
		add(h|0x8000, 0, 49)
		add(h|0xff, 0, 64)
		add(h|0xff, 1<<63, 65)
		add(h|0xff, 0x1234, 128)
	}
	for range 300 {
		all = append(all, randPrefix(rng, true))
	}
	cs := adds(0, all)
	// An L2 table of one range (no index): two /33s with one next hop.
	cs = append(cs, Change{Op: OpAdd, Prefix: netip.MustParsePrefix("2001:77::/33"), NextHop: 5},
		Change{Op: OpAdd, Prefix: netip.MustParsePrefix("2001:77:8000::/33"), NextHop: 5})
	if err := f.Apply(cs); err != nil {
		t.Fatal(err)
	}
	s := f.Load()
	tb := s.v6[0]
	probes := make([][16]byte, 0, 4096)
	for range cap(probes) {
		a := randIn(rng, cs[rng.IntN(len(cs))].Prefix)
		if rng.IntN(16) == 0 {
			a = randIn(rng, netip.MustParsePrefix("::/0"))
		}
		probes = append(probes, a.As16())
	}
	var a, v blk6
	oa, ov := make([]uint32, batchLen), make([]uint32, batchLen)
	stage := func(name string, n int, eq bool) {
		t.Helper()
		if !eq || !slices.Equal(oa[:n], ov[:n]) {
			t.Fatalf("block of %d: %s differs", n, name)
		}
		v, ov = a, slices.Clone(oa) // the next stage starts from the Go stages' state
	}
	var kinds [6]int // lanes: dir values or searched L1, L2, L2 without an index, deep, L3, searched L1 or L2
	for round := range 20 {
		for n := 1; n <= batchLen; n++ {
			d := probes[rng.IntN(len(probes)-n):][:n]
			o := oa[:n]
			v, ov = a, slices.Clone(oa)
			a.srch.n, v.srch.n = 0, 0
			no := tb.prep1(&a, d, o)
			vno := tb.prep1AVX(&v, d)
			kinds[0] += no
			stage("prep1", n, no == vno && slices.Equal(a.hi[:n], v.hi[:n]) && slices.Equal(a.tab[:n], v.tab[:n]) && slices.Equal(a.q[:n], v.q[:n]) && slices.Equal(a.dl[:no], v.dl[:no]))
			a.words1(n)
			words1Vec(&v.tab, &v.q, &v.hi, n)
			stage("words1", n, a.q == v.q)
			m := a.values1(o)
			for j, i := range a.idx[:m] { // what values1Vec adds
				a.v1[j], a.h2[j] = o[i], a.hi[i]
			}
			vm := values1Vec(&v.tab, &v.q, &ov[0], &v.idx, &v.hi, &v.v1, &v.h2, n)
			stage("values1", n, m == vm && slices.Equal(a.idx[:m], v.idx[:m]) && slices.Equal(a.v1[:m], v.v1[:m]) && slices.Equal(a.h2[:m], v.h2[:m]))
			if no > 0 {
				m = tb.others1(&a, o, no, m)
			}
			kinds[5] += a.srch.n
			if a.srch.n > 0 {
				m = a.run1(o, m)
			}
			v, ov = a, slices.Clone(oa)
			kinds[1] += m
			if m > 0 {
				tb.headers(&a, o, m)
				for j, i := range a.idx[:m] { // others1 and run1 add to them too
					if a.v1[j] != o[i] || a.h2[j] != a.hi[i] {
						t.Fatalf("block of %d: lane %d: v1, h2 %#x %#x, want %#x %#x", n, j, a.v1[j], a.h2[j], o[i], a.hi[i])
					}
				}
				headersVec(&v.v1, &v.hs, unsafe.SliceData(tb.hdrs), len(tb.hdrs), m)
				stage("headers", n, slices.Equal(a.hs[:m], v.hs[:m]))
				no := tb.prep2(&a, m)
				vno := tb.prep2AVX(&v, m)
				stage("prep2", n, no == vno && slices.Equal(a.tab[:m], v.tab[:m]) && slices.Equal(a.l0[:m], v.l0[:m]) && a.sl == v.sl && slices.Equal(a.dl[:no], v.dl[:no]))
				kinds[2] += no
				if no > 0 {
					tb.others2(&a, o, d, no)
				}
				a.level1(m)
				nd := a.groups(m)
				kinds[3] += nd
				if nd > 0 {
					tb.deepLanes(&a, o, nd)
				}
				for j := range m {
					kinds[4] += int(uint32(a.tab[j].at(a.q[j])) >> 31)
				}
				v, ov = a, slices.Clone(oa)
				tb.values2(&a, o, d, m)
				tb.values2AVX(&v, ov[:n], d, m)
				stage("values2", n, true)
			}
			kinds[5] += a.srch.n
			a.srch.run2(tb, o, d)
			// The whole lookup, both ways, with stale scratches.
			wa, wv := make([]uint32, n), make([]uint32, n)
			tb.lookupBlocksV(&a, d, wa, false)
			tb.lookupBlocksV(&v, d, wv, true)
			for i := range d {
				if w := s.Lookup6(0, &d[i]); wa[i] != w || wv[i] != w || o[i] != w {
					t.Fatalf("round %d, block of %d: lane %d %v: Go stages %d, AVX-512 %d, stage by stage %d, Lookup6 %d",
						round, n, i, netip.AddrFrom16(d[i]), wa[i], wv[i], o[i], w)
				}
			}
		}
	}
	t.Logf("lanes: %d without an L1 index, %d at L2, %d of them without an index, %d deep, %d at L3, %d searches", kinds[0], kinds[1], kinds[2], kinds[3], kinds[4], kinds[5])
	for k, c := range kinds {
		if c == 0 {
			t.Errorf("no lanes of kind %d: the table no longer has every kind", k)
		}
	}
}
