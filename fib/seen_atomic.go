//go:build !amd64 || race

package fib

import "sync/atomic"

// storeSeen publishes a reader's quiescent point (see seen_plain.go) with
// an atomic store: on architectures where a plain store may become visible
// before earlier loads complete, and in race-detector builds, so that the
// detector sees the reader's reads happen before the writer's reuse.
func storeSeen(w *atomic.Uint64, v uint64) { w.Store(v) }
