package fib

import (
	"encoding/binary"
	"math/bits"
	"runtime"
	"unsafe"
)

// Lookup structure (read side). See docs/fib.md for the design.
//
// Level 0 is a direct table on the top 16 bits of the address, split in 256
// pages of 256 entries so that a change copies one 2 KiB page, not 512 KiB.
// A dir entry is either a next-hop id (chunkFlag clear) or the position of a
// range table in a segmented arena (chunkFlag set: position in bits 0-31 -
// segment id above segBits, offset below - and count in bits 32-62; IPv6:
// bits 32-61, bit 62 is rankFlag).
//
// IPv4 has one range level (bits 16-31, uint16 keys), leaf-pushed: its
// values are final next-hop ids. IPv6 has three: L1 bits 16-31 (uint16 keys,
// leaf-pushed), L2 bits 32-63 (key<<32 | value entries like L1), L3 bits
// 64-127 (uint64 keys, values apart). A
// value with refFlag set refers to a header (start, count, inherited
// default) of a deeper table; in L2 and L3 the value 0 means "no prefix of
// this level covers the address": use the inherited default. Big IPv6 L1
// tables and most L2 tables are followed by a rank index instead of a
// summary (rank.go): an IPv6 dir entry with rankFlag, an L2 header with
// ix set.
//
// Arenas are lists of segments (seg.go): a rebuilt range table is appended
// past the end of the current segment, so every published snapshot only
// reads entries the writer never writes again. Garbage is reclaimed one
// segment per batch: its live tables are copied and the segment is dropped
// from the next snapshot's list.

const (
	chunkFlag = 1 << 63
	refFlag   = 1 << 31
)

type dirPage [256]uint64

// hdr is the writer's view of the header of an L2 or L3 table (hdrw);
// the snapshot's header pages hold its packed form, hdr6.
type hdr struct {
	start, count uint32
	def          uint32 // inherited default; 0: inherit from the level above
	ix           uint32 // an L2 table's rank index (rank.go; 0: none, search the summary)
	l38          uint64 // with ix: level 0 of the index, the /38s with a range start (l2Rank)
}

// hdr6 is a header as lookups read it: 16 bytes, four to a cache line
// (with 24-byte headers the full table's lookups were ~8 % slower than
// with 16-byte ones, and ~7 % faster than with 32-byte ones: the headers
// are among the lines every IPv6 lookup misses).
type hdr6 struct {
	start uint32 // the table's position in its arena
	def   uint32 // the inherited default (0: none), | hdrIx for an L2 table with a rank index
	// With hdrIx the index's level 0 (hdr.l38; the index comes first in
	// the table, rank.go), else the table's range count.
	x uint64
}

// hdrIx marks an L2 table with a rank index in hdr6.def (next-hop ids are
// below 2^31).
const hdrIx = 1 << 31

// pack returns h as lookups read it.
func (h hdr) pack() hdr6 {
	if h.ix != 0 {
		return hdr6{h.start, h.def | hdrIx, h.l38}
	}
	return hdr6{h.start, h.def, uint64(h.count)}
}

type hdrPage [256]hdr6

func chunkEnt(start, count int) uint64 {
	return chunkFlag | uint64(count)<<32 | uint64(uint32(start))
}

// tab6 is the immutable IPv6 lookup structure of one FIB.
type tab6 struct {
	top  [256]*dirPage
	e16  [][]uint64 // L1 segments: key<<32 | value per range (summary entries: key<<32)
	e2   [][]uint64 // L2 segments (bits 32-63): key<<32 | value per range, like e16
	e3   [][]uint64 // L3 segments (bits 64-127): keys, then values two per word
	hdrs []*hdrPage
	z    uint64 // 0: what batch lookups without a rank index read
	// The memory of the L1, L2 and L3 segments (see tab4.mem).
	mem16, mem2, mem3 []*segMem
}

