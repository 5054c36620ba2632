//go:build amd64

package fib

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// The arithmetic of the IPv4 batch lookup's stages in AVX-512
// (lookup4_amd64.s), for the CPUs that have it: eight lanes a step, a
// dozen vector instructions (variable shifts per lane without CL,
// VPOPCNTQ) instead of ~32 (prepPop) and ~13 (the range's address in
// ranges) scalar instructions per address. The loads that miss (the dir
// entries, the word pairs, the ranges) stay in Go's bare load loops:
// gathers of them (VPGATHERQQ) made the whole-table lookup about twice as
// slow on this machine (AMD EPYC), though they were a little faster with
// the probes in cache. prep4Vec does what prepPop does on the same block
// state, except that it returns the addresses without a bitmap index as a
// mask (bit i: address i; others4 lists them), having set their p to
// t.none and m to their dir entry's low word; rangeAddrs4Vec sets p to
// the address of the range, which rangeVals reads. Lanes past the count
// are masked off. TestStages4Vec compares them with the Go stages, and
// the differential tests run the whole lookup both ways (lookupBlocksV).

// vec4OK reports whether this CPU runs the AVX-512 stages: AVX-512 F, DQ
// (KMOVB, VPMOVD2M), VL (the 256-bit forms) and VPOPCNTDQ, and BMI2
// (BZHI), with the OS saving the 512-bit state (x/sys/cpu checks that).
func vec4OK() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VPOPCNTDQ && cpu.X86.HasBMI2
}

// prep4Vec is tab4.prepPop over the n addresses at d (dirsOnly stored
// no copy in m), except that it returns the addresses without a bitmap
// index as a mask and lists none.
//
//go:noescape
func prep4Vec(w *[batchLen + 1]uint64, p *[batchLen + 1]uintptr, m *[batchLen]uint32, d *uint32, segs unsafe.Pointer, none uintptr, n int) (others uint64)

// prep4VecP is prep4Vec for a table of at most 32 segments, whose
// addresses segs lists (two permutes instead of the gather).
//
//go:noescape
func prep4VecP(w *[batchLen + 1]uint64, p *[batchLen + 1]uintptr, m *[batchLen]uint32, d *uint32, segs *[32]uintptr, none uintptr, n int) (others uint64)

// rangeAddrs4Vec sets p to the address of the range of the first n
// addresses: p + 4*(int64(w)>>32 + popcount(uint32(w) & m)), as ranges
// computes it.
//
//go:noescape
func rangeAddrs4Vec(w *[batchLen + 1]uint64, p *[batchLen + 1]uintptr, m *[batchLen]uint32, n int)
