package fib

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// table4 makes an IPv4 range table (entries key<<16 | value, value = the
// range's index) from sorted distinct keys starting at 0, with its index
// for a table of at most limit entries.
func table4(keys []uint16, limit int) ([]uint32, layout4) {
	e := make([]uint32, 0, len(keys))
	for i, k := range keys {
		e = append(e, uint32(k)<<16|uint32(i&0xffff))
	}
	e, l, _ := addBuckets(e, 0, nil, limit)
	return e, l
}

// checkTable4 compares the indexed search of every 16-bit key (bucket
// window or bitmap index) with a plain search of the ranges, and checks
// the layout against the budget. It checks the table the bound of a
// region of (len(keys)+1)/2 prefixes makes and, where it differs, the one
// an unbounded table makes (a bitmap index).
func checkTable4(t *testing.T, name string, keys []uint16) {
	t.Helper()
	bound := tableBound4((len(keys) + 1) / 2)
	tab, l := table4(keys, bound)
	checkTable4Layout(t, name, keys, tab, l, bound)
	if l.ws != wsPop {
		tab, l = table4(keys, 1<<30)
		if l.ws != wsPop {
			t.Fatalf("%s: unbounded table has layout %+v, want a bitmap index", name, l)
		}
		checkTable4Layout(t, name+" (bitmap)", keys, tab, l, 1<<30)
	}
}

func checkTable4Layout(t *testing.T, name string, keys []uint16, tab []uint32, l layout4, bound int) {
	t.Helper()
	if int(l.r) != len(keys) || len(tab) != l.words() || l.words() > bound && len(keys) > 1 {
		t.Fatalf("%s: %d ranges, layout %+v, %d entries (bound %d)", name, len(keys), l, len(tab), bound)
	}
	if l.ws == wsPop {
		if l.b < 5 || l.b > 16 {
			t.Fatalf("%s: bitmap of %d bits", name, l.b)
		}
	} else if l.b > maxBucketBits(len(keys), l.ws) {
		t.Fatalf("%s: %d bucket bits over the budget (%d)", name, l.b, maxBucketBits(len(keys), l.ws))
	}
	// A table in the middle of a segment, as the arena stores it.
	seg := append(append([]uint32{7, 7, 7}, tab...), 9)
	e := l.ent(3)
	for k := range 1 << 16 {
		want := search(keys, uint16(k))
		var got int
		if l.ws == wsPop {
			got = int(popRange(seg, e, uint32(k))) - 3
		} else {
			s, n := window(seg, e, uint32(k))
			if s < 3 || s+n > 3+l.r {
				t.Fatalf("%s: key %#x: window %d+%d outside the table", name, k, s-3, n)
			}
			got = int(s-3) + search(seg[s:s+n], uint32(k)<<16|0xffff)
		}
		if got != want {
			t.Fatalf("%s: key %#x: range %d, want %d (layout %+v)", name, k, got, want, l)
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
// Lookup4 where blocks mix tables with a bitmap index, tables with a
// bucket index (a /16 with /32s and a few /24s, too small for a bitmap;
// some with windows longer than 4 ranges) and /16s without a table: blocks
// whose bucket-index addresses fill no lane, fewer lanes than bLanes, more
// than bLanes, or the whole block, and batches of 1, 63, 64, 65 and 200
// addresses; Lookup4BatchScratch too, with one scratch for all.
func TestLookup4BatchLanes(t *testing.T) {
	f := newWithNH(t, 1)
	r := newRef(1)
	var cs []Change
	add := func(s string) {
		p := netip.MustParsePrefix(s)
		cs = append(cs, Change{Op: OpAdd, Prefix: p, NextHop: nhOf(p)})
	}
	for i := range 8 { // bitmap tables: /24s
		for j := range 40 {
			add(fmt.Sprintf("10.%d.%d.0/24", i, j*3))
		}
	}
	for i := range 8 { // bucket tables: a /24, /32s, a dense run of /32s
		add(fmt.Sprintf("10.%d.5.0/24", 100+i))
		add(fmt.Sprintf("10.%d.7.1/32", 100+i))
		for j := range 12 {
			add(fmt.Sprintf("10.%d.9.%d/32", 100+i, 2*j+1))
		}
	}
	add("10.200.0.0/16") // a /16 without a table
	add("0.0.0.0/0")
	applyBoth(t, f, r, cs)
	s := f.Load()
	kinds := map[uint32]uint32{}
	t4 := s.v4[0]
	for _, a := range []uint32{0x0a000000, 0x0a640000} {
		e := t4.top[a>>24][(a>>16)&255]
		kinds[a] = uint32(e>>w4Shift) & 3
	}
	if kinds[0x0a000000] != wsPop || kinds[0x0a640000] == wsPop {
		t.Fatalf("table kinds %v: want a bitmap index for 10.0/16 and a bucket index for 10.100/16", kinds)
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
		for i, a := range as {
			_, want := r.lookup(0, addr4(a))
			if got := s.Lookup4(0, a); got != want || out[i] != want || out2[i] != want {
				t.Fatalf("%s: %v (address %d of %d): Lookup4 %d, batch %d, with a scratch %d, want %d", what, addr4(a), i, len(as), got, out[i], out2[i], want)
			}
		}
	}
	for _, n := range []int{1, 63, 64, 65, 200} {
		for _, mix := range [][]int{{0}, {1}, {2}, {3}, {0, 1}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3}, {0, 1, 2, 3}} {
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
