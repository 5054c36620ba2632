package pkt

// TokenBucket limits a rate of events (ICMP errors, like FreeBSD's
// net.inet.icmp.icmplim): rate tokens per second, at most burst saved up.
// It is driven by a monotonic clock in nanoseconds passed in by the caller
// (the worker reads the clock once per burst; tests pass fake time). One
// per worker: it has no locks. The zero value allows everything.
type TokenBucket struct {
	rate   int64 // tokens per second; <= 0 means unlimited
	max    int64 // burst, in token-nanoseconds
	credit int64 // in token-nanoseconds (1 token = 1e9)
	last   int64 // clock of the last refill
}

const (
	tokenNs  = 1_000_000_000
	maxLimit = 1 << 30 // bounds rate and burst so the arithmetic cannot overflow
)

// Set sets the rate (tokens per second; <= 0 disables limiting) and the
// burst (clamped to at least 1) and fills the bucket as of now.
func (b *TokenBucket) Set(rate, burst int, now int64) {
	b.rate = int64(min(rate, maxLimit))
	b.max = int64(min(max(burst, 1), maxLimit)) * tokenNs
	b.credit = b.max
	b.last = now
}

// Rate returns the configured rate and burst.
func (b *TokenBucket) Rate() (rate, burst int) { return int(b.rate), int(b.max / tokenNs) }

// Allow takes a token if one is available at time now and reports whether
// it did. A clock going backwards refills nothing.
func (b *TokenBucket) Allow(now int64) bool {
	if b.rate <= 0 {
		return true
	}
	if el := now - b.last; el > 0 {
		b.last = now
		if el >= (b.max-b.credit)/b.rate+1 {
			b.credit = b.max
		} else {
			b.credit += el * b.rate
		}
	}
	if b.credit < tokenNs {
		return false
	}
	b.credit -= tokenNs
	return true
}
