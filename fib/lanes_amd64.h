// Lane masks shared by the AVX-512 stages of the batch lookups
// (lookup4_amd64.s, lookup6_amd64.s). A step covers eight lanes from SI;
// DX is the lane count and AX collects lane bits.

// TAILMASK sets K1 to lanes SI .. min(SI+8, DX)-1 of the step (R8 and R11
// clobbered).
#define TAILMASK \
	MOVQ DX, R11; \
	SUBQ SI, R11; \
	MOVL $0xff, R8; \
	CMPQ R11, $8; \
	JAE 2(PC); \
	BZHIL R11, R8, R8; \
	KMOVB R8, K1

// LANEBITS(k) ORs mask register k, shifted to the step's first lane, into
// AX (CX and R11 clobbered).
#define LANEBITS(k) \
	KMOVB k, R11; \
	MOVQ SI, CX; \
	SHLQ CX, R11; \
	ORQ R11, AX
