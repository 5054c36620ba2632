package fib

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// table4 makes an IPv4 range table (entries key<<16 | value, value
// val4(i) for range i) from sorted distinct keys starting at 0, with its
// index for a table of at most limit entries.
func table4(keys []uint16, limit int) ([]uint32, layout4) {
	e := ranges4Of(keys)
	e, l, _ := addBuckets(e, 0, nil, limit)
	return e, l
}

// val4 is the value of range i of the tables the tests make: never
// subLeaf, distinct from its neighbours'.
func val4(i int) uint32 { return uint32(2 + i%65534) }

func ranges4Of(keys []uint16) []uint32 {
	e := make([]uint32, 0, len(keys))
	for i, k := range keys {
		e = append(e, uint32(k)<<16|val4(i))
	}
	return e
}

// checkTable4 compares the indexed search of every 16-bit key (bucket
// window or bitmap index) with a plain search of the ranges, and checks
// the layout against the budget. It checks the table the bound of a
// region of (len(keys)+1)/2 prefixes makes and, where it differs, the one
// an unbounded table makes (a single-level bitmap index), and two-level
// bitmap indexes of 5, 8 and the most first-level bits.
func checkTable4(t *testing.T, name string, keys []uint16) {
	t.Helper()
	bound := tableBound4((len(keys)+1)/2, popExtra)
	tab, l := table4(keys, bound)
	checkTable4Layout(t, name, keys, tab, l, bound)
	if l.ws != wsPop || int(l.r) != len(keys) {
		tab, l = table4(keys, 1<<30)
		if l.ws != wsPop || int(l.r) != len(keys) {
			t.Fatalf("%s: unbounded table has layout %+v, want a bitmap index", name, l)
		}
		checkTable4Layout(t, name+" (bitmap)", keys, tab, l, 1<<30)
	}
	b := popBits(ranges4Of(keys))
	for _, b1 := range []uint32{5, 8, b - 1} {
		if _, before := pop2Size(ranges4Of(keys), b1); b1 < 5 || b1 >= b || before >= 1<<16 {
			continue // pop2Bits takes none of these
		}
		tab, _ := addPop2(ranges4Of(keys), 0, b1, nil)
		size, before := pop2Size(ranges4Of(keys), b1)
		l := layout4{r: uint32(before), b: b1, ws: wsPop}
		if len(tab) != size || l.words() != size {
			t.Fatalf("%s: two-level index of %d bits: %d entries, pop2Size %d, layout %d", name, b1, len(tab), size, l.words())
		}
		checkTable4Layout(t, fmt.Sprintf("%s (two levels, %d bits)", name, b1), keys, tab, l, 1<<30)
	}
}

func checkTable4Layout(t *testing.T, name string, keys []uint16, tab []uint32, l layout4, bound int) {
	t.Helper()
	if len(tab) != l.words() || l.words() > bound && len(keys) > 1 {
		t.Fatalf("%s: %d ranges, layout %+v, %d entries (bound %d)", name, len(keys), l, len(tab), bound)
	}
	if l.ws == wsPop {
		if l.b < 5 || l.b > 16 {
			t.Fatalf("%s: bitmap of %d bits", name, l.b)
		}
		e := l.ent(0)
		if rs, _ := ranges4(tab, e, nil); !slices.Equal(rs, ranges4Of(keys)) {
			t.Fatalf("%s: ranges4 gives %d ranges %x, want %d", name, len(rs), rs[:min(len(rs), 20)], len(keys))
		}
	} else if int(l.r) != len(keys) || l.b > maxBucketBits(len(keys), l.ws) {
		t.Fatalf("%s: %d ranges, %d bucket bits over the budget (%d)", name, l.r, l.b, maxBucketBits(len(keys), l.ws))
	}
	// A table in the middle of a segment, as the arena stores it.
	seg := append(append([]uint32{7, 7, 7}, tab...), 9)
	e := l.ent(3)
	for k := range 1 << 16 {
		want := val4(search(keys, uint16(k)))
		var got uint32
		if l.ws == wsPop {
			i := popRange(seg, e, uint32(k))
			if i < 3 || i >= 3+l.r {
				t.Fatalf("%s: key %#x: range %d outside the table", name, k, i-3)
			}
			got = seg[i] & 0xffff
			if got == subLeaf {
				i = subRange(seg, i+seg[i]>>16, e, uint32(k))
				if i < 3 || i >= 3+l.r {
					t.Fatalf("%s: key %#x: sub-table range %d outside the table", name, k, i-3)
				}
				got = seg[i] & 0xffff
			}
		} else {
			s, n := window(seg, e, uint32(k))
			if s < 3 || s+n > 3+l.r {
				t.Fatalf("%s: key %#x: window %d+%d outside the table", name, k, s-3, n)
			}
			got = seg[s+uint32(search(seg[s:s+n], uint32(k)<<16|0xffff))] & 0xffff
		}
		if got != want {
			t.Fatalf("%s: key %#x: value %d, want %d (layout %+v)", name, k, got, want, l)
		}
	}
}