// find16 returns the position of the range of k in the uint16 range table
// of dir entry e.
func find16(keys []uint16, e uint64, k uint16) uint32 {
	return find(keys, uint32(e), uint32(e>>32)&0x7fffffff, k)
}

// find returns the position of the range of k in the range table at s with
// n ranges: it searches the summary (if any), then one block.
func find[K rangeKey](keys []K, s, n uint32, k K) uint32 {
	if n > blockLen {
		m := (n + blockLen - 1) / blockLen
		j := uint32(search(keys[s+n:s+n+m], k))
		s += j * blockLen
		n = min(blockLen, n-j*blockLen)
	}
	return s + uint32(search(keys[s:s+n], k))
}

// lockstep runs the range-table searches of n addresses together: key[i]
// in the table at offset base[i] of the segment starting at tab[i] with
// cnt[i] ranges (for addresses without a table: tab[i] at key[i] itself,
// base 0 and cnt 1), leaving the range offsets in pos. The segments are
// reached through unsafe pointers to their first entries (one load per
// step, no slice header and bounds check: measured 25 % faster than
// per-address slices); every offset read lies inside the table the dir
// entry or header describes, which the writer built inside the segment. Stage 1
// searches the summaries, one step for every address per round
// (branch-free: a finished search steps by 0), stage 2 the blocks the same
// way. Each round's loads are independent of each other, so they overlap.
func lockstep[K rangeKey](tab *[srchLen]unsafe.Pointer, key *[srchLen]K, base, cnt, pos *[srchLen]uint32, n int) {
	var left [srchLen]uint32
	var maxm uint32
	for i := range n {
		s, c := base[i], cnt[i]
		if c > blockLen {
			m := (c + blockLen - 1) / blockLen
			pos[i], left[i] = s+c, m
			maxm = max(maxm, m)
		} else {
			pos[i], left[i] = s, 1
		}
	}
	for maxm > 1 {
		for i := range n {
			h := left[i] >> 1
			p, q := pos[i], pos[i]+h
			if at[K](tab[i], q) <= key[i] {
				p = q // a conditional move, not a branch: see docs/fib.md
			}
			pos[i] = p
			left[i] -= h
		}
		maxm -= maxm >> 1
	}
	maxb := uint32(1)
	for i := range n {
		s, c := base[i], cnt[i]
		if c > blockLen {
			j := pos[i] - (s + c)
			s += j * blockLen
			c = min(blockLen, c-j*blockLen)
		}
		pos[i], left[i] = s, c
		maxb = max(maxb, c)
	}
	for maxb > 1 {
		for i := range n {
			h := left[i] >> 1
			p, q := pos[i], pos[i]+h
			if at[K](tab[i], q) <= key[i] {
				p = q // a conditional move, not a branch: see docs/fib.md
			}
			pos[i] = p
			left[i] -= h
		}
		maxb -= maxb >> 1
	}
}

// at reads entry i of the segment starting at p.
func at[K any](p unsafe.Pointer, i uint32) K {
	var k K
	return *(*K)(unsafe.Add(p, uintptr(i)*unsafe.Sizeof(k)))
}

// tptr is a table pointer in a batch lookup's block state, kept as an
// address: storing it takes no write barrier, and with no calls in their
// loops the stages keep their values in registers (a stage whose loop
// called the write barrier reloaded them all from the stack on every
// iteration). The memory it points to is kept alive by the table the
// lookup reads (its segments, tab6.z); the block state holds no tptr
// past the lookup that stored it.
type tptr uintptr

func tp(p unsafe.Pointer) tptr { return tptr(uintptr(p)) }

// at reads entry i of the table at p.
func (p tptr) at(i uint32) uint64 { return at[uint64](*(*unsafe.Pointer)(unsafe.Pointer(&p)), i) }

// ptr is p as a pointer.
func (p tptr) ptr() unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// segStart is the pointer lockstep uses for a segment.
func segStart[K any](s []K) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(s)) }

func (t *tab6) hdr(id uint32) *hdr6 {
	return &t.hdrs[id>>8][id&255]
}

