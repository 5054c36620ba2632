package nlmirror

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/fwdd/fwdd/fib"
	"golang.org/x/sys/unix"
)

func TestTranslate(t *testing.T) {
	env := &Env{
		FIBs:  map[uint32]int{254: 0, 101: 1},
		Ports: map[int32]uint32{10: 0, 11: 1},
	}
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	gw4 := a("198.18.0.2")
	gw6 := a("2001:2::2")
	ll6 := a("fe80::1")
	uni := func(dst string, hops ...Hop) Route {
		r := Route{Table: 254, Dst: p(dst), Type: unix.RTN_UNICAST, Protocol: unix.RTPROT_BOOT}
		if len(hops) == 1 {
			r.Hop = hops[0]
		} else {
			r.Multi = hops
		}
		return r
	}
	gw := func(port uint32, addr netip.Addr) fib.NextHop {
		return fib.NextHop{Kind: fib.KindGateway, Port: port, Addr: addr}
	}
	conn := func(port uint32) fib.NextHop { return fib.NextHop{Kind: fib.KindConnected, Port: port} }
	with := func(r Route, f func(*Route)) Route { f(&r); return r }
	tests := []struct {
		name    string
		r       Route
		reason  Reason
		fib     int
		kind    fib.Kind
		hops    []fib.NextHop
		partial bool
	}{
		{"gateway v4", uni("198.18.10.0/24", Hop{10, gw4}), Install, 0, fib.KindGateway, []fib.NextHop{gw(0, gw4)}, false},
		{"gateway v6", uni("2001:2:10::/48", Hop{11, gw6}), Install, 0, fib.KindGateway, []fib.NextHop{gw(1, gw6)}, false},
		{"gateway v6 link-local", uni("2001:2:11::/48", Hop{11, ll6}), Install, 0, fib.KindGateway, []fib.NextHop{gw(1, ll6)}, false},
		{"default v4", uni("0.0.0.0/0", Hop{10, gw4}), Install, 0, fib.KindGateway, []fib.NextHop{gw(0, gw4)}, false},
		{"connected (dev only)", uni("198.18.20.0/24", Hop{Ifindex: 11}), Install, 0, fib.KindConnected, []fib.NextHop{conn(1)}, false},
		{"table 101 -> fib 1", with(uni("198.18.30.0/24", Hop{10, gw4}), func(r *Route) { r.Table = 101 }), Install, 1, fib.KindGateway, []fib.NextHop{gw(0, gw4)}, false},
		{"unmapped table", with(uni("198.18.30.0/24", Hop{10, gw4}), func(r *Route) { r.Table = 102 }), SkipTable, 0, 0, nil, false},
		{"local table", with(uni("198.18.0.1/32", Hop{Ifindex: 10}), func(r *Route) { r.Table = 255; r.Type = unix.RTN_LOCAL }), SkipTable, 0, 0, nil, false},
		{"multipath", uni("198.18.40.0/24", Hop{10, gw4}, Hop{11, a("198.18.1.2")}), Install, 0, fib.KindECMP, []fib.NextHop{gw(0, gw4), gw(1, a("198.18.1.2"))}, false},
		{"multipath partly foreign", uni("198.18.41.0/24", Hop{10, gw4}, Hop{99, a("10.0.0.1")}), Install, 0, fib.KindGateway, []fib.NextHop{gw(0, gw4)}, true},
		{"multipath all foreign", uni("198.18.42.0/24", Hop{98, gw4}, Hop{99, gw4}), SkipForeign, 0, 0, nil, false},
		{"foreign interface", uni("198.18.50.0/24", Hop{1, gw4}), SkipForeign, 0, 0, nil, false},
		{"blackhole", with(uni("198.18.60.0/24", Hop{}), func(r *Route) { r.Type = unix.RTN_BLACKHOLE }), Install, 0, fib.KindBlackhole, nil, false},
		{"unreachable", with(uni("2001:2:60::/48", Hop{Ifindex: 1}), func(r *Route) { r.Type = unix.RTN_UNREACHABLE }), Install, 0, fib.KindReject, nil, false},
		{"prohibit", with(uni("198.18.61.0/24", Hop{}), func(r *Route) { r.Type = unix.RTN_PROHIBIT }), Install, 0, fib.KindReject, nil, false},
		{"throw", with(uni("198.18.62.0/24", Hop{}), func(r *Route) { r.Type = unix.RTN_THROW }), SkipType, 0, 0, nil, false},
		{"broadcast", with(uni("198.18.0.255/32", Hop{Ifindex: 10}), func(r *Route) { r.Type = unix.RTN_BROADCAST }), SkipType, 0, 0, nil, false},
		{"kernel connected", with(uni("198.18.0.0/24", Hop{Ifindex: 10}), func(r *Route) { r.Protocol = unix.RTPROT_KERNEL }), SkipKernel, 0, 0, nil, false},
		{"link-local v6", with(uni("fe80::/64", Hop{Ifindex: 10}), func(r *Route) { r.Protocol = unix.RTPROT_KERNEL }), SkipLinkLocal, 0, 0, nil, false},
		{"multicast v6", uni("ff00::/8", Hop{Ifindex: 10}), SkipLinkLocal, 0, 0, nil, false},
		{"multicast v4", uni("224.0.0.0/4", Hop{Ifindex: 10}), SkipLinkLocal, 0, 0, nil, false},
		{"encap", with(uni("198.18.70.0/24", Hop{10, gw4}), func(r *Route) { r.Unsupported = true }), SkipUnsupported, 0, 0, nil, false},
		{"v4 via v6 gateway", uni("198.18.71.0/24", Hop{10, gw6}), SkipUnsupported, 0, 0, nil, false},
	}
	var buf []fib.NextHop
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := Translate(&tt.r, env, buf)
			if reason != tt.reason {
				t.Fatalf("reason %v, want %v", reason, tt.reason)
			}
			if reason != Install {
				return
			}
			if got.FIB != tt.fib || got.Kind != tt.kind || got.Partial != tt.partial {
				t.Errorf("got fib %d kind %v partial %v, want fib %d kind %v partial %v", got.FIB, got.Kind, got.Partial, tt.fib, tt.kind, tt.partial)
			}
			if !slices.EqualFunc(got.Hops, tt.hops, func(a, b fib.NextHop) bool { return a.Kind == b.Kind && a.Port == b.Port && a.Addr == b.Addr }) {
				t.Errorf("hops %v, want %v", got.Hops, tt.hops)
			}
			buf = got.Hops
		})
	}
}

func TestReasonNames(t *testing.T) {
	for r := Reason(0); r < NumReasons; r++ {
		if r.String() == "" {
			t.Errorf("reason %d has no name", r)
		}
	}
}
