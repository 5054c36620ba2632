//go:build amd64

#include "textflag.h"
#include "lanes_amd64.h"

// The AVX-512 stages of the IPv4 batch lookup (lookup4_amd64.go): the
// arithmetic of prepPop and of ranges (tab4.go), eight lanes (vector
// elements) a step; the loads that miss stay in Go's bare load loops
// (gathers of them were much slower here). K1 holds the step's lanes
// below the count and masks the loads, the gather (a masked-off lane
// reads nothing) and the stores.
//
// Registers: DX the lane count, SI the step's first lane, R8 and R11
// scratch (TAILMASK), AX the result.

// PREP4_ARGS loads prep4Vec's and prep4VecP's arguments and constants:
// DI w, BX p, R12 m, R14 d, R13 segs, DX n, SI 0, AX 0; Z20 none, Z21
// chunkFlag|popFlag, Z22 31, Z23 0xffff, Z24 1023 (segment ids), Z25
// segMask, Z26 2, Z27 1.
#define PREP4_ARGS \
	MOVQ w+0(FP), DI; \
	MOVQ p+8(FP), BX; \
	MOVQ m+16(FP), R12; \
	MOVQ d+24(FP), R14; \
	MOVQ segs+32(FP), R13; \
	MOVQ none+40(FP), R8; \
	VPBROADCASTQ R8, Z20; \
	MOVQ n+48(FP), DX; \
	XORQ SI, SI; \
	XORQ AX, AX; \
	MOVQ $0xc000000000000000, R8; \
	VPBROADCASTQ R8, Z21; \
	MOVL $31, R8; \
	VPBROADCASTQ R8, Z22; \
	MOVL $0xffff, R8; \
	VPBROADCASTQ R8, Z23; \
	MOVL $1023, R8; \
	VPBROADCASTQ R8, Z24; \
	MOVL $0x3fffff, R8; \
	VPBROADCASTQ R8, Z25; \
	MOVL $2, R8; \
	VPBROADCASTQ R8, Z26; \
	MOVL $1, R8; \
	VPBROADCASTQ R8, Z27

// PREP4_STEP_HEAD starts a step of prep4Vec(P) under K1: Z0 e, Z1 a, K2 the
// lanes with a bitmap index (e >= chunkFlag|popFlag), the others' bits
// ORed into AX, Z3 u = (a & 0xffff) >> (e>>b4Shift & 31), Z4 the segment
// id (e>>segBits & 1023).
#define PREP4_STEP_HEAD \
	VMOVDQU64.Z (DI)(SI*8), K1, Z0; \
	VPMOVZXDQ.Z (R14)(SI*4), K1, Z1; \
	VPCMPUQ $5, Z21, Z0, K1, K2; \
	KANDNB K1, K2, K3; \
	LANEBITS(K3); \
	VPSRLQ $50, Z0, Z2; \
	VPANDQ Z22, Z2, Z2; \
	VPANDQ Z23, Z1, Z3; \
	VPSRLVQ Z2, Z3, Z3; \
	VPSRLQ $22, Z0, Z4; \
	VPANDQ Z24, Z4, Z4

// PREP4_STEP_TAIL ends a step of prep4Vec(P), given Z6 the segments'
// addresses: p = Z6 + 4*(e & segMask) + 8*(u>>5) (none for the others),
// m = 2<<(u&31) - 1 (uint32(e) for the others), stored under K1.
#define PREP4_STEP_TAIL \
	VPANDQ Z25, Z0, Z7; \
	VPSLLQ $2, Z7, Z7; \
	VPSRLQ $5, Z3, Z8; \
	VPSLLQ $3, Z8, Z8; \
	VPADDQ Z7, Z8, Z8; \
	VMOVDQA64 Z20, Z9; \
	VPADDQ Z6, Z8, K2, Z9; \
	VMOVDQU64 Z9, K1, (BX)(SI*8); \
	VPANDQ Z22, Z3, Z10; \
	VPSLLVQ Z10, Z26, Z10; \
	VMOVDQA64 Z0, Z11; \
	VPSUBQ Z27, Z10, K2, Z11; \
	VPMOVQD Z11, K1, (R12)(SI*4)

