package lltable

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/ring"
)

// Snapshot is an immutable view of the usable entries of every port
// (REACHABLE, STALE, DELAY, PROBE and static), built by the control
// goroutine and published whole. Workers load it once per burst
// (Reader.Load) and look up with Reader.Lookup4/Lookup6, or with the
// Snapshot's own methods when they give no usage feedback.
//
// Layout: two open-addressing hash tables with linear probing, one per
// family, capacity a power of two at least twice the entry count, so every
// probe sequence ends at an empty slot. No Go map, no pointer chasing, no
// allocation per lookup.
type Snapshot struct {
	gen   uint64
	v4    []slot4
	mask4 uint64
	v6    []slot6
	mask6 uint64
	n4    int
	n6    int
}

// slot flags.
const (
	slotUsed    = 1 << 0 // occupied
	slotWantUse = 1 << 1 // STALE: report use (RFC 4861 §7.3.3 STALE -> DELAY)
)

// slot4 is 24 bytes: key = 1<<63 | port<<32 | ip (0: empty).
type slot4 struct {
	key   uint64
	mac   [6]byte
	flags uint8
	_     uint8
	id    uint32
}

// slot6 is 32 bytes.
type slot6 struct {
	hi, lo uint64
	port   uint16
	flags  uint8
	_      uint8
	mac    [6]byte
	_      [2]byte
	id     uint32
}

// Compile-time size checks: slot4 is 24 bytes, slot6 32.
var _ [24 - unsafe.Sizeof(slot4{})]byte
var _ [unsafe.Sizeof(slot4{}) - 24]byte
var _ [32 - unsafe.Sizeof(slot6{})]byte
var _ [unsafe.Sizeof(slot6{}) - 32]byte

const hashMul = 0x9e3779b97f4a7c15

func key4(port uint16, ip uint32) uint64 { return 1<<63 | uint64(port)<<32 | uint64(ip) }

func hash4(k uint64) uint64 { k *= hashMul; return k ^ k>>29 }

func hash6(port uint16, hi, lo uint64) uint64 {
	h := (hi ^ bits.RotateLeft64(lo, 31) ^ uint64(port)<<7) * hashMul
	return h ^ h>>31
}

// Gen returns the snapshot's generation: published snapshots have strictly
// increasing generations.
func (s *Snapshot) Gen() uint64 { return s.gen }

// Len returns the number of IPv4 and IPv6 entries in the snapshot.
func (s *Snapshot) Len() (v4, v6 int) { return s.n4, s.n6 }

func (s *Snapshot) find4(port uint16, ip uint32) *slot4 {
	k := key4(port, ip)
	for i := hash4(k); ; i++ {
		sl := &s.v4[i&s.mask4]
		if sl.key == k {
			return sl
		}
		if sl.key == 0 {
			return nil
		}
	}
}

func (s *Snapshot) find6(port uint16, ip *[16]byte) *slot6 {
	hi := binary.BigEndian.Uint64(ip[0:8])
	lo := binary.BigEndian.Uint64(ip[8:16])
	for i := hash6(port, hi, lo); ; i++ {
		sl := &s.v6[i&s.mask6]
		if sl.flags == 0 {
			return nil
		}
		if sl.lo == lo && sl.hi == hi && sl.port == port {
			return sl
		}
	}
}

// Lookup4 returns the MAC of IPv4 neighbour ip on port and whether a usable
// entry exists. It gives no usage feedback: prefer Reader.Lookup4 in
// forwarding workers.
func (s *Snapshot) Lookup4(port uint16, ip uint32) (mac [6]byte, ok bool) {
	if sl := s.find4(port, ip); sl != nil {
		return sl.mac, true
	}
	return mac, false
}

// Lookup6 is Lookup4 for IPv6.
func (s *Snapshot) Lookup6(port uint16, ip *[16]byte) (mac [6]byte, ok bool) {
	if sl := s.find6(port, ip); sl != nil {
		return sl.mac, true
	}
	return mac, false
}

// snapEntry is what the control goroutine puts in a snapshot.
type snapEntry struct {
	port    uint16
	v6      bool
	ip      [16]byte // IPv4 in the first 4 bytes
	mac     [6]byte
	wantUse bool
	id      uint32
}

func buildSnapshot(gen uint64, es []snapEntry) *Snapshot {
	n4, n6 := 0, 0
	for i := range es {
		if es[i].v6 {
			n6++
		} else {
			n4++
		}
	}
	c4, c6 := tableSize(n4), tableSize(n6)
	s := &Snapshot{gen: gen, v4: make([]slot4, c4), mask4: uint64(c4 - 1),
		v6: make([]slot6, c6), mask6: uint64(c6 - 1), n4: n4, n6: n6}
	for i := range es {
		e := &es[i]
		fl := uint8(slotUsed)
		if e.wantUse {
			fl |= slotWantUse
		}
		if !e.v6 {
			ip := binary.BigEndian.Uint32(e.ip[:4])
			k := key4(e.port, ip)
			for j := hash4(k); ; j++ {
				sl := &s.v4[j&s.mask4]
				if sl.key == 0 || sl.key == k {
					*sl = slot4{key: k, mac: e.mac, flags: fl, id: e.id}
					break
				}
			}
			continue
		}
		hi := binary.BigEndian.Uint64(e.ip[0:8])
		lo := binary.BigEndian.Uint64(e.ip[8:16])
		for j := hash6(e.port, hi, lo); ; j++ {
			sl := &s.v6[j&s.mask6]
			if sl.flags == 0 || (sl.hi == hi && sl.lo == lo && sl.port == e.port) {
				*sl = slot6{hi: hi, lo: lo, port: e.port, flags: fl, mac: e.mac, id: e.id}
				break
			}
		}
	}
	return s
}

