//go:build race

package mbuf

// setHeld publishes how many mbufs the cache holds (race-detector builds:
// an atomic store; see held_norace.go).
func (c *Cache) setHeld(n int32) { c.held.Store(n) }
