package fib

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// refuse applies cs expecting ErrCapacity with want in the message, and
// checks that nothing changed: same snapshot, same routes.
func refuse(t *testing.T, f *FIBs, cs []Change, want string) {
	t.Helper()
	s := f.Load()
	var before [][]Route
	for fib := range f.NumFIBs() {
		rs, _ := f.Routes(uint32(fib))
		before = append(before, rs)
	}
	err := f.Apply(cs)
	if !errors.Is(err, ErrCapacity) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Apply over the limit: %v; want ErrCapacity saying %q", err, want)
	}
	if f.Load() != s {
		t.Fatal("a refused batch published a snapshot")
	}
	for fib := range f.NumFIBs() {
		if rs, _ := f.Routes(uint32(fib)); !slices.Equal(rs, before[fib]) {
			t.Fatalf("a refused batch changed the routes of FIB %d", fib)
		}
	}
}

// TestCapacityRefused checks the prefix limits per FIB and family and
// under one IPv6 /32: a batch that would exceed one is refused whole with
// ErrCapacity naming the limit; batches that stay within (deletes,
// next-hop changes, an add undone in the same batch) pass at the limit;
// lookups match the reference throughout.
func TestCapacityRefused(t *testing.T) {
	f := newWithNH(t, 2)
	f.seglen, f.maxSegs, f.maxDeep = 16, 64, 20 // 64 prefixes per FIB and family
	perFam, _ := f.limits()
	if perFam != 64 {
		t.Fatalf("limit %d, want 64", perFam)
	}
	r := newRef(2)
	rng := rand.New(rand.NewPCG(5, 6))
	apply := func(cs []Change) { t.Helper(); applyBoth(t, f, r, cs) }
	var all []netip.Prefix
	fill := func(fib uint32, v6 bool) []netip.Prefix {
		var ps []netip.Prefix
		for len(ps) < perFam {
			p := randPrefix(rng, v6)
			if p.Bits() > 32 && v6 || slices.Contains(ps, p) {
				continue // deep prefixes are the other limit's
			}
			ps = append(ps, p)
		}
		apply(adds(fib, ps))
		all = append(all, ps...)
		return ps
	}
	p4 := fill(0, false)
	p6 := fill(1, true)
	probes := func() []netip.Addr { return probesFor(rng, append(all, mp("10.0.0.0/8"), mp("2001::/16"))) }
	check(t, f, r, 0, probes())
	check(t, f, r, 1, probes())

	n4, n6 := mp("11.0.0.0/24"), mp("2002::/32")
	refuse(t, f, []Change{{Op: OpAdd, Prefix: n4, NextHop: 1}}, "IPv4 table of FIB 0 would hold 65 prefixes")
	refuse(t, f, []Change{{Op: OpAdd, FIB: 1, Prefix: n6, NextHop: 1}}, "IPv6 table of FIB 1 would hold 65 prefixes")
	// A connected route goes to every FIB: FIB 0's IPv4 table is full.
	refuse(t, f, []Change{{Op: OpAdd, Prefix: n4, NextHop: 1, Connected: true}}, "FIB 0 would hold 65")
	// The error names the change that went over.
	refuse(t, f, []Change{{Op: OpDelete, Prefix: p4[0]}, {Op: OpAdd, Prefix: n4, NextHop: 1}, {Op: OpAdd, Prefix: mp("11.0.1.0/24"), NextHop: 1}}, "change 2 ")
	// At the limit: a delete and an add, a next-hop change, an add undone.
	apply([]Change{{Op: OpDelete, Prefix: p4[0]}, {Op: OpAdd, Prefix: n4, NextHop: 2}})
	apply([]Change{{Op: OpAdd, Prefix: p4[1], NextHop: 3}, {Op: OpAdd, Prefix: p4[1], NextHop: 4}})
	apply([]Change{{Op: OpAdd, Prefix: mp("11.0.2.0/24"), NextHop: 5}, {Op: OpDelete, Prefix: mp("11.0.2.0/24")}})
	apply([]Change{{Op: OpDelete, FIB: 1, Prefix: p6[0]}, {Op: OpAdd, FIB: 1, Prefix: n6, NextHop: 6}})
	all = append(all, n4, n6)
	// FIB 1 still has room for IPv4.
	apply([]Change{{Op: OpAdd, FIB: 1, Prefix: n4, NextHop: 7}})

	// Prefixes longer than /32 under one IPv6 /32, in FIB 1 after making
	// room for them in the family.
	var dels []Change
	for _, p := range p6[1:31] {
		dels = append(dels, Change{Op: OpDelete, FIB: 1, Prefix: p})
	}
	apply(dels)
	var deep []Change
	for i := range 20 {
		p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i), 14: byte(i)}), 48+40*(i%2)).Masked()
		deep = append(deep, Change{Op: OpAdd, FIB: 1, Prefix: p, NextHop: uint32(1 + i)})
		all = append(all, p)
	}
	apply(deep)
	refuse(t, f, []Change{{Op: OpAdd, FIB: 1, Prefix: mp("2001:db8:ff::/48"), NextHop: 1}}, "2001:db8::/32 in FIB 1 would hold 21 prefixes longer than /32")
	refuse(t, f, []Change{{Op: OpAdd, FIB: 1, Prefix: mp("2001:db8:ff::1/128"), NextHop: 1}}, "at most 20 under one IPv6 /32")
	// Another /32 is fine, and so is a /32 itself (an L1 prefix).
	apply([]Change{{Op: OpAdd, FIB: 1, Prefix: mp("2001:db9:ff::/48"), NextHop: 1}, {Op: OpAdd, FIB: 1, Prefix: mp("2001:db8::/32"), NextHop: 2}})
	all = append(all, mp("2001:db9:ff::/48"), mp("2001:db8::/32"))
	for fib := range uint32(2) {
		check(t, f, r, fib, probes())
	}
}

