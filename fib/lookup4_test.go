package fib

import (
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// TestStages4Vec compares the AVX-512 stages (lookup4_amd64.s) with the Go
// code they replace on random block states, for every lane count:
// prep4Vec and prep4VecP with prepPop (the same p and m for the lanes below the count,
// the lanes without a bitmap index in the mask that prepPop lists, and
// nothing written for the others), rangeAddrs4Vec with the range address
// that ranges computes. The differential tests (check) run the whole
// lookup both ways too.
func TestStages4Vec(t *testing.T) {
	if !vec4OK() {
		t.Skip("this CPU has no AVX-512 stages")
	}
	rng := rand.New(rand.NewPCG(4, 4))
	// 32 segments: prep4VecP's most (odd rounds; its list of their
	// addresses in sv), prep4Vec reads the slice headers (even rounds).
	var tb tab4
	var sv [32]uintptr
	for j := range 32 {
		tb.ent = append(tb.ent, make([]uint32, 1<<12))
		sv[j] = uintptr(unsafe.Pointer(unsafe.SliceData(tb.ent[j])))
	}
	tb.none = [4]uint32{0, 0, 1, ^uint32(1)}
	segs := unsafe.Pointer(unsafe.SliceData(tb.ent))
	none := uintptr(unsafe.Pointer(&tb.none[2]))
	// entry returns a random dir entry: a table with a bitmap index, with
	// a bucket index, or a value.
	entry := func() uint64 {
		pos := uint64(rng.IntN(len(tb.ent)))<<segBits | uint64(rng.IntN(1<<10))
		switch rng.IntN(4) {
		case 0:
			return uint64(rng.IntN(1 << 20)) // a value
		case 1:
			return layout4{r: uint32(1 + rng.IntN(300)), b: uint32(rng.IntN(12)), ws: uint32(rng.IntN(3)), rounds: uint32(rng.IntN(5))}.ent(uint32(pos))
		}
		b := uint32(5 + rng.IntN(12))
		return layout4{r: uint32(1 + rng.IntN(1000)), b: b, ws: wsPop}.ent(uint32(pos))
	}
	var a, v blk4
	fill := func() {
		for j := range batchLen {
			a.w[j] = entry()
			a.m[j] = rng.Uint32()
			a.p[j] = uintptr(rng.Uint64())
		}
		a.w[batchLen], a.p[batchLen] = rng.Uint64(), uintptr(rng.Uint64())
		v = a
	}
	for round := range 50 {
		for n := 0; n <= batchLen; n++ {
			fill()
			a.n = n
			tb.prepPop(&a)
			var others uint64
			d := v.m // the addresses, at another place than m
			if round%2 == 0 {
				others = prep4Vec(&v.w, &v.p, &v.m, &d[0], segs, none, n)
			} else {
				others = prep4VecP(&v.w, &v.p, &v.m, &d[0], &sv, none, n)
			}
			if a.p != v.p || a.m != v.m || a.w != v.w {
				for i := range batchLen {
					if a.p[i] != v.p[i] || a.m[i] != v.m[i] {
						t.Fatalf("round %d: prepPop(%d): lane %d (dir entry %#x): p %#x m %#x, prep4Vec: %#x %#x", round, n, i, a.w[i], a.p[i], a.m[i], v.p[i], v.m[i])
					}
				}
				t.Fatalf("round %d: prepPop(%d): prep4Vec wrote w or p, m past the count", round, n)
			}
			var want []uint8
			want = append(want, a.other[:a.nother]...)
			want = append(want, a.bi[:min(a.nb, bLanesMax)]...)
			want = append(want, a.ovf[:max(0, a.nb-bLanesMax)]...)
			slices.Sort(want)
			var got []uint8
			for m := others; m != 0; m &= m - 1 {
				got = append(got, uint8(bits.TrailingZeros64(m)))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: prepPop(%d) listed %v, prep4Vec's mask %#x", round, n, want, others)
			}
			fill()
			want4 := a.p
			for i := range n {
				x := a.w[i]
				want4[i] += uintptr(int64(x)>>32+int64(bits.OnesCount32(uint32(x)&a.m[i]))) * 4
			}
			rangeAddrs4Vec(&v.w, &v.p, &v.m, n)
			if v.p != want4 || v.w != a.w || v.m != a.m {
				t.Fatalf("round %d: rangeAddrs4Vec(%d): p %x, want %x", round, n, v.p[:n], want4[:n])
			}
		}
	}
}
