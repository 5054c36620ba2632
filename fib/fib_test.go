package fib

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func mp(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ma(s string) netip.Addr   { return netip.MustParseAddr(s) }

// check compares every probe against the reference, with the single and
// the batch lookups.
func check(t *testing.T, f *FIBs, r *ref, fib uint32, probes []netip.Addr) {
	t.Helper()
	s := f.Load()
	var d4 []uint32
	var w4 []uint32
	var d6 [][16]byte
	var w6 []uint32
	bad := 0
	for _, a := range probes {
		_, want := r.lookup(fib, a)
		if got := lookup(s, fib, a); got != want && bad < 10 {
			bad++
			p, _ := r.lookup(fib, a)
			t.Errorf("fib %d lookup %v = %d, want %d (from %v)", fib, a, got, want, p)
		}
		if a.Is4() {
			d4 = append(d4, u32(a))
			w4 = append(w4, want)
		} else {
			d6 = append(d6, a.As16())
			w6 = append(w6, want)
		}
	}
	o4 := make([]uint32, len(d4))
	s.Lookup4Batch(fib, d4, o4)
	for i := range o4 {
		if o4[i] != w4[i] && bad < 10 {
			bad++
			t.Errorf("fib %d Lookup4Batch[%d] %v = %d, want %d", fib, i, addr4(d4[i]), o4[i], w4[i])
		}
	}
	// With a Scratch4 that an earlier lookup (the probes in reverse
	// order) left full of stale state, as a worker's is.
	var sc4 Scratch4
	afterReversed(d4, o4, func(d []uint32, o []uint32) { s.Lookup4BatchScratch(&sc4, fib, d, o) })
	for i := range o4 {
		if o4[i] != w4[i] && bad < 10 {
			bad++
			t.Errorf("fib %d Lookup4BatchScratch[%d] %v = %d, want %d", fib, i, addr4(d4[i]), o4[i], w4[i])
		}
	}
	// The Go stages, where the lookups above ran the AVX-512 ones
	// (lookup4_amd64.go), with the same stale scratch.
	if vec4OK() {
		afterReversed(d4, o4, func(d []uint32, o []uint32) { s.v4[fib].lookupBlocksV(&sc4.b, d, o, false) })
		for i := range o4 {
			if o4[i] != w4[i] && bad < 10 {
				bad++
				t.Errorf("fib %d Lookup4Batch, Go stages [%d] %v = %d, want %d", fib, i, addr4(d4[i]), o4[i], w4[i])
			}
		}
	}
	o6 := make([]uint32, len(d6))
	s.Lookup6Batch(fib, d6, o6)
	for i := range o6 {
		if o6[i] != w6[i] && bad < 10 {
			bad++
			t.Errorf("fib %d Lookup6Batch[%d] %v = %d, want %d", fib, i, netip.AddrFrom16(d6[i]), o6[i], w6[i])
		}
	}
	// With a Scratch6 that an earlier lookup (the probes in reverse
	// order) left full of stale state, as a worker's is.
	var sc Scratch6
	afterReversed(d6, o6, func(d [][16]byte, o []uint32) { s.Lookup6BatchScratch(&sc, fib, d, o) })
	for i := range o6 {
		if o6[i] != w6[i] && bad < 10 {
			bad++
			t.Errorf("fib %d Lookup6BatchScratch[%d] %v = %d, want %d", fib, i, netip.AddrFrom16(d6[i]), o6[i], w6[i])
		}
	}
	// The Go stages, where the lookups above ran the AVX-512 ones
	// (lookup6_amd64.go), with the same stale scratch.
	if vec6OK() {
		afterReversed(d6, o6, func(d [][16]byte, o []uint32) { s.v6[fib].lookupBlocksV(&sc.b, d, o, false) })
		for i := range o6 {
			if o6[i] != w6[i] && bad < 10 {
				bad++
				t.Errorf("fib %d Lookup6Batch, Go stages [%d] %v = %d, want %d", fib, i, netip.AddrFrom16(d6[i]), o6[i], w6[i])
			}
		}
	}
}

// probesFor returns the first, last and a random address of every prefix,
// plus (if outside) the addresses just outside it.
func probesFor(rng *rand.Rand, ps []netip.Prefix) []netip.Addr {
	return probesFor2(rng, ps, true)
}

func probesFor2(rng *rand.Rand, ps []netip.Prefix, outside bool) []netip.Addr {
	var out []netip.Addr
	for _, p := range ps {
		first, last := p.Addr(), lastIn(p)
		out = append(out, first, last, randIn(rng, p))
		if !outside {
			continue
		}
		if n := last.Next(); n.IsValid() {
			out = append(out, n)
		}
		if n := first.Prev(); n.IsValid() {
			out = append(out, n)
		}
	}
	return out
}

func TestEdgeCases(t *testing.T) {
	steps := []struct {
		name    string
		changes []Change
		probes  []string
	}{
		{"empty", nil, []string{"0.0.0.0", "255.255.255.255", "::", "ffff::1"}},
		{"default routes", []Change{{Op: OpAdd, Prefix: mp("0.0.0.0/0"), NextHop: 1}, {Op: OpAdd, Prefix: mp("::/0"), NextHop: 2}},
			[]string{"0.0.0.0", "255.255.255.255", "::", "ffff::1"}},
		{"host routes", []Change{{Op: OpAdd, Prefix: mp("10.1.2.3/32"), NextHop: 3}, {Op: OpAdd, Prefix: mp("2001:db8::1/128"), NextHop: 4},
			{Op: OpAdd, Prefix: mp("255.255.255.255/32"), NextHop: 5}, {Op: OpAdd, Prefix: mp("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), NextHop: 6}},
			[]string{"10.1.2.2", "10.1.2.3", "10.1.2.4", "2001:db8::", "2001:db8::1", "2001:db8::2", "255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"}},
		{"nested", []Change{{Op: OpAdd, Prefix: mp("10.0.0.0/8"), NextHop: 7}, {Op: OpAdd, Prefix: mp("10.1.0.0/16"), NextHop: 8},
			{Op: OpAdd, Prefix: mp("10.1.2.0/24"), NextHop: 9}, {Op: OpAdd, Prefix: mp("10.1.2.0/25"), NextHop: 10},
			{Op: OpAdd, Prefix: mp("2001:db8::/32"), NextHop: 7}, {Op: OpAdd, Prefix: mp("2001:db8:1::/48"), NextHop: 8},
			{Op: OpAdd, Prefix: mp("2001:db8:1:2::/64"), NextHop: 9}, {Op: OpAdd, Prefix: mp("2001:db8:1:2::/100"), NextHop: 10}},
			[]string{"10.0.0.0", "10.1.0.0", "10.1.2.0", "10.1.2.127", "10.1.2.128", "10.1.2.255", "10.1.3.0", "10.255.255.255", "11.0.0.0",
				"2001:db8::", "2001:db8:1::", "2001:db8:1:2::", "2001:db8:1:2::1", "2001:db8:1:2::1:0:0", "2001:db8:1:2:0:1::", "2001:db8:1:3::", "2001:db9::"}},
		{"delete uncovers", []Change{{Op: OpDelete, Prefix: mp("10.1.0.0/16")}, {Op: OpDelete, Prefix: mp("10.1.2.0/25")},
			{Op: OpDelete, Prefix: mp("2001:db8:1::/48")}, {Op: OpDelete, Prefix: mp("2001:db8:1:2::/64")}, {Op: OpDelete, Prefix: mp("10.1.2.3/32")}},
			[]string{"10.1.0.0", "10.1.2.0", "10.1.2.3", "10.1.2.200", "10.1.3.0", "2001:db8:1::", "2001:db8:1:2::", "2001:db8:1:2::1"}},
		{"re-add and replace", []Change{{Op: OpAdd, Prefix: mp("10.1.0.0/16"), NextHop: 11}, {Op: OpAdd, Prefix: mp("10.1.2.0/24"), NextHop: 12},
			{Op: OpAdd, Prefix: mp("2001:db8:1::/48"), NextHop: 11}, {Op: OpAdd, Prefix: mp("2001:db8:1:2::/100"), NextHop: 12}},
			[]string{"10.1.0.0", "10.1.2.0", "10.1.2.200", "2001:db8:1::", "2001:db8:1:2::1"}},
		{"delete defaults", []Change{{Op: OpDelete, Prefix: mp("0.0.0.0/0")}, {Op: OpDelete, Prefix: mp("::/0")}, {Op: OpDelete, Prefix: mp("10.0.0.0/8")}},
			[]string{"0.0.0.0", "9.0.0.0", "10.1.0.0", "10.2.0.0", "::", "2001:db8:1:2::1"}},
	}
	f := newWithNH(t, 1)
	r := newRef(1)
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := f.Apply(st.changes); err != nil {
				t.Fatal(err)
			}
			r.apply(st.changes)
			var ps []netip.Addr
			for _, s := range st.probes {
				ps = append(ps, ma(s))
			}
			check(t, f, r, 0, ps)
		})
	}
}

func TestBadInput(t *testing.T) {
	f := newWithNH(t, 4)
	good := Change{Op: OpAdd, FIB: 1, Prefix: mp("10.0.0.0/8"), NextHop: 1}
	tests := []struct {
		name string
		c    Change
		err  error
	}{
		{"host bits v4", Change{Op: OpAdd, Prefix: mp("10.0.0.1/8"), NextHop: 1}, ErrHostBits},
		{"host bits v6", Change{Op: OpAdd, Prefix: mp("2001:db8::1/64"), NextHop: 1}, ErrHostBits},
		{"invalid prefix", Change{Op: OpAdd, Prefix: netip.Prefix{}, NextHop: 1}, ErrBadPrefix},
		{"length out of range", Change{Op: OpAdd, Prefix: netip.PrefixFrom(ma("10.0.0.0"), 33), NextHop: 1}, ErrBadPrefix},
		{"unknown next hop", Change{Op: OpAdd, Prefix: mp("10.0.0.0/8"), NextHop: 65}, ErrNextHop},
		{"no-route next hop", Change{Op: OpAdd, Prefix: mp("10.0.0.0/8"), NextHop: NoRoute}, ErrNextHop},
		{"fib out of range", Change{Op: OpAdd, FIB: 4, Prefix: mp("10.0.0.0/8"), NextHop: 1}, ErrFIB},
		{"bad op", Change{Op: 9, Prefix: mp("10.0.0.0/8"), NextHop: 1}, ErrBadOp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.Load()
			err := f.Apply([]Change{good, tc.c})
			if !errors.Is(err, tc.err) {
				t.Fatalf("Apply = %v, want %v", err, tc.err)
			}
			if f.Load() != before || f.Load().Lookup4(1, u32(ma("10.1.1.1"))) != NoRoute {
				t.Fatal("a rejected batch changed the FIB")
			}
		})
	}
	if _, err := New(Config{FIBs: MaxFIBs + 1}); !errors.Is(err, ErrFIB) {
		t.Errorf("New with too many FIBs: %v", err)
	}
	if _, err := f.AddNextHop(NextHop{Kind: KindECMP, Members: []uint32{1, 999}}); !errors.Is(err, ErrBadNH) {
		t.Errorf("ECMP with unknown member: %v", err)
	}
	if _, err := f.AddNextHop(NextHop{Kind: KindGateway}); !errors.Is(err, ErrBadNH) {
		t.Errorf("gateway without address: %v", err)
	}
}

