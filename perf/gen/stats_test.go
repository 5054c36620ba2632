package gen

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestHistogramVsSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 17, 1000, 50000} {
		var h Histogram
		v := make([]uint64, n)
		for i := range v {
			v[i] = uint64(r.ExpFloat64() * 20000) // ns, heavy tail
			h.Record(v[i])
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
			rank := int(math.Ceil(q * float64(n)))
			if rank == 0 {
				rank = 1
			}
			want := v[rank-1]
			got := h.Quantile(q)
			if got < want || float64(got) > float64(want)*(1+1.0/histSub)+1 {
				t.Errorf("n=%d q=%v: got %d, exact %d (allowed +%.1f%%)", n, q, got, want, 100.0/histSub)
			}
		}
	}
	var e Histogram
	if e.Quantile(0.5) != 0 {
		t.Error("empty histogram quantile not 0")
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every value falls in a bucket whose upper bound is ≥ it and whose
	// previous bucket's upper bound is < it.
	for _, v := range []uint64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 1 << 40, math.MaxUint64 >> 1} {
		i := histBucket(v)
		if histUpper(i) < v || (i > 0 && histUpper(i-1) >= v) {
			t.Errorf("v=%d bucket %d upper %d prev %d", v, i, histUpper(i), histUpper(i-1))
		}
	}
}

func TestSeqTracker(t *testing.T) {
	for _, tc := range []struct {
		name                             string
		seqs                             []uint64
		unique, lost, dups, reorder, exp uint64
	}{
		{"in order", []uint64{0, 1, 2, 3}, 4, 0, 0, 0, 4},
		{"loss", []uint64{0, 1, 4, 5}, 4, 2, 0, 0, 6},
		{"dup", []uint64{0, 1, 1, 2}, 3, 0, 1, 0, 3},
		{"reorder", []uint64{0, 2, 1, 3}, 4, 0, 0, 1, 4},
		{"late dup after reorder", []uint64{0, 2, 1, 1, 2}, 3, 0, 2, 1, 3},
		{"start mid-stream", []uint64{100, 101, 103}, 3, 1, 0, 0, 4},
		{"older than first", []uint64{10, 11, 9}, 3, 0, 0, 1, 3},
		{"big jump", []uint64{0, 1 << 20, 1<<20 + 1}, 3, 1<<20 - 1, 0, 0, 1<<20 + 2},
	} {
		var tr SeqTracker
		for _, s := range tc.seqs {
			tr.Observe(s)
		}
		if tr.Unique != tc.unique || tr.Lost() != tc.lost || tr.Dups != tc.dups || tr.Reorder != tc.reorder || tr.Expected() != tc.exp {
			t.Errorf("%s: unique %d lost %d dups %d reorder %d expected %d; want %d %d %d %d %d", tc.name,
				tr.Unique, tr.Lost(), tr.Dups, tr.Reorder, tr.Expected(), tc.unique, tc.lost, tc.dups, tc.reorder, tc.exp)
		}
		if tr.Received != uint64(len(tc.seqs)) {
			t.Errorf("%s: received %d", tc.name, tr.Received)
		}
	}
}

// TestSeqTrackerRandom compares the tracker with a map-based reference on
// shuffled streams with drops and duplicates inside the window.
func TestSeqTrackerRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 20; round++ {
		var seqs []uint64
		for s := uint64(0); s < 20000; s++ {
			if r.IntN(100) < 3 {
				continue // lost
			}
			seqs = append(seqs, s)
			if r.IntN(100) < 2 {
				seqs = append(seqs, s) // dup
			}
		}
		// Local shuffles (reorder within 50).
		for i := range seqs {
			j := i + r.IntN(50)
			if j < len(seqs) {
				seqs[i], seqs[j] = seqs[j], seqs[i]
			}
		}
		var tr SeqTracker
		seen := map[uint64]bool{}
		lo, hi := uint64(math.MaxUint64), uint64(0)
		for _, s := range seqs {
			tr.Observe(s)
			seen[s] = true
			lo, hi = min(lo, s), max(hi, s)
		}
		if tr.Unique != uint64(len(seen)) || tr.Dups != uint64(len(seqs)-len(seen)) || tr.Lost() != hi-lo+1-uint64(len(seen)) {
			t.Fatalf("round %d: unique %d dups %d lost %d; reference %d %d %d", round, tr.Unique, tr.Dups, tr.Lost(),
				len(seen), len(seqs)-len(seen), hi-lo+1-uint64(len(seen)))
		}
	}
}

func TestLimiter(t *testing.T) {
	const ms = int64(time.Millisecond)
	l := NewLimiter(1000, 10) // 1 packet per ms, bursts of 10
	if n, _ := l.Grant(0, 64); n != 10 {
		t.Fatalf("first grant %d, want the burst 10", n)
	}
	n, w := l.Grant(0, 64)
	if n != 0 || w != time.Millisecond {
		t.Fatalf("empty bucket: got %d, wait %v; want 0, 1ms", n, w)
	}
	if n, _ := l.Grant(5*ms, 64); n != 5 {
		t.Fatalf("after 5 ms: %d, want 5", n)
	}
	// A stall does not earn more than a burst.
	if n, _ := l.Grant(1000*ms, 64); n != 10 {
		t.Fatalf("after a stall: %d, want the burst 10", n)
	}
	// Over a simulated second of 64-packet asks, the total matches the rate.
	l = NewLimiter(123456, 64)
	var total int
	for now := int64(0); now < 1e9; now += 10_000 {
		k, _ := l.Grant(now, 64)
		total += k
	}
	if math.Abs(float64(total)-123456) > 200 {
		t.Fatalf("one second at 123456 pps granted %d", total)
	}
	// Unlimited.
	if n, w := NewLimiter(0, 1).Grant(0, 77); n != 77 || w != 0 {
		t.Fatalf("unlimited: %d %v", n, w)
	}
}
