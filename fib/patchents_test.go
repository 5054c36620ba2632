package fib

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// TestPatchSameNextHop: host routes with one next hop, added one per batch
// in one /16 (IPv4) and in one /32 (IPv6 /48s) as a routing daemon
// announces more-specifics of one customer, merge into a few ranges; the
// regions' tables are still patched (a sweep would visit every entry of
// the region for each change) and every lookup matches the reference.
func TestPatchSameNextHop(t *testing.T) {
	f := newWithNH(t, 1)
	r := newRef(1)
	apply := func(cs []Change) { t.Helper(); applyBoth(t, f, r, cs) }
	const n = 600
	var addrs []netip.Addr
	for i := range n {
		a4 := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], 0x2001_0002_0000_0000|uint64(i)<<16)
		a6 := netip.AddrFrom16(b)
		addrs = append(addrs, a4, a6)
		p0 := f.sc.patched
		apply([]Change{{Op: OpAdd, Prefix: netip.PrefixFrom(a4, 32), NextHop: 7}, {Op: OpAdd, Prefix: netip.PrefixFrom(a6, 48), NextHop: 7}})
		if i >= 2*patchMin && f.sc.patched-p0 != 2 {
			t.Fatalf("route %d: %d tables patched, want 2 (the /16's IPv4 table and the /32's IPv6 L2 table)", i, f.sc.patched-p0)
		}
	}
	f4 := f.f4[0]
	e := f4.d.get(198<<8 | 19)
	if rs, _ := ranges4(f4.a.get(pos4(e), span4(e)), e, nil); len(rs) > 4 {
		t.Fatalf("the /16's table has %d ranges, want a few (one next hop)", len(rs))
	}
	for _, a := range addrs {
		for _, x := range []netip.Addr{a, a.Next(), a.Prev()} {
			if _, want := r.lookup(0, x); lookup(f.Load(), 0, x) != want {
				t.Fatalf("lookup %v = %d, want %d", x, lookup(f.Load(), 0, x), want)
			}
		}
	}
}
