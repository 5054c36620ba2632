package fib

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// Control-side queries: they read the RIB and may allocate.

// Routes returns the routes of FIB fib (IPv4 first, then IPv6, each sorted
// by address then length), for `show routes`.
func (f *FIBs) Routes(fib uint32) ([]Route, error) {
	if int64(fib) >= int64(f.nfib) {
		return nil, fmt.Errorf("fib: routes of fib %d: %w", fib, ErrFIB)
	}
	var rs []Route
	f.walk(fib, func(a netip.Addr, l int, nh uint32) {
		rs = append(rs, Route{FIB: fib, Prefix: netip.PrefixFrom(a, l), NextHop: nh})
	})
	slices.SortFunc(rs, func(a, b Route) int {
		if a.Prefix.Addr().Is4() != b.Prefix.Addr().Is4() {
			if a.Prefix.Addr().Is4() {
				return -1
			}
			return 1
		}
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits())
	})
	return rs, nil
}

// RouteCount returns how many IPv4 and IPv6 routes FIB fib holds, without
// building them (show fibs and the metrics ask for it on every call; a
// mirrored full table is a million routes).
func (f *FIBs) RouteCount(fib uint32) (v4, v6 int, err error) {
	if int64(fib) >= int64(f.nfib) {
		return 0, 0, fmt.Errorf("fib: routes of fib %d: %w", fib, ErrFIB)
	}
	return f.count4(int(fib)), f.count6(int(fib)), nil
}

// walk calls add for every route of FIB fib, IPv4 then IPv6, in no order.
func (f *FIBs) walk(fib uint32, add func(a netip.Addr, l int, nh uint32)) {
	if fm := f.f4[fib]; fm != nil {
		for k, nh := range fm.d.short {
			l := int(k >> 16)
			add(addr4(k<<16&0xffff0000), l, nh)
		}
		for slot, rc := range fm.chunks {
			for _, e := range rc.ents {
				add(addr4(uint32(slot)<<16|uint32(e.start)), int(e.plen)+16, e.v)
			}
		}
	}
	f.walk6(fib, add)
}

// walk6 calls add for every IPv6 route of FIB fib, in no order.
func (f *FIBs) walk6(fib uint32, add func(a netip.Addr, l int, nh uint32)) {
	fm := f.f6[fib]
	if fm == nil {
		return
	}
	for k, nh := range fm.d.short {
		add(addr6(uint64(k&0xffff)<<48, 0), int(k>>16), nh)
	}
	for slot, rc := range fm.chunks {
		for _, e := range rc.ents {
			if e.v&refFlag == 0 {
				add(addr6(uint64(slot)<<48|uint64(e.start)<<32, 0), int(e.plen)+16, e.v)
			}
		}
		for k1, r2 := range rc.kids {
			hi0 := uint64(slot)<<48 | uint64(k1)<<32
			for _, e := range r2.ents {
				if e.v&refFlag == 0 {
					add(addr6(hi0|uint64(e.start), 0), int(e.plen)+32, e.v)
				}
			}
			for k2, r3 := range r2.kids {
				for _, e := range r3.ents {
					add(addr6(hi0|uint64(k2), e.start), int(e.plen)+64, e.v)
				}
			}
		}
	}
}

// RouteGet returns the route FIB fib uses for addr (`route get`); ok is
// false when no route matches.
func (f *FIBs) RouteGet(fib uint32, addr netip.Addr) (r Route, ok bool, err error) {
	if int64(fib) >= int64(f.nfib) {
		return Route{}, false, fmt.Errorf("fib: route get in fib %d: %w", fib, ErrFIB)
	}
	if !addr.IsValid() {
		return Route{}, false, fmt.Errorf("fib: route get %v: %w", addr, ErrBadPrefix)
	}
	maxl := addr.BitLen()
	for l := maxl; l >= 0; l-- {
		p, _ := addr.Prefix(l)
		if nh, ok := f.exact(fib, p); ok {
			return Route{FIB: fib, Prefix: p, NextHop: nh}, true, nil
		}
	}
	return Route{}, false, nil
}

// exact returns the next hop of exactly prefix p in FIB fib.
func (f *FIBs) exact(fib uint32, p netip.Prefix) (uint32, bool) {
	l := p.Bits()
	if p.Addr().Is4() {
		fm := f.f4[fib]
		if fm == nil {
			return 0, false
		}
		b := p.Addr().As4()
		a := binary.BigEndian.Uint32(b[:])
		if l <= 16 {
			nh, ok := fm.d.short[uint32(l)<<16|a>>16]
			return nh, ok
		}
		rc := fm.chunks[uint16(a>>16)]
		if rc == nil {
			return 0, false
		}
		return getEnt(rc.ents, uint16(a), uint8(l-16))
	}
	fm := f.f6[fib]
	if fm == nil {
		return 0, false
	}
	b := p.Addr().As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	if l <= 16 {
		nh, ok := fm.d.short[uint32(l)<<16|uint32(hi>>48)]
		return nh, ok
	}
	rc := fm.chunks[uint16(hi>>48)]
	if rc == nil {
		return 0, false
	}
	k1 := uint16(hi >> 32)
	if l <= 32 {
		return getEnt(rc.ents, k1, uint8(l-16))
	}
	r2 := rc.kids[k1]
	if r2 == nil {
		return 0, false
	}
	k2 := uint32(hi)
	if l <= 64 {
		return getEnt(r2.ents, k2, uint8(l-32))
	}
	r3 := r2.kids[k2]
	if r3 == nil {
		return 0, false
	}
	return getEnt(r3.ents, lo, uint8(l-64))
}

func addr4(a uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a)
	return netip.AddrFrom4(b)
}

func addr6(hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}
