package fib

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

// TestLookupAllocs proves the lookup paths do not allocate.
func TestLookupAllocs(t *testing.T) {
	f := newWithNH(t, 2)
	rng := rand.New(rand.NewPCG(5, 6))
	var cs []Change
	for range 2000 {
		p := randPrefix(rng, rng.IntN(2) == 0)
		cs = append(cs, Change{Op: OpAdd, Prefix: p, NextHop: nhOf(p)})
	}
	g, err := f.AddNextHop(NextHop{Kind: KindECMP, Members: []uint32{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	cs = append(cs, Change{Op: OpAdd, Prefix: mp("10.0.0.0/8"), NextHop: g})
	if err := f.Apply(cs); err != nil {
		t.Fatal(err)
	}
	var d4 [64]uint32
	var d6 [64][16]byte
	var out [64]uint32
	var hs [64]uint32
	for i := range d4 {
		d4[i] = u32(randIn(rng, randPrefix(rng, false)))
		d6[i] = randIn(rng, randPrefix(rng, true)).As16()
		hs[i] = rng.Uint32()
	}
	sc := new(Scratch6)
	sc4 := new(Scratch4)
	for _, fib := range []uint32{0, 1} { // 1 is empty
		tests := map[string]func(){
			"Load":         func() { _ = f.Load() },
			"Lookup4":      func() { out[0] = f.Load().Lookup4(fib, d4[3]) },
			"Lookup6":      func() { out[0] = f.Load().Lookup6(fib, &d6[3]) },
			"Lookup4Batch": func() { f.Load().Lookup4Batch(fib, d4[:], out[:]) },
			"Lookup6Batch": func() { f.Load().Lookup6Batch(fib, d6[:], out[:]) },
			"Lookup4BatchScratch": func() {
				f.Load().Lookup4BatchScratch(sc4, fib, d4[:], out[:])
			},
			"Lookup6BatchScratch": func() {
				f.Load().Lookup6BatchScratch(sc, fib, d6[:], out[:])
			},
			"SelectBatch": func() {
				s := f.Load()
				s.Lookup4Batch(fib, d4[:], out[:])
				s.SelectBatch(out[:], hs[:])
				_ = s.NextHop(out[0]).Kind
			},
		}
		for name, fn := range tests {
			if n := testing.AllocsPerRun(100, fn); n != 0 {
				t.Errorf("fib %d %s: %v allocs per run, want 0", fib, name, n)
			}
		}
	}
}

// TestConcurrentReadWrite runs readers against a writer (go test -race):
// every lookup must return the old or the new next hop of the prefixes
// being changed, never anything else.
func TestConcurrentReadWrite(t *testing.T) {
	f := newWithNH(t, 2)
	f.seglen = 64 // small segments: arena collections run under the readers
	rng := rand.New(rand.NewPCG(11, 12))
	base := loadFlipTable(t, f, rng)
	// The writer flips 198.18.0.0/16 and 2001:2::/48 subtrees between next
	// hops 1 and 2 and adds and deletes other routes; the readers check
	// that the flipped ranges always give 1 or 2.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Int64
	var looks atomic.Int64
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d4 [64]uint32
			var d6 [64][16]byte
			var out [64]uint32
			rr := rand.New(rand.NewPCG(uint64(r), 1))
			for i := range d4 {
				d4[i] = u32(randIn(rr, mp("198.18.0.0/16")))
				d6[i] = randIn(rr, mp("2001:2::/48")).As16()
			}
			for !stop.Load() {
				s := f.Load()
				s.Lookup4Batch(0, d4[:], out[:])
				for _, v := range out {
					if v != 1 && v != 2 {
						bad.Add(1)
					}
				}
				s.Lookup6Batch(0, d6[:], out[:])
				for _, v := range out {
					if v != 1 && v != 2 {
						bad.Add(1)
					}
				}
				looks.Add(128)
			}
		}()
	}
	rounds := 200
	if raceEnabled {
		rounds = 150
	}
	for i := range rounds {
		if err := f.Apply(flipBatch(i, base, rng)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d lookups saw a next hop that was never published", bad.Load(), looks.Load())
	}
	if f.f4[0].a.drops == 0 || f.f6[0].a16.drops == 0 || f.f6[0].a64.drops == 0 {
		t.Errorf("segments collected under the readers: IPv4 %d, IPv6 L1 %d, L2 %d; want some of each",
			f.f4[0].a.drops, f.f6[0].a16.drops, f.f6[0].a64.drops)
	}
}

// FuzzChanges decodes the input into a sequence of adds, deletes and
// lookups on a small address space and checks every lookup against the
// reference.
func FuzzChanges(f *testing.F) {
	f.Add([]byte{0, 10, 0, 0, 0, 8, 1, 2, 10, 1, 2, 3})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{3, 0x20, 0x01, 0xd, 0xb8, 48, 7, 2, 0x20, 0x01, 0xd, 0xb8})
	f.Fuzz(func(t *testing.T, data []byte) {
		fb := newWithNH(t, 1)
		r := newRef(1)
		var batch []Change
		flush := func() {
			if err := fb.Apply(batch); err != nil {
				t.Fatal(err)
			}
			r.apply(batch)
			batch = batch[:0]
		}
		get := func(n int) []byte {
			if len(data) < n {
				data = append(data, make([]byte, n-len(data))...)
			}
			b := data[:n]
			data = data[n:]
			return b
		}
		for len(data) > 0 {
			op := get(1)[0]
			v6 := op&2 != 0
			var a netip.Addr
			if v6 {
				var b [16]byte
				copy(b[:], get(4))
				b[10] = b[2] // some bits deep in the address too
				b[15] = b[3]
				a = netip.AddrFrom16(b)
			} else {
				a = netip.AddrFrom4([4]byte(get(4)))
			}
			switch op & 1 {
			case 0: // add or delete
				l := int(get(1)[0]) % (a.BitLen() + 1)
				p, _ := a.Prefix(l)
				nhb := get(1)[0]
				if nhb%8 == 0 {
					batch = append(batch, Change{Op: OpDelete, Prefix: p})
				} else {
					batch = append(batch, Change{Op: OpAdd, Prefix: p, NextHop: uint32(nhb%64) + 1})
				}
				if op&4 != 0 {
					flush()
				}
			case 1: // lookup
				flush()
				_, want := r.lookup(0, a)
				if got := lookup(fb.Load(), 0, a); got != want {
					t.Fatalf("lookup %v = %d, want %d", a, got, want)
				}
			}
		}
		flush()
	})
}

// loadFlipTable loads f with 3000 random prefixes, 300 /48s that make a
// big L2 table in the /32 of the flipped IPv6 prefixes (every flipBatch
// rebuilds it, so the L2 arena is collected under readers too) and the
// flipped 198.18.0.0/16 and 2001:2::/48 with next hop 1. It returns the
// random part, which flipBatch adds and deletes.
func loadFlipTable(t *testing.T, f *FIBs, rng *rand.Rand) []Change {
	t.Helper()
	var base []Change
	for range 3000 {
		p := randPrefix(rng, rng.IntN(2) == 0)
		base = append(base, Change{Op: OpAdd, Prefix: p, NextHop: nhOf(p)})
	}
	for i := range 300 {
		p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0x80 | byte(i>>8), byte(i)}), 48)
		base = append(base, Change{Op: OpAdd, Prefix: p, NextHop: nhOf(p)})
	}
	base = append(base, Change{Op: OpAdd, Prefix: mp("198.18.0.0/16"), NextHop: 1}, Change{Op: OpAdd, Prefix: mp("2001:2::/48"), NextHop: 1})
	if err := f.Apply(base); err != nil {
		t.Fatal(err)
	}
	return base[:len(base)-2]
}

