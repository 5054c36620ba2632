//go:build amd64

package lagg

import (
	"unsafe"

	"github.com/fwdd/fwdd/mbuf"
	"golang.org/x/sys/cpu"
)

// split_amd64.s reads an mbuf's Flags and Hash as the little-endian
// 64-bit word at offset 24 (Flags in bits 16-31, Hash in 32-63) and
// mbuf.FlagTxHash as bit 22 of it: compile-time checks of that layout (a
// constant index out of range does not compile).
var (
	_ = [1]struct{}{}[unsafe.Offsetof(mbuf.Mbuf{}.Flags)-26]
	_ = [1]struct{}{}[unsafe.Offsetof(mbuf.Mbuf{}.Hash)-28]
	_ = [1]struct{}{}[mbuf.FlagTxHash-1<<6]
)

// splitVecOK reports whether this CPU runs split2Vec: AVX-512 F and DQ
// (VPCOMPRESSQ, byte-wide mask registers) and POPCNT, with the OS saving
// the 512-bit state (x/sys/cpu checks that).
func splitVecOK() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasPOPCNT
}

// split2Vec is split2 (the same result: b0 and b1 hold member 0's and
// member 1's frames of ms in order, c1 is member 1's count, member 0's is
// len(ms)-c1; ok is false when a frame of ms lacks mbuf.FlagTxHash, and
// the buffers are then meaningless), eight frames at a time: the hash and
// flags word of eight mbufs (scalar loads, one 64-bit word each: Flags and
// Hash, mbufHashWord) gives one byte of member bits, and the frames go to
// their member's buffer with one VPCOMPRESSQ and one 64-byte store per
// member. Each store writes eight slots from the member's count on:
// b0 and b1 have 8 slots after maxBurst for that (memberBuf). len(ms) is at
// most maxBurst. split_amd64.s; TestSplit2Vec compares it with split2.
//
// Why the stores without Go's write barrier are safe: the pointers are
// *mbuf.Mbuf, which live outside the Go heap (mbuf: the pool mmaps them),
// so the collector neither follows nor moves them; b0 and b1 are the
// queue owner's scratch (one goroutine).
//
//go:noescape
func split2Vec(ms []*mbuf.Mbuf, b0, b1 *[memberBuf]*mbuf.Mbuf) (c1 uint, ok bool)
