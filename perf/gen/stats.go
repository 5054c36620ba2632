package gen

import (
	"math"
	"math/bits"
)

// Histogram is a log-linear latency histogram: 16 linear sub-buckets per
// power of two, so a percentile is exact to within 1/16 (6.25 %) of its
// value. Values are nanoseconds. Single writer; merge with Add.
type Histogram struct {
	b     [64 * histSub]uint64
	n     uint64
	min   uint64
	max   uint64
	sumNS float64
}

const (
	histSubBits = 4
	histSub     = 1 << histSubBits
)

func histBucket(v uint64) int {
	if v < histSub {
		return int(v)
	}
	l := bits.Len64(v) // ≥ 5
	sub := (v >> (l - 1 - histSubBits)) & (histSub - 1)
	return (l-histSubBits)*histSub + int(sub)
}

// histUpper returns the largest value that falls in bucket i.
func histUpper(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	l := i/histSub + histSubBits
	sub := uint64(i % histSub)
	lo := (uint64(1) << (l - 1)) | sub<<(l-1-histSubBits)
	return lo + (uint64(1) << (l - 1 - histSubBits)) - 1
}

// Record adds one value.
func (h *Histogram) Record(v uint64) {
	h.b[histBucket(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sumNS += float64(v)
}

// Add merges o into h.
func (h *Histogram) Add(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.b {
		h.b[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sumNS += o.sumNS
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns an upper bound of the q-quantile (0..1), at most 1/16 above
// the true value and never above the maximum; 0 when empty.
func (h *Histogram) Quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var c uint64
	for i, v := range h.b {
		c += v
		if c >= rank {
			u := histUpper(i)
			if u > h.max {
				u = h.max
			}
			if u < h.min {
				u = h.min
			}
			return u
		}
	}
	return h.max
}

// Mean of the recorded values.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sumNS / float64(h.n)
}

// SeqTracker checks the sequence numbers of one stream: duplicates and
// reordering inside a sliding window of seqWindow numbers, loss as the gap
// between the span of sequence numbers seen and the distinct ones received.
type SeqTracker struct {
	started  bool
	first    uint64 // lowest seq seen
	next     uint64 // highest seq seen + 1
	win      [seqWindow / 64]uint64
	Received uint64 // every packet, duplicates included
	Unique   uint64
	Dups     uint64
	Reorder  uint64 // arrived after a higher seq
	Late     uint64 // older than the window: counted unique, not dedup-checked
}

const seqWindow = 1 << 16

func (t *SeqTracker) bit(seq uint64) (*uint64, uint64) {
	i := seq % seqWindow
	return &t.win[i/64], 1 << (i % 64)
}

// Observe records one sequence number.
func (t *SeqTracker) Observe(seq uint64) {
	t.Received++
	if !t.started {
		t.started = true
		t.first, t.next = seq, seq+1
		w, m := t.bit(seq)
		*w |= m
		t.Unique++
		return
	}
	switch {
	case seq >= t.next:
		// Advance: clear the bits of the numbers skipped over (they leave
		// or enter the window unseen).
		if seq-t.next >= seqWindow {
			t.win = [seqWindow / 64]uint64{}
		} else {
			for s := t.next; s < seq; s++ {
				w, m := t.bit(s)
				*w &^= m
			}
		}
		w, m := t.bit(seq)
		*w |= m
		t.next = seq + 1
		t.Unique++
	case t.next-seq > seqWindow:
		t.Late++
		t.Unique++
		if seq < t.first {
			t.first = seq
		}
	default:
		w, m := t.bit(seq)
		if *w&m != 0 {
			t.Dups++
			return
		}
		*w |= m
		t.Reorder++
		t.Unique++
		if seq < t.first {
			t.first = seq
		}
	}
}

// Expected is the number of distinct sequence numbers between the lowest
// and the highest seen.
func (t *SeqTracker) Expected() uint64 {
	if !t.started {
		return 0
	}
	return t.next - t.first
}

// Lost is Expected minus the distinct numbers received (0 if negative).
func (t *SeqTracker) Lost() uint64 {
	if e := t.Expected(); e > t.Unique {
		return e - t.Unique
	}
	return 0
}
