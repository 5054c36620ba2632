package fib

// Range tables: the building block of every level below the direct table.
//
// A range table covers the whole key space of one level (for example the low
// 16 bits of an IPv4 address under one /16). It is a sorted list of range
// starts keys[0] = 0 < keys[1] < ... with one value each; an address k maps
// to the value of the last start <= k. Tables are built from the prefixes of
// one region by a sweep over their nested intervals, so a region with n
// prefixes gives at most 2n+1 ranges, and adjacent ranges with the same value
// are merged.

type rangeKey interface{ ~uint16 | ~uint32 | ~uint64 }

// rangeEnt is one interval to sweep: [start, end] inclusive with value v.
// Entries must be sorted by start ascending, then by length ascending (the
// wider interval first), so a nested interval always follows its cover.
type rangeEnt[K rangeKey] struct {
	start, end K
	plen       uint8  // prefix length within the level, for sorting only
	v          uint32 // value (next-hop id, or refFlag|header id)
	under      uint32 // out: the value below this entry (set by sweep)
}

func lessEnt[K rangeKey](a, b rangeEnt[K]) int {
	if a.start != b.start {
		if a.start < b.start {
			return -1
		}
		return 1
	}
	return int(a.plen) - int(b.plen)
}

// sweep appends the range table of ents (sorted, see rangeEnt) over default
// value def to keys/vals and returns the grown slices. It records in each
// entry the value it covers (under), used as the inherited default of
// child tables.
func sweep[K rangeKey](ents []rangeEnt[K], def uint32, keys []K, vals []uint32, st []rangeEnt[K]) ([]K, []uint32, []rangeEnt[K]) {
	base := len(keys)
	keys = append(keys, 0)
	vals = append(vals, def)
	emit := func(pos K, v uint32) {
		last := len(keys) - 1
		if keys[last] == pos {
			vals[last] = v
			if last > base && vals[last-1] == v {
				keys = keys[:last]
				vals = vals[:last]
			}
			return
		}
		if vals[last] == v {
			return
		}
		keys = append(keys, pos)
		vals = append(vals, v)
	}
	top := func() uint32 {
		if len(st) == 0 {
			return def
		}
		return st[len(st)-1].v
	}
	pop := func() {
		e := st[len(st)-1].end
		st = st[:len(st)-1]
		if e == ^K(0) {
			return
		}
		emit(e+1, top())
	}
	st = st[:0]
	for i := range ents {
		e := &ents[i]
		for len(st) > 0 && st[len(st)-1].end < e.start {
			pop()
		}
		e.under = top()
		emit(e.start, e.v)
		st = append(st, *e)
	}
	for len(st) > 0 {
		pop()
	}
	return keys, vals, st
}

// search returns the index of the last key <= k. keys[0] must be 0.
// The loop count depends only on len(keys). The step compiles to a branch:
// for one address at a time that is faster than a conditional move, since
// the CPU speculatively issues the next load (the batch path, which gets its
// parallelism from other addresses, uses conditional moves instead).
func search[K rangeKey](keys []K, k K) int {
	i := 0
	n := len(keys)
	for n > 1 {
		h := n >> 1
		if keys[i+h] <= k {
			i += h
		}
		n -= h
	}
	return i
}
