//go:build !race

#include "textflag.h"

// Release stores on amd64. Under x86-TSO a plain MOV is not reordered with
// earlier loads or stores, so it is a release store; being a call to
// assembly, it is also a compiler barrier: the Go compiler completes every
// earlier memory access before the call. sync/atomic's Store compiles to
// XCHG, a full barrier that waits for the cache line before the core goes
// on; the ring needs only release (docs/ring.md, "Release stores").

// func storeRelease32(p *uint32, v uint32)
TEXT ·storeRelease32(SB), NOSPLIT, $0-12
	MOVQ	p+0(FP), AX
	MOVL	v+8(FP), BX
	MOVL	BX, (AX)
	RET

// func storeRelease64(p *uint64, v uint64)
TEXT ·storeRelease64(SB), NOSPLIT, $0-16
	MOVQ	p+0(FP), AX
	MOVQ	v+8(FP), BX
	MOVQ	BX, (AX)
	RET
