package nlmirror

import (
	"fmt"
	"net/netip"

	"github.com/fwdd/fwdd/fib"
	"golang.org/x/sys/unix"
)

// Env is what translating a kernel route needs to know of fwdd: which FIB
// each mirrored kernel table feeds and which port each lcp interface is.
// The consumer (the control goroutine) owns it.
type Env struct {
	FIBs  map[uint32]int   // kernel table -> FIB
	Ports map[int32]uint32 // ifindex of an lcp interface -> port id
}

// Reason says why a kernel route was not installed (Install: it was).
type Reason uint8

const (
	Install         Reason = iota
	SkipTable              // its table feeds no FIB (see lcp fib)
	SkipForeign            // every next hop leaves by an interface fwdd does not own
	SkipKernel             // kernel-generated route of an interface address: fwdd has its own connected/local routes
	SkipType               // local, broadcast, multicast, anycast, throw, nat: not a forwarding route
	SkipLinkLocal          // IPv6 link-local or a multicast destination
	SkipUnsupported        // encapsulation, MPLS, a gateway of the other family
	NumReasons
)

var reasonNames = [NumReasons]string{"installed", "table", "foreign", "kernel", "type", "linklocal", "unsupported"}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", r)
}

// Target is a kernel route as fwdd installs it.
type Target struct {
	FIB  int
	Kind fib.Kind // KindGateway, KindConnected, KindBlackhole, KindReject or KindECMP
	// Hops holds the next hop (gateway or connected) of a plain route, the
	// members of an ECMP route, nothing for blackhole and reject.
	Hops []fib.NextHop
	// Partial: a multipath route had hops through interfaces fwdd does not
	// own; they were left out.
	Partial bool
}

var (
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
	multicast6 = netip.MustParsePrefix("ff00::/8")
	multicast4 = netip.MustParsePrefix("224.0.0.0/4")
)

// Translate turns a kernel route (an add: Del is not looked at) into what
// fwdd installs, or says why it is not installed. Hops are appended to
// buf, which the caller may reuse once it registered them. It is a pure
// function of its arguments.
//
//   - The table must feed a FIB (env.FIBs).
//   - blackhole -> KindBlackhole; unreachable and prohibit -> KindReject
//     (fwdd answers ICMP unreachable); unicast -> its hops; other types
//     are not forwarding routes.
//   - Unicast routes the kernel made for interface addresses (protocol
//     kernel) are left to fwdd's own connected and local routes, and
//     link-local and multicast destinations stay with the kernel.
//   - Each hop must leave by an lcp interface (env.Ports): a gateway
//     becomes KindGateway on its port, an on-link hop KindConnected;
//     several hops make KindECMP. Hops by other interfaces are dropped
//     (Partial); a route left with none is SkipForeign.
func Translate(r *Route, env *Env, buf []fib.NextHop) (Target, Reason) {
	f, ok := env.FIBs[r.Table]
	if !ok {
		return Target{}, SkipTable
	}
	t := Target{FIB: f, Hops: buf[:0]}
	d := r.Dst.Addr()
	if d.Is4() && multicast4.Contains(d) || d.Is6() && (linkLocal6.Contains(d) || multicast6.Contains(d)) {
		return Target{}, SkipLinkLocal
	}
	switch r.Type {
	case unix.RTN_BLACKHOLE:
		t.Kind = fib.KindBlackhole
		return t, Install
	case unix.RTN_UNREACHABLE, unix.RTN_PROHIBIT:
		t.Kind = fib.KindReject
		return t, Install
	case unix.RTN_UNICAST:
	default:
		return Target{}, SkipType
	}
	if r.Unsupported {
		return Target{}, SkipUnsupported
	}
	if r.Protocol == unix.RTPROT_KERNEL {
		return Target{}, SkipKernel
	}
	hops := r.Hops()
	for _, h := range hops {
		port, ok := env.Ports[h.Ifindex]
		if !ok {
			t.Partial = true
			continue
		}
		if h.Gw.IsValid() {
			if h.Gw.Is4() != d.Is4() {
				return Target{}, SkipUnsupported
			}
			t.Hops = append(t.Hops, fib.NextHop{Kind: fib.KindGateway, Port: port, Addr: h.Gw})
		} else {
			t.Hops = append(t.Hops, fib.NextHop{Kind: fib.KindConnected, Port: port})
		}
	}
	switch len(t.Hops) {
	case 0:
		return Target{}, SkipForeign
	case 1:
		t.Kind = t.Hops[0].Kind
	default:
		t.Kind = fib.KindECMP
	}
	return t, Install
}