// TestBuckets4 checks the bucket index of IPv4 range tables: every key of
// tables at the edges (one range, every key a range, keys on and next to
// bucket boundaries, the bucket width changes at 256 and 65536 ranges,
// clusters) and random ones.
func TestBuckets4(t *testing.T) {
	seq := func(n, step int) []uint16 {
		var k []uint16
		for i := range n {
			k = append(k, uint16(i*step))
		}
		return k
	}
	cases := map[string][]uint16{
		"one range":         {0},
		"two":               {0, 0xffff},
		"two at the middle": {0, 0x8000},
		"every key":         seq(1<<16, 1),
		"256 /24s":          seq(256, 256),
		"257 ranges":        append(seq(256, 256), 0xffff),
		"255 ranges":        seq(255, 256),
		"dense cluster":     append([]uint16{0}, seq(200, 1)[1:]...),
		"cluster at the end": append([]uint16{0}, func() []uint16 {
			s := seq(300, 1)
			for i := range s {
				s[i] += 0xffff - 299
			}
			return s
		}()...),
		"boundaries +-1": {0, 0xff, 0x100, 0x101, 0x1ff, 0x200, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff},
	}
	for name, keys := range cases {
		if !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
			t.Fatalf("%s: bad case", name)
		}
		checkTable4(t, name, keys)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		n := 1 + rng.IntN([]int{4, 40, 300, 3000}[i%4])
		m := map[uint16]bool{0: true}
		base, spread := rng.IntN(1<<16), 1+rng.IntN(1<<16)
		for len(m) < n {
			m[uint16(base+rng.IntN(spread))] = true
		}
		keys := make([]uint16, 0, n)
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		checkTable4(t, "random", keys)
	}
}

// TestLookup4Edges checks IPv4 lookups (single and batch, against the
// reference) for routes at the edges of the structure: /0, /1, /15-/17
// (both sides of the direct table), /31, /32, adjacent /32s at the ends of
// a /16, 0.0.0.0 and 255.255.255.255, with and without a default route.
func TestLookup4Edges(t *testing.T) {
	f := newWithNH(t, 1)
	r := newRef(1)
	apply := func(cs []Change) { t.Helper(); applyBoth(t, f, r, cs) }
	pfx := []string{
		"0.0.0.0/1", "128.0.0.0/1", "10.0.0.0/15", "10.2.0.0/16", "10.3.0.0/17", "10.3.128.0/17",
		"10.4.0.0/32", "10.4.0.1/32", "10.4.255.255/32", "10.4.255.254/31", "10.4.128.0/32",
		"0.0.0.0/32", "255.255.255.255/32", "255.255.255.0/24", "0.0.0.0/16", "255.255.0.0/16",
		"10.5.0.0/24", "10.5.1.0/24", "10.5.1.128/25", "10.5.1.255/32", "10.5.2.0/23",
	}
	var cs []Change
	for i, s := range pfx {
		cs = append(cs, Change{Op: OpAdd, Prefix: netip.MustParsePrefix(s), NextHop: uint32(i%60 + 1)})
	}
	probe := func(what string) {
		t.Helper()
		s := f.Load()
		var as []uint32
		for _, ps := range pfx {
			p := netip.MustParsePrefix(ps)
			for _, d := range []int{-1, 0, 1} {
				as = append(as, u32(p.Addr())+uint32(d), u32(lastIn(p))+uint32(d))
			}
		}
		as = append(as, 0, 1, 0xffffffff, 0xfffffffe, 0x80000000, 0x7fffffff)
		out := make([]uint32, len(as))
		s.Lookup4Batch(0, as, out)
		for i, a := range as {
			_, want := r.lookup(0, addr4(a))
			if got := s.Lookup4(0, a); got != want || out[i] != want {
				t.Fatalf("%s: %v: Lookup4 %d, batch %d, want %d", what, addr4(a), got, out[i], want)
			}
		}
	}
	apply(cs[2:])
	probe("no default")
	apply(cs[:2])
	apply([]Change{{Op: OpAdd, Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHop: 61}})
	probe("with /0 and /1s")
	apply([]Change{{Op: OpDelete, Prefix: netip.MustParsePrefix("0.0.0.0/1")}, {Op: OpDelete, Prefix: netip.MustParsePrefix("10.4.0.1/32")}})
	probe("after deletes")
}

