package gen

import "time"

// Limiter paces a sender at Rate packets per second with a token bucket of
// Burst packets. It works on caller-supplied times (ns on any monotonic
// base), so it is deterministic under test. Rate 0 means no limit. One
// Limiter per worker; not safe for concurrent use.
type Limiter struct {
	Rate    float64 // packets per second; 0 = unlimited
	Burst   int     // packets that may go at once (≥ 1)
	start   int64
	granted uint64
	started bool
}

// NewLimiter returns a limiter for rate pps allowing bursts of burst.
func NewLimiter(rate float64, burst int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	return &Limiter{Rate: rate, Burst: burst}
}

// Grant returns how many of n packets may be sent at time now; when it
// returns 0 it also says how long to wait before asking again.
func (l *Limiter) Grant(now int64, n int) (int, time.Duration) {
	if l.Rate <= 0 {
		return n, 0
	}
	if !l.started {
		l.started = true
		l.start = now
	}
	el := float64(now - l.start)
	allowed := uint64(el*l.Rate/1e9) + uint64(l.Burst)
	if allowed <= l.granted {
		// Time at which granted+1 packets are allowed.
		need := float64(l.granted+1-uint64(l.Burst)) * 1e9 / l.Rate
		w := time.Duration(need - el)
		if w < 1 {
			w = 1
		}
		return 0, w
	}
	ok := allowed - l.granted
	if ok > uint64(l.Burst) {
		// A stalled sender does not earn a catch-up burst: the bucket
		// holds at most Burst tokens.
		l.granted = allowed - uint64(l.Burst)
		ok = uint64(l.Burst)
	}
	if ok > uint64(n) {
		ok = uint64(n)
	}
	l.granted += ok
	return int(ok), 0
}
