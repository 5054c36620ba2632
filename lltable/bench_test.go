package lltable

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
)

// Benchmarks of one lookup in a snapshot, next to a baseline Go map holding
// the same entries (what the hot path must not use), in the same run.
// Keys are looked up in a shuffled order over all entries (hits).

func benchSet(n int) (*Snapshot, []snapEntry) {
	rng := rand.New(rand.NewPCG(9, 9))
	es := make([]snapEntry, 0, n)
	seen := map[refKey]bool{}
	for len(es) < 2*n {
		var se snapEntry
		se.port = uint16(rng.IntN(4))
		se.v6 = len(es)%2 == 1
		if se.v6 {
			se.ip = [16]byte{0x20, 0x01, 0, 2}
			binary.BigEndian.PutUint64(se.ip[8:], rng.Uint64())
		} else {
			binary.BigEndian.PutUint32(se.ip[:4], 0xc6120000|rng.Uint32N(1<<17))
		}
		k := refKey{se.port, se.v6, se.ip}
		if seen[k] {
			continue
		}
		seen[k] = true
		se.mac = [6]byte{2, 0, byte(len(es) >> 16), byte(len(es) >> 8), byte(len(es)), 1}
		se.id = uint32(len(es))
		es = append(es, se)
	}
	rng.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
	return buildSnapshot(1, es), es
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1024, 65536} {
		s, es := benchSet(n)
		var v4 []snapEntry
		var v6 []snapEntry
		for _, e := range es {
			if e.v6 {
				v6 = append(v6, e)
			} else {
				v4 = append(v4, e)
			}
		}
		tab := &Table{cfg: Config{MaxEntries: 2 * n}}
		r := &Reader{t: tab}
		r.marks.Store(&markArray{m: make([]atomic.Uint64, 2*n)})
		b.Run(fmt.Sprintf("v4/snapshot-stale/n=%d", n), func(b *testing.B) {
			// Every entry STALE: each hit reads its mark (written once per
			// snapshot generation), the use-feedback path.
			st := slices.Clone(v4)
			for i := range st {
				st[i].wantUse = true
			}
			ss := buildSnapshot(1, st)
			var sink byte
			for i := 0; b.Loop(); i++ {
				e := &st[i&(n-1)]
				m, _ := r.Lookup4(ss, e.port, binary.BigEndian.Uint32(e.ip[:4]))
				sink ^= m[5]
			}
			_ = sink
		})
		b.Run(fmt.Sprintf("v4/snapshot/n=%d", n), func(b *testing.B) {
			var sink byte
			for i := 0; b.Loop(); i++ {
				e := &v4[i&(n-1)]
				m, _ := r.Lookup4(s, e.port, binary.BigEndian.Uint32(e.ip[:4]))
				sink ^= m[5]
			}
			_ = sink
		})
		b.Run(fmt.Sprintf("v4/gomap/n=%d", n), func(b *testing.B) {
			mp := make(map[uint64][6]byte, n)
			for _, e := range v4 {
				mp[key4(e.port, binary.BigEndian.Uint32(e.ip[:4]))] = e.mac
			}
			var sink byte
			for i := 0; b.Loop(); i++ {
				e := &v4[i&(n-1)]
				m := mp[key4(e.port, binary.BigEndian.Uint32(e.ip[:4]))]
				sink ^= m[5]
			}
			_ = sink
		})
		b.Run(fmt.Sprintf("v6/snapshot/n=%d", n), func(b *testing.B) {
			var sink byte
			for i := 0; b.Loop(); i++ {
				e := &v6[i&(n-1)]
				m, _ := r.Lookup6(s, e.port, &e.ip)
				sink ^= m[5]
			}
			_ = sink
		})
		b.Run(fmt.Sprintf("v6/gomap/n=%d", n), func(b *testing.B) {
			type k6 struct {
				port uint16
				ip   [16]byte
			}
			mp := make(map[k6][6]byte, n)
			for _, e := range v6 {
				mp[k6{e.port, e.ip}] = e.mac
			}
			var sink byte
			for i := 0; b.Loop(); i++ {
				e := &v6[i&(n-1)]
				m := mp[k6{e.port, e.ip}]
				sink ^= m[5]
			}
			_ = sink
		})
	}
}

// BenchmarkBuildSnapshot measures a full rebuild (what one publication
// costs the control goroutine) at the default MaxEntries.
func BenchmarkBuildSnapshot(b *testing.B) {
	_, es := benchSet(8192) // 16384 entries, both families
	b.ReportAllocs()
	for b.Loop() {
		buildSnapshot(2, es)
	}
}
