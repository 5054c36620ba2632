package fib

import (
	"math/bits"
	"slices"
	"unsafe"
)

// Rank indexes: search-free range lookups for the IPv6 tables.
//
// Most IPv6 lookups go through two big range tables: the L1 table of a
// /16 (bits 16-31: thousands of /32 regions in 2a02::/16 and the like) and
// the L2 table of a /32 (bits 32-63: up to ~4.6k ranges). Searching them
// (summary, then a block of 16) took ~14 dependent steps each, and in a
// batch every address paid the steps of the biggest table in the batch.
// A rank index finds the range with a few loads and no search.
//
// A rank word describes 32 consecutive slots: count<<32 | bitmap, bit b
// set if a range starts in slot 32w+b, count the starts before slot 32w.
// The range of slot s is count + popcount(bitmap & bits 0..s%32) of its
// word (range 0 starts at key 0 and is not counted): an index into the
// table's own entries, which the index follows in the arena in place of
// the summary. A word can only count one start per slot, so:
//
//   - L1 (slot = key = bits 16-31): a flat index of 2048 words (16 KiB)
//     covering the /16, built for tables of at least rankMin1 ranges (the
//     tables nearly all lookups go through: 46 on the full table, 736 KiB)
//     and flagged in the dir entry (rankFlag); smaller tables keep the
//     summary search.
//   - L2 (slot = bits 32-47, the /48): every table of at least rankMin2
//     ranges gets an index. Its starts are usually few and far apart among
//     the 65536 slots, so the index has two levels (l2Rank): a rank index
//     over groups of 32 slots, then one rank word per group with a start.
//     Its shape is in the table's header (hdr.ix, hdr.l38). A group with a start
//     inside a /48 (a /49-/64 prefix or a /64 region) is deep: a lookup
//     there searches the group's entries. Sparse tables (few starts
//     spread over the /32) get an index too: level 1 takes at most 64
//     words.
const (
	// rankFlag marks an IPv6 dir entry whose L1 table has a rank index.
	rankFlag = 1 << 62
	// n6Mask extracts the range count of an IPv6 dir entry (bits 32-61).
	n6Mask = 1<<30 - 1
	// rankWords1 is the size of an L1 index (65536 slots, 32 per word).
	rankWords1 = 1 << 16 / 32
	// rankMin1 is the smallest L1 table (in ranges) that gets an index.
	rankMin1 = 128
	// rankMin2 is the smallest L2 table (in ranges) that gets an index.
	rankMin2 = 2
	// hdr.ix: flag, level-1 words, groups (ixK...).
	ixFlag = 1 << 31
)

// n6 is the range count of the L1 table of IPv6 dir entry e.
func n6(e uint64) int { return int(e>>32) & n6Mask }

// span6 is the arena length of the L1 table of IPv6 dir entry e.
func span6(e uint64) int {
	n := n6(e)
	if e&rankFlag != 0 {
		return n + rankWords1
	}
	return n + summaryLen(n)
}

// size is the arena length of an L2 table with header h.
func (h hdr) size() int {
	n := int(h.count)
	if h.ix != 0 {
		return n + ixWords(h.ix)
	}
	return n + summaryLen(n)
}

// ents is the arena position of the entries of an L2 table with header h
// (after its rank index, if it has one).
func (h hdr) ents() uint32 {
	if h.ix != 0 {
		return h.start + uint32(ixWords(h.ix))
	}
	return h.start
}

// The fields of hdr.ix (see l2Rank): the level-1 words (the /38s of the
// /32 with a range start) and the groups with a range start.
func ixK(ix uint32) int      { return int(ix & 0x7f) }
func ixGroups(ix uint32) int { return int(ix >> 12 & 0xfff) }

// ixDeep marks an L2 index with deep groups (see l2Rank).
const ixDeep = 1 << 24

// ixWords is the length of an L2 rank index: the "before" sentinel, the
// level-1 words, the zero word and the group words (and, with deep
// groups, the sentinel after them).
func ixWords(ix uint32) int { return ixK(ix) + 2 + ixGroups(ix) + int(ix>>24&1) }