func (t *tab6) lookup(hi, lo uint64) uint32 {
	e := t.top[hi>>56][(hi>>48)&255]
	if e&chunkFlag == 0 {
		return uint32(e)
	}
	return t.deep(e, hi, lo)
}

func (t *tab6) deep(e uint64, hi, lo uint64) uint32 {
	v := t.lookup1(e, hi)
	if v&refFlag == 0 {
		return v
	}
	return t.deep2(v, hi, lo)
}

// lookup1 returns the L1 value of address hi in the table of dir entry e.
func (t *tab6) lookup1(e uint64, hi uint64) uint32 {
	seg := t.e16[uint32(e)>>segBits]
	p, n := uint32(e)&segMask, uint32(n6(e))
	var v uint32
	if e&rankFlag != 0 {
		s := int(hi >> 32 & 0xffff)
		w := s >> 5
		v = uint32(seg[p+rankOf(seg[int(p+n)+w], s, w)])
	} else {
		v = uint32(seg[find(seg, p, n, hi&0xffff00000000|0xffffffff)])
	}
	runtime.KeepAlive(t) // the segment's memory (segMem)
	return v
}

// deep2 continues a lookup at the L2 table that L1 value v refers to.
func (t *tab6) deep2(v uint32, hi, lo uint64) uint32 {
	h := t.hdr(v &^ refFlag)
	best := h.def &^ hdrIx
	seg := t.e2[h.start>>segBits]
	p := h.start & segMask
	if h.def&hdrIx != 0 {
		v = uint32(seg[p+rank2(unsafe.Add(segStart(seg), uintptr(p)*8), h.x, uint32(hi))])
	} else {
		v = uint32(seg[find(seg, p, uint32(h.x), hi<<32|0xffffffff)])
	}
	runtime.KeepAlive(t) // the segment's memory (segMem)
	if v&refFlag == 0 {
		if v == 0 {
			return best
		}
		return v
	}
	return t.deep3(v, best, lo)
}

// deep3 finishes a lookup at the L3 table that L2 value v refers to; best
// is the result so far.
func (t *tab6) deep3(v, best uint32, lo uint64) uint32 {
	h := t.hdr(v &^ refFlag)
	if h.def != 0 {
		best = h.def
	}
	seg := t.e3[h.start>>segBits]
	s, n := h.start&segMask, uint32(h.x)
	j := uint32(search(seg[s:s+n], lo))
	v = uint32(seg[s+n+j/2] >> (32 * (j & 1)))
	runtime.KeepAlive(t) // the segment's memory (segMem)
	if v == 0 {
		return best
	}
	return v
}

// lookupBatch resolves a block of batchLen addresses at a time, level by
// level and in stages, so that the memory accesses of different addresses
// overlap (Go has no prefetch): the dir entries of all; for the L1 tables
// with a rank index (rank.go) the index words of all, then the ranges'
// values; the L1 tables without an index in lockstep (see lockstep);
// then the same for L2: headers, level-1 index words, group words, values
// (or the lockstep search). The rare addresses that continue to L3 finish
// one by one. Every stage is a loop whose loads are independent of each
// other, and a small function of its own (not inlined) over a blk6, as
// in tab4.lookupBatch: in one big function the compiler spilled and
// reloaded its live values inside the inner loops (with the stages split,
// the level-1 decoding moved to the headers' stage, sparse L2 tables
// indexed and a smaller search6, ~15 % faster; see BENCHMARKS.md). The
// dir entries are decoded in the loop that loads them: their pages are few
// and stay in cache, and a loop of their own was slower.
func (t *tab6) lookupBatch(dst [][16]byte, out []uint32) {
	if len(t.e16) == 0 {
		t.lookupDir(dst, out)
		return
	}
	var b blk6
	t.lookupBlocks(&b, dst, out)
}

