package lagg

import (
	"encoding/binary"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd/flowhash"
)

// Flow hash: pmd/flowhash (FreeBSD lagg_hashmbuf, hash layers l2,l3,l4),
// keyed by the lagg's MAC and id. A frame the pipeline already hashed for
// this lagg (mbuf.FlagTxHash: the lagg is a pmd.TxHasher) is not read
// again; the others are hashed here, to the same value.

// hash is the flow hash of frame d over the lagg's layers.
func (p *Port) hash(d []byte) uint32 { return p.fh.Frame(d) }

// TxHash returns the lagg's flow hash for the pipeline to compute
// (pmd.TxHasher); nil for failover and roundrobin, which need none.
func (p *Port) TxHash() *flowhash.Hash {
	if p.roundRobin || p.proto == ProtoFailover {
		return nil
	}
	return p.fh
}

// spread puts each frame of ms into the burst of the member (of k) its
// flow hash picks — the hash reduced to [0, k) with a multiply, not a
// division —, in order within each member, and returns the members'
// counts packed one byte each (members 0-7 in lo, 8-15 in hi; a burst is
// at most 64 frames). sel is scratch of len(ms).
//
// With at most 8 members and every frame hashed by the pipeline
// (mbuf.FlagTxHash: the lagg is a pmd.TxHasher), one pass. Otherwise
// three passes, none with a call or a dependency through memory from one
// frame to the next: (1) take the hash of the frames that carry it
// (mbuf.FlagTxHash), and with the default layers (l2,l3,l4) hash inline
// the common case — an untagged TCP/UDP/SCTP over IPv4 frame without
// options or fragmentation —, marking the others; (2) hash the marked
// through the reference; (3) scatter, the counts in registers.
func (p *Port) spread(ms []*mbuf.Mbuf, sel []uint8, bufs *[MaxMembers][memberBuf]*mbuf.Mbuf, k int) (lo, hi uint64) {
	const other = 0xff
	kk := uint64(k)
	switch {
	case k == 2:
		// Every frame routed to the lagg by the pipeline carries its hash:
		// one pass, reading the mbufs only; with two members (the usual
		// lagg) the hash's top bit is the member (flowhash.Pick), the
		// counts are two registers. At the first frame without a hash,
		// start over with the passes below. With AVX-512, eight frames
		// a step (split2Vec; its stores need len(ms) <= maxBurst, which
		// TxBurst ensures: checked again, it writes memory directly).
		if p.splitVec && len(ms) <= maxBurst {
			if c1, ok := split2Vec(ms, &bufs[0], &bufs[1]); ok {
				return uint64(uint(len(ms))-c1) | uint64(c1)<<8, 0
			}
		} else if c0, c1, ok := split2(ms, &bufs[0], &bufs[1]); ok {
			return uint64(c0) | uint64(c1)<<8, 0
		}
	case k <= 8:
		// As for two members, the counts packed in one register.
		i := 0
		for ; i < len(ms); i++ {
			m := ms[i]
			if m.Flags&mbuf.FlagTxHash == 0 {
				break
			}
			j := uint(uint64(m.Hash)*kk>>32) & 7
			c := lo >> (8 * j)
			lo += 1 << (8 * j)
			bufs[j][c&(maxBurst-1)] = m
		}
		if i == len(ms) {
			return lo, 0
		}
		lo = 0
	}
	k0, k1 := p.fh.Key()
	sel = sel[:len(ms)]
	others := 0
	if p.hashL2 && p.hashL3 && p.hashL4 {
		for i, m := range ms {
			if m.Flags&mbuf.FlagTxHash != 0 {
				sel[i] = uint8(uint64(m.Hash) * kk >> 32)
				continue
			}
			d := m.Data()
			if len(d) < 38 || binary.LittleEndian.Uint16(d[12:14]) != 0x0008 || d[14] != 0x45 ||
				binary.LittleEndian.Uint16(d[20:22])&0xff3f != 0 || !flowhash.HasPorts(d[23]) {
				sel[i] = other
				others++
				continue
			}
			a := flowhash.AddIPv4(flowhash.AddEth(k0, binary.LittleEndian.Uint64(d[0:8]), binary.LittleEndian.Uint32(d[8:12])), binary.LittleEndian.Uint64(d[26:34]))
			b := flowhash.AddPorts(k1, binary.LittleEndian.Uint32(d[34:38]))
			sel[i] = uint8(uint64(flowhash.Mix(a, b)) * kk >> 32)
		}
	} else {
		for i, m := range ms {
			if m.Flags&mbuf.FlagTxHash != 0 {
				sel[i] = uint8(uint64(m.Hash) * kk >> 32)
				continue
			}
			sel[i] = other
			others++
		}
	}
	if others > 0 {
		for i, m := range ms {
			if sel[i] == other {
				sel[i] = uint8(uint64(p.fh.Frame(m.Data())) * kk >> 32)
			}
		}
	}
	for i, m := range ms {
		j := uint(sel[i]) & (MaxMembers - 1)
		var c uint64
		if j < 8 {
			c = lo >> (8 * j)
			lo += 1 << (8 * j)
		} else {
			c = hi >> (8 * (j - 8))
			hi += 1 << (8 * (j - 8))
		}
		bufs[j][c&(maxBurst-1)] = m
	}
	return lo, hi
}

// split2 is spread's pass for two members when every frame of ms carries
// the pipeline's hash (mbuf.FlagTxHash): the hash's top bit is the member
// (flowhash.Pick of 2). Both members' next slots take the frame and only
// one count moves: no branch, no select. ok is false at the first frame
// without the hash (the counts are then meaningless).
func split2(ms []*mbuf.Mbuf, b0, b1 *[memberBuf]*mbuf.Mbuf) (c0, c1 uint, ok bool) {
	for i, m := range ms {
		if m.Flags&mbuf.FlagTxHash == 0 {
			return 0, 0, false
		}
		c0 = uint(i) - c1
		b0[c0&(maxBurst-1)] = m
		b1[c1&(maxBurst-1)] = m
		c1 += uint(m.Hash >> 31)
	}
	return uint(len(ms)) - c1, c1, true
}