// deepBit marks a deep group's word (bit 31 of its count).
const deepBit = 1 << 63

// appendRank appends to out the words of a rank index over slots lo ..
// lo+32*words-1 of the ranges ents (key<<32 | value), a key's slot being
// key>>shift; every slot holds at most one start, and the starts after
// key 0 lie in the span.
func appendRank(out, ents []uint64, shift uint, lo, words int) []uint64 {
	out = slices.Grow(out, words)
	j, c := 1, uint64(0)
	for w := range words {
		var bm uint64
		c0 := c
		end := lo + (w+1)<<5
		for ; j < len(ents); j++ {
			s := int(ents[j] >> 32 >> shift)
			if s >= end {
				break
			}
			bm |= 1 << ((s - lo) & 31)
			c++
		}
		out = append(out, c0<<32|bm)
	}
	return out
}

// rankOf returns what rank word x, word w of an index, says for slot
// offset d (slot - the index's first slot): the starts up to and including
// slot d. Offsets before the word count none of its bits, offsets after it
// all of them, so that with rankWord's clamp slots before the index give
// 0 and slots after it everything.
func rankOf(x uint64, d, w int) uint32 {
	k := min(max(d-w<<5+1, 0), 32)
	return uint32(x>>32) + uint32(bits.OnesCount32(uint32(x)&uint32(uint64(1)<<k-1)))
}

// rankWord returns the word of a rank index of words words for slot offset
// d, clamped to the index.
func rankWord(d, words int) int { return min(max(d, 0)>>5, words-1) }

// l2Rank decides whether the L2 table ents (n ranges, key<<32 | value)
// gets a rank index and returns its header fields (ix 0: none): ix and
// l38, the /38s of the /32 holding a range start after key 0 (bit W for
// /38 W).
//
// An L2 index has two levels, since the starts of a /32's ranges are
// usually few and far apart among its 65536 /48 slots (a flat bitmap
// would be 16 KiB for a few hundred ranges). The slots are grouped by 32
// (group g = slot>>5, 0..2047), the groups by 32 (/38 W = slot>>10,
// 0..63). Level 0 is the header's l38; the index comes first in the
// table, before its n entries, so that a lookup needs neither the range
// count nor more than 16 bytes of header (hdr6), and every count in it is
// an offset from its start (W = ixWords: the first entry's):
//
//	0:              the "before" sentinel, Z<<32
//	1 .. K:         one level-1 word per /38 with a start (K of them, in
//	                order): Z + groups with a start before the /38, <<32 |
//	                bitmap of its groups with a start
//	Z = K+1:        the "zero" word, W<<32 (range 0)
//	Z+1 .. Z+G:     one word per group with a start: W + the starts before
//	                the group <<32 | bitmap of its slots with a start
//	Z+G+1:          with deep groups only: (W+n-1)<<32
//	W .. W+n-1:     the entries
//
// A lookup of slot s counts in l38 the /38s with a start up to W, k: the
// level-1 word at n+k is W's if W has a start, else the last one before
// it (the sentinel if none). Its count plus its bits up to group g (all
// of them if the word is not W's) is the offset of the group word of the
// last group with a start at or before g (the zero word if none), and the
// count of that word plus its bits up to s if that group is g (g's bit in
// W's word), all of them otherwise, is the range: an offset from the
// table's start, like every count in the index. 3 loads (the header's
// l38, the level-1 word, the group word), no search, no clamp.
//
// A table with ranges starting inside a /48 (a /49-/64 prefix or a /64
// region's reference) is indexed too since the fifth session of
// 2026-11-30 (before, it was searched: ~2.4 % of the full table's probes,
// ~6 % of Lookup6Batch's time in lockstep searches). The group of such a
// start is *deep*: its word has deepBit set (bit 31 of the count, which
// never reaches 2^22) and its bitmap marks the slots holding starts. A
// lookup whose group word is deep binary-searches the entries of the
// group's starts, from its count to the next word's (deepRank: the index
// has a sentinel word after the last group); the others never look at
// the keys.
//
// Level 1 has at most 64 words, so a sparse table - a few ranges spread
// over the /32, ~20 % of the full table's L2 tables - takes at most a few
// words more than its summary would. Until 2026-11-30 such tables were
// searched instead, and every address of a batch paid the lockstep rounds
// of the batch's biggest searched table (Lookup6Batch ~7 % faster with
// them indexed). Until the sixth session of 2026-11-30 level 1 had a word
// for every /38 from the first to the last with a start (between two
// sentinels, clamped to them): 1.26 MB on the full table, against 0.35
// MB with a word only for the /38s with a start (see BENCHMARKS.md).
func l2Rank(ents []uint64) (ix uint32, l38 uint64) {
	n := len(ents)
	if n < rankMin2 {
		return 0, 0
	}
	groups, last := 0, -1
	deep := uint32(0)
	for _, e := range ents[1:] {
		if g := int(e >> 53); g != last {
			groups++
			last = g
		}
		l38 |= 1 << (e >> 58)
		if e>>32&0xffff != 0 {
			deep = ixDeep // a range starts inside a /48
		}
	}
	return ixFlag | deep | uint32(groups)<<12 | uint32(bits.OnesCount64(l38)), l38
}

