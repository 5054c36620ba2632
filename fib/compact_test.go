package fib

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// TestCompaction drives enough churn through small tables that every arena
// is collected (by copying) several times, and checks lookups against the
// reference throughout.
func TestCompaction(t *testing.T) {
	f := newWithNH(t, 1)
	f.seglen = 1024 // many segments, many collections
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
	// And longer than /64 in a few /64s: big L3 tables, rebuilt often.
	for range 1500 {
		var b [16]byte
		b[0], b[1], b[2], b[3], b[7] = 0x20, 0x01, 0xd, 0xb9, byte(rng.IntN(8))
		for i := 8; i < 16; i++ {
			b[i] = byte(rng.IntN(256))
		}
		q, _ := netip.AddrFrom16(b).Prefix(65 + rng.IntN(64))
		ps = append(ps, q)
	}
	cs := adds(0, ps)
	applyBoth(t, f, r, cs)
	rounds := 1500
	if raceEnabled {
		rounds = 300
	}
	for round := range rounds {
		b := randomChanges(rng, ps, 20)
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
			checkArenas(t, f.f4[0], f.f6[0])
			if t.Failed() {
				t.Fatalf("round %d", round)
			}
		}
	}
	f4, f6 := f.f4[0], f.f6[0]
	t.Logf("segments collected: IPv4 %d, IPv6 L1 %d, L2 %d, L3 %d", f4.a.drops, f6.a16.drops, f6.a64.drops, f6.a3.drops)
	if f4.a.drops == 0 || f6.a64.drops == 0 || f6.a3.drops == 0 {
		t.Error("an arena was never collected")
	}
	t.Logf("collection steps that continued in a later batch: IPv4 %d, IPv6 L1 %d, L2 %d", f4.a.partial, f6.a16.partial, f6.a64.partial)

}

// checkArenas checks the bookkeeping of the segmented arenas against the
// tables the dir entries and headers point at: every table lies inside one
// live segment, the live counts per segment add up, and garbage is what is
// left.
func checkArenas(t *testing.T, f4 *fam4, f6 *fam6) {
	t.Helper()
	// fill is the writer's count of entries filled per segment (segments
	// are listed at full length), size the listed length (0: no segment).
	check := func(name string, fill, size []int, live []int, nlive, garbage int, refs map[uint32]int) {
		t.Helper()
		got := make([]int, len(live))
		for pos, n := range refs {
			id, off := int(pos>>segBits), int(pos&segMask)
			l := fill[id]
			if size[id] == 0 || l > size[id] || off+n > l {
				t.Fatalf("%s: table at segment %d offset %d (+%d) outside the segment (filled %d of %d)", name, id, off, n, l, size[id])
			}
			got[id] += n
		}
		total, sum := 0, 0
		for id := range live {
			if got[id] != live[id] {
				t.Fatalf("%s: segment %d: %d live entries referenced, %d counted", name, id, got[id], live[id])
			}
			sum += live[id]
			total += fill[id]
		}
		if sum != nlive || total-sum != garbage {
			t.Fatalf("%s: live %d (counted %d), garbage %d (counted %d)", name, sum, nlive, total-sum, garbage)
		}
	}
	sizes := func(s int, l func(int) int) []int {
		out := make([]int, s)
		for i := range out {
			out[i] = l(i)
		}
		return out
	}
	r4 := map[uint32]int{}
	for s := range 1 << 16 {
		if e := f4.d.get(uint16(s)); e&chunkFlag != 0 {
			r4[pos4(e)] = span4(e)
		}
	}
	check("IPv4", f4.a.n, sizes(len(f4.a.s), func(i int) int { return len(f4.a.s[i]) }), f4.a.live, f4.a.nlive, f4.a.garbage, r4)
	r1, r2 := map[uint32]int{}, map[uint32]int{}
	for s := range 1 << 16 {
		if e := f6.d.get(uint16(s)); e&chunkFlag != 0 {
			r1[uint32(e)] = span6(e)
		}
	}
	for _, rc := range f6.chunks {
		for _, k := range rc.kids {
			if h := f6.h.get(k.id); h.count > 0 {
				r2[h.start] = h.size()
			}
		}
	}
	check("IPv6 L1", f6.a16.n, sizes(len(f6.a16.s), func(i int) int { return len(f6.a16.s[i]) }), f6.a16.live, f6.a16.nlive, f6.a16.garbage, r1)
	check("IPv6 L2", f6.a64.n, sizes(len(f6.a64.s), func(i int) int { return len(f6.a64.s[i]) }), f6.a64.live, f6.a64.nlive, f6.a64.garbage, r2)
	r3 := map[uint32]int{}
	for _, rc := range f6.chunks {
		for _, k := range rc.kids {
			for _, k3 := range k.kids {
				if h := f6.h.get(k3.id); h.count > 0 {
					r3[h.start] = size3(int(h.count))
				}
			}
		}
	}
	check("IPv6 L3", f6.a3.n, sizes(len(f6.a3.s), func(i int) int { return len(f6.a3.s[i]) }), f6.a3.live, f6.a3.nlive, f6.a3.garbage, r3)
}