// TestLookup4BatchLanes checks Lookup4Batch against the reference and
// Lookup4 where blocks mix tables with a single-level bitmap index, with a
// two-level one (/24s with a /32, a /26 and a /25 among them: addresses in
// their sub-tables and elsewhere), tables with a bucket index (/32s spread
// over a /16 and a dense run of them: too many sub-tables for any bitmap;
// some windows longer than 4 ranges) and /16s without a table: blocks
// whose bucket-index addresses fill no lane, fewer lanes than bLanes, more
// than bLanes, or the whole block, and batches of 1, 63, 64, 65 and 200
// addresses; Lookup4BatchScratch too, with one scratch for all.
func TestLookup4BatchLanes(t *testing.T) {
	f := newWithNH(t, 1)
	r := newRef(1)
	var cs []Change
	// Next hops by insertion order, not nhOf: a random hash gave a prefix
	// its neighbour's next hop now and then (merged ranges, a coarser
	// index), and the table-kind check below failed in ~3 % of processes.
	// 2 + i%63 gives no prefix the default's next hop (1) nor the one of
	// the prefix it sits in (their indexes differ by 26-27).
	add := func(s string) {
		nh := uint32(2 + len(cs)%63)
		if s == "0.0.0.0/0" {
			nh = 1
		}
		cs = append(cs, Change{Op: OpAdd, Prefix: netip.MustParsePrefix(s), NextHop: nh})
	}
	for i := range 8 { // bitmap tables: /24s
		for j := range 40 {
			add(fmt.Sprintf("10.%d.%d.0/24", i, j*3))
		}
	}
	for i := range 8 { // two-level bitmap tables: /24s and a few longer ones
		for j := range 30 {
			add(fmt.Sprintf("10.%d.%d.0/24", 50+i, j*2))
		}
		add(fmt.Sprintf("10.%d.6.1/32", 50+i))
		add(fmt.Sprintf("10.%d.11.64/26", 50+i))
		add(fmt.Sprintf("10.%d.12.128/25", 50+i))
	}
	for i := range 8 { // bucket tables: a /24, /32s over the /16, a dense run of /32s
		add(fmt.Sprintf("10.%d.5.0/24", 100+i))
		for j := range 40 {
			add(fmt.Sprintf("10.%d.%d.%d/32", 100+i, 10+j*6, j*7%256))
		}
		for j := range 12 {
			add(fmt.Sprintf("10.%d.9.%d/32", 100+i, 2*j+1))
		}
	}
	add("10.200.0.0/16") // a /16 without a table
	add("0.0.0.0/0")
	applyBoth(t, f, r, cs)
	s := f.Load()
	t4 := s.v4[0]
	kind := func(a uint32) string {
		e := t4.top[a>>24][(a>>16)&255]
		l := lay4(e)
		rs, _ := ranges4(t4.ent[uint32(e)>>segBits][pos4(e)&segMask:][:span4(e)], e, nil)
		switch {
		case l.ws != wsPop:
			return "bucket"
		case len(rs) != int(l.r):
			return "two-level"
		}
		return "bitmap"
	}
	if k := [3]string{kind(0x0a000000), kind(0x0a320000), kind(0x0a640000)}; k != [3]string{"bitmap", "two-level", "bucket"} {
		t.Fatalf("table kinds %v: want a bitmap index for 10.0/16, a two-level one for 10.50/16 and a bucket index for 10.100/16", k)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	pick := func(kind int) uint32 {
		switch kind {
		case 0:
			return 0x0a000000 | uint32(rng.IntN(8))<<16 | uint32(rng.IntN(1<<16))
		case 1:
			return 0x0a640000 | uint32(rng.IntN(8))<<16 | 0x0900 | uint32(rng.IntN(32))
		case 2:
			return 0x0a640000 | uint32(rng.IntN(8))<<16 | uint32(rng.IntN(1<<16))
		case 4: // a sub-table's unit
			return 0x0a320000 | uint32(rng.IntN(8))<<16 | uint32([]int{6, 11, 12}[rng.IntN(3)])<<8 | uint32(rng.IntN(256))
		case 5:
			return 0x0a320000 | uint32(rng.IntN(8))<<16 | uint32(rng.IntN(1<<16))
		}
		return 0x0ac80000 | uint32(rng.IntN(1<<16)) // no table
	}
	var sc Scratch4 // reused across all the checks: stale state from other mixes
	check := func(what string, as []uint32) {
		t.Helper()
		out := make([]uint32, len(as))
		s.Lookup4Batch(0, as, out)
		out2 := make([]uint32, len(as))
		s.Lookup4BatchScratch(&sc, 0, as, out2)
		out3 := make([]uint32, len(as)) // the Go stages (the others may be AVX-512's)
		t4.lookupBlocksV(&sc.b, as, out3, false)
		for i, a := range as {
			_, want := r.lookup(0, addr4(a))
			if got := s.Lookup4(0, a); got != want || out[i] != want || out2[i] != want || out3[i] != want {
				t.Fatalf("%s: %v (address %d of %d): Lookup4 %d, batch %d, with a scratch %d, Go stages %d, want %d", what, addr4(a), i, len(as), got, out[i], out2[i], out3[i], want)
			}
		}
	}
	for _, n := range []int{1, 63, 64, 65, 200} {
		for _, mix := range [][]int{{0}, {1}, {2}, {3}, {4}, {5}, {0, 1}, {0, 4}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 4}, {0, 1, 2, 3, 4, 5}} {
			for range 20 {
				as := make([]uint32, n)
				for i := range as {
					as[i] = pick(mix[rng.IntN(len(mix))])
				}
				check(fmt.Sprintf("n %d mix %v", n, mix), as)
			}
		}
	}
}
