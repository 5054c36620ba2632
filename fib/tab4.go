package fib

import (
	"encoding/binary"
	"math/bits"
	"runtime"
	"slices"
	"unsafe"
)

// The IPv4 lookup structure: a direct table on the top 16 bits (dir pages,
// see table.go) and, below a /16 with longer prefixes, one range table
// with an index: a bitmap index (one or two levels) for every table that
// fits the bound (all but 3 of the full table's 25.4k), a bucket index for
// the others.
//
// A range table of r ranges is r uint32 entries key<<16 | value (value: an
// index into tab4.nh), sorted by key, the first key 0; an address maps to
// the last key <= its low 16 bits. After the ranges comes the index.
//
// Bitmap index (since 2026-11-30, third session; addPop): if every range
// starts at a multiple of 2^(16-b) (b >= 5; b = 8 for a table of /24s and
// shorter, which is almost every table of the Internet's table), the key
// space is cut into 2^b units and a bitmap marks the units ranges start
// at; per 32 units the bitmap word is followed by a count word (the ranges
// starting before). The range of a key is the count plus the bits set up
// to its unit: one pair of words read, a popcount, no search. A table gets
// one if it then takes at most 4.2n + x entries for a region of n prefixes
// (x = 48 with the default arenas), the bound the capacity limits assume
// (tableBound4); else a two-level one (below) if that fits: 99.996 % of the
// lookups of the benchmark's probes over the full table (0.12 % continue
// in a sub-table).
//
// Bucket index (tables where no bitmap index fits, such as /32s spread
// over a /16): the key space is cut into 2^b equal buckets (b from 0 to 16), and
// bucket j holds the index of the range containing the bucket's first key
// j<<(16-b). So the range of a key k in bucket j is one of those from
// bucket[j] up to bucket[j+1], and the table's dir entry records how many
// that can be at most (as search rounds: a window of 2^rounds ranges). A
// lookup reads the dir entry, one bucket, and searches a window of a few
// ranges (one cache line, usually): three dependent loads and a few
// instructions, where a summary search took four or five rounds of a
// binary search before the block search (until 2026-11-30).
//
// Buckets are 1, 2 or 4 bytes wide (tables of up to 256, up to 65536, or
// more ranges), packed little-endian into uint32 words (the lookups read
// words natively: little-endian CPUs, amd64 and arm64; the bitmap index's
// word pairs are read as one uint64 the same way). The writer picks the
// fewest bucket bits that give the fewest rounds the table's memory
// budget allows: bucket bytes <= bucketBudget per range (at least one
// word), so a table takes at most r + r*bucketBudget/4 + 1 entries.

// bucketBudget is the bucket bytes a table may spend per range.
const bucketBudget = 2

// IPv4 dir entry of a range table: chunkFlag, the position (bits 0-31:
// segment id and offset), and the layout (for a bitmap index: the ranges,
// 16 - the bitmap's bits in the shift field, wsPop in the width field).
const (
	r4Shift = 32 // ranges, 18 bits (at most 2*65536+1)
	b4Shift = 50 // 16 - bucket bits (the bucket's shift), 5 bits (0-16)
	w4Shift = 55 // log2 of the bucket width in bytes, 2 bits (0-2)
	s4Shift = 57 // search rounds, 5 bits (0-17)
	r4Mask  = 1<<18 - 1
	// wsPop in the width field marks a bitmap index (see popWords); the
	// bucket-shift field then holds 16 - the bitmap's bits.
	wsPop = 3
	// popFlag marks the dir entry of a table with a bitmap index (with
	// chunkFlag: such entries are the greatest, one comparison finds them).
	popFlag = 1 << 62
)

// layout4 is the shape of an IPv4 range table.
type layout4 struct {
	r      uint32 // ranges
	b      uint32 // bucket bits
	ws     uint32 // log2 of the bucket width in bytes
	rounds uint32 // search rounds: a window of 2^rounds ranges
}

// ent returns the dir entry of a table with layout l at position pos. The
// entry of a table with a bitmap index holds the position of the index
// (pos + l.r, in the same segment): a lookup needs no other (pos4).
func (l layout4) ent(pos uint32) uint64 {
	var f uint64
	if l.ws == wsPop {
		pos += l.r
		f = popFlag
	}
	return chunkFlag | f | uint64(l.rounds)<<s4Shift | uint64(l.ws)<<w4Shift | uint64(16-l.b)<<b4Shift |
		uint64(l.r)<<r4Shift | uint64(pos)
}

// pos4 returns the position of the range table of IPv4 dir entry e (of
// its first range).
func pos4(e uint64) uint32 {
	l := lay4(e)
	if l.ws == wsPop {
		return uint32(e) - l.r
	}
	return uint32(e)
}

// lay4 returns the layout of the range table of IPv4 dir entry e.
func lay4(e uint64) layout4 {
	return layout4{r: uint32(e>>r4Shift) & r4Mask, b: 16 - uint32(e>>b4Shift)&31,
		ws: uint32(e>>w4Shift) & 3, rounds: uint32(e>>s4Shift) & 31}
}

// bucketWords is the size of the bucket or bitmap index in uint32 entries.
func (l layout4) bucketWords() int {
	if l.ws == wsPop {
		return popWords(l.b)
	}
	return (1<<l.b<<l.ws + 3) / 4
}

// popWords is the size in uint32 entries of a bitmap index of 2^b bits
// (b >= 5): per 32 bits, the bitmap word and a count word.
func popWords(b uint32) int { return 1 << (b - 4) }