// lookupDir resolves dst into out in a table without L1 tables.
func (t *tab6) lookupDir(dst [][16]byte, out []uint32) {
	for i := range dst {
		hi := binary.BigEndian.Uint64(dst[i][:8])
		out[i] = uint32(t.top[hi>>56][(hi>>48)&255])
	}
}

// lookupBlocks is lookupBatch with the block state b (which it leaves
// holding stale values: every stage writes the fields it reads first).
// On CPUs with AVX-512 the index stages run eight lanes a step
// (lookup6_amd64.go).
func (t *tab6) lookupBlocks(b *blk6, dst [][16]byte, out []uint32) {
	t.lookupBlocksV(b, dst, out, vec6OK())
}

// lookupBlocksV is lookupBlocks with the AVX-512 stages (vec) or the Go
// stages (tests run both).
func (t *tab6) lookupBlocksV(b *blk6, dst [][16]byte, out []uint32, vec bool) {
	if len(t.e16) == 0 {
		t.lookupDir(dst, out)
		return
	}
	for len(dst) > 0 {
		n := min(len(dst), batchLen)
		d, o := dst[:n], out[:n]
		b.srch.n = 0
		var no, m int
		if vec {
			no = t.prep1AVX(b, d)
			words1Vec(&b.tab, &b.q, &b.hi, n)
			m = values1Vec(&b.tab, &b.q, &o[0], &b.idx, &b.hi, &b.v1, &b.h2, n)
		} else {
			no = t.prep1(b, d, o)
			b.words1(n)
			m = b.values1(o)
		}
		if no > 0 {
			m = t.others1(b, o, no, m)
		}
		if b.srch.n > 0 {
			m = b.run1(o, m)
		}
		if m > 0 {
			if vec {
				t.stages2Vec(b, o, d, m)
			} else {
				t.stages2(b, o, d, m)
			}
		}
		b.srch.run2(t, o, d)
		dst, out = dst[n:], out[n:]
	}
	runtime.KeepAlive(t) // the segments' memory (segMem)
}

// blk6 is the working state of an IPv6 batch lookup over one block. The
// tables are reached through pointers to their first entries (tptr; see
// lockstep): every offset read lies inside the table its dir entry or
// header describes, or is offset 0 of t.z. Every stage writes the fields
// it reads before reading them, so a block state can be reused without
// zeroing (Scratch6).
type blk6 struct {
	hi [batchLen]uint64 // the addresses' top halves
	// L1, every address (those without a rank index read t.z, 0; see
	// others1): the table and the word to read in it (the index word,
	// then the range).
	tab [batchLen]tptr
	q   [batchLen]uint32
	// L2, lane j for the j-th address that continues there: the address
	// (idx), its header (hs; its def is the inherited default, or for a
	// table without a rank index other2's result), the table and the
	// word to read in it (tab, q: the level-1 word, the group word, the
	// range; t.z for a table without a rank index), the /38s with a start
	// up to the slot's (l0: level1 counts them), whether the slot's /38
	// has a start <<10 | the slot's bits 0-9 (sl), the group word's bits
	// to count (msk). The stages store as little as they can: stores,
	// not loads, seem to bound the cached lookup.
	idx [batchLen]uint8
	hs  [batchLen]hdr6
	msk [batchLen]uint32
	sl  [batchLen]uint16
	l0  [batchLen]uint64
	// The lanes prep1 and prep2 leave to other1 and other2, then the
	// lanes whose group word is deep (see l2Rank).
	dl [batchLen]uint8
	// L2 lane j's L1 value and address top half (the AVX-512 stages:
	// values1Vec compresses them into lane order, others1 and run1 add
	// theirs, headersVec and prep2Vec read them without a gather; the Go
	// stages read them through idx).
	v1 [batchLen]uint32
	h2 [batchLen]uint64
	// Searches in lockstep (tables without a rank index).
	srch search6
}