// TestSegmentBoundaries checks where tables land: a table that does not fit
// in the current segment starts a new one (tables never straddle), a table
// larger than a segment gets a segment of its own, and a collected segment
// is dropped from the list while a published copy of the list keeps it.
func TestSegmentBoundaries(t *testing.T) {
	a := newSegArena[uint32](8, 0)
	tab := func(n int, v uint32) []uint32 {
		s := make([]uint32, n)
		for i := range s {
			s[i] = v + uint32(i)
		}
		return s
	}
	p0 := a.put(tab(5, 100), 0)
	p1 := a.put(tab(3, 200), 0) // fills segment 0 exactly
	p2 := a.put(tab(1, 300), 0) // next segment
	p3 := a.put(tab(20, 400), 0)
	p4 := a.put(tab(2, 500), 0)
	want := []struct {
		pos      uint32
		seg, off int
		n        int
		v        uint32
	}{{p0, 0, 0, 5, 100}, {p1, 0, 5, 3, 200}, {p2, 1, 0, 1, 300}, {p3, 2, 0, 20, 400}, {p4, 3, 0, 2, 500}}
	for _, w := range want {
		if int(w.pos>>segBits) != w.seg || int(w.pos&segMask) != w.off {
			t.Fatalf("table %d: segment %d offset %d, want %d %d", w.v, w.pos>>segBits, w.pos&segMask, w.seg, w.off)
		}
		got := a.get(w.pos, w.n)
		for i, x := range got {
			if x != w.v+uint32(i) {
				t.Fatalf("table %d: entry %d = %d", w.v, i, x)
			}
		}
	}
	if c := cap(a.s[2]); c != 20 {
		t.Errorf("oversized table: segment of %d entries, want 20", c)
	}
	pub, _ := a.publish()
	a.release(p0, 5)
	a.release(p1, 3)
	a.release(p3, 20)
	// Garbage 28 > 3/2 + 2*8: segment 2 (20 garbage entries) goes first.
	if v := a.victim(); v != 2 {
		t.Fatalf("victim %d, want 2", v)
	}
	a.drop(2)
	if a.s[2] != nil || pub[2] == nil || pub[2][0] != 400 {
		t.Fatalf("drop: writer list %v, published list %v", a.s[2], pub[2])
	}
	if a.garbage != 8 || a.nlive != 3 {
		t.Fatalf("garbage %d live %d, want 8 3", a.garbage, a.nlive)
	}
	// The freed id is reused by the next new segment.
	a.put(tab(8, 600), 0)
	if a.cur != 2 {
		t.Fatalf("new segment id %d, want the freed 2", a.cur)
	}
}