// func prep4Vec(w *[batchLen + 1]uint64, p *[batchLen + 1]uintptr, m *[batchLen]uint32, d *uint32, segs unsafe.Pointer, none uintptr, n int) (others uint64)
//
// e = w, a = d[i]. Lanes with e >= chunkFlag|popFlag (a bitmap index):
// u = (a & 0xffff) >> (e>>b4Shift & 31); p = the segment's address
// (segs[e>>segBits & 1023], 24-byte slice headers: the one gather, of
// the snapshot's segment list, in L1) + 4*(e & segMask) + 8*(u>>5);
// m = 2<<(u&31) - 1. The others: p = none, m = uint32(e), and bit i of
// others set.
TEXT ·prep4Vec(SB), NOSPLIT, $0-64
	PREP4_ARGS
loop:
	CMPQ SI, DX
	JGE done
	TAILMASK
	PREP4_STEP_HEAD
	VPSLLQ $1, Z4, Z5
	VPADDQ Z4, Z5, Z5                 // 3 * the segment id
	KMOVB K2, K4
	VPXORQ Z6, Z6, Z6
	VPGATHERQQ (R13)(Z5*8), K4, Z6    // the segments' addresses
	PREP4_STEP_TAIL
	ADDQ $8, SI
	JMP loop
done:
	MOVQ AX, others+56(FP)
	VZEROUPPER
	RET

// func prep4VecP(w *[batchLen + 1]uint64, p *[batchLen + 1]uintptr, m *[batchLen]uint32, d *uint32, segs *[32]uintptr, none uintptr, n int) (others uint64)
//
// prep4Vec for tables of at most 32 segments, whose addresses segs lists:
// the segments' addresses by two permutes of four registers instead of a
// gather.
//
// e = w, a = d[i]. Lanes with e >= chunkFlag|popFlag (a bitmap index):
// u = (a & 0xffff) >> (e>>b4Shift & 31); p = the segment's address
// (segs[e>>segBits & 1023], 24-byte slice headers: the one gather, of
// the snapshot's segment list, in L1) + 4*(e & segMask) + 8*(u>>5);
// m = 2<<(u&31) - 1. The others: p = none, m = uint32(e), and bit i of
// others set.
TEXT ·prep4VecP(SB), NOSPLIT, $0-64
	PREP4_ARGS
	MOVL $16, R8
	VPBROADCASTQ R8, Z19
	VMOVDQU64 0(R13), Z28             // the segments' addresses
	VMOVDQU64 64(R13), Z29
	VMOVDQU64 128(R13), Z30
	VMOVDQU64 192(R13), Z31
loop:
	CMPQ SI, DX
	JGE done
	TAILMASK
	PREP4_STEP_HEAD
	VMOVDQA64 Z28, Z6
	VPERMT2Q Z29, Z4, Z6              // segments 0-15 (bits 0-3 of the id)
	VMOVDQA64 Z30, Z13
	VPERMT2Q Z31, Z4, Z13             // segments 16-31
	VPTESTMQ Z19, Z4, K4              // bit 4 of the id
	VMOVDQA64 Z13, K4, Z6             // the segments' addresses
	PREP4_STEP_TAIL
	ADDQ $8, SI
	JMP loop
done:
	MOVQ AX, others+56(FP)
	VZEROUPPER
	RET

// func rangeAddrs4Vec(w *[batchLen + 1]uint64, p *[batchLen + 1]uintptr, m *[batchLen]uint32, n int)
//
// x = w; p = the range's address: p + 4*(int64(x)>>32 + popcount(uint32(x) & m)).
TEXT ·rangeAddrs4Vec(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), DI
	MOVQ p+8(FP), BX
	MOVQ m+16(FP), R12
	MOVQ n+24(FP), DX
	XORQ SI, SI
	XORQ AX, AX
loop:
	CMPQ SI, DX
	JGE done
	TAILMASK
	VMOVDQU64.Z (DI)(SI*8), K1, Z0    // x
	VPMOVZXDQ (R12)(SI*4), Z1         // m
	VPANDQ Z0, Z1, Z1
	VPOPCNTQ Z1, Z1
	VPSRAQ $32, Z0, Z2
	VPADDQ Z1, Z2, Z2
	VPSLLQ $2, Z2, Z2
	VMOVDQU64.Z (BX)(SI*8), K1, Z3    // p
	VPADDQ Z3, Z2, Z2
	VMOVDQU64 Z2, K1, (BX)(SI*8)
	ADDQ $8, SI
	JMP loop
done:
	VZEROUPPER
	RET
