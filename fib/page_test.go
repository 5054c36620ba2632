package fib

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// RoutesAfter against Routes: random IPv4 and IPv6 tables (every level of
// the IPv6 RIB, regions emptied again, several FIBs), listed in pages of
// random sizes, give Routes exactly; a page after any prefix, in the table
// or not, is the part of Routes after it.
func TestRoutesAfter(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	f, err := New(Config{FIBs: 2})
	if err != nil {
		t.Fatal(err)
	}
	nh, err := f.AddNextHop(NextHop{Kind: KindBlackhole})
	if err != nil {
		t.Fatal(err)
	}
	randPrefix := func() netip.Prefix {
		if rnd.IntN(2) == 0 {
			a := rnd.Uint32()
			if rnd.IntN(4) == 0 {
				a &= 0xff00ffff // shared /16 regions
			}
			return netip.PrefixFrom(addr4(a), rnd.IntN(33)).Masked()
		}
		hi := uint64(0x2001_0db8)<<32 | rnd.Uint64()&0x0003_00ff_0000_ffff
		if rnd.IntN(3) == 0 {
			hi = rnd.Uint64()
		}
		return netip.PrefixFrom(addr6(hi, rnd.Uint64()), rnd.IntN(129)).Masked()
	}
	var all []netip.Prefix
	for round := 0; round < 3; round++ {
		var ch []Change
		for i := 0; i < 3000; i++ {
			p := randPrefix()
			all = append(all, p)
			ch = append(ch, Change{Op: OpAdd, FIB: uint32(rnd.IntN(2)), Prefix: p, NextHop: nh})
		}
		for i := 0; i < 1000; i++ { // deletes, some emptying regions
			ch = append(ch, Change{Op: OpDelete, FIB: uint32(rnd.IntN(2)), Prefix: all[rnd.IntN(len(all))]})
		}
		if err := f.Apply(ch); err != nil {
			t.Fatal(err)
		}
		for fib := uint32(0); fib < 2; fib++ {
			want, _ := f.Routes(fib)
			var got []Route
			var after netip.Prefix
			for pages := 0; ; pages++ {
				page, err := f.RoutesAfter(fib, after, 1+rnd.IntN(300))
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				after = page[len(page)-1].Prefix
				if pages > len(want)+1 {
					t.Fatal("pages never end")
				}
			}
			if !slices.Equal(got, want) {
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] {
						t.Fatalf("fib %d round %d: route %d: paged %v, Routes %v (%d vs %d routes)", fib, round, i, got[i], want[i], len(got), len(want))
					}
				}
				t.Fatalf("fib %d round %d: %d routes paged, Routes has %d", fib, round, len(got), len(want))
			}
			for i := 0; i < 40; i++ {
				a := randPrefix()
				if rnd.IntN(2) == 0 && len(want) > 0 {
					a = want[rnd.IntN(len(want))].Prefix
				}
				page, _ := f.RoutesAfter(fib, a, 5)
				j, _ := slices.BinarySearchFunc(want, a, func(r Route, p netip.Prefix) int { return comparePrefix(r.Prefix.Addr(), r.Prefix.Bits(), p) })
				for j < len(want) && comparePrefix(want[j].Prefix.Addr(), want[j].Prefix.Bits(), a) <= 0 {
					j++
				}
				if exp := want[j:min(j+5, len(want))]; !slices.Equal(page, exp) {
					t.Fatalf("fib %d: after %v: %v, want %v", fib, a, page, exp)
				}
			}
		}
	}
	if _, err := f.RoutesAfter(2, netip.Prefix{}, 10); err == nil {
		t.Fatal("fib out of range accepted")
	}
}