// prep1 reads and decodes the dir entries: an address whose L1 table has
// a rank index gets its index word to read; the others read t.z (0) and
// are listed in dl for others1, which sets their dir value or adds their
// search after values1 (prep1 returns how many: its loop makes no calls,
// like prep2's).
//
//go:noinline
func (t *tab6) prep1(b *blk6, d [][16]byte, o []uint32) int {
	e16 := t.e16
	no := 0
	o = o[:len(d)]
	for i := range b.hi[:len(o)] { // i < batchLen: no bounds checks on b's arrays
		hi := binary.BigEndian.Uint64(d[i][:8])
		b.hi[i] = hi
		e := t.top[hi>>56][(hi>>48)&255]
		if e>>62 == (chunkFlag|rankFlag)>>62 { // one register less than e&(chunkFlag|rankFlag): no spill
			s := uint32(hi>>32) & 0xffff
			at0 := uint32(e) & segMask
			b.tab[i] = tp(unsafe.Add(segStart(e16[uint32(e)>>segBits]), uintptr(at0)*8))
			b.q[i] = uint32(n6(e)) + s>>5
			continue
		}
		b.tab[i], b.q[i] = tp(unsafe.Pointer(&t.z)), 0
		b.dl[no&(batchLen-1)] = uint8(i) // no <= i < batchLen
		no++
	}
	return no
}

// others1 sets the L1 values of the no addresses prep1 listed in dl (see
// other1), adds those that continue to L2 to the m listed in idx and
// returns how many are listed. values1 gave them 0 (t.z) and did not list
// them.
func (t *tab6) others1(b *blk6, o []uint32, no, m int) int {
	for _, i := range b.dl[:no] {
		hi := b.hi[i&(batchLen-1)]
		v := t.other1(b, int(i), t.top[hi>>56][(hi>>48)&255], hi)
		o[i] = v
		b.idx[m&(batchLen-1)] = i // every address is listed at most once
		b.v1[m&(batchLen-1)], b.h2[m&(batchLen-1)] = v, hi
		m += int(v >> 31)
	}
	return m
}

// other1 returns the L1 value of address i of a block whose dir entry e
// has no rank index: the dir value, or 0 and a search added to b (the
// search's result, if b has no room). It is apart from prep1 so that the
// common path keeps its values in registers.
//
//go:noinline
func (t *tab6) other1(b *blk6, i int, e, hi uint64) uint32 {
	if e&chunkFlag == 0 {
		return uint32(e)
	}
	k := hi&0xffff00000000 | 0xffffffff // bits 16-31 in place: entries are key<<32
	if !b.srch.add(i, segStart(t.e16[uint32(e)>>segBits]), uint32(e)&segMask, uint32(n6(e)), k, 0) {
		return t.lookup1(e, hi) // rare: more searches than srchLen
	}
	return 0
}

// words1 reads the L1 index words and sets q to the ranges (the slots
// to count: those up to the address's in its word; t.z, 0, gives 0).
//
//go:noinline
func (b *blk6) words1(n int) {
	for i := range b.q[:n] {
		x := b.tab[i].at(b.q[i])
		s := uint32(b.hi[i]>>32) & 31
		b.q[i] = uint32(x>>32) + uint32(bits.OnesCount32(uint32(x)<<(31-s)))
	}
}

// values1 reads the L1 values and lists in idx the addresses that
// continue to L2; it returns how many.
//
//go:noinline
func (b *blk6) values1(o []uint32) int {
	m := 0
	for i := range b.tab[:len(o)] {
		v := uint32(b.tab[i].at(b.q[i]))
		o[i] = v
		b.idx[m&(batchLen-1)] = uint8(i) // m <= i < batchLen
		m += int(v >> 31)                // refFlag
	}
	return m
}

// run1 runs the L1 searches, stores their values in o, adds the addresses
// that continue to L2 to the m listed in idx and returns how many are
// listed. The searched addresses are not listed yet: their value was 0.
func (b *blk6) run1(o []uint32, m int) int {
	s := &b.srch
	lockstep(&s.tab, &s.key, &s.base, &s.cnt, &s.pos, s.n)
	for j := range s.n {
		i := s.idx[j]
		v := uint32(at[uint64](s.tab[j], s.pos[j]))
		o[i] = v
		b.idx[m&(batchLen-1)] = i // every address is listed at most once
		b.v1[m&(batchLen-1)], b.h2[m&(batchLen-1)] = v, b.hi[i&(batchLen-1)]
		m += int(v >> 31)
	}
	s.n = 0
	return m
}