// popBits is the fewest bitmap bits (at least 5) whose units start every
// range of the table keys (entries key<<16 | value, the first key 0): 16
// less the trailing zero bits of the key with the fewest.
func popBits(keys []uint32) uint32 {
	var or uint32
	for _, x := range keys {
		or |= x >> 16
	}
	if or == 0 {
		return 5
	}
	return max(5, 16-uint32(bits.TrailingZeros32(or)))
}

// words is the arena length of the table.
func (l layout4) words() int { return int(l.r) + l.bucketWords() }

// span4 is the arena length of the range table of IPv4 dir entry e.
func span4(e uint64) int { return lay4(e).words() }

// tableBound4 is the most entries the IPv4 range table of a region with
// n prefixes can take (seg.go's tableBound for the indexed layout) in a
// family whose tables may take x entries more for a bitmap index
// (extra4): 4.2n + x, the bound the capacity limits assume
// (TestLimitsFit), or more if a table of at most 2n+1 ranges (and at most
// 65536) with a bucket index within the budget needs it (it never does).
// A table gets a bitmap index (one or two levels) if that fits the bound.
func tableBound4(n, x int) int {
	r := min(2*n+1, 1<<16) // keys are distinct 16-bit values
	l := layout4{r: uint32(r), ws: bucketWidth(r)}
	l.b = maxBucketBits(r, l.ws)
	return max(l.words(), 42*n/10+x)
}

// popExtra is the most entries a region's table may take beyond 4.2n for a
// bitmap index: small tables (16 words of bitmap for a few /24s) and
// two-level indexes (a sub-table for a /25-/32 among /24s). With it all
// but 3 of the full table's 25.4k tables have a bitmap index.
const popExtra = 48

// extra4 returns the entries beyond 4.2n that an IPv4 table may take in
// an arena of segs segments of seglen entries (tableBound4's x): popExtra,
// or less where the arena could not hold that much for every region of a
// family at the prefix limit (FIBs.limits: seglen*segs/16 prefixes, at most
// 65536 regions). A rebuild of a family of e entries fills fewer than
// 2e/seglen + 1 segments, so e may be up to (segs-2)*seglen/2: 4.2 entries
// per prefix take about half of that, x per region at most the rest (with
// the default arenas 242 entries; tests' tiny arenas 1-3).
func extra4(segs, seglen int) int {
	p := segs * seglen / 16
	regions := min(p, 1<<16)
	return min(popExtra, max(0, ((segs-2)*seglen/2-42*p/10)/regions))
}

// maxBucketBits is the most bucket bits the budget allows a table of r
// ranges with buckets of 1<<ws bytes.
func maxBucketBits(r int, ws uint32) uint32 {
	budget := max(r*bucketBudget, 4)
	b := uint32(0)
	for b < 16 && 2<<b<<ws <= budget {
		b++
	}
	return b
}

// bucketWidth is log2 of the bytes a bucket of a table of r ranges needs.
func bucketWidth(r int) uint32 {
	switch {
	case r <= 1<<8:
		return 0
	case r <= 1<<16:
		return 1
	}
	return 2
}

// addBuckets appends the index of the range table out[base:] to out and
// returns out, the table's layout and buf (scratch, grown if needed). The
// index is a bitmap index (addPop) if the table then takes at most limit
// entries, else a bucket index (which always fits tableBound4).
//
// The layout has the fewest bucket bits with the fewest rounds the budget
// allows. A lookup's window in bucket j is one plus the keys strictly
// inside it (after its first key); these counts come from one pass over
// the keys at the most bits, then pairwise for fewer bits: at b-1 bits,
// bucket J has the inside keys of bucket 2J at b bits and all keys of
// bucket 2J+1.
func addBuckets(out []uint32, base int, buf []uint32, limit int) ([]uint32, layout4, []uint32) {
	keys := out[base:]
	r := len(keys)
	b := popBits(keys)
	if r+popWords(b) <= limit {
		return addPop(out, base, b), layout4{r: uint32(r), b: b, ws: wsPop}, buf
	}
	if b1, before := pop2Bits(keys, b, limit); b1 != 0 {
		out, buf = addPop2(out, base, b1, buf)
		return out, layout4{r: uint32(before), b: b1, ws: wsPop}, buf
	}
	l := layout4{r: uint32(r), ws: bucketWidth(r)}
	b = maxBucketBits(r, l.ws)
	nb := 1 << b
	if cap(buf) < 2*nb {
		buf = make([]uint32, 2*nb)
	}
	buf = buf[:2*nb]
	clear(buf)
	all, in := buf[:nb], buf[nb:]
	s := 16 - b
	most := uint32(0)
	for _, x := range keys {
		k := x >> 16
		all[k>>s]++
		if k&(1<<s-1) != 0 {
			in[k>>s]++
			most = max(most, in[k>>s])
		}
	}
	l.b, l.rounds = b, uint32(bits.Len32(most)) // windows of 1+most ranges
	for b > 0 {
		nb >>= 1
		most = 0
		for j := range nb {
			in[j] = in[2*j] + all[2*j+1]
			all[j] = all[2*j] + all[2*j+1]
			most = max(most, in[j])
		}
		all, in = all[:nb], in[:nb]
		b--
		if uint32(bits.Len32(most)) != l.rounds {
			break
		}
		l.b = b
	}
	n := len(out)
	words := l.bucketWords()
	out = slices.Grow(out, words)[:n+words]
	clear(out[n:])
	keys = out[base : base+r]
	// Bucket j gets the last range whose key is <= j<<s: range i fills the
	// buckets from the one after the last bucket of range i-1 to the one
	// before the first bucket starting at or after key i+1.
	bk := unsafe.Slice((*byte)(unsafe.Pointer(&out[n])), words*4)
	s = 16 - l.b
	j, nbk := uint32(0), uint32(1)<<l.b
	for i := range uint32(r) {
		end := nbk
		if int(i)+1 < r {
			end = (keys[i+1]>>16 + 1<<s - 1) >> s
		}
		for ; j < end; j++ {
			switch l.ws {
			case 0:
				bk[j] = byte(i)
			case 1:
				binary.LittleEndian.PutUint16(bk[2*j:], uint16(i))
			default:
				binary.LittleEndian.PutUint32(bk[4*j:], i)
			}
		}
	}
	return out, l, buf
}

