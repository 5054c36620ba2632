package fwd

import (
	"testing"
	"time"
)

func TestStallClass(t *testing.T) {
	for _, c := range []struct {
		gap  time.Duration
		want int
	}{
		{StallMin, 0},
		{99 * time.Microsecond, 0},
		{100 * time.Microsecond, 1},
		{999 * time.Microsecond, 1},
		{time.Millisecond, 2},
		{time.Second, 2},
	} {
		if got := stallClass(c.gap); got != c.want {
			t.Errorf("stallClass(%v) = %d, want %d", c.gap, got, c.want)
		}
	}
}

func TestStallCause(t *testing.T) {
	for _, c := range []struct {
		name                       string
		vol0, invol0, vol1, invol1 int64
		want                       int
	}{
		{"neither", 5, 7, 5, 7, stallOther},
		{"voluntary", 5, 7, 6, 7, stallParked},
		{"involuntary", 5, 7, 5, 9, stallPreempted},
		{"both: parked first", 5, 7, 6, 8, stallParked},
	} {
		if got := stallCause(c.vol0, c.invol0, c.vol1, c.invol1); got != c.want {
			t.Errorf("%s: stallCause = %d, want %d", c.name, got, c.want)
		}
	}
}

// TestStallCountersNote counts stalls on this thread: each lands in one
// cause and its length class, and the longest is kept. Which cause depends
// on what the thread went through, so only the sums are checked.
func TestStallCountersNote(t *testing.T) {
	var s stallCounters
	s.start()
	gaps := []time.Duration{30 * time.Microsecond, 150 * time.Microsecond, 2 * time.Millisecond, 40 * time.Microsecond}
	for _, g := range gaps {
		s.waited(s.note(g), 3)
	}
	st := s.load()
	want := [stallClasses]uint64{2, 1, 1}
	for i := range stallClasses {
		if got := st.Parked[i] + st.Preempted[i] + st.Other[i]; got != want[i] {
			t.Errorf("class %d: %d stalls, want %d (%+v)", i, got, want[i], st)
		}
	}
	if st.Packets != [stallClasses]uint64{6, 3, 3} {
		t.Errorf("packets after stalls %v, want [6 3 3]", st.Packets)
	}
	if st.Max != 2*time.Millisecond {
		t.Errorf("max %v, want 2ms", st.Max)
	}
	if allocs := allocsPerRun(100, func() { s.note(StallMin) }); allocs != 0 {
		t.Errorf("note allocates %.1f times", allocs)
	}
}