// TestCapacityNearLimit churns tables held near the prefix limit with
// tiny arenas (few, small segments): batches over the limit are refused
// whole, the rest apply; when the incremental rebuild could run out of
// segment ids, commit rebuilds the family into a fresh arena instead. It
// must never panic, and lookups match the reference throughout.
func TestCapacityNearLimit(t *testing.T) {
	starved := 0
	for _, cfg := range []struct{ seglen, segs int }{{16, 8}, {16, 12}, {16, 64}, {64, 12}} {
		t.Run(fmt.Sprintf("seglen%d-segs%d", cfg.seglen, cfg.segs), func(t *testing.T) {
			f := newWithNH(t, 1)
			f.seglen, f.maxSegs = cfg.seglen, cfg.segs
			perFam, _ := f.limits()
			r := newRef(1)
			rng := rand.New(rand.NewPCG(uint64(cfg.seglen), uint64(cfg.segs)))
			// A pool of twice the limit per family, mostly longer than /16
			// (shorter ones make commit rebuild everything), half of it in
			// a few regions so that some tables outgrow a segment.
			var pool []netip.Prefix
			for len(pool) < 4*perFam {
				if p := randPrefix(rng, len(pool)%2 == 0); p.Bits() > 16 || rng.IntN(10) == 0 {
					pool = append(pool, p)
				}
				p, _ := netip.AddrFrom4([4]byte{10, 1, byte(rng.IntN(4)), byte(rng.IntN(256))}).Prefix(17 + rng.IntN(16))
				q, _ := netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, byte(rng.IntN(2)), byte(rng.IntN(256)), 6: byte(rng.IntN(256))}).Prefix(17 + rng.IntN(48))
				pool = append(pool, p, q)
			}
			refused, applied := 0, 0
			for round := range 400 { // the same under -race: the assertions below depend on it
				var b []Change
				for range 1 + rng.IntN(12) {
					p := pool[rng.IntN(len(pool))]
					if rng.IntN(3) == 0 {
						b = append(b, Change{Op: OpDelete, Prefix: p})
					} else {
						b = append(b, Change{Op: OpAdd, Prefix: p, NextHop: 1 + uint32(rng.IntN(64))})
					}
				}
				s := f.Load()
				err := f.Apply(b)
				switch {
				case errors.Is(err, ErrCapacity):
					refused++
					if f.Load() != s {
						t.Fatal("a refused batch published a snapshot")
					}
				case err != nil:
					t.Fatal(err)
				default:
					applied++
					r.apply(b)
				}
				if v4, v6, _ := f.RouteCount(0); v4 > perFam || v6 > perFam {
					t.Fatalf("round %d: %d IPv4 and %d IPv6 prefixes, limit %d", round, v4, v6, perFam)
				}
				if round%50 == 49 {
					check(t, f, r, 0, probesFor2(rng, pool[:min(200, len(pool))], false))
					checkArenas(t, f.f4[0], f.f6[0])
					if t.Failed() {
						t.Fatalf("round %d", round)
					}
				}
			}
			f4, f6 := f.f4[0], f.f6[0]
			t.Logf("%d batches applied, %d refused; rebuilds for want of segment ids IPv4 %d, IPv6 %d; segments collected IPv4 %d, L1 %d, L2 %d",
				applied, refused, f4.starved, f6.starved, f4.a.drops, f6.a16.drops, f6.a64.drops)
			if refused == 0 || applied == 0 {
				t.Error("want both refused and applied batches")
			}
			if cfg.segs <= 12 {
				starved += f4.starved + f6.starved
			}
		})
	}
	// Summed over the configurations with few segments: in one alone
	// (64-entry segments) the path is taken once or not at all, depending
	// on the order in which a batch's regions are rebuilt.
	if starved == 0 {
		t.Error("no rebuild for want of segment ids: the test does not reach that path")
	}
}

