package show

import (
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/pmd"
)

func text(t *testing.T, f func(*strings.Builder) error) string {
	t.Helper()
	var b strings.Builder
	if err := f(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func check(t *testing.T, name, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

var (
	pfx = netip.MustParsePrefix
	ip  = netip.MustParseAddr
)

func mac(s string) HWAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return HWAddr(m)
}

func TestRoutes(t *testing.T) {
	rs := []Route{
		{FIB: 1, Destination: pfx("203.0.113.0/24"), Kind: cmdlang.Reject, Origin: Static},
		{FIB: 0, Destination: pfx("2001:db8::/32"), Origin: Static, Gateways: []netip.Addr{ip("2001:2::2"), ip("2001:2::3")}, Netif: "p1"},
		{FIB: 0, Destination: pfx("198.18.0.0/24"), Origin: Connected, Netif: "p0", Ifindex: 1},
		{FIB: 0, Destination: pfx("0.0.0.0/0"), Origin: Static, Gateways: []netip.Addr{ip("198.19.0.2")}, Netif: "p1", Use: 42},
		{FIB: 0, Destination: pfx("198.18.0.1/32"), Origin: Local, Netif: "p0"},
		{FIB: 0, Destination: pfx("198.51.100.0/24"), Kind: cmdlang.Blackhole, Origin: Loaded},
	}
	SortRoutes(rs)
	got := text(t, func(b *strings.Builder) error { return Routes(b, rs, []int{0, 1, 2}) })
	check(t, "Routes", got, `Routing tables (fib: 0)

Internet:
Destination      Gateway     Flags  Netif  Use
default          198.19.0.2  UGS    p1     42
198.18.0.0/24    link#1      U      p0     0
198.18.0.1       link        UH     p0     0
198.51.100.0/24  blackhole   USB    -      0

Internet6:
Destination    Gateway    Flags  Netif  Use
2001:db8::/32  2001:2::2  UGS    p1     0
2001:db8::/32  2001:2::3  UGS    p1     0

Routing tables (fib: 1)

Internet:
Destination     Gateway  Flags  Netif  Use
203.0.113.0/24  reject   USR    -      0

Routing tables (fib: 2)
`)
	b, err := json.Marshal(rs[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"fib":0,"destination":"0.0.0.0/0","kind":"unicast","origin":"static","gateways":["198.19.0.2"],"netif":"p1","use":42}`; string(b) != want {
		t.Errorf("json %s\nwant %s", b, want)
	}
}

func TestRouteGet(t *testing.T) {
	r := &Route{FIB: 0, Destination: pfx("198.51.100.0/24"), Origin: Static, Gateways: []netip.Addr{ip("198.19.0.2")}, Netif: "p1"}
	check(t, "RouteGet", text(t, func(b *strings.Builder) error { return RouteGet(b, ip("198.51.100.7"), r) }),
		`   route to: 198.51.100.7
destination: 198.51.100.0/24
        fib: 0
    gateway: 198.19.0.2
  interface: p1
      flags: UGS
`)
	check(t, "RouteGet miss", text(t, func(b *strings.Builder) error { return RouteGet(b, ip("192.0.2.1"), nil) }),
		"route get 192.0.2.1: not in table\n")
}

func TestNeighbours(t *testing.T) {
	ns := []Neighbour{
		{Port: "p1", Addr: ip("2001:2::9"), LLAddr: mac("02:00:00:00:00:0a"), State: "reachable", Expire: 25 * time.Second, Router: true},
		{Port: "p1", Addr: ip("198.19.0.9"), LLAddr: mac("02:00:00:00:00:09"), State: "permanent"},
		{Port: "p0", Addr: ip("198.18.0.7"), State: "incomplete"},
		{Port: "p1", Addr: ip("198.19.0.2"), LLAddr: mac("02:00:00:00:00:02"), State: "reachable", Expire: 1185 * time.Second},
		{Port: "p0", Addr: ip("fe80::1"), LLAddr: mac("02:00:00:00:00:01"), State: "stale", Expire: 3725 * time.Second},
	}
	SortNeighbours(ns)
	check(t, "Neighbours", text(t, func(b *strings.Builder) error { return Neighbours(b, ns) }),
		`? (198.18.0.7) at (incomplete) on p0 expired [ethernet]
? (198.19.0.2) at 02:00:00:00:00:02 on p1 expires in 1185 seconds [ethernet] reachable
? (198.19.0.9) at 02:00:00:00:00:09 on p1 permanent [ethernet]
Neighbor  Linklayer Address Netif Expire State     Flags
2001:2::9 02:00:00:00:00:0a p1    25s    reachable R
fe80::1   02:00:00:00:00:01 p0    1h2m5s stale
`)
	b, _ := json.Marshal(ns[1])
	if want := `{"port":"p1","addr":"198.19.0.2","lladdr":"02:00:00:00:00:02","state":"reachable","expire_ns":1185000000000}`; string(b) != want {
		t.Errorf("json %s\nwant %s", b, want)
	}
	var back Neighbour
	if err := json.Unmarshal(b, &back); err != nil || back.LLAddr.String() != "02:00:00:00:00:02" {
		t.Errorf("unmarshal: %v %v", back, err)
	}
}

func TestPorts(t *testing.T) {
	ps := []Port{{
		Name: "p0", Ifindex: 1, Driver: "afxdp", Args: map[string]string{"dev": "r0", "mode": "zerocopy"},
		FIB: 0, MTU: 1500, Up: true, Running: true, LLAddr: mac("02:00:00:00:00:01"), Queues: 2,
		Addrs: []netip.Prefix{pfx("198.18.0.1/24"), pfx("198.18.1.1/31"), pfx("2001:2::1/64")},
		Stats: pmd.QueueStats{RxPackets: 10, RxBytes: 1000, TxPackets: 9, TxBytes: 900, RxDrops: 1},
		LCP:   "e0",
	}, {Name: "n0", Ifindex: 2, Driver: "null", FIB: 1, MTU: 9000, Queues: 1}}
	check(t, "Ports", text(t, func(b *strings.Builder) error { return Ports(b, ps) }),
		`p0: flags=<UP,RUNNING> mtu 1500 fib 0 index 1
	driver afxdp dev r0 mode zerocopy queues 2
	ether 02:00:00:00:00:01
	lcp e0
	inet 198.18.0.1 netmask 0xffffff00 broadcast 198.18.0.255
	inet 198.18.1.1 netmask 0xfffffffe
	inet6 2001:2::1 prefixlen 64
	RX packets 10 bytes 1000 drops 1 errors 0
	TX packets 9 bytes 900 drops 0 errors 0
n0: flags=<> mtu 9000 fib 1 index 2
	driver null queues 1
	RX packets 0 bytes 0 drops 0 errors 0
	TX packets 0 bytes 0 drops 0 errors 0
`)
	b, _ := json.Marshal(ps[1])
	if want := `{"name":"n0","ifindex":2,"driver":"null","fib":1,"mtu":9000,"up":false,"running":false,"queues":1,"stats":{"rx_packets":0,"rx_bytes":0,"rx_drops":0,"rx_errors":0,"tx_packets":0,"tx_bytes":0,"tx_drops":0,"tx_errors":0,"copies":0}}`; string(b) != want {
		t.Errorf("json %s\nwant %s", b, want)
	}
}

func TestRules(t *testing.T) {
	c, err := cmdlang.ParseLine("rule add 100 in p0 from 198.18.0.0/24 proto udp dport 53 setfib 1")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := cmdlang.ParseLine("rule add 200 drop")
	rs := []Rule{{Rule: *c.(*cmdlang.RuleAdd), Packets: 12, Bytes: 1234}, {Rule: *d.(*cmdlang.RuleAdd)}}
	check(t, "Rules", text(t, func(b *strings.Builder) error { return Rules(b, rs) }),
		`00100         12         1234 in p0 from 198.18.0.0/24 proto udp dport 53 setfib 1
00200          0            0 drop
`)
}

func TestFIBsStatsSysctl(t *testing.T) {
	check(t, "FIBs", text(t, func(b *strings.Builder) error {
		return FIBs(b, []FIB{{FIB: 0, Routes4: 3, Routes6: 1, Lookups: 1000, Ports: []string{"p0", "p1"}}, {FIB: 1, Routes4: 950000}})
	}), `FIB  IPv4 routes  IPv6 routes  Lookups  Misses  Ports
0    3            1            1000     0       p0,p1
1    950000       0            0        0       -
`)
	cs := []Counter{{"port p0", "packets received", 10}, {"port p0", "dropped: no route", 0}, {"port p0", "dropped: TTL exceeded", 2}, {"mbuf", "in use", 64}}
	check(t, "Stats", text(t, func(b *strings.Builder) error { return Stats(b, cs, false) }),
		"port p0:\n\t10 packets received\n\t2 dropped: TTL exceeded\nmbuf:\n\t64 in use\n")
	check(t, "Stats all", text(t, func(b *strings.Builder) error { return Stats(b, cs[:2], true) }),
		"port p0:\n\t10 packets received\n\t0 dropped: no route\n")
	ss := []Sysctl{{Key: "net.fibs", Value: "2"}, {Key: "net.inet.ip.ttl", Value: "64"}, {Key: "network.x", Value: "?"}}
	check(t, "Sysctl net", text(t, func(b *strings.Builder) error { return Sysctls(b, ss, "net") }),
		"net.fibs: 2\nnet.inet.ip.ttl: 64\n")
	check(t, "Sysctl all", text(t, func(b *strings.Builder) error { return Sysctls(b, ss, "") }),
		"net.fibs: 2\nnet.inet.ip.ttl: 64\nnetwork.x: ?\n")
}

// TestDaemonExtras: the fields only a real stack fills (driver mode,
// missing device, copies, per-port ECMP, probes and held packets, no
// byte or lookup counters, FIB memory) and the columns left out when
// nothing fills them.
func TestDaemonExtras(t *testing.T) {
	ps := []Port{
		{Name: "p0", Ifindex: 1, Driver: "afxdp", Args: map[string]string{"dev": "r0", "mode": "auto"}, Mode: "copy", MTU: 1500,
			Up: true, Queues: 2, TxQueues: 3, Stats: pmd.QueueStats{Copies: 7}, PerQueue: []pmd.QueueStats{{Copies: 3}, {Copies: 4}}},
		{Name: "p1", Ifindex: 2, Driver: "afpacket", Args: map[string]string{"dev": "r1"}, Mode: "mmap", MTU: 1500, Up: true, NoDevice: true, Queues: 1, TxQueues: 1},
	}
	check(t, "Ports", text(t, func(b *strings.Builder) error { return Ports(b, ps) }),
		`p0: flags=<UP> mtu 1500 fib 0 index 1
	driver afxdp dev r0 mode auto (copy) queues 2/3
	RX packets 0 bytes 0 drops 0 errors 0
	TX packets 0 bytes 0 drops 0 errors 0
	copies 7
p1: flags=<UP,NO-DEVICE> mtu 1500 fib 0 index 2
	driver afpacket dev r1 mode mmap queues 1
	RX packets 0 bytes 0 drops 0 errors 0
	TX packets 0 bytes 0 drops 0 errors 0
`)
	rs := []Route{
		{FIB: 0, Destination: pfx("198.51.100.0/24"), Origin: Static, Gateways: []netip.Addr{ip("198.18.0.2"), ip("198.19.0.2")}, Netif: "p0,p1", Netifs: []string{"p0", "p1"}},
		{FIB: 0, Destination: pfx("198.18.0.1/32"), Origin: Local, Netif: "p0", Ifindex: 1},
	}
	SortRoutes(rs)
	check(t, "Routes", text(t, func(b *strings.Builder) error { return Routes(b, rs, nil) }), `Routing tables (fib: 0)

Internet:
Destination      Gateway     Flags  Netif
198.18.0.1       link#1      UH     p0
198.51.100.0/24  198.18.0.2  UGS    p0
198.51.100.0/24  198.19.0.2  UGS    p1
`)
	ns := []Neighbour{
		{Port: "p0", Addr: ip("198.18.0.7"), State: "incomplete", Probes: 2, Held: 3},
		{Port: "p0", Addr: ip("198.18.0.8"), LLAddr: mac("02:00:00:00:00:08"), State: "stale", Expire: 10 * time.Second},
		{Port: "p0", Addr: ip("2001:2::7"), State: "incomplete", Probes: 1, Held: 1, Router: true},
	}
	check(t, "Neighbours", text(t, func(b *strings.Builder) error { return Neighbours(b, ns) }),
		`? (198.18.0.7) at (incomplete) on p0 expired [ethernet] probes=2 held=3
? (198.18.0.8) at 02:00:00:00:00:08 on p0 expires in 10 seconds [ethernet] stale
Neighbor  Linklayer Address Netif Expire  State      Flags
2001:2::7 (incomplete)      p0    expired incomplete R probes=1 held=1
`)
	d, _ := cmdlang.ParseLine("rule add 200 drop")
	check(t, "Rules without bytes", text(t, func(b *strings.Builder) error { return Rules(b, []Rule{{Rule: *d.(*cmdlang.RuleAdd), Packets: 5}}) }),
		"00200          5 drop\n")
	check(t, "FIBs with memory", text(t, func(b *strings.Builder) error {
		return FIBs(b, []FIB{{FIB: 0, Routes4: 3, Bytes4: 8288, Bytes6: 512, Ports: []string{"p0"}}})
	}), `FIB  IPv4 routes  IPv6 routes  IPv4 bytes  IPv6 bytes  Ports
0    3            0            8288        512         p0
`)
}

func TestKernelFlag(t *testing.T) {
	r := Route{Destination: netip.MustParsePrefix("198.18.10.0/24"), Origin: Kernel, Gateways: []netip.Addr{netip.MustParseAddr("198.18.0.2")}}
	if f := r.Flags(); f != "UG1" {
		t.Errorf("kernel route flags %q, want UG1", f)
	}
}

func TestWorkersStalls(t *testing.T) {
	r := &Runtime{Workers: []Worker{
		{Worker: 0, CPU: 1, Polls: 10, BusyPolls: 5, Packets: 50,
			StallsParked: [3]uint64{40, 2, 0}, StallsPreempted: [3]uint64{1, 0, 0}, StallsOther: [3]uint64{300, 4, 1}, StallPackets: [3]uint64{200, 9, 20}, StallMaxNs: 1_250_000},
		{Worker: 1, CPU: -1, Polls: 10},
	}}
	var b strings.Builder
	if err := Workers(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	want := "worker 0 stalls (>= 20us / 100us / 1ms): parked by the Go runtime 40/2/0, preempted 1/0/0, other 300/4/1; packets that waited in them 200/9/20; longest 1250us\n"
	if !strings.Contains(out, want) {
		t.Errorf("missing %q in:\n%s", want, out)
	}
	if strings.Contains(out, "worker 1 stalls") {
		t.Errorf("a worker without stalls has a stall line:\n%s", out)
	}
}
