package fib

import (
	"math/rand/v2"
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
			vd := deepList(&v.dl, dm)
			if nd != vd || !slices.Equal(a.dl[:nd], v.dl[:nd]) {
				t.Fatalf("round %d: groups(%d): deep lanes %v, groupsVec: %v (mask %#x)", round, n, a.dl[:nd], v.dl[:vd], dm)
			}
		}
	}
	runtime.KeepAlive(mem)
}
