//go:build race

package pmd

// Add adds n. Owner only. (Race-detector builds: an atomic store; see
// counter_norace.go.)
func (c *Counter) Add(n uint64) { c.v.Store(c.v.Load() + n) }