// tableSize returns a power of two >= 2n, at least 8.
func tableSize(n int) int {
	c := 8
	for c < 2*n {
		c <<= 1
	}
	return c
}

// Reader is one worker's access to the table: it loads the snapshot, looks
// up, reports use of STALE entries, and hands misses and ARP/NDP frames to
// the control goroutine through the table's MPSC rings.
//
// A Reader belongs to one worker goroutine. The only memory it writes that
// another goroutine reads is its own marks array (read by the control
// goroutine) and its own refusal counters: no cache line is written by two
// workers. A mark is written only when a lookup hits a STALE entry whose mark
// is older than the snapshot, so at most once per entry per published
// snapshot.
type Reader struct {
	t      *Table
	snap   *atomic.Pointer[Snapshot]
	marks  atomic.Pointer[markArray] // replaced whole when the table grows
	miss   *ring.Ring[*mbuf.Mbuf]
	input  *ring.Ring[*mbuf.Mbuf]
	cache  *mbuf.Cache
	one    [1]*mbuf.Mbuf
	_      [64]byte
	missNo atomic.Uint64 // miss ring full
	inNo   atomic.Uint64 // input ring full
	tagNo  atomic.Uint64 // no headroom for the miss tag
}

// Load returns the current snapshot. Call it once per burst.
func (r *Reader) Load() *Snapshot { return r.snap.Load() }

// Lookup4 returns the MAC of IPv4 neighbour ip on port and whether a usable
// entry exists in s, and marks a STALE entry as used. 0 allocations.
func (r *Reader) Lookup4(s *Snapshot, port uint16, ip uint32) (mac [6]byte, ok bool) {
	sl := s.find4(port, ip)
	if sl == nil {
		return mac, false
	}
	if sl.flags&slotWantUse != 0 {
		r.mark(sl.id, s.gen)
	}
	return sl.mac, true
}

// Lookup6 is Lookup4 for IPv6.
func (r *Reader) Lookup6(s *Snapshot, port uint16, ip *[16]byte) (mac [6]byte, ok bool) {
	sl := s.find6(port, ip)
	if sl == nil {
		return mac, false
	}
	if sl.flags&slotWantUse != 0 {
		r.mark(sl.id, s.gen)
	}
	return sl.mac, true
}

// markArray holds, by entry id, the newest snapshot generation in which a
// Reader saw the entry while it was STALE.
type markArray struct{ m []atomic.Uint64 }

func (r *Reader) mark(id uint32, gen uint64) {
	m := r.marks.Load().m
	if int(id) < len(m) && m[id].Load() < gen {
		m[id].Store(gen)
	}
}

// Miss tag: written by Miss4/Miss6 into the headroom just before the
// frame, read by the control goroutine. The headroom in front of the data
// belongs to whoever owns the mbuf; the tag travels with the ownership.
const (
	missTagLen   = 24
	missTagMagic = 0x4c4c5401 // "LLT\x01"
)

// Miss4 hands m, a routed packet whose IPv4 next hop target has no usable
// entry on port, to the control goroutine. It takes ownership: if the miss
// ring is full (or m has no 24 bytes of headroom for the target tag) m is
// freed to the Reader's cache (so m must come from that cache's pool, as a
// worker's received mbufs do) and counted. The frame must start with its
// Ethernet header; its TTL is expected to be decremented already.
func (r *Reader) Miss4(m *mbuf.Mbuf, port uint16, target uint32) bool {
	var a [16]byte
	binary.BigEndian.PutUint32(a[:4], target)
	return r.missTag(m, port, 4, &a)
}

// Miss6 is Miss4 for an IPv6 target.
func (r *Reader) Miss6(m *mbuf.Mbuf, port uint16, target *[16]byte) bool {
	return r.missTag(m, port, 6, target)
}

func (r *Reader) missTag(m *mbuf.Mbuf, port uint16, fam uint8, a *[16]byte) bool {
	off := m.Offset()
	if off < missTagLen {
		r.tagNo.Store(r.tagNo.Load() + 1)
		r.free(m)
		return false
	}
	tag := m.Buf()[off-missTagLen : off]
	binary.LittleEndian.PutUint32(tag[0:4], missTagMagic)
	binary.LittleEndian.PutUint16(tag[4:6], port)
	tag[6], tag[7] = fam, 0
	copy(tag[8:24], a[:])
	if !r.miss.Enqueue(m) {
		r.missNo.Store(r.missNo.Load() + 1)
		r.free(m)
		return false
	}
	return true
}

// Input hands m, an ARP frame or an ICMPv6 neighbour discovery packet
// received on m.Port, to the control goroutine. It takes ownership: if the
// input ring is full m is freed and counted.
func (r *Reader) Input(m *mbuf.Mbuf) bool {
	if !r.input.Enqueue(m) {
		r.inNo.Store(r.inNo.Load() + 1)
		r.free(m)
		return false
	}
	return true
}

func (r *Reader) free(m *mbuf.Mbuf) {
	if r.cache == nil {
		r.t.cfg.Stack.Free([]*mbuf.Mbuf{m}) // only without a cache (tests)
		return
	}
	r.one[0] = m
	r.cache.Free(r.one[:])
	r.one[0] = nil
}
