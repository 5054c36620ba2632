//go:build amd64

#include "textflag.h"

// The AVX-512 stages of the IPv6 batch lookup (lookup6_amd64.go): each is
// the Go stage of the same name in table.go, eight lanes (64-bit vector
// elements) a step. A lane's table address (tptr) plus 8 times its word
// offset is the address its gather reads; the gathers take absolute
// addresses (base register R9 = 0, scale 1). K1 holds the step's lanes
// below the count and masks the loads of table addresses, the gathers
// (a masked-off lane reads nothing) and the stores.
//
// Registers: DI tab, BX q, DX the lane count, SI the step's first lane,
// R9 zero, R8 and R11 scratch (TAILMASK).

// TAILMASK sets K1 to lanes SI .. min(SI+8, DX)-1 of the step.
#define TAILMASK \
	MOVQ DX, R11; \
	SUBQ SI, R11; \
	MOVL $0xff, R8; \
	CMPQ R11, $8; \
	JAE 2(PC); \
	BZHIL R11, R8, R8; \
	KMOVB R8, K1

// GATHER(idx, dst) loads into dst the words at tab[lane] + 8*idx[lane]
// of the step's lanes (Z0, Z1 and K2 clobbered).
#define GATHER(idx, dst) \
	VMOVDQU64.Z (DI)(SI*8), K1, Z0; \
	VPSLLQ $3, idx, Z1; \
	VPADDQ Z0, Z1, Z1; \
	KMOVB K1, K2; \
	VPXORQ dst, dst, dst; \
	VPGATHERQQ (R9)(Z1*1), K2, dst

// func words1Vec(tab *[64]tptr, q *[64]uint32, hi *[64]uint64, n int)
//
// x = the word at q; s = bits 32-36 of hi;
// q = x>>32 + popcount(uint32(x) << (31-s)).
TEXT ·words1Vec(SB), NOSPLIT, $0-32
	MOVQ tab+0(FP), DI
	MOVQ q+8(FP), BX
	MOVQ hi+16(FP), R10
	MOVQ n+24(FP), DX
	XORQ SI, SI
	XORQ R9, R9
	MOVL $31, R8
	VPBROADCASTQ R8, Z10 // 31
	MOVL $0xffffffff, R8
	VPBROADCASTQ R8, Z11 // the low 32 bits
loop:
	CMPQ SI, DX
	JGE done
	TAILMASK
	VPMOVZXDQ (BX)(SI*4), Z3
	GATHER(Z3, Z2)                // x
	VMOVDQU64 (R10)(SI*8), Z3     // hi
	VPSRLQ $32, Z3, Z3
	VPANDQ Z10, Z3, Z3            // s
	VPSUBQ Z3, Z10, Z3            // 31-s
	VPSLLVQ Z3, Z2, Z4
	VPANDQ Z11, Z4, Z4            // uint32(x) << (31-s)
	VPOPCNTQ Z4, Z4
	VPSRLQ $32, Z2, Z2
	VPADDQ Z4, Z2, Z2
	VPMOVQD Z2, K1, (BX)(SI*4)    // q
	ADDQ $8, SI
	JMP loop
done:
	VZEROUPPER
	RET

// func level1Vec(tab *[64]tptr, q *[64]uint32, l0 *[64]uint64, sl *[64]uint16, msk *[64]uint32, m int)
//
// x1 = the word at popcount(l0); g = sl>>5 & 31; inW = sl>>10;
// q = x1>>32 + popcount(uint32(x1) & (0xffffffff >> ((31-g) & -inW)));
// in = uint32(x1)>>g & inW; msk = 0xffffffff>>(^sl & 31) | (in-1).
TEXT ·level1Vec(SB), NOSPLIT, $0-48
	MOVQ tab+0(FP), DI
	MOVQ q+8(FP), BX
	MOVQ l0+16(FP), R10
	MOVQ sl+24(FP), R12
	MOVQ msk+32(FP), R13
	MOVQ m+40(FP), DX
	XORQ SI, SI
	XORQ R9, R9
	MOVL $31, R8
	VPBROADCASTQ R8, Z10 // 31
	MOVL $0xffffffff, R8
	VPBROADCASTQ R8, Z11 // the low 32 bits
	MOVL $1, R8
	VPBROADCASTQ R8, Z12 // 1
loop:
	CMPQ SI, DX
	JGE done
	TAILMASK
	VPOPCNTQ (R10)(SI*8), Z3      // the /38s with a start up to the slot's
	GATHER(Z3, Z2)                // x1
	VPMOVZXWQ (R12)(SI*2), Z3     // sl
	VPSRLQ $5, Z3, Z4
	VPANDQ Z10, Z4, Z4            // g
	VPSRLQ $10, Z3, Z5            // inW (0 or 1)
	VPSUBQ Z4, Z10, Z6            // 31-g
	VPXORQ Z7, Z7, Z7
	VPSUBQ Z5, Z7, Z7             // -inW
	VPANDQ Z7, Z6, Z6
	VPSRLVQ Z6, Z11, Z6           // the groups to count
	VPANDQ Z2, Z6, Z6
	VPOPCNTQ Z6, Z6
	VPSRLQ $32, Z2, Z7
	VPADDQ Z6, Z7, Z7
	VPMOVQD Z7, K1, (BX)(SI*4)    // q
	VPANDQ Z11, Z2, Z2
	VPSRLVQ Z4, Z2, Z2
	VPANDQ Z5, Z2, Z2             // in
	VPSUBQ Z12, Z2, Z2            // in-1
	VPANDNQ Z10, Z3, Z3           // ^sl & 31
	VPSRLVQ Z3, Z11, Z3
	VPORQ Z2, Z3, Z3
	VPMOVQD Z3, K1, (R13)(SI*4)   // msk
	ADDQ $8, SI
	JMP loop
done:
	VZEROUPPER
	RET

// func groupsVec(tab *[64]tptr, q *[64]uint32, msk *[64]uint32, m int) (deep uint64)
//
// x = the word at q; q = x>>32 & 0x7fffffff + popcount(uint32(x) & msk);
// bit j of deep: lane j's x has deepBit.
TEXT ·groupsVec(SB), NOSPLIT, $0-40
	MOVQ tab+0(FP), DI
	MOVQ q+8(FP), BX
	MOVQ msk+16(FP), R10
	MOVQ m+24(FP), DX
	XORQ SI, SI
	XORQ R9, R9
	XORQ AX, AX
	MOVL $0x7fffffff, R8
	VPBROADCASTQ R8, Z10
loop:
	CMPQ SI, DX
	JGE done
	TAILMASK
	VPMOVZXDQ (BX)(SI*4), Z3
	GATHER(Z3, Z2)                // x
	VPMOVZXDQ (R10)(SI*4), Z3     // msk
	VPANDQ Z2, Z3, Z3
	VPOPCNTQ Z3, Z3
	VPSRLQ $32, Z2, Z4
	VPANDQ Z10, Z4, Z4
	VPADDQ Z3, Z4, Z4
	VPMOVQD Z4, K1, (BX)(SI*4)    // q
	VPMOVQ2M Z2, K3               // deepBit (bit 63)
	KMOVB K3, R11
	MOVQ SI, CX
	SHLQ CX, R11
	ORQ R11, AX
	ADDQ $8, SI
	JMP loop
done:
	MOVQ AX, deep+32(FP)
	VZEROUPPER
	RET
