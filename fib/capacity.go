package fib

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// checkCapacity refuses a batch after which a FIB's table of one family
// would hold more prefixes than the limit, or an IPv6 /32 more prefixes
// longer than /32 than its limit (FIBs.limits), before anything is
// changed: a refused batch is never half applied.
//
// The common case costs a few map lookups per added prefix: every count
// plus the number of adds in the batch stays under its limit. Only near a
// limit does it replay the batch against the RIB to get the exact counts
// after it (deletes, re-adds of existing prefixes and next-hop changes do
// not grow a table).
func (f *FIBs) checkCapacity(changes []Change) error {
	perFam, deep := f.limits()
	var a4, a6 int
	for i := range changes {
		if c := &changes[i]; c.Op == OpAdd {
			if c.Prefix.Addr().Is4() {
				a4++
			} else {
				a6++
			}
		}
	}
	near := false
	for i := range changes {
		c := &changes[i]
		if c.Op != OpAdd {
			continue
		}
		lo, hi := f.fibsOf(c)
		for fib := lo; fib < hi && !near; fib++ {
			if c.Prefix.Addr().Is4() {
				near = f.count4(fib)+a4 > perFam
				continue
			}
			near = f.count6(fib)+a6 > perFam ||
				c.Prefix.Bits() > 32 && f.countDeep(fib, c.Prefix)+a6 > deep
		}
		if near {
			break
		}
	}
	if !near {
		return nil
	}
	return f.replayCapacity(changes, perFam, deep)
}

// fibsOf returns the FIBs change c applies to.
func (f *FIBs) fibsOf(c *Change) (lo, hi int) {
	if c.Connected {
		return 0, f.nfib
	}
	return int(c.FIB), int(c.FIB) + 1
}

func (f *FIBs) count4(fib int) int {
	if fm := f.f4[fib]; fm != nil {
		return fm.n
	}
	return 0
}

func (f *FIBs) count6(fib int) int {
	if fm := f.f6[fib]; fm != nil {
		return fm.n
	}
	return 0
}

// countDeep returns the prefixes longer than /32 under the /32 of p.
func (f *FIBs) countDeep(fib int, p netip.Prefix) int {
	fm := f.f6[fib]
	if fm == nil {
		return 0
	}
	b := p.Addr().As16()
	hi := binary.BigEndian.Uint64(b[:8])
	rc := fm.chunks[uint16(hi>>48)]
	if rc == nil {
		return 0
	}
	if r2 := rc.kids[uint16(hi>>32)]; r2 != nil {
		return r2.n
	}
	return 0
}

// replayCapacity computes the exact counts after the batch and checks
// them. The error names the last change that added to the table over its
// limit.
func (f *FIBs) replayCapacity(changes []Change, perFam, deep int) error {
	type pkey struct {
		fib int
		p   netip.Prefix
	}
	type tally struct {
		n, last int
	}
	state := make(map[pkey]bool)
	fams := make(map[pkey]*tally) // p: the zero prefix of the family
	deeps := make(map[pkey]*tally)
	for i := range changes {
		c := &changes[i]
		lo, hi := f.fibsOf(c)
		v4 := c.Prefix.Addr().Is4()
		for fib := lo; fib < hi; fib++ {
			k := pkey{fib, c.Prefix}
			had, seen := state[k]
			if !seen {
				_, had = f.exact(uint32(fib), c.Prefix)
			}
			now := c.Op == OpAdd
			state[k] = now
			if had == now {
				continue
			}
			d := 1
			if !now {
				d = -1
			}
			fk := pkey{fib, netip.PrefixFrom(netip.IPv6Unspecified(), 0)}
			if v4 {
				fk.p = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			}
			t := fams[fk]
			if t == nil {
				t = &tally{n: f.count4(fib)}
				if !v4 {
					t.n = f.count6(fib)
				}
				fams[fk] = t
			}
			t.n += d
			if now {
				t.last = i
			}
			if v4 || c.Prefix.Bits() <= 32 {
				continue
			}
			rk := pkey{fib, netip.PrefixFrom(c.Prefix.Addr(), 32).Masked()}
			t = deeps[rk]
			if t == nil {
				t = &tally{n: f.countDeep(fib, c.Prefix)}
				deeps[rk] = t
			}
			t.n += d
			if now {
				t.last = i
			}
		}
	}
	var err error
	first := len(changes)
	for k, t := range fams {
		if t.n > perFam && t.last < first {
			first = t.last
			c := &changes[t.last]
			fam := 6
			if k.p.Addr().Is4() {
				fam = 4
			}
			err = fmt.Errorf("fib: change %d (fib %d %v): the IPv%d table of FIB %d would hold %d prefixes: %w (at most %d per FIB and family; aggregate routes or spread them over FIBs)",
				t.last, c.FIB, c.Prefix, fam, k.fib, t.n, ErrCapacity, perFam)
		}
	}
	for k, t := range deeps {
		if t.n > deep && t.last < first {
			first = t.last
			c := &changes[t.last]
			err = fmt.Errorf("fib: change %d (fib %d %v): %v in FIB %d would hold %d prefixes longer than /32: %w (at most %d under one IPv6 /32; aggregate them)",
				t.last, c.FIB, c.Prefix, k.p, k.fib, t.n, ErrCapacity, deep)
		}
	}
	return err
}