// appendRank2 appends the L2 index ix of the ranges ents (see l2Rank).
func appendRank2(out, ents []uint64, ix uint32) []uint64 {
	k := ixK(ix)
	n := len(ents)
	z := uint64(k + 1)
	w0 := ixWords(ix) // the first entry's offset: every count is an offset from the index's start
	base := len(out)
	out = append(out, z<<32)
	for range k {
		out = append(out, 0)
	}
	out = append(out, uint64(w0)<<32)
	last, lastW, w := -1, -1, 0
	for j, e := range ents[1:] {
		s := int(e >> 48)
		g := s >> 5
		if g != last {
			last = g
			if s>>10 != lastW {
				lastW = s >> 10
				w++
			}
			out[base+w] |= 1 << (g & 31)
			out = append(out, uint64(w0+j)<<32) // j starts before the group
		}
		out[len(out)-1] |= 1 << (s & 31)
		if e>>32&0xffff != 0 {
			out[len(out)-1] |= deepBit
		}
	}
	if ix&ixDeep != 0 {
		out = append(out, uint64(w0+n-1)<<32)
	}
	c := z
	for w := range k {
		x := out[base+1+w]
		out[base+1+w] = x | c<<32
		c += uint64(bits.OnesCount32(uint32(x)))
	}
	return out
}

// rank2 returns the offset of the range of key k (bits 32-63 of the
// address) in the L2 table with index level 0 l38 at the segment position
// tab (the index, then the entries). Every read lies inside the table the
// writer built.
func rank2(tab unsafe.Pointer, l38 uint64, k uint32) uint32 {
	s := k >> 16
	w := s >> 10
	x1 := at[uint64](tab, uint32(bits.OnesCount64(l38&(2<<w-1))))
	gs := s>>5&31 | (uint32(l38>>w)&1^1)<<5 // g, or 32+g if /38 w has no start
	r := uint32(x1>>32) + uint32(bits.OnesCount32(uint32(x1)&uint32(2<<gs-1)))
	in := uint32(uint64(uint32(x1))>>gs) & 1
	x2 := at[uint64](tab, r)
	if x2&deepBit != 0 {
		return deepRank(tab, r, k)
	}
	m := ^uint32(0)>>(31-s&31) | (in - 1) // g has starts: those up to s; else all
	return uint32(x2>>32) + uint32(bits.OnesCount32(uint32(x2)&m))
}

// deepRank returns the range of key k in the L2 table at tab whose deep
// group word (the last group with a start at or before k's) is at offset
// p: the last of the group's starts at or before k, or the range before
// the group. A binary search of the group's entries (their keys).
func deepRank(tab unsafe.Pointer, p, k uint32) uint32 {
	lo := uint32(at[uint64](tab, p)>>32) & 0x7fffffff   // the range before the group
	hi := uint32(at[uint64](tab, p+1)>>32) & 0x7fffffff // the group's last range
	for lo < hi {
		mid := hi - (hi-lo)/2
		if uint32(at[uint64](tab, mid)>>32) <= k {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}
