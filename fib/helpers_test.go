package fib

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// dataDir finds ../shared/data relative to the repository root (walking up
// from the package directory to go.mod). A worktree may sit deeper than the
// main checkout, so the directories above the root are tried as well.
func dataDir(tb testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	root := ""
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && root == "" {
			root = dir
		}
		if root != "" {
			if st, err := os.Stat(filepath.Join(dir, "..", "shared", "data")); err == nil && st.IsDir() {
				return filepath.Join(dir, "..", "shared", "data")
			}
		}
		up := filepath.Dir(dir)
		if up == dir {
			tb.Skip("no ../shared/data above the repository root")
		}
		dir = up
	}
}

var fullOnce struct {
	sync.Once
	v4, v6 []netip.Prefix
	err    error
}

// fullTable returns the prefixes of fulltable-2024 (read once per process).
func fullTable(tb testing.TB) (v4, v6 []netip.Prefix) {
	fullOnce.Do(func() {
		fullOnce.v4, fullOnce.v6, fullOnce.err = readFullTable(tb)
	})
	if fullOnce.err != nil {
		tb.Fatal(fullOnce.err)
	}
	return fullOnce.v4, fullOnce.v6
}

// readFullTable reads the prefixes of fulltable-2024 (each call reads the
// file: for a benchmark that must not keep the lists alive, see
// churnProbes); it skips the test if the file is missing.
func readFullTable(tb testing.TB) (v4, v6 []netip.Prefix, err error) {
	path := filepath.Join(dataDir(tb), "fulltable-2024.txt.gz")
	if _, err := os.Stat(path); err != nil {
		tb.Skipf("full table not available: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	sc := bufio.NewScanner(z)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		p, err := netip.ParsePrefix(line)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return v4, v6, nil
}

var nhSeed = maphash.MakeSeed()

// nhOf derives the next hop of a prefix from its hash: ids 1..64.
func nhOf(p netip.Prefix) uint32 {
	return uint32(maphash.Comparable(nhSeed, p)%64) + 1
}

// newWithNH returns FIBs with n FIBs and 64 gateway next hops (ids 1..64).
func newWithNH(tb testing.TB, n int) *FIBs {
	f, err := New(Config{FIBs: n})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range 64 {
		id, err := f.AddNextHop(NextHop{Kind: KindGateway, Port: uint32(i % 4), Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)})})
		if err != nil || id != uint32(i+1) {
			tb.Fatalf("AddNextHop: %d %v", id, err)
		}
	}
	return f
}

func adds(fib uint32, ps []netip.Prefix) []Change {
	cs := make([]Change, len(ps))
	for i, p := range ps {
		cs[i] = Change{Op: OpAdd, FIB: fib, Prefix: p, NextHop: nhOf(p)}
	}
	return cs
}

// ref is the naive reference: a map per FIB, longest match by trying every
// length from the longest down.
type ref struct {
	m    []map[netip.Prefix]uint32
	lens [][2][129]int // routes per FIB, family (0 IPv4) and length
}

// applyBoth applies cs to f, failing t if f refuses it, and to the
// reference r.
func applyBoth(t testing.TB, f *FIBs, r *ref, cs []Change) {
	t.Helper()
	if err := f.Apply(cs); err != nil {
		t.Fatal(err)
	}
	r.apply(cs)
}

func newRef(n int) *ref {
	r := &ref{m: make([]map[netip.Prefix]uint32, n), lens: make([][2][129]int, n)}
	for i := range r.m {
		r.m[i] = make(map[netip.Prefix]uint32)
	}
	return r
}

func (r *ref) apply(cs []Change) {
	for _, c := range cs {
		fibs := []uint32{c.FIB}
		if c.Connected {
			fibs = fibs[:0]
			for i := range r.m {
				fibs = append(fibs, uint32(i))
			}
		}
		fam := 0
		if c.Prefix.Addr().Is6() {
			fam = 1
		}
		for _, fib := range fibs {
			_, had := r.m[fib][c.Prefix]
			if c.Op == OpAdd {
				r.m[fib][c.Prefix] = c.NextHop
				if !had {
					r.lens[fib][fam][c.Prefix.Bits()]++
				}
			} else if had {
				delete(r.m[fib], c.Prefix)
				r.lens[fib][fam][c.Prefix.Bits()]--
			}
		}
	}
}

func (r *ref) lookup(fib uint32, a netip.Addr) (netip.Prefix, uint32) {
	m := r.m[fib]
	lens := &r.lens[fib][0]
	if a.Is6() {
		lens = &r.lens[fib][1]
	}
	for l := a.BitLen(); l >= 0; l-- {
		if lens[l] == 0 {
			continue
		}
		p, _ := a.Prefix(l)
		if nh, ok := m[p]; ok {
			return p, nh
		}
	}
	return netip.Prefix{}, NoRoute
}

// randomChanges returns n changes to prefixes drawn from ps, each a delete
// or an add to a next hop in 1..64 with equal odds.
func randomChanges(rng *rand.Rand, ps []netip.Prefix, n int) []Change {
	var b []Change
	for range n {
		p := ps[rng.IntN(len(ps))]
		if rng.IntN(2) == 0 {
			b = append(b, Change{Op: OpDelete, Prefix: p})
		} else {
			b = append(b, Change{Op: OpAdd, Prefix: p, NextHop: 1 + uint32(rng.IntN(64))})
		}
	}
	return b
}

// randIn returns a random address inside p.
func randIn(rng *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	rh, rl := rng.Uint64(), rng.Uint64()
	if bits < 64 {
		hi |= rh & (^uint64(0) >> bits)
		lo = rl
	} else if bits < 128 {
		lo |= rl & (^uint64(0) >> (bits - 64))
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

// lastIn returns the last address of p.
func lastIn(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// lookup looks a up with the single-address path.
func lookup(s *Snapshot, fib uint32, a netip.Addr) uint32 {
	if a.Is4() {
		return s.Lookup4(fib, u32(a))
	}
	b := a.As16()
	return s.Lookup6(fib, &b)
}

// randPrefix returns a random prefix of the family, biased to short
// lengths and a small address space so that prefixes nest and overlap.
func randPrefix(rng *rand.Rand, v6 bool) netip.Prefix {
	if !v6 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], rng.Uint32()&0xc0ff00ff|0x0a000000)
		p, _ := netip.AddrFrom4(b).Prefix(rng.IntN(33))
		return p
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], rng.Uint64()&0xc000ff00ff00ff0f|0x2001000000000000)
	binary.BigEndian.PutUint64(b[8:], rng.Uint64()&0xff000000ff0000ff)
	p, _ := netip.AddrFrom16(b).Prefix(rng.IntN(129))
	return p
}
