package pkt

import "testing"

func TestTokenBucket(t *testing.T) {
	var b TokenBucket
	for i := range 1000 {
		if !b.Allow(int64(i)) {
			t.Fatal("zero value limited")
		}
	}
	const s = int64(1e9)
	now := int64(5 * s)
	b.Set(100, 10, now)
	if r, bu := b.Rate(); r != 100 || bu != 10 {
		t.Fatalf("Rate() = %d, %d", r, bu)
	}
	n := 0
	for b.Allow(now) {
		n++
	}
	if n != 10 {
		t.Fatalf("burst %d, want 10", n)
	}
	// 10 ms later: one token.
	now += s / 100
	if !b.Allow(now) || b.Allow(now) {
		t.Fatal("refill of one token")
	}
	// Over 10 s at 1 kHz offered, 100/s pass (plus the burst).
	got := 0
	for i := 0; i < 10000; i++ {
		now += s / 1000
		if b.Allow(now) {
			got++
		}
	}
	if got < 999 || got > 1001 {
		t.Fatalf("passed %d of 10000 at 100/s over 10 s", got)
	}
	// Long idle: full again, never more than the burst.
	now += 1000 * s
	n = 0
	for b.Allow(now) {
		n++
	}
	if n != 10 {
		t.Fatalf("after idle %d, want 10", n)
	}
	// Clock going backwards refills nothing.
	if b.Allow(now - s) {
		t.Fatal("backwards clock refilled")
	}
	// Huge values do not overflow.
	b.Set(1<<40, 1<<40, 0)
	if !b.Allow(1 << 62) {
		t.Fatal("huge rate")
	}
	b.Set(1, 0, 0) // burst clamped to 1
	if !b.Allow(0) || b.Allow(1) || !b.Allow(1e9) {
		t.Fatal("rate 1 burst 1")
	}
	b.Set(0, 5, 0) // disabled
	for range 100 {
		if !b.Allow(0) {
			t.Fatal("rate 0 limited")
		}
	}
}