// addPop appends the bitmap index of 2^b bits of the range table out[base:]
// to out and returns out. Unit u (keys u<<(16-b) and up) has bit u&31 of
// bitmap word u>>5, set if a range starts at the unit's first key; every
// range starts at one (popBits). Each bitmap word is followed by a count
// word: the ranges starting in the units before the word's, minus one,
// counted from the bitmap word (less its distance from the first range,
// wrapping around). So the range of key k, in unit u = k>>(16-b), is the
// bitmap word's position plus the count word plus the set bits of the
// bitmap word up to bit u&31: one pair of words, no search, and a lookup
// needs no other position than the pair's.
func addPop(out []uint32, base int, b uint32) []uint32 {
	n := len(out)
	words := popWords(b)
	out = slices.Grow(out, words)[:n+words]
	clear(out[n:])
	s := 16 - b
	for _, x := range out[base:n] {
		u := x >> 16 >> s
		out[n+int(u>>5)*2] |= 1 << (u & 31)
	}
	popCounts(out[:n+words], n, base)
	return out
}

// popCounts sets the count words of the bitmap index out[w0:] of the
// ranges starting at out[base]: each the ranges before its bitmap word's
// units, minus one, less the word's distance from base (wrapping around).
func popCounts(out []uint32, w0, base int) {
	c := ^uint32(0)
	for w := w0; w < len(out); w += 2 {
		out[w+1] = c - uint32(w-base)
		c += uint32(bits.OnesCount32(out[w]))
	}
}

// Two-level bitmap index (since 2026-11-30, seventh session; addPop2): a
// table whose single-level bitmap would exceed the bound (a prefix longer
// than the units it can afford: a /25-/32 among /24s, or a small table)
// gets a first-level bitmap of 2^b units (b < the bits its keys need) in
// which the units where a range starts off the unit's first key ("sub
// units") continue in a sub-table of their own. A sub unit's first-level
// range has value index subLeaf (t.nh[subLeaf] is subMark, which no
// next-hop id is) and, in its key's place, the distance in entries from it
// to the sub-table's bitmap index, which has a bit per key of the unit (at
// least one word pair) over the sub-table's ranges: the one covering the
// unit's first key, then those starting inside the unit (keys absolute).
// The unit after a sub unit always has a first-level range of its own (the
// value the sub unit ends with), so an address outside a sub unit never
// reaches its sub-table. Layout: the first-level ranges, the sub-tables
// (ranges, then index words), then the first-level index words, where the
// dir entry points; the dir entry's range field counts everything before
// them. The canonical ranges are the first-level ranges with each marker
// replaced by its sub-table's ranges, equal neighbours merged (ranges4).

// subLeaf is the value index of the first-level range of a sub unit, and
// subMark the next-hop id t.nh holds for it: no route's (ids are below
// 2^31), so the batch lookup finds those addresses by the top bit of what
// it read (lookupBlocks).
const (
	subLeaf = 1
	subMark = 1 << 31
)

// subWords is the size of a sub-table's index (one bit per key) for
// first-level units of 2^s keys: at least one word pair.
func subWords(s uint32) int { return 1 << (max(s, 5) - 4) }

// pop2Bits returns the first-level bits (5 to b-1) of the smallest
// two-level index with which the table of ranges keys (key<<16 | value,
// needing b bitmap bits) takes at most limit entries, and the entries
// before its first-level index; 0 if there is none.
func pop2Bits(keys []uint32, b uint32, limit int) (b1 uint32, before int) {
	best := limit + 1
	for c := uint32(5); c < b; c++ {
		size, bf := pop2Size(keys, c)
		if size < best && bf < 1<<16 { // the distances are 16-bit
			best, b1, before = size, c, bf
		}
	}
	return b1, before
}

// pop2Size returns the size in entries of the table of ranges keys with a
// two-level index of 2^b first-level units, and the entries before its
// first-level index.
func pop2Size(keys []uint32, b uint32) (size, before int) {
	s := 16 - b
	low := uint32(1)<<s - 1
	r1, in, subs := 0, 0, 0
	for i := 0; i < len(keys); {
		k := keys[i] >> 16
		u := k >> s
		j := i + 1
		for j < len(keys) && keys[j]>>16>>s == u {
			j++
		}
		r1++
		if j-i > 1 || k&low != 0 {
			subs++
			in += j - i
			if k&low != 0 {
				in++ // the range covering the unit's first key
			}
			if u+1 < 1<<b && (j == len(keys) || keys[j]>>16>>s != u+1) {
				r1++ // the unit after it
			}
		}
		i = j
	}
	before = r1 + in + subs*subWords(s)
	return before + popWords(b), before
}

