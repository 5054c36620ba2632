//go:build amd64

#include "textflag.h"
#include "lanes_amd64.h"

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

// Constants of the stages below.
DATA lanes<>+0x00(SB)/8, $0x0706050403020100
DATA lanes<>+0x08(SB)/8, $0x0f0e0d0c0b0a0908
DATA lanes<>+0x10(SB)/8, $0x1716151413121110
DATA lanes<>+0x18(SB)/8, $0x1f1e1d1c1b1a1918
DATA lanes<>+0x20(SB)/8, $0x2726252423222120
DATA lanes<>+0x28(SB)/8, $0x2f2e2d2c2b2a2928
DATA lanes<>+0x30(SB)/8, $0x3736353433323130
DATA lanes<>+0x38(SB)/8, $0x3f3e3d3c3b3a3938
GLOBL lanes<>(SB), RODATA|NOPTR, $64 // bytes 0..63: the lane numbers

DATA ilv<>+0x00(SB)/8, $0
DATA ilv<>+0x08(SB)/8, $8
DATA ilv<>+0x10(SB)/8, $1
DATA ilv<>+0x18(SB)/8, $9
DATA ilv<>+0x20(SB)/8, $2
DATA ilv<>+0x28(SB)/8, $10
DATA ilv<>+0x30(SB)/8, $3
DATA ilv<>+0x38(SB)/8, $11
DATA ilv<>+0x40(SB)/8, $4
DATA ilv<>+0x48(SB)/8, $12
DATA ilv<>+0x50(SB)/8, $5
DATA ilv<>+0x58(SB)/8, $13
DATA ilv<>+0x60(SB)/8, $6
DATA ilv<>+0x68(SB)/8, $14
DATA ilv<>+0x70(SB)/8, $7
DATA ilv<>+0x78(SB)/8, $15
GLOBL ilv<>(SB), RODATA|NOPTR, $128 // VPERMT2Q: two vectors of qwords into hdr6s (lanes 0-3, 4-7)

DATA eo<>+0x00(SB)/8, $0
DATA eo<>+0x08(SB)/8, $2
DATA eo<>+0x10(SB)/8, $4
DATA eo<>+0x18(SB)/8, $6
DATA eo<>+0x20(SB)/8, $8
DATA eo<>+0x28(SB)/8, $10
DATA eo<>+0x30(SB)/8, $12
DATA eo<>+0x38(SB)/8, $14
DATA eo<>+0x40(SB)/8, $1
DATA eo<>+0x48(SB)/8, $3
DATA eo<>+0x50(SB)/8, $5
DATA eo<>+0x58(SB)/8, $7
DATA eo<>+0x60(SB)/8, $9
DATA eo<>+0x68(SB)/8, $11
DATA eo<>+0x70(SB)/8, $13
DATA eo<>+0x78(SB)/8, $15
GLOBL eo<>(SB), RODATA|NOPTR, $128 // VPERMT2Q: eight hdr6s into start|def<<32 (even qwords) and x (odd)

DATA defs<>+0x00(SB)/4, $1
DATA defs<>+0x04(SB)/4, $5
DATA defs<>+0x08(SB)/4, $9
DATA defs<>+0x0c(SB)/4, $13
DATA defs<>+0x10(SB)/4, $17
DATA defs<>+0x14(SB)/4, $21
DATA defs<>+0x18(SB)/4, $25
DATA defs<>+0x1c(SB)/4, $29
DATA defs<>+0x20(SB)/8, $0
DATA defs<>+0x28(SB)/8, $0
DATA defs<>+0x30(SB)/8, $0
DATA defs<>+0x38(SB)/8, $0
GLOBL defs<>(SB), RODATA|NOPTR, $64 // VPERMT2D: the def dwords of eight hdr6s

