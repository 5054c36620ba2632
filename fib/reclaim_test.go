package fib

import (
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// newReclaiming returns FIBs like newWithNH that reuse snapshot memory for
// the readers of d.
func newReclaiming(tb testing.TB, n int, d *Readers) *FIBs {
	f, err := New(Config{FIBs: n, Readers: d})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range 64 {
		if _, err := f.AddNextHop(NextHop{Kind: KindGateway, Port: uint32(i % 4), Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)})}); err != nil {
			tb.Fatal(err)
		}
	}
	return f
}

// sum is a checksum of the snapshot memory a lookup in FIB 0 of the
// addresses under dir slots p4 (IPv4) and p6 (IPv6) reads on the Go heap:
// the table lists, both table headers (their dir page pointers and
// segment lists), the dir pages p4 and p6 and every IPv6 header page.
func sum(s *Snapshot, p4, p6 int) uint64 {
	var h maphash.Hash
	h.SetSeed(sumSeed)
	bytesOf := func(p unsafe.Pointer, n uintptr) { h.Write(unsafe.Slice((*byte)(p), n)) }
	bytesOf(unsafe.Pointer(unsafe.SliceData(s.v4)), uintptr(len(s.v4))*8)
	bytesOf(unsafe.Pointer(unsafe.SliceData(s.v6)), uintptr(len(s.v6))*8)
	t4, t6 := s.v4[0], s.v6[0]
	bytesOf(unsafe.Pointer(t4), unsafe.Sizeof(*t4))
	bytesOf(unsafe.Pointer(t6), unsafe.Sizeof(*t6))
	bytesOf(unsafe.Pointer(t4.top[p4]), unsafe.Sizeof(dirPage{}))
	bytesOf(unsafe.Pointer(t6.top[p6]), unsafe.Sizeof(dirPage{}))
	if len(t6.hdrs) > 0 {
		bytesOf(unsafe.Pointer(unsafe.SliceData(t6.hdrs)), uintptr(len(t6.hdrs))*8)
	}
	for _, p := range t6.hdrs {
		bytesOf(unsafe.Pointer(p), unsafe.Sizeof(hdrPage{}))
	}
	for _, m := range t4.mem {
		if m != nil {
			bytesOf(unsafe.Pointer(m), unsafe.Sizeof(*m))
		}
	}
	return h.Sum64()
}

var sumSeed = maphash.MakeSeed()

// TestReclaimStress runs readers with Readers against a writer that reuses
// snapshot memory (go test -race): a reader checksums the heap memory of
// its snapshot before and after its lookups, and no checksum may change
// (reused memory written under a reader); every lookup must return a next
// hop that was published; the race detector sees the writer's reuse and
// the readers' reads, which must be ordered by the protocol. Readers go
// offline and online now and then, as idle workers do.
func TestReclaimStress(t *testing.T) {
	d := NewReaders()
	f := newReclaiming(t, 2, d)
	f.seglen = 64 // small segments: they are collected and pooled under the readers
	rng := rand.New(rand.NewPCG(21, 22))
	base := loadFlipTable(t, f, rng)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad, changed, looks atomic.Int64
	for r := range 3 {
		rd := d.NewReader()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rd.Close()
			var d4 [64]uint32
			var d6 [64][16]byte
			var out [64]uint32
			rr := rand.New(rand.NewPCG(uint64(r), 2))
			for i := range d4 {
				d4[i] = u32(randIn(rr, mp("198.18.0.0/16")))
				d6[i] = randIn(rr, mp("2001:2::/48")).As16()
			}
			rd.Online()
			for i := 0; !stop.Load(); i++ {
				s := f.Load()
				before := sum(s, 198, 0x20)
				s.Lookup4Batch(0, d4[:], out[:])
				for _, v := range out {
					if v != 1 && v != 2 {
						bad.Add(1)
					}
				}
				runtime.Gosched() // let the writer run while s is held
				s.Lookup6Batch(0, d6[:], out[:])
				for _, v := range out {
					if v != 1 && v != 2 {
						bad.Add(1)
					}
				}
				if sum(s, 198, 0x20) != before {
					changed.Add(1)
				}
				looks.Add(128)
				if i%16 == 15 {
					rd.Offline()
					runtime.Gosched()
					rd.Online()
				}
				rd.Quiesce()
			}
		}()
	}
	rounds := 600
	if raceEnabled {
		rounds = 300
	}
	for i := range rounds {
		if err := f.Apply(flipBatch(i, base, rng)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			runtime.Gosched()
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d of %d lookups saw a next hop that was never published", bad.Load(), looks.Load())
	}
	if changed.Load() != 0 {
		t.Errorf("%d reads of a snapshot saw its memory change under them (reused too early)", changed.Load())
	}
	// The test proves something only if memory was reused under readers.
	rc := f.rc
	t.Logf("%d lookups; parts reused %d, allocated %d", looks.Load(), rc.reused, rc.allocs)
	if rc.reused == 0 {
		t.Errorf("no snapshot part was reused (allocated %d)", rc.allocs)
	}
	if f.f4[0].a.drops == 0 || f.f6[0].a64.drops == 0 {
		t.Errorf("segments collected under the readers: IPv4 %d, IPv6 L2 %d; want some of each", f.f4[0].a.drops, f.f6[0].a64.drops)
	}
}

