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
// (VPMOVQ2M) and VPOPCNTDQ, and BMI2 (BZHI), with the OS saving the
// 512-bit state (x/sys/cpu checks that).
func vec6OK() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VPOPCNTDQ && cpu.X86.HasBMI2
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