// headers reads the headers of the m addresses listed in idx.
//
//go:noinline
func (t *tab6) headers(b *blk6, o []uint32, m int) {
	hdrs := t.hdrs
	for j, i := range b.idx[:m] {
		id := o[i] &^ refFlag
		b.hs[j] = hdrs[id>>8][id&255]
	}
}

// prep2 decodes the headers of the m addresses that continue to L2 (lane
// j: address idx[j]): those with a rank index (rank2) get their level-1
// word to read. The others (rare) read t.z (0) in every stage, which gives
// them their lane's best, and are listed in dl for other2 (prep2 returns
// how many), which sets best or adds a search. The loop makes no calls, so
// it keeps its values in registers (with other2 called in the loop, it
// reloaded them from the stack on every iteration), and it keeps every
// lane in place (no compaction).
//
//go:noinline
func (t *tab6) prep2(b *blk6, m int) int {
	e2 := t.e2
	z := tp(unsafe.Pointer(&t.z))
	no := 0
	for j := range b.hs[:m&(2*batchLen-1)] { // m <= batchLen
		h := &b.hs[j]
		if h.def&hdrIx == 0 {
			b.tab[j], b.l0[j] = z, 0
			b.dl[no&(batchLen-1)] = uint8(j) // no <= j < batchLen
			no++
			continue
		}
		// The level-1 word of the slot's /38 w, or of the last /38 with a
		// start before it (see rank2).
		s := uint32(b.hi[b.idx[j]&(batchLen-1)]>>16) & 0xffff // idx[j] < batchLen
		l0 := h.x << (^(s >> 10) & 63)                        // the /38s up to s's, its own at bit 63
		inW := uint32(l0 >> 63)                               // s's /38 has a start
		b.sl[j] = uint16(s&0x3ff | inW<<10)
		b.tab[j] = tp(unsafe.Add(segStart(e2[h.start>>segBits]), uintptr(h.start&segMask)*8))
		b.l0[j] = l0 // level1 counts the /38s
	}
	return no
}

// other2 returns the result of address i of a block whose L2 table has no
// rank index if it looks it up (if b has no room for its search), or 0
// and adds its search to b (run2 finishes it). It is apart from prep2 so
// that the common path keeps its values in registers.
func (t *tab6) other2(b *blk6, i int, o []uint32, d [][16]byte) uint32 {
	h := t.hdr(o[i] &^ refFlag)
	hi := b.hi[i&(batchLen-1)]
	if !b.srch.add(i, segStart(t.e2[h.start>>segBits]), h.start&segMask, uint32(h.x), hi<<32|0xffffffff, h.def) {
		return t.deep2(o[i], hi, binary.BigEndian.Uint64(d[i][8:])) // rare: more searches than srchLen
	}
	return 0
}

// level1 reads the level-1 words of the L2 rank indexes and sets q to the
// group words and msk to the group word's bits to count (see rank2).
//
//go:noinline
func (b *blk6) level1(m int) {
	for j := range b.q[:m] {
		x1 := b.tab[j].at(uint32(bits.OnesCount64(b.l0[j])))
		sl := uint32(b.sl[j])
		g, inW := sl>>5&31, sl>>10
		m1 := ^uint32(0) >> ((31 - g) & -inW) // the groups up to g if x1 is the word of g's /38; else all
		b.q[j] = uint32(x1>>32) + uint32(bits.OnesCount32(uint32(x1)&m1))
		in := uint32(x1) >> g & inW                // g has starts
		b.msk[j] = ^uint32(0)>>(^sl&31) | (in - 1) // then those up to s; else all
	}
}