// TestReclaimHeldBack checks the writer's side of the protocol without
// concurrency: an online reader that has not passed a part's epoch keeps
// it from reuse, an offline one does not, and the waiting parts stay
// bounded.
func TestReclaimHeldBack(t *testing.T) {
	d := NewReaders()
	f := newReclaiming(t, 1, d)
	flip := func(i int) {
		t.Helper()
		cs := []Change{{Op: OpAdd, Prefix: mp("198.18.0.0/16"), NextHop: uint32(1 + i%2)}}
		if err := f.Apply(cs); err != nil {
			t.Fatal(err)
		}
	}
	flip(0)
	flip(1)
	rc := f.rc
	// No reader: what the batch before replaced is reused at once.
	r0 := rc.reused
	flip(2)
	if rc.reused == r0 {
		t.Fatalf("no reader online: nothing reused (reused %d, allocs %d)", rc.reused, rc.allocs)
	}
	rd := d.NewReader()
	defer rd.Close()
	rd.Online()
	s := f.Load()
	t4 := s.v4[0]
	page := t4.top[198]
	// The reader holds s: nothing replaced after it went online is
	// reused, however many batches come.
	for i := range 2 * maxRetired {
		flip(3 + i)
		if n := len(rc.t4.q) - rc.t4.h; n > maxRetired {
			t.Fatalf("%d table headers wait for the reader, want at most %d", n, maxRetired)
		}
		for _, p := range rc.dir.free {
			if p == page {
				t.Fatalf("batch %d: the dir page of the reader's snapshot is free for reuse", i)
			}
		}
		for _, p := range rc.t4.free {
			if p == t4 {
				t.Fatalf("batch %d: the table header of the reader's snapshot is free for reuse", i)
			}
		}
	}
	if s.v4[0] != t4 || t4.top[198] != page || s.Lookup4(0, u32(mp("198.18.3.4/32").Addr())) != 1 {
		t.Fatal("the held snapshot changed")
	}
	// Quiesce: the reader passed everything; reuse resumes.
	rd.Quiesce()
	r0 = rc.reused
	flip(1)
	flip(2)
	if rc.reused == r0 {
		t.Fatal("reader quiesced: nothing reused")
	}
	// Offline: it holds nothing back either.
	rd.Offline()
	r0 = rc.reused
	flip(1)
	flip(2)
	if rc.reused == r0 {
		t.Fatal("reader offline: nothing reused")
	}
}

// TestReaderAllocs proves that a reader's calls do not allocate.
func TestReaderAllocs(t *testing.T) {
	d := NewReaders()
	f := newReclaiming(t, 1, d)
	if err := f.Apply([]Change{{Op: OpAdd, Prefix: mp("198.18.0.0/16"), NextHop: 1}}); err != nil {
		t.Fatal(err)
	}
	rd := d.NewReader()
	defer rd.Close()
	var out [64]uint32
	var dst [64]uint32
	for name, fn := range map[string]func(){
		"Online":  rd.Online,
		"Quiesce": rd.Quiesce,
		"Offline": rd.Offline,
		"burst": func() {
			rd.Quiesce()
			f.Load().Lookup4Batch(0, dst[:], out[:])
		},
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
}

// TestReclaimGarbage is TestChurnGarbage with Readers (as fwdd runs): one
// reader online, quiescing between batches as a worker does. The table
// headers, dir and header pages, lists and segments are reused, so a
// single-change batch leaves only its Snapshot (a few words, always new:
// see Apply) and what the RIB's own edits allocate.
func TestReclaimGarbage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations")
	}
	d := NewReaders()
	rd := d.NewReader()
	defer rd.Close()
	rd.Online()
	rng := rand.New(rand.NewPCG(13, 14))
	ps := churnTable(rng, 50000)
	f := newReclaiming(t, 1, d)
	if err := f.Apply(adds(0, ps)); err != nil {
		t.Fatal(err)
	}
	toggle := toggler(t, f, rng, ps)
	step := func() {
		toggle()
		rd.Quiesce()
	}
	for range 5000 {
		step()
	}
	const n = 20000
	r0, a0 := f.rc.reused, f.rc.allocs
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		step()
	}
	runtime.ReadMemStats(&m1)
	objs := float64(m1.Mallocs-m0.Mallocs) / n
	bytes := float64(m1.TotalAlloc-m0.TotalAlloc) / n
	t.Logf("per change: %.2f heap objects, %.0f bytes; parts reused %d, allocated %d",
		objs, bytes, f.rc.reused-r0, f.rc.allocs-a0)
	if bytes > 1<<10 {
		t.Errorf("per single-change batch %.2f heap objects and %.0f bytes allocated with Readers, want at most 1 KiB: "+
			"a replaced part is not reused (see reclaim.go, BenchmarkChurnAlloc -memprofile)", objs, bytes)
	}
}
