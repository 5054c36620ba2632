package mbuf

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file holds the package's use of x/sys/unix and the one conversion of
// raw memory to Mbuf structs.

// mapAnon maps n bytes of zeroed anonymous memory outside the Go heap,
// populated up front so that the fast path takes no page faults.
func mapAnon(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
}

func unmap(b []byte) { _ = unix.Munmap(b) }

// mbufsIn views count Mbuf structs in meta. Safe: meta is page-aligned (so
// 64-byte aligned), holds count*mbufSize bytes, is not Go heap memory, and
// lives until the pool unmaps it; Mbuf's only pointer field refers to
// off-heap memory as well, so the garbage collector needs to see none of it.
func mbufsIn(meta []byte, count int) []Mbuf {
	return unsafe.Slice((*Mbuf)(unsafe.Pointer(unsafe.SliceData(meta))), count)
}
