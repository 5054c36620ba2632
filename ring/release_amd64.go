//go:build amd64 && !race

package ring

// storeRelease32 stores v at *p with release ordering: every load and store
// before the call is visible to a goroutine that loads v from *p with
// sync/atomic (an acquire load) before anything after it. *p must only be
// read with sync/atomic loads while other goroutines run. On amd64 it is a
// plain MOV (release_amd64.s); under the race detector and on other
// architectures it is sync/atomic's Store (release_other.go), which is
// stronger.
//
//go:noescape
func storeRelease32(p *uint32, v uint32)

// storeRelease64 is storeRelease32 for a 64-bit word, which must be 64-bit
// aligned.
//
//go:noescape
func storeRelease64(p *uint64, v uint64)