// addPop2 rewrites the range table out[base:] (ranges only) with a
// two-level bitmap index of 2^b first-level units (see above) and returns
// out and buf (scratch, grown if needed).
func addPop2(out []uint32, base int, b uint32, buf []uint32) ([]uint32, []uint32) {
	keys := append(buf[:0], out[base:]...)
	size, before := pop2Size(keys, b)
	s := 16 - b
	low := uint32(1)<<s - 1
	sw := subWords(s)
	out = slices.Grow(out[:base], size)[:base+size]
	clear(out[base:])
	bm := base + before // the first-level index
	setBit := func(w0 int, u uint32) { out[w0+int(u>>5)*2] |= 1 << (u & 31) }
	// The first-level ranges: one per group of keys in a unit, and one
	// for the unit after a sub unit if no group has it.
	r1 := 0
	for i := 0; i < len(keys); {
		u := keys[i] >> 16 >> s
		j := i + 1
		for j < len(keys) && keys[j]>>16>>s == u {
			j++
		}
		r1++
		if (j-i > 1 || keys[i]>>16&low != 0) && u+1 < 1<<b && (j == len(keys) || keys[j]>>16>>s != u+1) {
			r1++
		}
		i = j
	}
	n1, ns := base, base+r1
	for i := 0; i < len(keys); {
		k := keys[i] >> 16
		u := k >> s
		j := i + 1
		for j < len(keys) && keys[j]>>16>>s == u {
			j++
		}
		setBit(bm, u)
		if j-i == 1 && k&low == 0 {
			out[n1] = keys[i]
			n1++
			i = j
			continue
		}
		sr := ns // the sub-table's ranges
		if k&low != 0 {
			out[ns] = u<<s<<16 | keys[i-1]&0xffff // i > 0: the first key is 0
			ns++
		}
		ns += copy(out[ns:], keys[i:j])
		for _, x := range out[sr:ns] {
			setBit(ns, x>>16&low)
		}
		popCounts(out[:ns+sw], ns, sr)
		out[n1] = uint32(ns-n1)<<16 | subLeaf
		n1++
		ns += sw
		if u+1 < 1<<b && (j == len(keys) || keys[j]>>16>>s != u+1) {
			setBit(bm, u+1)
			out[n1] = (u+1)<<s<<16 | keys[j-1]&0xffff
			n1++
		}
		i = j
	}
	if n1 != base+r1 || ns != bm {
		panic("fib: addPop2: layout mismatch") // a bug
	}
	popCounts(out, bm, base)
	return out, keys
}

// ranges4 returns the canonical ranges of the IPv4 range table tab (its
// span4 entries) with dir entry e: the table's own for a bucket index or a
// single-level bitmap, else the first-level ranges with the sub-tables'
// in place of their markers, equal neighbours merged, in buf (grown if
// needed); and buf.
func ranges4(tab []uint32, e uint64, buf []uint32) (rs, _ []uint32) {
	l := lay4(e)
	if l.ws != wsPop {
		return tab[:l.r], buf
	}
	r1 := 0
	for w := int(l.r); w < len(tab); w += 2 {
		r1 += bits.OnesCount32(tab[w])
	}
	if r1 == int(l.r) {
		return tab[:l.r], buf
	}
	sw := subWords(16 - l.b)
	out := buf[:0]
	add := func(x uint32) {
		if n := len(out); n == 0 || out[n-1]&0xffff != x&0xffff {
			out = append(out, x)
		}
	}
	for k, x := range tab[:r1] {
		if x&0xffff != subLeaf {
			add(x)
			continue
		}
		w0 := k + int(x>>16)
		rs := 0
		for w := w0; w < w0+sw; w += 2 {
			rs += bits.OnesCount32(tab[w])
		}
		for _, y := range tab[w0-rs : w0] {
			add(y)
		}
	}
	return out, out
}

// tab4 is the immutable IPv4 lookup structure of one FIB.
type tab4 struct {
	top [256]*dirPage
	// ent holds the range tables and their indexes: key<<16 | index into
	// nh per range, so a range's value shares the cache line of its key.
	// Searching for k<<16|0xffff finds the last key <= k.
	ent [][]uint32 // segments
	mem []*segMem  // their memory: keeps it mapped while the table is reachable
	nh  []uint32   // next-hop ids of the range values
	// none is a table with a bitmap index whose ranges have value index 0
	// (ranges 0 and 1; bitmap 1, count -2 from the bitmap word, so range 0
	// or 1 whatever the mask): the batch lookup sends the addresses it
	// resolves otherwise through it, with any mask. noneB is one with a
	// bucket index (dir entry noneB) for the bucket stages' empty lanes.
	none  [4]uint32
	noneB [2]uint32
}

func (t *tab4) lookup(a uint32) uint32 {
	e := t.top[a>>24][(a>>16)&255]
	if e&chunkFlag == 0 {
		return uint32(e)
	}
	return t.chunk(e, a)
}

// window returns the first range and the length of the window to search
// for address a in the table of dir entry e (a bucket index) in segment
// seg.
func window(seg []uint32, e uint64, a uint32) (s, n uint32) {
	l := lay4(e)
	pos := uint32(e) & segMask
	o := (a & 0xffff) >> (16 - l.b) << l.ws
	lo := seg[pos+l.r+o>>2] >> ((o & 3) * 8) & uint32(uint64(1)<<(8<<l.ws)-1)
	return pos + lo, min(1<<l.rounds, l.r-lo)
}

