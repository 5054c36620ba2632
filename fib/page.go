package fib

import (
	"cmp"
	"fmt"
	"math/bits"
	"net/netip"
)

// RoutesAfter returns at most max routes of FIB fib in the order of Routes
// (IPv4 first, then IPv6, each by address then length), the first being
// the one that follows after (the zero Prefix: from the start). It is the
// paged form of Routes for a table too large to list at once (show routes
// of a full Internet table): a listing made page by page, each page
// starting after the last route of the one before, shows every route that
// stays in the FIB during the whole listing exactly once, in order, and
// never one twice; routes added or deleted meanwhile may or may not be in
// it. A call walks the RIB in order from after's /16 region, so its cost
// is about max routes plus the routes of that region before after (IPv6:
// of its /32 region) plus one map lookup per empty /16 region crossed
// (at most 65536 per family). Control goroutine only, like Routes.
func (f *FIBs) RoutesAfter(fib uint32, after netip.Prefix, max int) ([]Route, error) {
	if int64(fib) >= int64(f.nfib) {
		return nil, fmt.Errorf("fib: routes of fib %d: %w", fib, ErrFIB)
	}
	if max <= 0 {
		return nil, nil
	}
	p := &pager{fib: fib, after: after, max: max}
	if !after.IsValid() || after.Addr().Is4() {
		var start uint16
		if after.IsValid() {
			start = uint16(ip4(after.Addr()) >> 16)
		}
		if fm := f.f4[fib]; fm != nil && !p.page4(fm, start) {
			return p.out, nil
		}
	}
	var start uint16
	if after.IsValid() && after.Addr().Is6() {
		b := after.Addr().As16()
		start = uint16(b[0])<<8 | uint16(b[1])
	}
	if fm := f.f6[fib]; fm != nil {
		p.page6(fm, start)
	}
	return p.out, nil
}

func ip4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// pager collects a page: the routes after p.after, up to max.
type pager struct {
	fib   uint32
	after netip.Prefix
	max   int
	out   []Route
}

// comparePrefix orders prefixes as Routes does: IPv4 first, then address,
// then length.
func comparePrefix(a netip.Addr, l int, b netip.Prefix) int {
	if a.Is4() != b.Addr().Is4() {
		if a.Is4() {
			return -1
		}
		return 1
	}
	if c := a.Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(l, b.Bits())
}

// add takes one route in order; it reports whether the page has room for
// more.
func (p *pager) add(a netip.Addr, l int, nh uint32) bool {
	if p.after.IsValid() && comparePrefix(a, l, p.after) <= 0 {
		return true
	}
	p.out = append(p.out, Route{FIB: p.fib, Prefix: netip.PrefixFrom(a, l), NextHop: nh})
	return len(p.out) < p.max
}

// shortIn calls add for the prefixes of /16 or shorter whose address is
// slot<<16 (IPv4) or slot<<112 (IPv6), shortest first: those whose length
// leaves slot's low bits zero.
func (p *pager) shortIn(d *dirw, slot uint16, addr func() netip.Addr) bool {
	for l := 16 - bits.TrailingZeros16(slot); l <= 16; l++ {
		if nh, ok := d.short[uint32(l)<<16|uint32(slot)]; ok {
			if !p.add(addr(), l, nh) {
				return false
			}
		}
	}
	return true
}

// page4 walks the IPv4 RIB in order from region start; false: page full.
func (p *pager) page4(fm *fam4, start uint16) bool {
	for s := uint32(start); s <= 0xffff; s++ {
		if !p.shortIn(&fm.d, uint16(s), func() netip.Addr { return addr4(s << 16) }) {
			return false
		}
		if rc := fm.chunks[uint16(s)]; rc != nil {
			for _, e := range rc.ents {
				if !p.add(addr4(s<<16|uint32(e.start)), int(e.plen)+16, e.v) {
					return false
				}
			}
		}
	}
	return true
}

// page6 walks the IPv6 RIB in order from region start; false: page full.
// A deeper region stands in its parent's entry list where its reference
// entry is (one bit longer than the level's prefixes, after them), which
// is its place in the order; regions wholly before after are skipped.
func (p *pager) page6(fm *fam6, start uint16) bool {
	var aHi uint64
	if p.after.IsValid() && p.after.Addr().Is6() {
		b := p.after.Addr().As16()
		for _, x := range b[:8] {
			aHi = aHi<<8 | uint64(x)
		}
	}
	for s := uint32(start); s <= 0xffff; s++ {
		if !p.shortIn(&fm.d, uint16(s), func() netip.Addr { return addr6(uint64(s)<<48, 0) }) {
			return false
		}
		rc := fm.chunks[uint16(s)]
		if rc == nil {
			continue
		}
		for _, e := range rc.ents {
			hi0 := uint64(s)<<48 | uint64(e.start)<<32
			if e.v&refFlag == 0 {
				if !p.add(addr6(hi0, 0), int(e.plen)+16, e.v) {
					return false
				}
				continue
			}
			r2 := rc.kids[e.start]
			if r2 == nil || hi0>>32 < aHi>>32 {
				continue // before after's /32
			}
			for _, e2 := range r2.ents {
				hi := hi0 | uint64(e2.start)
				if e2.v&refFlag == 0 {
					if !p.add(addr6(hi, 0), int(e2.plen)+32, e2.v) {
						return false
					}
					continue
				}
				r3 := r2.kids[e2.start]
				if r3 == nil || hi < aHi {
					continue // before after's /64
				}
				for _, e3 := range r3.ents {
					if !p.add(addr6(hi, e3.start), int(e3.plen)+64, e3.v) {
						return false
					}
				}
			}
		}
	}
	return true
}
