package fib

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugeSize is the size of an x86-64 / arm64 transparent huge page.
const hugeSize = 2 << 20

// adviseHuge asks the kernel to back the memory of s with transparent huge
// pages and to collapse it into huge pages now (MADV_COLLAPSE, Linux 6.1+).
// Lookups touch the arenas at random, so with 4 KiB pages nearly every
// lookup also misses the TLB (and, in a VM, pays a two-dimensional page
// walk); with 2 MiB pages the whole structure needs a handful of entries.
//
// Why this is safe: the range is rounded out to huge-page boundaries, so it
// may cover Go heap memory next to s; both advices only change how the
// kernel backs the pages, never their contents (MADV_COLLAPSE copies the
// data into the huge page; concurrent readers see the same bytes), and the
// call passes addresses only as integers, so no Go pointer is made from
// them. Errors (no THP support, unmapped neighbours, EAGAIN) only mean no
// huge pages: they are ignored.
func adviseHuge[T any](s []T) {
	if cap(s) == 0 {
		return
	}
	var z T
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	n := uintptr(cap(s)) * unsafe.Sizeof(z)
	if n < hugeSize/4 {
		return
	}
	start := p &^ (hugeSize - 1)
	end := (p + n + hugeSize - 1) &^ (hugeSize - 1)
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_HUGEPAGE)
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_COLLAPSE)
}
