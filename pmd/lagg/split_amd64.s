//go:build amd64

#include "textflag.h"

// split2Vec (split_amd64.go): the two-member split, eight frames a step.
//
// MBUF_WORD is the offset of the 64-bit word of an mbuf that holds Flags
// in bits 16-31 and Hash in bits 32-63 (mbuf.Mbuf: FIB at 24, Flags at
// 26, Hash at 28; split_amd64.go checks it at compile time). TXHASH_BIT
// is mbuf.FlagTxHash's bit in that word, bit 63 is the hash's top bit:
// the member (flowhash.Pick of 2).
#define MBUF_WORD 24
#define TXHASH_BIT $22

// MEMBER_BIT(off) takes the frame at off(SI): its word ANDed into R13,
// its member bit (the hash's top bit) shifted into BX from below.
#define MEMBER_BIT(off) \
	MOVQ off(SI), R12; \
	MOVQ MBUF_WORD(R12), R12; \
	ANDQ R12, R13; \
	SHRQ $63, R12; \
	LEAQ (R12)(BX*2), BX

// STORE_MEMBERS stores the frames of Z0 that K1 selects at member 1's
// count in b1 and those K2 selects at member 0's in b0, and adds member
// 1's frames (BX's bits, BX overwritten) to R10.
#define STORE_MEMBERS \
	VPCOMPRESSQ.Z Z0, K1, Z1; \
	VPCOMPRESSQ.Z Z0, K2, Z2; \
	VMOVDQU64 Z1, (R8)(R10*8); \
	VMOVDQU64 Z2, (DI)(R9*8); \
	POPCNTL BX, BX; \
	ADDQ BX, R10

// Registers: SI the next frames of ms, CX frames left, DI b0, R8 b1,
// R9 and R10 member 0's and 1's counts, BX the step's member bits (frame
// j in bit j), R13 the AND of the step's words (the TxHash test), R11 the
// steps left.

// func split2Vec(ms []*mbuf.Mbuf, b0, b1 *[memberBuf]*mbuf.Mbuf) (c1 uint, ok bool)
TEXT ·split2Vec(SB), NOSPLIT, $0-49
	MOVQ ms_base+0(FP), SI
	MOVQ ms_len+8(FP), CX
	MOVQ b0+24(FP), DI
	MOVQ b1+32(FP), R8
	XORQ R9, R9
	XORQ R10, R10
	MOVQ CX, R11
	SHRQ $3, R11
	JZ tail

step:
	// Frames 7 down to 0: frame j's member bit ends in bit j of BX.
	MOVQ $-1, R13
	XORQ BX, BX
	MEMBER_BIT(56)
	MEMBER_BIT(48)
	MEMBER_BIT(40)
	MEMBER_BIT(32)
	MEMBER_BIT(24)
	MEMBER_BIT(16)
	MEMBER_BIT(8)
	MEMBER_BIT(0)
	BTQ TXHASH_BIT, R13
	JCC fail
	VMOVDQU64 (SI), Z0
	KMOVB BX, K1
	KNOTB K1, K2
	STORE_MEMBERS
	ADDQ $8, R9
	SUBQ BX, R9
	ADDQ $64, SI
	DECQ R11
	JNZ step

tail:
	// The last len(ms)%8 frames: the same, the pointers loaded under a
	// mask (no read past ms).
	ANDQ $7, CX
	JZ done
	MOVQ $-1, R13
	XORQ BX, BX
	MOVQ CX, R11

tailframe:
	MOVQ -8(SI)(R11*8), R12
	MOVQ MBUF_WORD(R12), R12
	ANDQ R12, R13
	SHRQ $63, R12
	LEAQ (R12)(BX*2), BX
	DECQ R11
	JNZ tailframe
	BTQ TXHASH_BIT, R13
	JCC fail
	MOVL $1, R12
	SHLL CX, R12
	DECL R12
	KMOVB R12, K3
	VMOVDQU64.Z (SI), K3, Z0
	KMOVB BX, K1
	KANDNB K3, K1, K2
	STORE_MEMBERS

done:
	VZEROUPPER
	MOVQ R10, c1+40(FP)
	MOVB $1, ok+48(FP)
	RET

fail:
	VZEROUPPER
	MOVQ $0, c1+40(FP)
	MOVB $0, ok+48(FP)
	RET
