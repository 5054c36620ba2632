//go:build amd64 && !race

package fib

import (
	"sync/atomic"
	"unsafe"
)

// storeSeen publishes a reader's quiescent point with a plain store of the
// aligned 64-bit word: on amd64 (TSO) a store is never made visible before
// the loads that precede it, which is all a quiescent point needs (the
// writer must not see it before the reader's last reads of the parts it
// reuses), and a writer that reads an older value only reuses less. The
// Go memory model guarantees that the racing reads of the word see a value
// some write stored. sync/atomic's Store is an XCHG (a full barrier) on
// amd64. Other architectures and race-detector builds use an atomic store
// (seen_atomic.go); Online, which needs the barrier, always does.
func storeSeen(w *atomic.Uint64, v uint64) {
	*(*uint64)(unsafe.Pointer(w)) = v
}
