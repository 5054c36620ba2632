//go:build !amd64

package fib

import "unsafe"

// Without AVX-512 stages (lookup4_amd64.go) the Go stages run.

func vec4OK() bool { return false }

func prep4Vec(w *[batchLen + 1]uint64, p *[batchLen + 1]uintptr, m *[batchLen]uint32, d *uint32, segs unsafe.Pointer, none uintptr, n int) (others uint64) {
	panic("fib: no vector stages on this architecture")
}

func rangeAddrs4Vec(w *[batchLen + 1]uint64, p *[batchLen + 1]uintptr, m *[batchLen]uint32, n int) {
	panic("fib: no vector stages on this architecture")
}

func prep4VecP(w *[batchLen + 1]uint64, p *[batchLen + 1]uintptr, m *[batchLen]uint32, d *uint32, segs *[32]uintptr, none uintptr, n int) (others uint64) {
	panic("fib: no vector stages on this architecture")
}
