package fib

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
)

// churnTable returns n prefixes like a routing table's: IPv4 /17-/24
// spread over the address space, and one in eight IPv6 /33-/64 under a
// few hundred /32s.
func churnTable(rng *rand.Rand, n int) []netip.Prefix {
	seen := make(map[netip.Prefix]bool, n)
	out := make([]netip.Prefix, 0, n)
	for len(out) < n {
		var p netip.Prefix
		if rng.IntN(8) != 0 {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], rng.Uint32())
			p, _ = netip.AddrFrom4(b).Prefix(17 + rng.IntN(8))
		} else {
			var b [16]byte
			binary.BigEndian.PutUint64(b[:8], 0x2001_0000_0000_0000|uint64(rng.IntN(300))<<32|rng.Uint64()&0xffff_ffff)
			p, _ = netip.AddrFrom16(b).Prefix(33 + rng.IntN(32))
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// TestChurnGarbage bounds the Go heap garbage of steady-state churn:
// single-change batches (deletes and re-adds) on a loaded table. Each
// batch publishes a snapshot, which takes a new Snapshot, a new table
// header per family changed (tab4/tab6: 2 KiB of dir page pointers) and a
// copy of each dir or header page changed (2-4 KiB), and collection steps
// copy the pages of the tables they move; nothing else may allocate per
// batch (until 2026-11-30 every batch also copied its arenas' segment
// lists and made two maps: 7 objects and ~8 KiB per change on the full
// table, where it is now ~4.7 objects and ~6 KiB; BenchmarkChurnAlloc).
// Garbage sets how often the GC runs under churn, and a GC cycle delays
// the control goroutine (BENCHMARKS.md, FIB under churn).
func TestChurnGarbage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations")
	}
	rng := rand.New(rand.NewPCG(13, 14))
	ps := churnTable(rng, 50000)
	f := newWithNH(t, 1)
	if err := f.Apply(adds(0, ps)); err != nil {
		t.Fatal(err)
	}
	step := toggler(t, f, rng, ps)
	for range 5000 { // warm up: scratch buffers grow, collection starts
		step()
	}
	const n = 20000
	g0 := f.Load().Generation()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		step()
	}
	runtime.ReadMemStats(&m1)
	if g := f.Load().Generation() - g0; g != n {
		t.Errorf("%d single-change batches published %d snapshots (generations)", n, g)
	}
	objs := float64(m1.Mallocs-m0.Mallocs) / n
	bytes := float64(m1.TotalAlloc-m0.TotalAlloc) / n
	t.Logf("per change: %.2f heap objects, %.0f bytes", objs, bytes)
	if objs > 6 || bytes > 10<<10 {
		t.Errorf("per single-change batch %.2f heap objects and %.0f bytes allocated, want at most 6 and 10 KiB: "+
			"something new allocates per batch (see BenchmarkChurnAlloc -memprofile)", objs, bytes)
	}
}

// TestGeneration checks the snapshot numbering: every published snapshot
// is numbered one more than the one before, and a batch that changes
// nothing publishes none.
func TestGeneration(t *testing.T) {
	f := newWithNH(t, 2) // 64 AddNextHop calls: 64 snapshots after New's
	g := f.Load().Generation()
	if g != 64 {
		t.Fatalf("after New and 64 next hops: generation %d, want 64", g)
	}
	steps := []struct {
		cs   []Change
		want uint64
	}{
		{[]Change{{Op: OpAdd, Prefix: mp("10.0.0.0/8"), NextHop: 1}}, 65},
		{[]Change{{Op: OpAdd, Prefix: mp("10.0.0.0/8"), NextHop: 1}}, 65}, // no change
		{[]Change{{Op: OpDelete, Prefix: mp("10.1.0.0/16")}}, 65},         // missing: no change
		{[]Change{{Op: OpAdd, Prefix: mp("2001:db8::/32"), NextHop: 2}, {Op: OpAdd, FIB: 1, Prefix: mp("10.0.0.0/8"), NextHop: 3}}, 66},
		{[]Change{{Op: OpAdd, Prefix: mp("192.0.2.0/24"), NextHop: 4, Connected: true}}, 67},
	}
	for i, s := range steps {
		if err := f.Apply(s.cs); err != nil {
			t.Fatal(err)
		}
		if g := f.Load().Generation(); g != s.want {
			t.Fatalf("step %d: generation %d, want %d", i, g, s.want)
		}
	}
	if _, err := f.AddNextHop(NextHop{Kind: KindBlackhole}); err != nil {
		t.Fatal(err)
	}
	if g := f.Load().Generation(); g != 68 {
		t.Fatalf("after AddNextHop: generation %d, want 68", g)
	}
}

// toggler returns a step that applies one single-change batch: a random
// prefix of ps (all loaded at first) deleted, or added back if it was.
func toggler(t *testing.T, f *FIBs, rng *rand.Rand, ps []netip.Prefix) func() {
	deleted := make([]bool, len(ps))
	cs := make([]Change, 1)
	return func() {
		i := rng.IntN(len(ps))
		p := ps[i]
		if deleted[i] {
			cs[0] = Change{Op: OpAdd, Prefix: p, NextHop: nhOf(p)}
		} else {
			cs[0] = Change{Op: OpDelete, Prefix: p}
		}
		deleted[i] = !deleted[i]
		if err := f.Apply(cs); err != nil {
			t.Fatal(err)
		}
	}
}