func TestECMP(t *testing.T) {
	f := newWithNH(t, 1)
	g, err := f.AddNextHop(NextHop{Kind: KindECMP, Members: []uint32{3, 5, 7}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Apply([]Change{{Op: OpAdd, Prefix: mp("198.18.0.0/15"), NextHop: g}, {Op: OpAdd, Prefix: mp("2001:2::/48"), NextHop: g}}); err != nil {
		t.Fatal(err)
	}
	s := f.Load()
	if id := s.Lookup4(0, u32(ma("198.19.1.1"))); id != g || s.NextHop(id).Kind != KindECMP {
		t.Fatalf("lookup = %d, want group %d", id, g)
	}
	seen := map[uint32]int{}
	ids := make([]uint32, 3000)
	hs := make([]uint32, len(ids))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range ids {
		ids[i] = g
		hs[i] = rng.Uint32()
	}
	s.SelectBatch(ids, hs)
	for i, id := range ids {
		seen[id]++
		if s.Select(g, hs[i]) != id {
			t.Fatal("Select and SelectBatch disagree")
		}
	}
	for _, m := range []uint32{3, 5, 7} {
		if seen[m] < 800 {
			t.Errorf("member %d chosen %d times of 3000: %v", m, seen[m], seen)
		}
	}
	if s.Select(4, 12345) != 4 {
		t.Error("Select changed a plain next hop")
	}
}

func TestConnectedAllFIBs(t *testing.T) {
	f := newWithNH(t, 4096)
	cs := []Change{{Op: OpAdd, Connected: true, Prefix: mp("198.18.1.0/24"), NextHop: 1}, {Op: OpAdd, Connected: true, Prefix: mp("2001:2::/64"), NextHop: 2},
		{Op: OpAdd, FIB: 7, Prefix: mp("0.0.0.0/0"), NextHop: 3}}
	if err := f.Apply(cs); err != nil {
		t.Fatal(err)
	}
	s := f.Load()
	for fib := uint32(0); fib < 4096; fib++ {
		if s.Lookup4(fib, u32(ma("198.18.1.9"))) != 1 {
			t.Fatalf("fib %d misses the connected route", fib)
		}
		b := ma("2001:2::9").As16()
		if s.Lookup6(fib, &b) != 2 {
			t.Fatalf("fib %d misses the connected IPv6 route", fib)
		}
	}
	if s.Lookup4(7, u32(ma("8.8.8.8"))) != 3 || s.Lookup4(6, u32(ma("8.8.8.8"))) != NoRoute {
		t.Fatal("route went to the wrong FIB")
	}
	// Delete by hand from one FIB.
	if err := f.Apply([]Change{{Op: OpDelete, FIB: 9, Prefix: mp("198.18.1.0/24")}}); err != nil {
		t.Fatal(err)
	}
	s = f.Load()
	if s.Lookup4(9, u32(ma("198.18.1.9"))) != NoRoute || s.Lookup4(10, u32(ma("198.18.1.9"))) != 1 {
		t.Fatal("deleting a connected route from one FIB")
	}
	rs, err := f.Routes(7)
	if err != nil || len(rs) != 3 || rs[0].Prefix != mp("0.0.0.0/0") || rs[2].Prefix != mp("2001:2::/64") {
		t.Fatalf("Routes(7) = %v, %v", rs, err)
	}
	r, ok, err := f.RouteGet(7, ma("198.18.1.200"))
	if err != nil || !ok || r.Prefix != mp("198.18.1.0/24") || r.NextHop != 1 {
		t.Fatalf("RouteGet = %v %v %v", r, ok, err)
	}
	if _, _, err := f.RouteGet(4096, ma("1.1.1.1")); !errors.Is(err, ErrFIB) {
		t.Fatalf("RouteGet bad fib: %v", err)
	}
}

func TestEmptyFIBsCheap(t *testing.T) {
	f, err := New(Config{FIBs: 4096})
	if err != nil {
		t.Fatal(err)
	}
	s := f.Load()
	if s.v4[4095] != s.v4[0] || s.v6[4095] != s.v6[0] {
		t.Fatal("empty FIBs do not share the empty table")
	}
	if s.Lookup4(4095, 1) != NoRoute {
		t.Fatal("empty FIB lookup")
	}
}

// TestRandomDifferential applies random batches of adds and deletes to
// several FIBs and compares all lookup paths with the reference after each.
func TestRandomDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const nfib = 3
	f := newWithNH(t, nfib)
	r := newRef(nfib)
	var live []netip.Prefix
	rounds := 60
	if raceEnabled {
		rounds = 15
	}
	for round := range rounds {
		var cs []Change
		n := 1 + rng.IntN(300)
		if round == 0 {
			n = 3000
		}
		for range n {
			if len(live) > 0 && rng.IntN(3) == 0 {
				p := live[rng.IntN(len(live))]
				cs = append(cs, Change{Op: OpDelete, FIB: uint32(rng.IntN(nfib)), Prefix: p})
				continue
			}
			p := randPrefix(rng, rng.IntN(2) == 0)
			live = append(live, p)
			c := Change{Op: OpAdd, FIB: uint32(rng.IntN(nfib)), Prefix: p, NextHop: 1 + uint32(rng.IntN(64))}
			c.Connected = rng.IntN(50) == 0
			cs = append(cs, c)
		}
		applyBoth(t, f, r, cs)
		var probes []netip.Addr
		for range 300 {
			probes = append(probes, randIn(rng, live[rng.IntN(len(live))]))
		}
		probes = append(probes, probesFor(rng, live[max(0, len(live)-50):])...)
		for fib := range uint32(nfib) {
			check(t, f, r, fib, probes)
		}
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
	}
	// Enumeration matches the reference.
	for fib := range uint32(nfib) {
		rs, err := f.Routes(fib)
		if err != nil || len(rs) != len(r.m[fib]) {
			t.Fatalf("Routes(%d): %d routes, reference %d (%v)", fib, len(rs), len(r.m[fib]), err)
		}
		for _, rt := range rs {
			if r.m[fib][rt.Prefix] != rt.NextHop {
				t.Fatalf("Routes(%d): %v", fib, rt)
			}
		}
		var w4, w6 int
		for p := range r.m[fib] {
			if p.Addr().Is4() {
				w4++
			} else {
				w6++
			}
		}
		if v4, v6, err := f.RouteCount(fib); err != nil || v4 != w4 || v6 != w6 {
			t.Fatalf("RouteCount(%d) = %d, %d, %v; reference %d, %d", fib, v4, v6, err, w4, w6)
		}
	}
	if _, _, err := f.RouteCount(uint32(nfib)); err == nil {
		t.Fatal("RouteCount of a FIB past the last one: no error")
	}
}

// TestFullTable loads the full table and checks that every prefix resolves
// to itself (or to a more-specific, per the reference) at its first, last
// and a random address, with single and batch lookups; then deletes a
// random tenth and checks again.
func TestFullTable(t *testing.T) {
	v4, v6 := fullTable(t)
	if raceEnabled || testing.Short() {
		v4, v6 = v4[:len(v4)/20], v6[:len(v6)/20]
	}
	f := newWithNH(t, 1)
	r := newRef(1)
	cs := append(adds(0, v4), adds(0, v6)...)
	applyBoth(t, f, r, cs)
	rng := rand.New(rand.NewPCG(3, 4))
	all := append(append([]netip.Prefix(nil), v4...), v6...)
	check(t, f, r, 0, probesFor2(rng, all, false))
	for i := 0; i < len(all); i += 97 {
		p := all[i]
		rt, ok, err := f.RouteGet(0, lastIn(p))
		wp, wnh := r.lookup(0, lastIn(p))
		if err != nil || !ok || rt.Prefix != wp || rt.NextHop != wnh {
			t.Fatalf("RouteGet(%v) = %v %v %v, want %v %d", lastIn(p), rt, ok, err, wp, wnh)
		}
	}
	var dels []Change
	for _, p := range all {
		if rng.IntN(10) == 0 {
			dels = append(dels, Change{Op: OpDelete, Prefix: p})
		}
	}
	// In small batches, to exercise the incremental path.
	for i := 0; i < len(dels); i += 500 {
		b := dels[i:min(i+500, len(dels))]
		if err := f.Apply(b); err != nil {
			t.Fatal(err)
		}
		r.apply(b)
	}
	var ps []netip.Prefix
	for _, c := range dels {
		ps = append(ps, c.Prefix)
	}
	check(t, f, r, 0, probesFor(rng, ps))
	check(t, f, r, 0, probesFor(rng, all[:20000]))
}

func TestRouteExact(t *testing.T) {
	f, err := New(Config{FIBs: 2})
	if err != nil {
		t.Fatal(err)
	}
	nh, err := f.AddNextHop(NextHop{Kind: KindBlackhole})
	if err != nil {
		t.Fatal(err)
	}
	ps := []string{"198.18.0.0/15", "198.18.1.0/24", "198.18.1.1/32", "2001:2::/48", "2001:2::/64", "2001:2::1/128", "0.0.0.0/0", "::/0"}
	var cs []Change
	for _, s := range ps {
		cs = append(cs, Change{Op: OpAdd, FIB: 1, Prefix: netip.MustParsePrefix(s), NextHop: nh})
	}
	if err := f.Apply(cs); err != nil {
		t.Fatal(err)
	}
	for _, s := range ps {
		if got, ok, err := f.RouteExact(1, netip.MustParsePrefix(s)); err != nil || !ok || got != nh {
			t.Errorf("%s: %d %v %v", s, got, ok, err)
		}
		if _, ok, _ := f.RouteExact(0, netip.MustParsePrefix(s)); ok {
			t.Errorf("%s found in fib 0", s)
		}
	}
	for _, s := range []string{"198.18.0.0/16", "198.18.1.0/25", "2001:2::/49", "2001:2::2/128"} {
		if _, ok, _ := f.RouteExact(1, netip.MustParsePrefix(s)); ok {
			t.Errorf("%s found, only its neighbours exist", s)
		}
	}
	if _, _, err := f.RouteExact(2, netip.MustParsePrefix("::/0")); err == nil {
		t.Error("fib 2 of 2 accepted")
	}
}

// afterReversed runs lookup over d into out after a lookup of d in reverse
// order, so that a scratch lookup uses holds the other order's state.
func afterReversed[T any](d []T, out []uint32, lookup func(d []T, out []uint32)) {
	r := make([]T, len(d))
	for i := range d {
		r[len(d)-1-i] = d[i]
	}
	lookup(r, out)
	clear(out)
	lookup(d, out)
}