// groups reads the group words, sets q to the ranges and lists the lanes
// whose group word is deep; it returns how many.
//
//go:noinline
func (b *blk6) groups(m int) int {
	nd := 0
	for j := range b.q[:m] {
		x := b.tab[j].at(b.q[j])
		b.q[j] = uint32(x>>32)&0x7fffffff + uint32(bits.OnesCount32(uint32(x)&b.msk[j]))
		b.dl[nd&(batchLen-1)] = uint8(j) // nd <= j < batchLen
		nd += int(x >> 63)               // deepBit
	}
	return nd
}

// laneList lists in dl the lanes of the mask lm (bit j: lane j; what the
// AVX-512 stages return for the rare lanes) in order and returns how
// many.
func laneList(dl *[batchLen]uint8, lm uint64) int {
	nd := 0
	for ; lm != 0; lm &= lm - 1 {
		dl[nd&(batchLen-1)] = uint8(bits.TrailingZeros64(lm))
		nd++
	}
	return nd
}

// stages2 runs the L2 stages over the m lanes listed in idx: headers,
// their decoding (the lanes without a rank index to other2), the level-1
// words, the group words (the deep lanes to deepLanes) and the values.
func (t *tab6) stages2(b *blk6, o []uint32, d [][16]byte, m int) {
	t.headers(b, o, m)
	if no := t.prep2(b, m); no > 0 {
		t.others2(b, o, d, no)
	}
	b.level1(m)
	if nd := b.groups(m); nd > 0 {
		t.deepLanes(b, o, nd)
	}
	t.values2(b, o, d, m)
}

// stages2Vec is stages2 with the AVX-512 stages (lookup6_amd64.go).
func (t *tab6) stages2Vec(b *blk6, o []uint32, d [][16]byte, m int) {
	headersVec(&b.v1, &b.hs, unsafe.SliceData(t.hdrs), len(t.hdrs), m)
	if no := t.prep2AVX(b, m); no > 0 {
		t.others2(b, o, d, no)
	}
	level1Vec(&b.tab, &b.q, &b.l0, &b.sl, &b.msk, m)
	if dm := groupsVec(&b.tab, &b.q, &b.msk, m); dm != 0 {
		t.deepLanes(b, o, laneList(&b.dl, dm))
	}
	t.values2AVX(b, o, d, m)
}

// prep1AVX is prep1 by prep1Vec, after a loop of its own that loads the
// addresses' top halves (see prep1Vec).
func (t *tab6) prep1AVX(b *blk6, d [][16]byte) int {
	for i := range b.hi[:len(d)] {
		b.hi[i] = binary.BigEndian.Uint64(d[i][:8])
	}
	return laneList(&b.dl, prep1Vec(&b.hi, &b.tab, &b.q, &t.top, unsafe.SliceData(t.e16), len(t.e16), &t.z, len(d)))
}

// prep2AVX is prep2 by prep2Vec.
func (t *tab6) prep2AVX(b *blk6, m int) int {
	return laneList(&b.dl, prep2Vec(&b.hs, &b.h2, &b.tab, &b.l0, &b.sl, unsafe.SliceData(t.e2), len(t.e2), &t.z, m))
}

// values2AVX is values2 by values2Vec, which leaves the lanes whose value
// refers to an L3 table (rare) to it, with that value in o.
func (t *tab6) values2AVX(b *blk6, o []uint32, d [][16]byte, m int) {
	for l3 := values2Vec(&b.tab, &b.q, &b.hs, &b.idx, &o[0], m); l3 != 0; l3 &= l3 - 1 {
		j := bits.TrailingZeros64(l3)
		i := b.idx[j]
		o[i] = t.deep3(o[i], b.hs[j].def&^hdrIx, binary.BigEndian.Uint64(d[i][8:]))
	}
}

// others2 sets the defaults of the no lanes prep2 listed in dl (see
// other2).
func (t *tab6) others2(b *blk6, o []uint32, d [][16]byte, no int) {
	for _, j := range b.dl[:no] {
		b.hs[j&(batchLen-1)].def = t.other2(b, int(b.idx[j&(batchLen-1)]), o, d)
	}
}