// func prep1Vec(hi *[64]uint64, tab *[64]tptr, q *[64]uint32, top *[256]*dirPage, e16 *[]uint64, ns int, z *uint64, n int) (other uint64)
//
// e = top[hi>>56][hi>>48 & 255]; for e with chunkFlag and rankFlag: tab =
// the L1 table (segment uint32(e)>>22 of e16, clamped to ns, offset
// uint32(e) & segMask), q = n6(e) + (hi>>32 & 0xffff)>>5; the others: tab
// = z, q = 0, and their bit in other. (The caller loads hi: loading the
// probes here, by a gather or masked vector loads, made the whole lookup
// ~40 % slower over the whole table, as if those loads did not train the
// prefetchers on the stream of probes.)
TEXT ·prep1Vec(SB), NOSPLIT, $0-72
	MOVQ hi+0(FP), R12
	MOVQ tab+8(FP), DI
	MOVQ q+16(FP), BX
	MOVQ top+24(FP), R13
	MOVQ n+56(FP), DX
	XORQ SI, SI
	XORQ R9, R9
	XORQ AX, AX
	MOVQ ns+40(FP), R8
	DECQ R8
	VPBROADCASTQ R8, Z20 // the last segment
	MOVQ z+48(FP), R8
	VPBROADCASTQ R8, Z21 // &t.z
	MOVL $255, R8
	VPBROADCASTQ R8, Z22
	MOVL $3, R8
	VPBROADCASTQ R8, Z23
	MOVL $0xffffffff, R8
	VPBROADCASTQ R8, Z24
	MOVL $0x3fffff, R8
	VPBROADCASTQ R8, Z25 // segMask
	MOVL $0x3fffffff, R8
	VPBROADCASTQ R8, Z26 // n6Mask
	MOVL $0x7ff, R8
	VPBROADCASTQ R8, Z27
loop:
	CMPQ SI, DX
	JGE done
	TAILMASK
	VMOVDQU64.Z (R12)(SI*8), K1, Z2 // hi
	VPSRLQ $56, Z2, Z3
	KMOVB K1, K2
	VPXORQ Z4, Z4, Z4
	VPGATHERQQ (R13)(Z3*8), K2, Z4  // dir pages
	VPSRLQ $48, Z2, Z3
	VPANDQ Z22, Z3, Z3
	VPSLLQ $3, Z3, Z3
	VPADDQ Z4, Z3, Z3
	KMOVB K1, K2
	VPXORQ Z5, Z5, Z5
	VPGATHERQQ (R9)(Z3*1), K2, Z5   // e
	VPSRLQ $62, Z5, Z6
	VPCMPEQQ Z23, Z6, K3
	KANDB K1, K3, K3                // rank lanes
	KANDNB K1, K3, K4               // the others
	LANEBITS(K4)
	VPANDQ Z24, Z5, Z6              // position
	VPSRLQ $22, Z6, Z7
	VPMINUQ Z20, Z7, Z7
	VPSLLQ $1, Z7, Z8
	VPADDQ Z7, Z8, Z7               // 3 words per slice header
	MOVQ e16+32(FP), R8
	KMOVB K3, K2
	VPXORQ Z8, Z8, Z8
	VPGATHERQQ (R8)(Z7*8), K2, Z8   // the segments' first entries
	VPANDQ Z25, Z6, Z6
	VPSLLQ $3, Z6, Z6
	VPADDQ Z6, Z8, Z8
	VMOVDQA64 Z21, K4, Z8
	VMOVDQU64 Z8, K1, (DI)(SI*8)    // tab
	VPSRLQ $32, Z5, Z6
	VPANDQ Z26, Z6, Z6              // n6(e)
	VPSRLQ $37, Z2, Z7
	VPANDQ Z27, Z7, Z7              // the slot's word
	VPADDQ Z7, Z6, Z6
	VMOVDQA64.Z Z6, K3, Z6
	VPMOVQD Z6, K1, (BX)(SI*4)      // q
	ADDQ $8, SI
	JMP loop
done:
	MOVQ AX, other+64(FP)
	VZEROUPPER
	RET

// func values1Vec(tab *[64]tptr, q *[64]uint32, o *uint32, idx *[64]uint8, hi *[64]uint64, v1 *[64]uint32, h2 *[64]uint64, n int) (m int)
//
// v = uint32(the word at q); o[lane] = v; idx lists the lanes with
// refFlag in order (all 64 bytes written), m counts them; v1 and h2 get
// their v and hi in the same order. A step stores eight elements of v1
// and h2 from the count so far, which is at most the step's first lane:
// never past the arrays.
TEXT ·values1Vec(SB), NOSPLIT, $0-72
	MOVQ tab+0(FP), DI
	MOVQ q+8(FP), BX
	MOVQ o+16(FP), R10
	MOVQ hi+32(FP), R12
	MOVQ v1+40(FP), R13
	MOVQ n+56(FP), DX
	XORQ SI, SI
	XORQ R9, R9
	XORQ AX, AX
loop:
	CMPQ SI, DX
	JGE done
	TAILMASK
	VPMOVZXDQ (BX)(SI*4), Z3
	GATHER(Z3, Z2)
	VPMOVQD Z2, Y4
	VMOVDQU32 Y4, K1, (R10)(SI*4)   // o
	VPMOVD2M Y4, K3                 // refFlag (masked lanes read 0)
	POPCNTQ AX, R8                  // the lanes listed so far
	VPCOMPRESSD.Z Y4, K3, Y5
	VMOVDQU32 Y5, (R13)(R8*4)       // v1
	VMOVDQU64 (R12)(SI*8), Z6
	VPCOMPRESSQ.Z Z6, K3, Z6
	MOVQ h2+48(FP), R11
	VMOVDQU64 Z6, (R11)(R8*8)       // h2
	LANEBITS(K3)
	ADDQ $8, SI
	JMP loop