// popRange returns the range of address a in the table of dir entry e (a
// bitmap index) in segment seg.
func popRange(seg []uint32, e uint64, a uint32) uint32 {
	l := lay4(e)
	u := (a & 0xffff) >> (16 - l.b)
	w := uint32(e)&segMask + u>>5*2
	return w + seg[w+1] + uint32(bits.OnesCount32(seg[w]&(2<<(u&31)-1)))
}

// subRange returns the range of address a in the sub-table whose index
// starts at w0, of the table of dir entry e (a two-level bitmap index) in
// segment seg.
func subRange(seg []uint32, w0 uint32, e uint64, a uint32) uint32 {
	u := a & (1<<(uint32(e>>b4Shift)&31) - 1) // the key in the unit
	w := w0 + u>>5*2
	return w + seg[w+1] + uint32(bits.OnesCount32(seg[w]&(2<<(u&31)-1)))
}

func (t *tab4) chunk(e uint64, a uint32) uint32 {
	seg := t.ent[uint32(e)>>segBits]
	var v uint32
	if e>>w4Shift&3 == wsPop {
		i := popRange(seg, e, a)
		v = seg[i]
		if v&0xffff == subLeaf {
			v = seg[subRange(seg, i+v>>16, e, a)]
		}
	} else {
		s, n := window(seg, e, a)
		v = seg[s+uint32(search(seg[s:s+n], a<<16|0xffff))]
	}
	runtime.KeepAlive(t) // the segment's memory (segMem)
	return t.nh[v&0xffff]
}

// batchLen is the block of addresses a batch lookup works on at once.
const batchLen = 64

// noneB is the dir entry of tab4.noneB (its position is not used).
const noneB = chunkFlag | 1<<r4Shift

// lookupBatch resolves dst into out in stages over blocks of batchLen
// addresses so that the memory accesses of different addresses overlap (Go
// has no prefetch): the dir entries of the whole block, then the bitmap
// index words, then the ranges and their values. The ranges loop ORs the
// next-hop ids it stores; if the result has subMark's bit (~8 % of the
// blocks on the full table), the addresses whose first-level range is a
// sub unit's continue in their sub-tables (subs: two more dependent
// loads). Addresses without a table and those whose tables have a bucket
// index (none but a few dozen in a million on the full table) go through
// t.none and are listed. The first take their dir entry's value at the
// end; for the others, the block runs the bucket stages (bucketStages,
// only for blocks that have such addresses: until the seventh session they
// ran for every block, ~2.6 addresses of 64 then, and cost ~13-15 % of
// the time), interleaved with the words stage so that their misses
// overlap: decoding, the words, the buckets and the window searches in
// lockstep (one step for every lane per round; a finished search steps
// by 0, so the loop is branch-free): two rounds for all (windows of up to
// 4 ranges), then the rounds the longest window needs for the few
// addresses with longer ones; then each lane hands the ranges stage the
// address of its range, with a zero word pair (values).
// (Finishing the few longest windows one by one after two rounds was
// slower: their branches mispredict.) A block has at most bLanesMax bucket
// lanes; bucket-index addresses beyond them are looked up one by one
// after the block.
//
// Each stage is a small function of its own (not inlined) over a blk4:
// in one big function the compiler kept spilling and reloading its many
// live values inside the inner loops (twice the instructions per address;
// measured ~13 % more lookups/s split). The dir entries, the index words
// and the ranges are loaded in loops that do little else: a load that
// misses holds up the retirement of every instruction after it, so the
// fewer instructions per address, the more addresses' misses are in flight
// at once (measured ~15 % more lookups/s than computing in the same loop).
// The segments are reached through addresses into their tables (one load
// per step, no slice header and bounds check); every offset read lies
// inside the table the dir entry describes, which the writer built inside
// the segment.
//
// The block state holds no Go pointers, only addresses (uintptr) into the
// segments (mapped memory, or Go heap slices if mapping failed), t.none
// and t.noneB: t keeps all of them alive until the end, and Go does not
// move heap objects; so storing them takes no write barrier, and the
// state the call zeroes is half as big (2.2 KB instead of 4.8; with the
// dir loads' nil checks gone too, ~18 % less time with 64 probes in
// cache).
func (t *tab4) lookupBatch(dst []uint32, out []uint32) {
	var b blk4
	t.lookupBlocks(&b, dst, out)
}

// lookupBlocks is lookupBatch with the block state b, which it does not
// need zeroed: every stage writes what it reads before reading it
// (Scratch4).
func (t *tab4) lookupBlocks(b *blk4, dst []uint32, out []uint32) {
	t.lookupBlocksV(b, dst, out, vec4OK())
}