// flipBatch is round i's batch: it flips the 198.18.0.0/16 and 2001:2::/48
// subtrees between next hops 1 and 2 (so a lookup in them must give 1 or
// 2) and adds or deletes 20 random routes of base outside them.
func flipBatch(i int, base []Change, rng *rand.Rand) []Change {
	nh := uint32(1 + i%2)
	cs := []Change{
		{Op: OpAdd, Prefix: mp("198.18.0.0/16"), NextHop: nh},
		{Op: OpAdd, Prefix: mp("198.18.7.0/24"), NextHop: 3 - nh},
		{Op: OpAdd, Prefix: mp("198.18.9.128/25"), NextHop: nh},
		{Op: OpAdd, Prefix: mp("2001:2::/48"), NextHop: nh},
		{Op: OpAdd, Prefix: mp("2001:2:0:5::/64"), NextHop: 3 - nh},
		{Op: OpAdd, Prefix: mp("2001:2::abc/128"), NextHop: 3 - nh},
	}
	for range 20 {
		c := base[rng.IntN(len(base))]
		if rng.IntN(2) == 0 {
			c.Op = OpDelete
		}
		if !mp("198.18.0.0/15").Overlaps(c.Prefix) && !mp("2001:2::/47").Overlaps(c.Prefix) {
			cs = append(cs, c)
		}
	}
	return cs
}
