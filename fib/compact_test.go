package fib

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestCompaction drives enough churn through small tables that every arena
// is collected (by copying) several times, and checks lookups against the
// reference throughout.
func TestCompaction(t *testing.T) {
	f := newWithNH(t, 1)
	r := newRef(1)
	rng := rand.New(rand.NewPCG(21, 22))
	var ps []netip.Prefix
	for range 4000 {
		ps = append(ps, randPrefix(rng, rng.IntN(2) == 0))
	}
	// Deep prefixes in a few /16s so that tables are big and rebuilt often.
	for i := range 2000 {
		p, _ := netip.AddrFrom4([4]byte{10, 1, byte(i), byte(rng.IntN(256))}).Prefix(17 + rng.IntN(16))
		ps = append(ps, p)
		var b [16]byte
		b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7] = 0x20, 0x01, 0xd, 0xb8, byte(i), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))
		q, _ := netip.AddrFrom16(b).Prefix(33 + rng.IntN(40))
		ps = append(ps, q)
	}
	cs := adds(0, ps)
	f.Apply(cs)
	r.apply(cs)
	rounds := 1500
	if raceEnabled {
		rounds = 300
	}
	s0 := f.f4[0].t.ent
	for round := range rounds {
		var b []Change
		for range 20 {
			p := ps[rng.IntN(len(ps))]
			if rng.IntN(2) == 0 {
				b = append(b, Change{Op: OpDelete, Prefix: p})
			} else {
				b = append(b, Change{Op: OpAdd, Prefix: p, NextHop: 1 + uint32(rng.IntN(64))})
			}
		}
		if err := f.Apply(b); err != nil {
			t.Fatal(err)
		}
		r.apply(b)
		if round%100 == 99 {
			var probes []netip.Addr
			for range 500 {
				probes = append(probes, randIn(rng, ps[rng.IntN(len(ps))]))
			}
			check(t, f, r, 0, probes)
			if t.Failed() {
				t.Fatalf("round %d", round)
			}
		}
	}
	if &f.f4[0].t.ent[0] == &s0[0] {
		t.Log("IPv4 arena never collected")
	}
}