// lookupBlocksV is lookupBlocks with the AVX-512 stages (vec;
// lookup4_amd64.go) or the Go stages.
func (t *tab4) lookupBlocksV(b *blk4, dst []uint32, out []uint32, vec bool) {
	if len(t.ent) == 0 {
		for i, a := range dst {
			out[i] = uint32(t.top[a>>24][(a>>16)&255])
		}
		return
	}
	if vec && len(t.ent) <= len(b.segs) {
		for j, sg := range t.ent {
			b.segs[j] = uintptr(unsafe.Pointer(unsafe.SliceData(sg)))
		}
	}
	for len(dst) > 0 {
		n := min(len(dst), batchLen)
		d, o := dst[:n], out[:n]
		b.n = n
		if vec {
			t.dirsOnly(b, d)
			var others uint64
			if len(t.ent) <= len(b.segs) {
				others = prep4VecP(&b.w, &b.p, &b.m, &d[0], &b.segs, uintptr(unsafe.Pointer(&t.none[2])), n)
			} else {
				others = prep4Vec(&b.w, &b.p, &b.m, &d[0], unsafe.Pointer(unsafe.SliceData(t.ent)), uintptr(unsafe.Pointer(&t.none[2])), n)
			}
			b.nother, b.nb = 0, 0
			if others != 0 {
				t.others4(b, d, others)
			}
			if b.nb == 0 {
				b.words(n)
			} else {
				t.bucketStages(b)
			}
			rangeAddrs4Vec(&b.w, &b.p, &b.m, n)
			if b.rangeVals(o, t.nh) >= subMark {
				t.subsAt(b, d, o)
			}
		} else {
			t.dirs(b, d)
			t.prepPop(b)
			if b.nb == 0 {
				b.words(n)
			} else {
				t.bucketStages(b)
			}
			if b.ranges(o, t.nh) >= subMark {
				t.subs(b, d, o)
			}
		}
		for _, i := range b.other[:b.nother] {
			o[i] = b.m[i]
		}
		if b.nb > bLanesMax {
			t.overflow(b, d, o)
		}
		dst = dst[n:]
		out = out[n:]
	}
	runtime.KeepAlive(t) // the segments' memory (segMem), t.none, t.noneB
}

// bLanes is the fewest addresses the bucket stages of a block work on:
// lanes without an address search t.noneB. A fixed count keeps their loops'
// branches predictable. bLanesMax is the most: the addresses beyond are
// looked up one by one (overflow).
const (
	bLanes    = 4
	bLanesMax = 16
)

// bucketStages runs the bucket stages of a block with addresses whose
// tables have a bucket index (b.nb > 0; rare since every table that fits
// gets a bitmap index), with the words stage interleaved.
//
//go:noinline
func (t *tab4) bucketStages(b *blk4) {
	t.lanes(b)
	nb := max(min(b.nb, bLanesMax), bLanes)
	t.prep(b, nb)
	b.words(b.n)
	most := b.buckets(nb)
	b.step(nb) // two rounds for all lanes: windows of up to 4 ranges
	b.step(nb)
	most -= most >> 1
	for most -= most >> 1; most > 1; most -= most >> 1 {
		b.stepLong()
	}
	b.values(nb)
}

// lanes fills the lanes of the bucket stages from b.nb to bLanes with
// t.noneB (prepPop filled those before).
func (t *tab4) lanes(b *blk4) {
	p := uintptr(unsafe.Pointer(&t.noneB))
	for j := b.nb; j < bLanes; j++ {
		b.bde[j], b.tab[j], b.sd[j], b.bi[j] = noneB, p, 0, batchLen
	}
}

// overflow looks up the bucket-index addresses of the block beyond the
// lanes one by one.
//
//go:noinline
func (t *tab4) overflow(b *blk4, d, o []uint32) {
	for _, i := range b.ovf[:b.nb-bLanesMax] {
		o[i] = t.lookup(d[i])
	}
}

// blk4 is the working state of a batch lookup over one block. It holds no
// Go pointers (see lookupBatch): an address a stage reads through is a
// uintptr, read as an unsafe.Pointer (ptr). Every stage writes the fields
// it reads before reading them (the empty lanes' slot batchLen of w and p
// is written, never read), so a block state can be reused without zeroing
// (Scratch4); stale addresses in it are never read again.
type blk4 struct {
	// Bitmap stages.
	// Slot batchLen is the empty bucket lanes'.
	w [batchLen + 1]uint64  // dir entries, then the bitmap and count words
	p [batchLen + 1]uintptr // the bitmap word
	m [batchLen]uint32      // the addresses (dirs), then the masks of the unit's bit and those before it (the values of those without a table)
	// The addresses without a table (their dir entries' values in m).
	other  [batchLen]uint8
	nother int
	// The addresses with a bucket index: their positions in the block
	// (batchLen: an empty lane), addresses and dir entries; the positions
	// of those beyond bLanesMax (ovf).
	bi  [bLanesMax]uint8
	sd  [bLanesMax]uint32
	bde [bLanesMax]uint64
	ovf [batchLen]uint8
	nb  int
	n   int // the block's addresses
	// Bucket stages.
	tab [bLanesMax]uintptr // the table
	key [bLanesMax]uint32  // a<<16 | 0xffff
	bo  [bLanesMax]uint32  // byte offset of the 4 bytes ending with the bucket, then the bucket
	sh  [bLanesMax]uint32  // shift of the bucket in those 4 bytes (32 - its bits)
	pos [bLanesMax]uint32  // the window's first range (in the table)
	win [bLanesMax]uint32  // ranges, then the window length
	rnd [bLanesMax]uint32  // 1 << rounds
	// The lanes whose windows are longer than 4 ranges.
	long  [bLanesMax]uint8
	nlong int
	// The segments' addresses, for prep4VecP (tables of up to 32
	// segments; the full table has ~25); entries past the table's
	// segments are stale and never selected.
	segs [32]uintptr
}

// ptr reads address x as a pointer.
func ptr(x *uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(x)) }