// TestCollectBudget checks that a collection step moves at most its budget
// (plus the table that crosses it) and that the collection of a segment
// continues over batches until the segment is dropped, with the live and
// garbage counts right at every step.
func TestCollectBudget(t *testing.T) {
	a := newSegArena[uint32](64, 0)
	where := map[uint32]uint32{} // owner -> position
	for o := range uint32(8) {
		where[o] = a.put(make([]uint32, 8), o) // fills segment 0
	}
	where[8] = a.put(make([]uint32, 60), 8) // segment 1
	a.publish()
	for o := range uint32(8) {
		if o%2 == 0 {
			a.release(where[o], 8)
			delete(where, o)
		}
	}
	a.release(where[8], 60)
	delete(where, 8)
	where[9] = a.put(make([]uint32, 8), 9) // segment 2: current
	a.publish()
	a.garbage += 200 // pretend: over the bound
	id := a.victim()
	if id != 1 {
		t.Fatalf("victim %d, want 1 (60 garbage entries)", id)
	}
	a.collect(id, func(uint32) int { return 0 }) // segment 1 has no live table
	if a.s[1] != nil || a.victim() != 0 {
		t.Fatalf("segment 1 not dropped, or next victim not 0")
	}
	steps := 0
	for a.s[0] != nil {
		moved := 0
		a.collect(0, func(o uint32) int {
			pos, ok := where[o]
			if !ok || pos>>segBits != 0 {
				return 0
			}
			where[o] = a.move(pos, 8, o)
			moved += 8
			return 8
		})
		a.publish()
		if moved > 8 { // budget: seglen/8 = 8 with nothing put
			t.Fatalf("step %d moved %d entries, budget 8", steps, moved)
		}
		steps++
		if steps > 10 {
			t.Fatal("collection does not finish")
		}
	}
	if steps != 4 || a.partial != 3 {
		t.Errorf("%d steps (%d partial), want 4 (3)", steps, a.partial)
	}
	for o, pos := range where {
		if pos>>segBits == 0 {
			t.Errorf("owner %d still in the dropped segment", o)
		}
	}
	if a.nlive != 5*8 || a.garbage != 200 {
		t.Errorf("live %d garbage %d, want 40 and 200", a.nlive, a.garbage)
	}
}

// TestSegmentMemory checks the lifetime of the mapped segment memory: a
// snapshot held across many collections still reads its tables after
// garbage collections, and once no snapshot holds them, the dropped
// segments are unmapped (the mapped count falls to the segments the writer
// still lists).
func TestSegmentMemory(t *testing.T) {
	f := newWithNH(t, 1)
	f.seglen = 64
	rng := rand.New(rand.NewPCG(41, 42))
	var ps []netip.Prefix
	for range 600 {
		ps = append(ps, randPrefix(rng, rng.IntN(2) == 0))
	}
	if err := f.Apply(adds(0, ps)); err != nil {
		t.Fatal(err)
	}
	old := f.Load()
	probes := probesFor2(rng, ps, false)
	want := make([]uint32, len(probes))
	for i, a := range probes {
		want[i] = lookup(old, 0, a)
	}
	for range 300 {
		b := randomChanges(rng, ps, 10)
		if err := f.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	f4, f6 := f.f4[0], f.f6[0]
	if f4.a.drops+f4.starved+f6.a16.drops == 0 {
		t.Fatalf("no segment dropped (IPv4 %d, IPv6 L1 %d): the test does not test anything", f4.a.drops, f6.a16.drops)
	}
	// Spare segments: prefilled by a goroutine, or recycled by cleanups.
	if f4.a.prefills+f6.a16.prefills == 0 {
		t.Error("no spare segment prefilled")
	}
	t.Logf("spare segments prefilled %d, used %d", f4.a.prefills+f6.a16.prefills+f6.a64.prefills, f4.a.reused+f6.a16.reused+f6.a64.reused)
	runtime.GC()
	runtime.GC()
	for i, a := range probes {
		if got := lookup(old, 0, a); got != want[i] {
			t.Fatalf("held snapshot: lookup %v = %d after collections, was %d", a, got, want[i])
		}
	}
	var d4 []uint32
	for _, a := range probes {
		if a.Is4() {
			d4 = append(d4, u32(a))
		}
	}
	out := make([]uint32, len(d4))
	old.Lookup4Batch(0, d4, out)
	runtime.KeepAlive(old)
	old = nil
	listed := func() (n int64) {
		for _, s := range f4.a.s {
			if s != nil {
				n++
			}
		}
		for _, a := range []*segArena[uint64]{&f6.a16, &f6.a64} {
			for _, s := range a.s {
				if s != nil {
					n++
				}
			}
		}
		return n
	}
	mapped := func() int64 { return f4.a.maps.Load() + f6.a16.maps.Load() + f6.a64.maps.Load() }
	deadline := time.Now().Add(20 * time.Second)
	for mapped() != listed() {
		if time.Now().After(deadline) {
			t.Fatalf("%d segments mapped, the writer lists %d: dropped segments not unmapped", mapped(), listed())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	// The current snapshot still reads right.
	r := newRef(1)
	rs, _ := f.Routes(0)
	for _, rt := range rs {
		r.apply([]Change{{Op: OpAdd, Prefix: rt.Prefix, NextHop: rt.NextHop}})
	}
	check(t, f, r, 0, probes)
}