done:
	KMOVQ AX, K4
	VMOVDQU8 lanes<>(SB), Z5
	VPCOMPRESSB.Z Z5, K4, Z6
	MOVQ idx+24(FP), R12
	VMOVDQU8 Z6, (R12)              // idx
	POPCNTQ AX, AX
	MOVQ AX, m+64(FP)
	VZEROUPPER
	RET

// func headersVec(v1 *[64]uint32, hs *[64]hdr6, hdrs **hdrPage, nh int, m int)
//
// id = v1[lane] &^ refFlag; hs[lane] = hdrs[id>>8 (clamped to nh)][id &
// 255]. All eight hdr6s of the last step are written (zeros past m).
TEXT ·headersVec(SB), NOSPLIT, $0-40
	MOVQ v1+0(FP), R10
	MOVQ hs+8(FP), DI
	MOVQ hdrs+16(FP), R13
	MOVQ m+32(FP), DX
	XORQ SI, SI
	XORQ R9, R9
	MOVQ nh+24(FP), R8
	DECQ R8
	VPBROADCASTD R8, Y20 // the last header page
	MOVL $0x7fffffff, R8
	VPBROADCASTD R8, Y21
	MOVL $255, R8
	VPBROADCASTD R8, Y22
	VMOVDQU64 ilv<>+0(SB), Z23
	VMOVDQU64 ilv<>+64(SB), Z24
loop:
	CMPQ SI, DX
	JGE done
	TAILMASK
	VMOVDQU32.Z (R10)(SI*4), K1, Y4 // the L1 values
	VPANDD Y21, Y4, Y4              // header ids
	VPSRLD $8, Y4, Y5
	VPMINUD Y20, Y5, Y5
	KMOVB K1, K2
	VPXORQ Z6, Z6, Z6
	VPGATHERDQ (R13)(Y5*8), K2, Z6  // header pages
	VPANDD Y22, Y4, Y4
	VPMOVZXDQ Y4, Z4
	VPSLLQ $4, Z4, Z4
	VPADDQ Z6, Z4, Z4               // the headers' addresses
	KMOVB K1, K2
	VPXORQ Z7, Z7, Z7
	VPGATHERQQ (R9)(Z4*1), K2, Z7   // start | def<<32
	KMOVB K1, K2
	VPXORQ Z8, Z8, Z8
	VPGATHERQQ 8(R9)(Z4*1), K2, Z8  // x
	VMOVDQA64 Z7, Z0
	VPERMT2Q Z8, Z23, Z0            // lanes 0-3
	VPERMT2Q Z8, Z24, Z7            // lanes 4-7
	MOVQ SI, R11
	SHLQ $4, R11
	VMOVDQU64 Z0, (DI)(R11*1)
	VMOVDQU64 Z7, 64(DI)(R11*1)
	ADDQ $8, SI
	JMP loop
done:
	VZEROUPPER
	RET

// func prep2Vec(hs *[64]hdr6, h2 *[64]uint64, tab *[64]tptr, l0 *[64]uint64, sl *[64]uint16, e2 *[]uint64, ns int, z *uint64, m int) (other uint64)
//
// For a lane whose header has hdrIx: s = h2[lane]>>16 & 0xffff, l0 =
// x << (^(s>>10) & 63), sl = s&0x3ff | (l0>>63)<<10, tab = the table
// (segment start>>22 of e2, clamped to ns, offset start & segMask); the
// others: tab = z, l0 = 0 (sl untouched), and their bit in other.
TEXT ·prep2Vec(SB), NOSPLIT, $0-80
	MOVQ hs+0(FP), R10
	MOVQ h2+8(FP), R12
	MOVQ tab+16(FP), DI
	MOVQ l0+24(FP), BX
	MOVQ m+64(FP), DX
	XORQ SI, SI
	XORQ R9, R9
	XORQ AX, AX
	MOVQ ns+48(FP), R8
	DECQ R8
	VPBROADCASTQ R8, Z20 // the last segment
	MOVQ z+56(FP), R8
	VPBROADCASTQ R8, Z21 // &t.z
	MOVL $0xffff, R8
	VPBROADCASTQ R8, Z22
	MOVL $63, R8
	VPBROADCASTQ R8, Z23
	MOVL $0x3ff, R8
	VPBROADCASTQ R8, Z24
	MOVL $0xffffffff, R8
	VPBROADCASTQ R8, Z25
	MOVL $0x3fffff, R8
	VPBROADCASTQ R8, Z26 // segMask
	VMOVDQU64 eo<>+0(SB), Z27
	VMOVDQU64 eo<>+64(SB), Z28