//go:noinline
func (t *tab4) dirs(b *blk4, d []uint32) {
	top := &t.top
	w := b.w[:len(d)]
	m := b.m[:len(w)]
	for i, a := range d {
		// Every page is there: no nil check.
		w[i] = *(*uint64)(unsafe.Add(unsafe.Pointer(top[a>>24]), (a>>16&255)*8))
		m[i] = a // for prepPop
	}
}

// dirsOnly is dirs without the copy of the addresses in m (prep4Vec
// reads them from d).
//
//go:noinline
func (t *tab4) dirsOnly(b *blk4, d []uint32) {
	top := &t.top
	w := b.w[:len(d)]
	for i, a := range d {
		// Every page is there: no nil check.
		w[i] = *(*uint64)(unsafe.Add(unsafe.Pointer(top[a>>24]), (a>>16&255)*8))
	}
}

// prepPop decodes the dir entries of tables with a bitmap index; the
// others take t.none and are listed: those without a table in b.other,
// those with a bucket index in the bucket lanes (with their tables).
//
//go:noinline
func (t *tab4) prepPop(b *blk4) {
	// Every dir entry's segment is in the list: no bounds check.
	segs := unsafe.Pointer(unsafe.SliceData(t.ent))
	none := uintptr(unsafe.Pointer(&t.none[2]))
	no, nb := 0, 0
	w := b.w[:b.n] // b.n, not an argument: the shifts need CX, which the third argument takes
	p, m := b.p[:len(w)], b.m[:len(w)]
	for i, e := range w {
		a := m[i] // the address (dirs)
		if e < chunkFlag|popFlag {
			p[i], m[i] = none, uint32(e) // the dir entry's value for those without a table
			if int64(e) >= 0 {           // no chunkFlag
				b.other[no&(batchLen-1)] = uint8(i)
				no++
				continue
			}
			if nb < bLanesMax {
				b.tab[nb] = segAddr(segs, e) + uintptr(uint32(e)&segMask)*4
				b.sd[nb], b.bde[nb], b.bi[nb] = a, e, uint8(i)
			} else {
				b.ovf[(nb-bLanesMax)&(batchLen-1)] = uint8(i)
			}
			nb++
			continue
		}
		u := (a & 0xffff) >> (uint32(e>>b4Shift) & 31)                           // "& 31" spares Go's shift-overflow check
		p[i] = segAddr(segs, e) + uintptr(uint32(e)&segMask)*4 + uintptr(u>>5)*8 // the index's position: see layout4.ent
		m[i] = 2<<(u&31) - 1
	}
	b.nother, b.nb = no, nb
}

// others4 lists the addresses of the block without a bitmap index (bit i
// of mask: address i; prep4Vec set their p and m as prepPop does): those
// without a table in b.other, those with a bucket index in the bucket
// lanes (with their tables).
//
//go:noinline
func (t *tab4) others4(b *blk4, d []uint32, mask uint64) {
	segs := unsafe.Pointer(unsafe.SliceData(t.ent))
	no, nb := 0, 0
	for ; mask != 0; mask &= mask - 1 {
		i := bits.TrailingZeros64(mask) & (batchLen - 1)
		a := d[i]
		e := *(*uint64)(unsafe.Add(unsafe.Pointer(t.top[a>>24]), (a>>16&255)*8))
		if e&chunkFlag == 0 {
			b.other[no&(batchLen-1)] = uint8(i)
			no++
			continue
		}
		if nb < bLanesMax {
			b.tab[nb] = segAddr(segs, e) + uintptr(uint32(e)&segMask)*4
			b.sd[nb], b.bde[nb], b.bi[nb] = a, e, uint8(i)
		} else {
			b.ovf[(nb-bLanesMax)&(batchLen-1)] = uint8(i)
		}
		nb++
	}
	b.nother, b.nb = no, nb
}

// segAddr is the address of the first entry of the segment of dir entry e
// (a table's), where segs is the data of tab4.ent: its slice's data
// pointer.
func segAddr(segs unsafe.Pointer, e uint64) uintptr {
	return *(*uintptr)(unsafe.Add(segs, uintptr(uint32(e)>>segBits)*unsafe.Sizeof([]uint32{})))
}

// words loads the bitmap and count words.
//
//go:noinline
func (b *blk4) words(n int) {
	w := b.w[:n]
	p := b.p[:len(w)]
	for i := range w {
		w[i] = *(*uint64)(ptr(&p[i]))
	}
}

// ranges reads the ranges and stores their values in o: in a loop of
// its own, like words. The bucket lanes' addresses have their range's
// address in p and a zero word pair (values). The count word is signed
// (int64(x)>>32: no separate sign extension). The value is read as the
// range's low 16 bits. (nh without its bounds check was ~4 % slower with
// 64 probes in cache: the loop's layout changed.)
//
//go:noinline
func (b *blk4) ranges(o []uint32, nh []uint32) uint32 {
	w := b.w[:len(o)]
	p, m := b.p[:len(w)], b.m[:len(w)]
	var all uint32
	for i, x := range w {
		v := nh[*(*uint16)(unsafe.Add(ptr(&p[i]), (int64(x)>>32+int64(bits.OnesCount32(uint32(x)&m[i])))*4))]
		o[i] = v
		all |= v
	}
	return all
}

