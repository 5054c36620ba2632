package pmd

import (
	"sync/atomic"
	"time"
)

// QuiesceTimeout bounds how long a driver waits for a poller to leave its
// burst before it gives up on a queue's resources (and leaks them rather
// than unmapping memory under the poller).
const QuiesceTimeout = 2 * time.Second

// Quiesce waits until busy reads 0, at most timeout, and reports whether it
// did. Drivers that replace a queue's socket while the port is polled (link
// down, interface deleted) use it: the poller sets busy before loading the
// socket pointer and clears it after its last use; the control side swaps
// the pointer out first, so once busy reads 0 no poller holds the old
// socket (all accesses are sequentially consistent atomics). Control plane
// only: it sleeps.
func Quiesce(busy *atomic.Uint32, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for busy.Load() != 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Microsecond)
	}
	return true
}