loop:
	CMPQ SI, DX
	JGE done
	TAILMASK
	MOVQ SI, R11
	SHLQ $4, R11
	VMOVDQU64 (R10)(R11*1), Z2
	VMOVDQU64 64(R10)(R11*1), Z3
	VMOVDQA64 Z2, Z4
	VPERMT2Q Z3, Z27, Z4            // start | def<<32
	VPERMT2Q Z3, Z28, Z2            // x
	VPMOVQ2M Z4, K3                 // hdrIx
	KANDB K1, K3, K3                // the lanes with an index
	KANDNB K1, K3, K4               // the others
	LANEBITS(K4)
	VMOVDQU64.Z (R12)(SI*8), K3, Z6 // hi
	VPSRLQ $16, Z6, Z6
	VPANDQ Z22, Z6, Z6              // s
	VPSRLQ $10, Z6, Z7
	VPANDNQ Z23, Z7, Z7             // ^(s>>10) & 63
	VPSLLVQ Z7, Z2, Z2
	VMOVDQA64.Z Z2, K3, Z2          // l0 (0 for the others)
	VMOVDQU64 Z2, K1, (BX)(SI*8)
	VPSRLQ $63, Z2, Z7
	VPSLLQ $10, Z7, Z7
	VPANDQ Z24, Z6, Z6
	VPORQ Z7, Z6, Z6
	MOVQ sl+32(FP), R8
	VPMOVQW Z6, K3, (R8)(SI*2)      // sl
	VPANDQ Z25, Z4, Z6              // start
	VPSRLQ $22, Z6, Z7
	VPMINUQ Z20, Z7, Z7
	VPSLLQ $1, Z7, Z8
	VPADDQ Z7, Z8, Z7               // 3 words per slice header
	MOVQ e2+40(FP), R8
	KMOVB K3, K2
	VPXORQ Z8, Z8, Z8
	VPGATHERQQ (R8)(Z7*8), K2, Z8   // the segments' first entries
	VPANDQ Z26, Z6, Z6
	VPSLLQ $3, Z6, Z6
	VPADDQ Z6, Z8, Z8
	VMOVDQA64 Z21, K4, Z8
	VMOVDQU64 Z8, K1, (DI)(SI*8)    // tab
	ADDQ $8, SI
	JMP loop
done:
	MOVQ AX, other+72(FP)
	VZEROUPPER
	RET

// func values2Vec(tab *[64]tptr, q *[64]uint32, hs *[64]hdr6, idx *[64]uint8, o *uint32, m int) (l3 uint64)
//
// v = uint32(the word at q), or if 0 the header's default (def &^
// hdrIx); o[idx[lane]] = v; bit j of l3: lane j's v has refFlag (an L3
// table: the caller finishes it).
TEXT ·values2Vec(SB), NOSPLIT, $0-56
	MOVQ tab+0(FP), DI
	MOVQ q+8(FP), BX
	MOVQ hs+16(FP), R10
	MOVQ idx+24(FP), R12
	MOVQ o+32(FP), R13
	MOVQ m+40(FP), DX
	XORQ SI, SI
	XORQ R9, R9
	XORQ AX, AX
	MOVL $0x7fffffff, R8
	VPBROADCASTD R8, Y20
	VMOVDQU64 defs<>(SB), Z21
loop:
	CMPQ SI, DX
	JGE done
	TAILMASK
	VPMOVZXDQ (BX)(SI*4), Z3
	GATHER(Z3, Z2)
	VPMOVQD Z2, Y4                  // v
	MOVQ SI, R11
	SHLQ $4, R11
	VMOVDQU64 (R10)(R11*1), Z5
	VMOVDQU64 64(R10)(R11*1), Z6
	VPERMT2D Z6, Z21, Z5            // def
	VPANDD Y20, Y5, Y5              // best
	VPTESTNMD Y4, Y4, K3
	VMOVDQA32 Y5, K3, Y4            // v, or best if 0
	VPMOVD2M Y4, K4                 // refFlag: L3
	KANDB K1, K4, K4
	LANEBITS(K4)
	VPMOVZXBD (R12)(SI*1), Y6
	KMOVB K1, K2
	VPSCATTERDD Y4, K2, (R13)(Y6*4) // o[idx]
	ADDQ $8, SI
	JMP loop
done:
	MOVQ AX, l3+48(FP)
	VZEROUPPER
	RET