// rangeVals reads the values of the ranges at p (rangeAddrs4Vec set
// them) and stores them in o, like ranges; it returns the OR of them. It
// reads nh without a bounds check: every value index of a table is below
// len(t.nh) (leafOf hands them out, t.nh only grows, and a snapshot's
// tables and next-hop list are published together). Without the check
// the lookup was ~5 % faster with the probes in cache and ~2 % over the
// whole table (3 alternating pairs, loaded).
//
//go:noinline
func (b *blk4) rangeVals(o []uint32, nh []uint32) uint32 {
	p := b.p[:len(o)]
	h := unsafe.Pointer(unsafe.SliceData(nh))
	var all uint32
	for i := range p {
		v := *(*uint32)(unsafe.Add(h, uintptr(*(*uint16)(ptr(&p[i])))*4))
		o[i] = v
		all |= v
	}
	return all
}

// subs finishes the addresses whose first-level range continues in a
// sub-table (o[i] is subMark; ~0.12 % of the lookups on the full table)
// after ranges: it sets their p to their range's address (in cache), as
// rangeAddrs4Vec does, and calls subsAt.
//
//go:noinline
func (t *tab4) subs(b *blk4, d, o []uint32) {
	w := b.w[:len(o)]
	p, m := b.p[:len(w)], b.m[:len(w)]
	for i, x := range w {
		if o[i] >= subMark {
			p[i] += uintptr(int64(x)>>32+int64(bits.OnesCount32(uint32(x)&m[i]))) * 4
		}
	}
	t.subsAt(b, d, o)
}

// subsAt finishes the addresses whose first-level range, at p, continues
// in a sub-table (o[i] is subMark): the sub-table's index words, its
// range.
//
//go:noinline
func (t *tab4) subsAt(b *blk4, d, o []uint32) {
	p := b.p[:len(o)]
	for i := range p {
		if o[i] < subMark {
			continue
		}
		r := p[i]
		w0 := r + uintptr(*(*uint32)(ptr(&r))>>16)*4 // the sub-table's index
		a := d[i]
		e := *(*uint64)(unsafe.Add(unsafe.Pointer(t.top[a>>24]), (a>>16&255)*8))
		u := a & (1<<(uint32(e>>b4Shift)&31) - 1) // the key in the unit
		q := w0 + uintptr(u>>5)*8
		y := *(*uint64)(ptr(&q))
		o[i] = t.nh[*(*uint16)(unsafe.Add(ptr(&q), (int64(y)>>32+int64(bits.OnesCount32(uint32(y)&(2<<(u&31)-1))))*4))]
	}
}

// prep decodes the dir entries of the first n bucket lanes. A bucket is
// read as the 4 bytes ending with it (little-endian: its bytes are the top
// ones), shifted down: no mask, and never a byte past the bucket index
// (the bytes before the first bucket are the last range's).
//
//go:noinline
func (t *tab4) prep(b *blk4, n int) {
	for i, a := range b.sd[:n] {
		e := b.bde[i]
		b.key[i] = a<<16 | 0xffff
		r := uint32(e>>r4Shift) & r4Mask
		ws := uint32(e>>w4Shift) & 3
		o := (a & 0xffff) >> (uint32(e>>b4Shift) & 31) << ws // the "& 31"s spare Go's shift-overflow checks
		b.bo[i], b.sh[i] = r*4+o+1<<ws-4, 32-8<<ws
		b.win[i], b.rnd[i] = r, 1<<(uint32(e>>s4Shift)&31)
	}
}

// buckets reads the buckets and sets the windows; it returns the longest.
//
//go:noinline
func (b *blk4) buckets(n int) uint32 {
	for i := range b.bo[:n] {
		b.bo[i] = *(*uint32)(unsafe.Add(ptr(&b.tab[i]), b.bo[i]))
	}
	var most uint32
	m := 0
	for i := range b.bo[:n] {
		lo := b.bo[i] >> (b.sh[i] & 31)
		b.pos[i] = lo
		w := min(b.rnd[i], b.win[i]-lo)
		b.win[i] = w
		most = max(most, w)
		b.long[m&(bLanesMax-1)] = uint8(i)
		var inc int
		if w > 4 {
			inc = 1 // a conditional move, not a branch
		}
		m += inc
	}
	b.nlong = m
	return most
}

// stepLong is one round of the searches in windows of more than 4
// ranges (after the first two rounds of all: ~4 addresses of a block).
//
//go:noinline
func (b *blk4) stepLong() {
	for _, i := range b.long[:b.nlong] {
		i &= bLanesMax - 1
		h := b.win[i] >> 1
		p, r := b.pos[i], b.pos[i]+h
		if at[uint32](ptr(&b.tab[i]), r) <= b.key[i] {
			p = r // a conditional move, not a branch
		}
		b.pos[i] = p
		b.win[i] -= h
	}
}

// step is one round of the window searches.
//
//go:noinline
func (b *blk4) step(n int) {
	for i := range b.win[:n] {
		h := b.win[i] >> 1
		p, r := b.pos[i], b.pos[i]+h
		if at[uint32](ptr(&b.tab[i]), r) <= b.key[i] {
			p = r // a conditional move, not a branch: see docs/fib.md
		}
		b.pos[i] = p
		b.win[i] -= h
	}
}

// values sets the first n bucket lanes' addresses up for ranges: the
// address of their range, and a zero word pair.
//
//go:noinline
func (b *blk4) values(n int) {
	for j, i := range b.bi[:n] {
		b.p[i] = b.tab[j] + uintptr(b.pos[j])*4
		b.w[i] = 0
	}
}

func (t *tab4) bytes() int {
	return 256*8 + countPages(&t.top)*256*8 + segBytes(t.ent, 4) + cap(t.nh)*4
}
