//go:build !amd64

package fib

// Without AVX-512 stages (lookup6_amd64.go) the Go stages run.

func vec6OK() bool { return false }

func words1Vec(tab *[batchLen]tptr, q *[batchLen]uint32, hi *[batchLen]uint64, n int) {
	panic("fib: no vector stages on this architecture")
}

func level1Vec(tab *[batchLen]tptr, q *[batchLen]uint32, l0 *[batchLen]uint64, sl *[batchLen]uint16, msk *[batchLen]uint32, m int) {
	panic("fib: no vector stages on this architecture")
}

func groupsVec(tab *[batchLen]tptr, q *[batchLen]uint32, msk *[batchLen]uint32, m int) (deep uint64) {
	panic("fib: no vector stages on this architecture")
}

func prep1Vec(hi *[batchLen]uint64, tab *[batchLen]tptr, q *[batchLen]uint32, top *[256]*dirPage, e16 *[]uint64, ns int, z *uint64, n int) (other uint64) {
	panic("fib: no vector stages on this architecture")
}

func values1Vec(tab *[batchLen]tptr, q *[batchLen]uint32, o *uint32, idx *[batchLen]uint8, hi *[batchLen]uint64, v1 *[batchLen]uint32, h2 *[batchLen]uint64, n int) (m int) {
	panic("fib: no vector stages on this architecture")
}

func headersVec(v1 *[batchLen]uint32, hs *[batchLen]hdr6, hdrs **hdrPage, nh int, m int) {
	panic("fib: no vector stages on this architecture")
}

func prep2Vec(hs *[batchLen]hdr6, h2 *[batchLen]uint64, tab *[batchLen]tptr, l0 *[batchLen]uint64, sl *[batchLen]uint16, e2 *[]uint64, ns int, z *uint64, m int) (other uint64) {
	panic("fib: no vector stages on this architecture")
}

func values2Vec(tab *[batchLen]tptr, q *[batchLen]uint32, hs *[batchLen]hdr6, idx *[batchLen]uint8, o *uint32, m int) (l3 uint64) {
	panic("fib: no vector stages on this architecture")
}