// TestLimitsFit checks the arithmetic behind the limits: the largest table
// a region can make is addressable in a segment, and a family at the
// prefix limit fits in fewer segments than an arena has.
func TestLimitsFit(t *testing.T) {
	// IPv4 /16: /17-/32 prefixes; IPv6 /16: /17-/32 and references to
	// /32 regions.
	if b := tableBound(1<<17 + 1<<16); b > segMask+1 {
		t.Errorf("largest L1 table %d entries > %d", b, segMask+1)
	}
	if b := tableBound(MaxDeepPrefixes); b > segMask+1 {
		t.Errorf("largest L2/L3 table %d entries > %d", b, segMask+1)
	}
	// An IPv6 L3 table of r ranges takes r keys and r/2 words of values.
	if b := size3(2*MaxDeepPrefixes + 1); b > segMask+1 {
		t.Errorf("largest L3 table %d entries > %d", b, segMask+1)
	}
	// tableBound(n) <= 2.125n + 2.07 <= 4.2n per region of n >= 1 entries;
	// a rebuild makes fewer than 2e/seglen + 1 segments.
	// IPv6 arenas also hold rank indexes, at most an eighth of their
	// capacity (fam6.ixBudget).
	if segs := 2*(42*MaxPrefixes/10+segIDs*segLen/8)/segLen + 2; segs > segIDs {
		t.Errorf("a family at the limit may need %d segments, an arena has %d", segs, segIDs)
	}
	for n := 1; n < 1000; n++ {
		if 10*tableBound(n) > 42*n {
			t.Fatalf("tableBound(%d) = %d > 4.2n", n, tableBound(n))
		}
	}
	// The same for IPv4's indexed tables (tab4.go): tableBound4(n, x) <=
	// 4.2n + x (a bucket index takes r + r/2 + 1 with r = 2n+1 ranges, and
	// at most 65536 ranges), x = extra4 of the arena, which leaves room for
	// x entries per region of a family at the limit (at most 65536
	// regions). Tests' tiny arenas too.
	x := extra4(segIDs, segLen)
	if x != popExtra {
		t.Errorf("extra4 of the default arena = %d, want popExtra (%d)", x, popExtra)
	}
	for n := 1; n < 1<<17; n++ {
		if b := tableBound4(n, x); 10*b > 42*n+10*x || b > segMask+1 {
			t.Fatalf("tableBound4(%d, %d) = %d > 4.2n + x", n, x, b)
		}
	}
	for _, a := range [][2]int{{segIDs, segLen}, {8, 16}, {16, 16}, {64, 64}, {8, 64}, {1024, 64}, {32, 1 << 12}} {
		segs, seglen := a[0], a[1]
		p := segs * seglen / 16 // FIBs.limits
		x := extra4(segs, seglen)
		if e := 42*p/10 + x*min(p, 1<<16); 2*e/seglen+2 > segs {
			t.Errorf("IPv4, %d segments of %d: a family at the limit may need %d segments", segs, seglen, 2*e/seglen+2)
		}
	}
}

// TestLeafRoom checks the limit on distinct next hops in one FIB's IPv4
// table: 65534 (16-bit value indexes; 0 is NoRoute's, 1 subLeaf's), and
// that a refused batch changes nothing.
func TestLeafRoom(t *testing.T) {
	f, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1<<16 - 2
	var cs []Change
	for i := range n + 1 {
		id, err := f.AddNextHop(NextHop{Kind: KindGateway, Port: 1, Addr: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})})
		if err != nil {
			t.Fatal(err)
		}
		// /26-/32s in 10.0.0.0/8, 1024 per /16: two-level bitmap and
		// bucket indexes.
		a := netip.AddrFrom4([4]byte{10, byte(i >> 10), byte(i >> 2), byte(i << 6)})
		cs = append(cs, Change{Op: OpAdd, Prefix: netip.PrefixFrom(a, 26+i%7), NextHop: id})
	}
	if err := f.Apply(cs[:n-1]); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(cs[n-1 : n]); err != nil {
		t.Fatalf("next hop %d of %d: %v", n, n, err)
	}
	s := f.Load()
	if err := f.Apply(cs[n:]); !errors.Is(err, ErrFull) {
		t.Fatalf("next hop %d: %v, want ErrFull", n+1, err)
	}
	if f.Load() != s {
		t.Fatal("a refused batch published a snapshot")
	}
	for _, c := range cs[:n] {
		a := u32(c.Prefix.Addr())
		if got := s.Lookup4(0, a); got != c.NextHop {
			t.Fatalf("%v: next hop %d, want %d", c.Prefix, got, c.NextHop)
		}
		var out [1]uint32
		if s.Lookup4Batch(0, []uint32{a}, out[:]); out[0] != c.NextHop {
			t.Fatalf("%v: batch next hop %d, want %d", c.Prefix, out[0], c.NextHop)
		}
	}
	if got := s.Lookup4(0, u32(cs[n].Prefix.Addr())); got == cs[n].NextHop {
		t.Fatalf("%v: the refused route is there", cs[n].Prefix)
	}
}
