//go:build !amd64 || race

package ring

import "sync/atomic"

// storeRelease32 stores v at *p with (at least) release ordering; see
// release_amd64.go. Under the race detector the ring uses sync/atomic so
// that the detector sees the synchronisation.
func storeRelease32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }

// storeRelease64 is storeRelease32 for a 64-bit aligned word.
func storeRelease64(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
