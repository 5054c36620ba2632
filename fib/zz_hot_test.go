package fib

import "testing"

// BenchmarkZZHot6: the same 64 addresses over and over (all in cache).
func BenchmarkZZHot6(b *testing.B) {
	fixture(b)
	s := benchOnce.f.Load()
	var out [64]uint32
	p := benchOnce.p6[:64]
	n := 0
	cpu0 := startRate(b)
	for i := 0; i < b.N; i += 64 {
		s.Lookup6Batch(0, p, out[:])
		n += 64
	}
	sink += out[0]
	reportRate(b, n, cpu0)
}

// BenchmarkZZWarm6: 4096 addresses cycled.
func BenchmarkZZWarm6(b *testing.B) {
	fixture(b)
	s := benchOnce.f.Load()
	var out [64]uint32
	p := benchOnce.p6[:4096]
	n := 0
	cpu0 := startRate(b)
	for i := 0; i < b.N; i += 64 {
		j := i & 4095
		s.Lookup6Batch(0, p[j:j+64], out[:])
		n += 64
	}
	sink += out[0]
	reportRate(b, n, cpu0)
}
