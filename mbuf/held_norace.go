//go:build !race

package mbuf

import "unsafe"

// setHeld publishes how many mbufs the cache holds. Owner only. A plain
// store of the aligned word, not sync/atomic's Store (an XCHG on amd64,
// paid on every Alloc and Free burst): readers (Pool.Stats) Load it
// atomically and see a value some store wrote; the Go memory model does not
// tear word-sized accesses. Race-detector builds store atomically
// (held_race.go).
func (c *Cache) setHeld(n int32) { *(*int32)(unsafe.Pointer(&c.held)) = n }
