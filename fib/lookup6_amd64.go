//go:build amd64

package fib

import "golang.org/x/sys/cpu"

// The IPv6 batch lookup's index stages in AVX-512 (lookup6_amd64.s), for
// the CPUs that have it: eight lanes a step, each step one gather of the
// eight lanes' words and a few vector instructions, instead of ~20-40
// scalar instructions per lane (two or three popcounts, each behind Go's
// CPU-feature check at GOAMD64=v1, and variable shifts through CL). Each
// function does exactly what the Go stage of the same name does (words1,
// level1, groups in table.go), on the same block state, and stores nothing
// for the lanes from n (or m) on: TestStages6Vec compares them on random
// states, and the differential tests run the whole lookup both ways
// (lookupBlocksV). Lanes past the count are masked off, so the gathers
// never read through their stale table addresses.

// vec6OK reports whether this CPU runs the AVX-512 stages: AVX-512 F, DQ
// (VPMOVQ2M, VPMOVD2M), BW (VPSHUFB, 64-bit masks), VL (256-bit forms),
// VPOPCNTDQ and VBMI2 (VPCOMPRESSB), BMI2 (BZHI) and POPCNT, with the OS
// saving the 512-bit state (x/sys/cpu checks that).
func vec6OK() bool {
	x := &cpu.X86
	return x.HasAVX512F && x.HasAVX512DQ && x.HasAVX512BW && x.HasAVX512VL &&
		x.HasAVX512VPOPCNTDQ && x.HasAVX512VBMI2 && x.HasBMI2 && x.HasPOPCNT
}

// words1Vec is blk6.words1 over the first n lanes (the L1 index words).
//
//go:noescape
func words1Vec(tab *[batchLen]tptr, q *[batchLen]uint32, hi *[batchLen]uint64, n int)

// level1Vec is blk6.level1 over the first m lanes (the L2 level-1 words).
//
//go:noescape
func level1Vec(tab *[batchLen]tptr, q *[batchLen]uint32, l0 *[batchLen]uint64, sl *[batchLen]uint16, msk *[batchLen]uint32, m int)

// groupsVec is blk6.groups over the first m lanes (the L2 group words),
// except that it returns the deep lanes as a mask (bit j: lane j) rather
// than listing them.
//
//go:noescape
func groupsVec(tab *[batchLen]tptr, q *[batchLen]uint32, msk *[batchLen]uint32, m int) (deep uint64)

// prep1Vec is tab6.prep1 over n lanes whose hi the caller has set,
// except that it returns the lanes it leaves to others1 as a mask (bit i:
// lane i) rather than listing them: top is the table's dir, e16 and ns its
// L1 segment list (the segment ids of dir entries are below ns, a writer
// invariant; the stage clamps them to it all the same), z its zero word.
//
//go:noescape
func prep1Vec(hi *[batchLen]uint64, tab *[batchLen]tptr, q *[batchLen]uint32, top *[256]*dirPage, e16 *[]uint64, ns int, z *uint64, n int) (other uint64)

// values1Vec is blk6.values1 over the n lanes with out at o; it also
// stores the L1 values and the addresses' top halves (hi) of the lanes it
// lists in v1 and h2, in lane order.
//
//go:noescape
func values1Vec(tab *[batchLen]tptr, q *[batchLen]uint32, o *uint32, idx *[batchLen]uint8, hi *[batchLen]uint64, v1 *[batchLen]uint32, h2 *[batchLen]uint64, n int) (m int)

// headersVec is tab6.headers over m lanes whose L1 values are in v1, with
// the header pages hdrs (nh of them). It writes the hs of the whole last
// step (the lanes past m get zeros).
//
//go:noescape
func headersVec(v1 *[batchLen]uint32, hs *[batchLen]hdr6, hdrs **hdrPage, nh int, m int)

// prep2Vec is tab6.prep2 over m lanes whose addresses' top halves are in
// h2 (e2 and ns: the L2 segment list, z: the zero word), except that it
// returns the lanes it leaves to other2 as a mask rather than listing
// them.
//
//go:noescape
func prep2Vec(hs *[batchLen]hdr6, h2 *[batchLen]uint64, tab *[batchLen]tptr, l0 *[batchLen]uint64, sl *[batchLen]uint16, e2 *[]uint64, ns int, z *uint64, m int) (other uint64)

// values2Vec is tab6.values2 over m lanes with out at o, except that it
// leaves the lanes whose value refers to an L3 table to the caller: it
// stores that value in out and returns them as a mask.
//
//go:noescape
func values2Vec(tab *[batchLen]tptr, q *[batchLen]uint32, hs *[batchLen]hdr6, idx *[batchLen]uint8, o *uint32, m int) (l3 uint64)
