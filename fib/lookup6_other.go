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