// deepLanes finds the ranges of the nd lanes groups listed, by a lookup of
// their own (rank2 and deepRank; rare: ~0.3 of a block on the full table,
// so the block state keeps no group word offsets for them).
func (t *tab6) deepLanes(b *blk6, o []uint32, nd int) {
	for _, j := range b.dl[:nd] {
		j &= batchLen - 1
		i := b.idx[j]
		h := t.hdr(o[i] &^ refFlag)
		b.q[j] = rank2(b.tab[j].ptr(), h.x, uint32(b.hi[i&(batchLen-1)]))
	}
}

//go:noinline
func (t *tab6) values2(b *blk6, o []uint32, d [][16]byte, m int) {
	for j, i := range b.idx[:m] {
		v := uint32(b.tab[j].at(b.q[j]))
		best := b.hs[j].def &^ hdrIx
		if v == 0 {
			v = best // a conditional move
		}
		if v&refFlag != 0 { // rare: L3
			v = t.deep3(v, best, binary.BigEndian.Uint64(d[i][8:]))
		}
		o[i] = v
	}
}

// srchLen is the most searches a search6 holds: on the full table a
// block of 64 addresses has ~0.3 (L1 tables of fewer than rankMin1
// ranges; since L2 tables with starts inside a /48 have rank indexes,
// no L2 ones); the addresses past srchLen are searched one by one. A
// small search6 keeps down the stack a batch lookup zeroes per call
// (16 until the fifth session of 2026-11-30).
const srchLen = 8

// search6 is a group of IPv6 range searches run in lockstep.
type search6 struct {
	idx            [srchLen]uint8 // the address in the block
	tab            [srchLen]unsafe.Pointer
	base, cnt, pos [srchLen]uint32
	best           [srchLen]uint32 // L2: the inherited default
	key            [srchLen]uint64
	n              int
}

// add adds a search, or returns false if s is full.
func (s *search6) add(i int, tab unsafe.Pointer, base, cnt uint32, key uint64, best uint32) bool {
	j := s.n
	if j >= srchLen {
		return false
	}
	s.idx[j], s.tab[j], s.base[j], s.cnt[j], s.key[j], s.best[j] = uint8(i), tab, base, cnt, key, best
	s.n++
	return true
}

// run2 runs L2 searches and finishes their addresses (d, o: the block).
func (s *search6) run2(t *tab6, o []uint32, d [][16]byte) {
	if s.n == 0 {
		return
	}
	lockstep(&s.tab, &s.key, &s.base, &s.cnt, &s.pos, s.n)
	for j := range s.n {
		t.finish2(o, d, int(s.idx[j]), uint32(at[uint64](s.tab[j], s.pos[j])), s.best[j])
	}
}

// finish2 stores the result of address i of a block whose L2 value is v
// (0: the inherited default best; a reference: continue at L3).
func (t *tab6) finish2(o []uint32, d [][16]byte, i int, v, best uint32) {
	switch {
	case v == 0:
		o[i] = best
	case v&refFlag == 0:
		o[i] = v
	default:
		o[i] = t.deep3(v, best, binary.BigEndian.Uint64(d[i][8:]))
	}
}

func (t *tab6) bytes() int {
	return 256*8 + countPages(&t.top)*256*8 + segBytes(t.e16, 8) +
		segBytes(t.e2, 8) + segBytes(t.e3, 8) +
		cap(t.hdrs)*8 + len(t.hdrs)*int(unsafe.Sizeof(hdrPage{}))
}

// countPages counts distinct dir pages (the shared empty page counts once).
func countPages(top *[256]*dirPage) int {
	n := 0
	for i, p := range top {
		dup := false
		for j := 0; j < i && !dup; j++ {
			dup = top[j] == p
		}
		if !dup {
			n++
		}
	}
	return n
}
