package cmdlang

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }
func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

var at1 = Where{Line: 1}

// parseOK is the table of accepted commands: the input, the command it
// gives, and its canonical text ("" if the input is already canonical).
var parseOK = []struct {
	in    string
	want  Command
	canon string
}{
	// sysctl
	{"set net.fibs 4", &Set{at1, "net.fibs", "4"}, ""},
	{"set net.inet.ip.forwarding 1   # comment", &Set{at1, "net.inet.ip.forwarding", "1"}, "set net.inet.ip.forwarding 1"},
	{`set log.prefix "a b"`, &Set{at1, "log.prefix", "a b"}, ""},
	{"get net.fibs", &Get{at1, "net.fibs"}, ""},
	{"\tget   net.fibs\r", &Get{at1, "net.fibs"}, "get net.fibs"},

	// ports
	{"port add p0 driver afxdp dev r0", &PortAdd{at1, "p0", "afxdp", 0, 0, map[string]string{"dev": "r0"}, ""}, ""},
	{"port add p0 driver afxdp dev r0 queues 2 fib 1 mtu 1500 mode zerocopy",
		&PortAdd{at1, "p0", "afxdp", 1, 1500, map[string]string{"dev": "r0", "queues": "2", "mode": "zerocopy"}, ""},
		"port add p0 driver afxdp fib 1 mtu 1500 dev r0 mode zerocopy queues 2"},
	{"port add p0 mtu 9000 dev=r0 driver afpacket", &PortAdd{at1, "p0", "afpacket", 0, 9000, map[string]string{"dev": "r0"}, ""},
		"port add p0 driver afpacket mtu 9000 dev r0"},
	{"port add n0 driver null", &PortAdd{at1, "n0", "null", 0, 0, nil, ""}, ""},
	{"port add x1 driver frobnicate speed=fast colour red", &PortAdd{at1, "x1", "frobnicate", 0, 0, map[string]string{"speed": "fast", "colour": "red"}, ""},
		"port add x1 driver frobnicate colour red speed fast"},
	{"port add x1 driver team members=p0,p1", &PortAdd{at1, "x1", "team", 0, 0, map[string]string{"members": "p0,p1"}, ""},
		"port add x1 driver team members p0,p1"},
	{"port set p0 fib 1", &PortSet{at1, "p0", 1, 0, AdminUnchanged, "", nil, nil, nil}, ""},
	{"port set p0 mtu 1400", &PortSet{at1, "p0", AnyFIB, 1400, AdminUnchanged, "", nil, nil, nil}, ""},
	{"port set p0 up", &PortSet{at1, "p0", AnyFIB, 0, AdminUp, "", nil, nil, nil}, ""},
	{"port set p0 down mtu 1280 fib 0", &PortSet{at1, "p0", 0, 1280, AdminDown, "", nil, nil, nil}, "port set p0 fib 0 mtu 1280 down"},
	{"port add p0 driver afxdp dev r0 lcp e0", &PortAdd{at1, "p0", "afxdp", 0, 0, map[string]string{"dev": "r0"}, "e0"}, "port add p0 driver afxdp lcp e0 dev r0"},
	{"port add p0 lcp fwdd-e0.1_x driver null mtu 9000", &PortAdd{at1, "p0", "null", 0, 9000, nil, "fwdd-e0.1_x"}, "port add p0 driver null mtu 9000 lcp fwdd-e0.1_x"},
	{"port add p0 driver null lcp 0123456789abcde", &PortAdd{at1, "p0", "null", 0, 0, nil, "0123456789abcde"}, ""},
	{"port set p0 lcp e0", &PortSet{at1, "p0", AnyFIB, 0, AdminUnchanged, "e0", nil, nil, nil}, ""},
	{"port set p0 lcp off", &PortSet{at1, "p0", AnyFIB, 0, AdminUnchanged, LCPOff, nil, nil, nil}, ""},
	{"port set p0 lcp Off", &PortSet{at1, "p0", AnyFIB, 0, AdminUnchanged, "Off", nil, nil, nil}, ""},
	{`port set p0 lcp "#e"`, &PortSet{at1, "p0", AnyFIB, 0, AdminUnchanged, "#e", nil, nil, nil}, ""},
	{"port set p0 lcp e1 up fib 2", &PortSet{at1, "p0", 2, 0, AdminUp, "e1", nil, nil, nil}, "port set p0 fib 2 up lcp e1"},
	{"port set lagg0 laggport m2 -laggport m1", &PortSet{at1, "lagg0", AnyFIB, 0, AdminUnchanged, "", []ArgOp{{"laggport", "m2", false}, {"laggport", "m1", true}}, nil, nil}, ""},
	{"port set p0 join 01:80:C2:00:00:14 leave 33:33:00:00:00:05", &PortSet{at1, "p0", AnyFIB, 0, AdminUnchanged, "", nil, []string{"01:80:c2:00:00:14"}, []string{"33:33:00:00:00:05"}},
		"port set p0 join 01:80:c2:00:00:14 leave 33:33:00:00:00:05"},
	{"port set p0 queues=2", &PortSet{at1, "p0", AnyFIB, 0, AdminUnchanged, "", []ArgOp{{"queues", "2", false}}, nil, nil}, "port set p0 queues 2"},
	{"port add x1 driver team port m0 port m1", &PortAdd{at1, "x1", "team", 0, 0, map[string]string{"port": "m0 m1"}, ""}, "port add x1 driver team port \"m0 m1\""},
	{"port del p0", &PortDel{at1, "p0"}, ""},

	// addresses: host bits are kept
	{"addr add p0 198.18.0.1/24", &AddrAdd{at1, "p0", pfx("198.18.0.1/24")}, ""},
	{"addr add p0 2001:2::1/64", &AddrAdd{at1, "p0", pfx("2001:2::1/64")}, ""},
	{"addr add p0 198.18.0.0/31", &AddrAdd{at1, "p0", pfx("198.18.0.0/31")}, ""},
	{"addr add p0 fe80::1/64", &AddrAdd{at1, "p0", pfx("fe80::1/64")}, ""},
	{"addr del p0 198.18.0.1/24", &AddrDel{at1, "p0", pfx("198.18.0.1/24")}, ""},

	// routes
	{"route add 198.51.100.0/24 via 198.19.0.2", &RouteAdd{at1, 0, pfx("198.51.100.0/24"), Unicast, []netip.Addr{ip("198.19.0.2")}, ""}, ""},
	{"route add 198.51.100.0/24 fib 1 dev p1 via 198.19.0.2", &RouteAdd{at1, 1, pfx("198.51.100.0/24"), Unicast, []netip.Addr{ip("198.19.0.2")}, "p1"},
		"route add 198.51.100.0/24 via 198.19.0.2 dev p1 fib 1"},
	{"route add 2001:db8::/32 via 2001:2:0:b::2 via 2001:2:0:b::3", &RouteAdd{at1, 0, pfx("2001:db8::/32"), Unicast, []netip.Addr{ip("2001:2:0:b::2"), ip("2001:2:0:b::3")}, ""}, ""},
	{"route add 2001:db8::/32 via fe80::1 dev p1", &RouteAdd{at1, 0, pfx("2001:db8::/32"), Unicast, []netip.Addr{ip("fe80::1")}, "p1"}, ""},
	{"route add 198.51.100.0/24 dev p1", &RouteAdd{at1, 0, pfx("198.51.100.0/24"), Unicast, nil, "p1"}, ""},
	{"route add 203.0.113.0/24 blackhole", &RouteAdd{at1, 0, pfx("203.0.113.0/24"), Blackhole, nil, ""}, ""},
	{"route add 203.0.113.0/24 reject fib 3", &RouteAdd{at1, 3, pfx("203.0.113.0/24"), Reject, nil, ""}, ""},
	{"route add 203.0.113.7 via 198.19.0.2", &RouteAdd{at1, 0, pfx("203.0.113.7/32"), Unicast, []netip.Addr{ip("198.19.0.2")}, ""}, "route add 203.0.113.7/32 via 198.19.0.2"},
	{"route add default via 198.19.0.2", &RouteAdd{at1, 0, pfx("0.0.0.0/0"), Unicast, []netip.Addr{ip("198.19.0.2")}, ""}, "route add 0.0.0.0/0 via 198.19.0.2"},
	{"route add default via 2001:2::1", &RouteAdd{at1, 0, pfx("::/0"), Unicast, []netip.Addr{ip("2001:2::1")}, ""}, "route add ::/0 via 2001:2::1"},
	{"route add ::/0 blackhole fib 255", &RouteAdd{at1, 255, pfx("::/0"), Blackhole, nil, ""}, ""},
	{"route del 198.51.100.0/24", &RouteDel{at1, 0, pfx("198.51.100.0/24")}, ""},
	{"route del 198.51.100.0/24 fib 2", &RouteDel{at1, 2, pfx("198.51.100.0/24")}, ""},
	{"route get 198.51.100.7", &RouteGet{at1, 0, ip("198.51.100.7")}, ""},
	{"route get 2001:db8::1 fib 1", &RouteGet{at1, 1, ip("2001:db8::1")}, ""},
	{"route load /data/full.txt via 198.19.0.2", &RouteLoad{at1, 0, "/data/full.txt", Unicast, []netip.Addr{ip("198.19.0.2")}, ""}, ""},
	{"route load full.txt fib 1 via 198.19.0.2 via 2001:2::2", &RouteLoad{at1, 1, "full.txt", Unicast, []netip.Addr{ip("198.19.0.2"), ip("2001:2::2")}, ""},
		"route load full.txt via 198.19.0.2 via 2001:2::2 fib 1"},
	{`route load "my table.txt" blackhole`, &RouteLoad{at1, 0, "my table.txt", Blackhole, nil, ""}, ""},

	// rules
	{"rule add drop", &RuleAdd{Where: at1, FIB: AnyFIB, Proto: AnyProto, Action: Action{Kind: ActionDrop}}, ""},
	{"rule add 100 in p0 from 198.18.0.0/24 to 198.51.100.0/24 proto udp dport 53 setfib 1",
		&RuleAdd{at1, 100, "p0", AnyFIB, Inet, pfx("198.18.0.0/24"), pfx("198.51.100.0/24"), ProtoUDP, PortRange{}, PortRange{true, 53, 53}, Action{ActionSetFIB, 1}}, ""},
	{"rule add 7 proto icmp count", &RuleAdd{Where: at1, ID: 7, FIB: AnyFIB, Family: Inet, Proto: ProtoICMP, Action: Action{Kind: ActionCount}}, ""},
	{"rule add proto icmp6 to 2001:db8::/32 drop", &RuleAdd{Where: at1, FIB: AnyFIB, Family: Inet6, To: pfx("2001:db8::/32"), Proto: ProtoICMP6, Action: Action{Kind: ActionDrop}},
		"rule add to 2001:db8::/32 proto icmp6 drop"},
	{"rule add from any to any proto 47 drop", &RuleAdd{Where: at1, FIB: AnyFIB, Proto: 47, Action: Action{Kind: ActionDrop}}, "rule add proto 47 drop"},
	{"rule add proto sctp sport 1000-2000 dport 0-1023 fib 2 count",
		&RuleAdd{Where: at1, FIB: 2, Proto: ProtoSCTP, Sport: PortRange{true, 1000, 2000}, Dport: PortRange{true, 0, 1023}, Action: Action{Kind: ActionCount}},
		"rule add fib 2 proto sctp sport 1000-2000 dport 0-1023 count"},
	{"rule add from 198.18.0.5 setfib 0", &RuleAdd{Where: at1, FIB: AnyFIB, Family: Inet, From: pfx("198.18.0.5/32"), Proto: AnyProto, Action: Action{Kind: ActionSetFIB}},
		"rule add from 198.18.0.5/32 setfib 0"},
	{"rule del 100", &RuleDel{at1, 100}, ""},

	// neighbours
	{"neigh add p1 198.19.0.9 lladdr 02:00:00:00:00:09", &NeighAdd{at1, "p1", ip("198.19.0.9"), mac("02:00:00:00:00:09")}, ""},
	{"neigh add p1 2001:2::9 lladdr 02-00-00-00-00-0A", &NeighAdd{at1, "p1", ip("2001:2::9"), mac("02:00:00:00:00:0a")}, "neigh add p1 2001:2::9 lladdr 02:00:00:00:00:0a"},
	{"neigh del p1 198.19.0.9", &NeighDel{at1, "p1", ip("198.19.0.9")}, ""},

	// show
	{"show ports", &ShowPorts{at1}, ""},
	{"show port", &ShowPorts{at1}, "show ports"},
	{"show routes", &ShowRoutes{at1, AnyFIB, AnyFamily}, ""},
	{"show routes fib 1", &ShowRoutes{at1, 1, AnyFamily}, ""},
	{"show routes inet6 fib 0", &ShowRoutes{at1, 0, Inet6}, "show routes fib 0 inet6"},
	{"show route inet", &ShowRoutes{at1, AnyFIB, Inet}, "show routes inet"},
	{"show neigh", &ShowNeigh{at1, ""}, ""},
	{"show neigh p1", &ShowNeigh{at1, "p1"}, ""},
	{"show rules", &ShowRules{at1}, ""},
	{"show fibs", &ShowFIBs{at1}, ""},
	{"show stats", &ShowStats{at1}, ""},
	{"show sysctl", &ShowSysctl{at1, ""}, ""},
	{"show sysctl net", &ShowSysctl{at1, "net"}, ""},
}

func TestParseOK(t *testing.T) {
	for _, tc := range parseOK {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLine(tc.in)
			if err != nil {
				t.Fatalf("ParseLine(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseLine(%q)\n got %#v\nwant %#v", tc.in, got, tc.want)
			}
			canon := tc.canon
			if canon == "" {
				canon = tc.in
			}
			if s := got.String(); s != canon {
				t.Errorf("String() = %q, want %q", s, canon)
			}
			// The canonical text parses back to the same command.
			again, err := ParseLine(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("round trip of %q: %#v, %v", got.String(), again, err)
			}
			// JSON round trip into a fresh value of the same type.
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			back := reflect.New(reflect.TypeOf(got).Elem()).Interface()
			if err := json.Unmarshal(b, back); err != nil || !reflect.DeepEqual(back, got) {
				t.Errorf("json round trip of %s: %#v, %v", b, back, err)
			}
			if got.Verb() == "" || !strings.HasPrefix(got.String(), got.Verb()) {
				t.Errorf("Verb() = %q does not start String() %q", got.Verb(), got.String())
			}
		})
	}
}

// parseErr is the table of rejected lines and their exact messages.
var parseErr = []struct{ in, want string }{
	// lexing
	{`set a.b "x`, `line 1: unterminated quoted word (a closing " is missing)`},
	{`set a.b "x"y`, `line 1: a quoted word must be followed by a blank`},
	{`set a.b x"y"`, `line 1: a quote may only start a word`},
	{"set a.b x\x01", `line 1: control character '\x01' at column 10 is not allowed`},
	{"set a.b \xff", `line 1: invalid UTF-8 at column 9`},
	{strings.Repeat("x", MaxLineLen+1), `line 1: line is 4097 bytes long (at most 4096)`},

	// verbs
	{"frob", `line 1: unknown command "frob" (expected set, get, port, addr, route, rule, neigh, lcp or show)`},
	{`""`, `line 1: unknown command "" (expected set, get, port, addr, route, rule, neigh, lcp or show)`},
	{"port", `line 1: port: missing subcommand (expected add, set or del)`},
	{"route flap", `line 1: route: unknown subcommand "flap" (expected add, del, get or load)`},
	{"show", `line 1: show: missing what to show (expected ports, routes, neigh, rules, fibs, stats, sysctl, lcp, trace or workers)`},
	{"show everything", `line 1: show: cannot show "everything" (expected ports, routes, neigh, rules, fibs, stats, sysctl, lcp, trace, workers or lagg)`},

	// set/get
	{"set", `line 1: set: missing key (like net.fibs)`},
	{"set net.fibs", `line 1: set: net.fibs needs a value, got end of line`},
	{"set net.fibs 4 5", `line 1: set: unexpected "5" after the end of the command`},
	{"set Net.Fibs 4", `line 1: set: key "Net.Fibs" is not valid (lower-case words of a-z, 0-9, '_' joined by '.', like net.fibs)`},
	{"get net..fibs", `line 1: get: key "net..fibs" is not valid (lower-case words of a-z, 0-9, '_' joined by '.', like net.fibs)`},
	{"get", `line 1: get: missing key (like net.fibs)`},

	// port add
	{"port add", `line 1: port add: missing port name`},
	{"port add 0p driver null", `line 1: port add: port name "0p" is not valid (a letter, then letters, digits, '_', '-' or '.', at most 15 characters)`},
	{"port add averyveryverylongname driver null", `line 1: port add: port name "averyveryverylongname" is not valid (a letter, then letters, digits, '_', '-' or '.', at most 15 characters)`},
	{"port add p0 dev r0", `line 1: port add: missing driver (port add NAME driver afxdp|afpacket|null|... [KEY VALUE]...)`},
	{"port add p0 driver", `line 1: port add: "driver" needs a driver name (afxdp, afpacket, null, ...), got end of line`},
	{"port add p0 driver AF-XDP", `line 1: port add: "driver" needs a driver name (afxdp, afpacket, null, ...), got "AF-XDP"`},
	{"port add p0 driver null driver afxdp", `line 1: port add: "driver" given twice`},
	{"port add p0 driver afxdp", `line 1: port add: driver afxdp: argument dev: required: dev IFNAME (the kernel interface)`},
	{"port add p0 driver afxdp dev a/b", `line 1: port add: driver afxdp: argument dev: "a/b": want a kernel interface name (at most 15 characters, no '/', ':' or blank; see ip link)`},
	{"port add p0 driver afxdp dev r0 queues 0", `line 1: port add: driver afxdp: argument queues: "0": want an integer in [1, 4096]`},
	{"port add p0 driver afxdp dev r0 queues=x", `line 1: port add: driver afxdp: argument queues: "x": want an integer in [1, 4096]`},
	{"port add p0 driver afxdp dev r0 mode fast", `line 1: port add: driver afxdp: argument mode: "fast": want one of auto, copy, zerocopy`},
	{"port add p0 driver afpacket dev r0 mode copy", `line 1: port add: driver afpacket: argument mode: unknown (accepted: dev, queues, promisc, bypass, frames, framesize, blocksize)`},
	{"port add p0 driver null queues 1 queues 2", `line 1: port add: driver argument "queues" given twice`},
	{"port add p0 driver null fib 4096", `line 1: port add: "fib" needs a FIB number from 0 to 4095, got "4096"`},
	{"port add p0 driver null fib -1", `line 1: port add: "fib" needs a FIB number from 0 to 4095, got "-1"`},
	{"port add p0 driver null mtu 67", `line 1: port add: "mtu" needs an MTU from 68 to 65535, got "67"`},
	{"port add p0 driver null mtu", `line 1: port add: "mtu" needs an MTU, got end of line`},
	{"port add p0 driver null fib=1", `line 1: port add: write "fib=1" as "fib 1"`},
	{"port add p0 driver null speed", `line 1: port add: "speed" needs a value, got end of line`},
	{"port add p0 driver null a=1 a 2", `line 1: port add: driver argument "a" given twice`},
	{"port add p0 driver null speed 1", `line 1: port add: driver null: argument speed: unknown (accepted: size, flows, proto, smac, dmac, src, dst, sport, dport, queues)`},
	{"port add p0 driver null Speed=1", `line 1: port add: driver argument "Speed=1": the key must be a lower-case word`},
	{"port add p0 driver null 42", `line 1: port add: unexpected "42" (expected driver, fib, mtu, lcp or a driver argument like dev IFNAME or key=value)`},
	{"port add p0 driver null lcp", `line 1: port add: "lcp" needs a kernel interface name, got end of line`},
	{"port add p0 driver null lcp off", `line 1: port add: "lcp off" is for port set; leave lcp out for no kernel interface`},
	{"port add p0 driver null lcp e0 lcp e1", `line 1: port add: "lcp" given twice`},
	{"port add p0 driver null lcp=e0", `line 1: port add: write "lcp=e0" as "lcp e0"`},
	{"port add p0 driver null lcp 0123456789abcdef", `line 1: port add: "lcp" needs a kernel interface name (1 to 15 characters, no '/', ':', '%' or blank, not "off"), got "0123456789abcdef"`},
	{"port add p0 driver null lcp a/b", `line 1: port add: "lcp" needs a kernel interface name (1 to 15 characters, no '/', ':', '%' or blank, not "off"), got "a/b"`},
	{"port add p0 driver null lcp e:1", `line 1: port add: "lcp" needs a kernel interface name (1 to 15 characters, no '/', ':', '%' or blank, not "off"), got "e:1"`},
	{"port add p0 driver null lcp e%d", `line 1: port add: "lcp" needs a kernel interface name (1 to 15 characters, no '/', ':', '%' or blank, not "off"), got "e%d"`},
	{"port add p0 driver null lcp ..", `line 1: port add: "lcp" needs a kernel interface name (1 to 15 characters, no '/', ':', '%' or blank, not "off"), got ".."`},
	{`port add p0 driver null lcp "a b"`, `line 1: port add: "lcp" needs a kernel interface name (1 to 15 characters, no '/', ':', '%' or blank, not "off"), got "a b"`},
	{`port add p0 driver null lcp ""`, `line 1: port add: "lcp" needs a kernel interface name (1 to 15 characters, no '/', ':', '%' or blank, not "off"), got ""`},

	// port set/del
	{"port set p0", `line 1: port set: nothing to set (expected fib N, mtu N, up, down, lcp IFNAME|off or a driver argument)`},
	{"port set p0 up down", `line 1: port set: "down" conflicts with an earlier up/down`},
	{"port set p0 mtu 1400 mtu 1500", `line 1: port set: "mtu" given twice`},
	{"port set p0 42", `line 1: port set: unexpected "42" (expected fib N, mtu N, up, down, lcp IFNAME|off, join MAC, leave MAC, a driver argument KEY VALUE or -KEY VALUE)`},
	{"port set p0 -speed", `line 1: port set: "speed" needs a value, got end of line`},
	{"port set p0 lcp", `line 1: port set: "lcp" needs a kernel interface name or off, got end of line`},
	{"port set p0 lcp e0 lcp off", `line 1: port set: "lcp" given twice`},
	{"port set p0 lcp e/0", `line 1: port set: "lcp" needs a kernel interface name (1 to 15 characters, no '/', ':', '%' or blank, not "off"), got "e/0"`},
	{"port del", `line 1: port del: missing port name`},
	{"port del p0 p1", `line 1: port del: unexpected "p1" after the end of the command`},

	// addr
	{"addr add p0", `line 1: addr add: missing address (like 198.18.0.1/24 or 2001:2::1/64)`},
	{"addr add p0 198.18.0.1", `line 1: addr add: "198.18.0.1" needs a prefix length, like 198.18.0.1/24`},
	{"addr add p0 foo", `line 1: addr add: needs an address with prefix length (like 198.18.0.1/24 or 2001:2::1/64), got "foo"`},
	{"addr add p0 198.18.0.1/33", `line 1: addr add: needs an address with prefix length (like 198.18.0.1/24 or 2001:2::1/64), got "198.18.0.1/33"`},
	{"addr add p0 198.18.0.255/24", `line 1: addr add: 198.18.0.255 is the broadcast address of 198.18.0.0/24`},
	{"addr add p0 198.18.0.0/24", `line 1: addr add: 198.18.0.0 is the network address of 198.18.0.0/24 (use a host address)`},
	{"addr add p0 224.0.0.1/24", `line 1: addr add: 224.0.0.1 is not a unicast address a port can own`},
	{"addr add p0 ::/64", `line 1: addr add: :: is not a unicast address a port can own`},
	{"addr add p0 ::ffff:198.18.0.1/120", `line 1: addr add: write the IPv4-mapped address "::ffff:198.18.0.1/120" in IPv4 form`},
	{"addr del p0 198.18.0.1/24 x", `line 1: addr del: unexpected "x" after the end of the command`},

	// route add
	{"route add", `line 1: route add: missing destination (a prefix like 198.51.100.0/24 or 2001:db8::/32)`},
	{"route add 198.51.100.0/24", `line 1: route add: needs via ADDR, dev PORT, blackhole or reject`},
	{"route add 198.51.100.0/24 via foo", `line 1: route add: "via" needs an address, got "foo"`},
	{"route add 198.51.100.0/24 via", `line 1: route add: "via" needs an address, got end of line`},
	{"route add 198.51.100.7/24 via 198.19.0.2", `line 1: route add: destination 198.51.100.7/24 has host bits set (did you mean 198.51.100.0/24?)`},
	{"route add 198.51.100.0/33 via 198.19.0.2", `line 1: route add: destination needs a prefix like 198.51.100.0/24 or 2001:db8::/32, got "198.51.100.0/33"`},
	{"route add foo via 198.19.0.2", `line 1: route add: destination needs a prefix like 198.51.100.0/24 or 2001:db8::/32, got "foo"`},
	{"route add 198.51.100.0/24 via 2001:2::1", `line 1: route add: via 2001:2::1 is IPv6 but 198.51.100.0/24 is IPv4`},
	{"route add 2001:db8::/32 via 198.19.0.2", `line 1: route add: via 198.19.0.2 is IPv4 but 2001:db8::/32 is IPv6`},
	{"route add 198.51.100.0/24 via 198.19.0.2 via 198.19.0.2", `line 1: route add: via 198.19.0.2 given twice`},
	{"route add 198.51.100.0/24 via 0.0.0.0", `line 1: route add: via 0.0.0.0 is the unspecified address`},
	{"route add 198.51.100.0/24 via 224.0.0.5", `line 1: route add: via 224.0.0.5 is a multicast address`},
	{"route add 198.51.100.0/24 via 127.0.0.1", `line 1: route add: via 127.0.0.1 is a loopback address`},
	{"route add 198.51.100.0/24 via 255.255.255.255", `line 1: route add: via 255.255.255.255 is the broadcast address`},
	{"route add 2001:db8::/32 via fe80::1%eth0 dev p1", `line 1: route add: "via": zones are not used in "fe80::1%eth0"; name the port with dev`},
	{"route add 2001:db8::/32 via fe80::1", `line 1: route add: via fe80::1 is link-local: name its port with dev PORT`},
	{"route add 198.51.100.0/24 via 198.19.0.2 blackhole", `line 1: route add: a blackhole route has no via or dev`},
	{"route add 198.51.100.0/24 blackhole reject", `line 1: route add: "reject" conflicts with an earlier blackhole/reject`},
	{"route add 198.51.100.0/24 blackhole fib 1 fib 2", `line 1: route add: "fib" given twice`},
	{"route add 198.51.100.0/24 via 198.19.0.2 dev p1 dev p2", `line 1: route add: "dev" given twice`},
	{"route add 198.51.100.0/24 via 198.19.0.2 metric 5", `line 1: route add: unexpected "metric" (expected via, dev, fib, blackhole or reject)`},
	{"route add default blackhole", `line 1: route add: "default" takes its family from via; without via write 0.0.0.0/0 or ::/0`},
	{"route add 198.51.100.0/24 via 198.19.0.1 via 198.19.0.2 via 198.19.0.3 via 198.19.0.4 via 198.19.0.5 via 198.19.0.6 via 198.19.0.7 via 198.19.0.8 via 198.19.0.9 via 198.19.0.10 via 198.19.0.11 via 198.19.0.12 via 198.19.0.13 via 198.19.0.14 via 198.19.0.15 via 198.19.0.16 via 198.19.0.17",
		`line 1: route add: too many next hops (at most 16)`},

	// route del/get/load
	{"route del", `line 1: route del: missing destination (a prefix like 198.51.100.0/24 or 2001:db8::/32)`},
	{"route del 198.51.100.0/24 via 198.19.0.2", `line 1: route del: unexpected "via" (expected fib)`},
	{"route get", `line 1: route get: destination needs an address, got end of line`},
	{"route get 198.51.100.0/24", `line 1: route get: destination needs an address, got "198.51.100.0/24"`},
	{"route get 198.51.100.7 fib x", `line 1: route get: "fib" needs a FIB number from 0 to 4095, got "x"`},
	{"route load", `line 1: route load: missing file name (route load FILE [fib N] [via ADDR]...)`},
	{"route load via 198.19.0.2", `line 1: route load: missing file name before "via" (route load FILE [fib N] [via ADDR]...)`},
	{"route load full.txt", `line 1: route load: needs via ADDR, dev PORT, blackhole or reject`},

	// rules
	{"rule add", `line 1: rule add: missing action (setfib N, count or drop)`},
	{"rule add 0 drop", `line 1: rule add: expected a rule id from 1 to 65535, got "0"`},
	{"rule add 65536 drop", `line 1: rule add: expected a rule id from 1 to 65535, got "65536"`},
	{"rule add drop count", `line 1: rule add: "count" conflicts with an earlier action`},
	{"rule add setfib", `line 1: rule add: "setfib" needs a FIB number, got end of line`},
	{"rule add drop 100", `line 1: rule add: unexpected "100" (expected in, fib, from, to, proto, sport, dport, or an action: setfib N, count, drop)`},
	{"rule add from 198.18.0.1/24 drop", `line 1: rule add: "from" 198.18.0.1/24 has host bits set (did you mean 198.18.0.0/24?)`},
	{"rule add from 198.18.0.0/24 to 2001:db8::/32 drop", `line 1: rule add: from 198.18.0.0/24 is IPv4 but to 2001:db8::/32 is IPv6`},
	{"rule add from 2001:db8::/32 proto icmp drop", `line 1: rule add: proto icmp is IPv4; for IPv6 use icmp6`},
	{"rule add to 198.18.0.0/15 proto icmp6 drop", `line 1: rule add: proto icmp6 is IPv6; for IPv4 use icmp`},
	{"rule add dport 53 drop", `line 1: rule add: "dport" needs proto tcp, udp or sctp`},
	{"rule add proto icmp sport 1 drop", `line 1: rule add: "sport" needs proto tcp, udp or sctp`},
	{"rule add proto udp dport 80-20 drop", `line 1: rule add: "dport" range 80-20 is reversed (write 20-80)`},
	{"rule add proto udp dport 65536 drop", `line 1: rule add: "dport" needs a port from 0 to 65535 or a range N-M, got "65536"`},
	{"rule add proto udp dport 1- drop", `line 1: rule add: "dport" needs a port from 0 to 65535 or a range N-M, got "1-"`},
	{"rule add proto udp dport", `line 1: rule add: "dport" needs a port or range N-M, got end of line`},
	{"rule add proto gre drop", `line 1: rule add: "proto" needs a protocol (udp, tcp, sctp, icmp, icmp6 or a number) from 0 to 255, got "gre"`},
	{"rule add proto 256 drop", `line 1: rule add: "proto" needs a protocol (udp, tcp, sctp, icmp, icmp6 or a number) from 0 to 255, got "256"`},
	{"rule add in drop", `line 1: rule add: missing action (setfib N, count or drop)`}, // "drop" is a fine port name
	{"rule add in 9p drop", `line 1: rule add: port name "9p" is not valid (a letter, then letters, digits, '_', '-' or '.', at most 15 characters)`},
	{"rule add in p0 in p1 drop", `line 1: rule add: "in" given twice`},
	{"rule del", `line 1: rule del: missing rule id (a number from 1 to 65535)`},
	{"rule del x", `line 1: rule del: expected a rule id from 1 to 65535, got "x"`},
	{"rule del 1 2", `line 1: rule del: unexpected "2" after the end of the command`},

	// neigh
	{"neigh add p1 198.19.0.9", `line 1: neigh add: missing lladdr MAC (neigh add PORT ADDR lladdr 02:00:00:00:00:09)`},
	{"neigh add p1 198.19.0.9 lladdr", `line 1: neigh add: "lladdr" needs a MAC address like 02:00:00:00:00:09, got end of line`},
	{"neigh add p1 198.19.0.9 lladdr 02:00:00:00:09", `line 1: neigh add: "lladdr" needs a MAC address like 02:00:00:00:00:09, got "02:00:00:00:09"`},
	{"neigh add p1 198.19.0.9 lladdr 00:00:00:00:00:00:00:01", `line 1: neigh add: "lladdr" needs a MAC address like 02:00:00:00:00:09, got "00:00:00:00:00:00:00:01"`},
	{"neigh add p1 198.19.0.9 lladdr ff:ff:ff:ff:ff:ff", `line 1: neigh add: lladdr ff:ff:ff:ff:ff:ff is a multicast or broadcast address`},
	{"neigh add p1 198.19.0.9 lladdr 00:00:00:00:00:00", `line 1: neigh add: lladdr 00:00:00:00:00:00 is all zeros`},
	{"neigh add p1 198.19.0.9 lladdr 02:00:00:00:00:09 lladdr 02:00:00:00:00:0a", `line 1: neigh add: "lladdr" given twice`},
	{"neigh add p1 127.0.0.1 lladdr 02:00:00:00:00:09", `line 1: neigh add: neighbour 127.0.0.1 is a loopback address`},
	{"neigh add p1 ::1 lladdr 02:00:00:00:00:09", `line 1: neigh add: neighbour ::1 is a loopback address`},
	{"neigh add p1 ff02::1 lladdr 02:00:00:00:00:09", `line 1: neigh add: neighbour ff02::1 is a multicast address`},
	{"neigh add p1 bogus lladdr 02:00:00:00:00:09", `line 1: neigh add: neighbour needs an address, got "bogus"`},
	{"neigh add p1", `line 1: neigh add: neighbour needs an address, got end of line`},
	{"neigh add p1 198.19.0.9 dev p2", `line 1: neigh add: unexpected "dev" (expected lladdr)`},
	{"neigh del p1", `line 1: neigh del: neighbour needs an address, got end of line`},

	// show
	{"show ports all", `line 1: show ports: unexpected "all" after the end of the command`},
	{"show routes fib", `line 1: show routes: "fib" needs a FIB number, got end of line`},
	{"show routes inet inet6", `line 1: show routes: "inet6" conflicts with an earlier family`},
	{"show routes table 2", `line 1: show routes: unexpected "table" (expected fib N, inet or inet6)`},
	{"show neigh p1 p2", `line 1: show neigh: unexpected "p2" after the end of the command`},
	{"show sysctl NET", `line 1: show sysctl: prefix "NET" is not valid (lower-case words of a-z, 0-9, '_' joined by '.', like net.fibs)`},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range parseErr {
		t.Run(tc.in, func(t *testing.T) {
			c, err := ParseLine(tc.in)
			if err == nil {
				t.Fatalf("ParseLine(%q) = %v, want error %q", tc.in, c, tc.want)
			}
			if c != nil {
				t.Errorf("ParseLine(%q) returned a command with its error", tc.in)
			}
			if err.Error() != tc.want {
				t.Errorf("ParseLine(%q) error\n got %s\nwant %s", tc.in, err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrSyntax) {
				t.Errorf("error %T is not an *Error wrapping ErrSyntax", err)
			}
		})
	}
}

// Errors point at the word: Word and Col locate it in the line.
func TestErrorWord(t *testing.T) {
	for _, tc := range []struct {
		in   string
		word string
		col  int
	}{
		{"route add 198.51.100.0/24 via foo", "foo", 31},
		{"route add 198.51.100.0/24  metric 5", "metric", 28},
		{"frob x", "frob", 1},
		{"  set Net 1", "Net", 7},
		{"route add 198.51.100.0/24", "", 0}, // missing word: end of line
	} {
		_, err := ParseLine(tc.in)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if e.Word != tc.word || e.Col != tc.col {
			t.Errorf("%q: Word %q Col %d, want %q %d", tc.in, e.Word, e.Col, tc.word, tc.col)
		}
	}
}

func TestBlankAndComments(t *testing.T) {
	for _, in := range []string{"", "   ", "\t", "# comment", "   # comment \"unterminated", "\r"} {
		c, err := ParseLine(in)
		if c != nil || err != nil {
			t.Errorf("ParseLine(%q) = %v, %v; want nil, nil", in, c, err)
		}
	}
}

const goodFile = `# fwdd.conf
set net.fibs 2

port add p0 driver afxdp dev r0 queues 2
port add p1 driver afxdp dev r1 fib 1
addr add p0 198.18.0.1/24   # inside
addr add p1 198.19.0.1/24
route add default via 198.19.0.2
route load tables/full.txt via 198.19.0.2 fib 1
rule add 10 in p0 proto udp dport 53 setfib 1
`

func TestParseFile(t *testing.T) {
	cmds, err := Parse(strings.NewReader(goodFile), Options{File: "fwdd.conf", Dir: "/etc/fwdd"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 8 {
		t.Fatalf("got %d commands, want 8", len(cmds))
	}
	wantLines := []int{2, 4, 5, 6, 7, 8, 9, 10}
	for i, c := range cmds {
		if w := c.Location(); w.File != "fwdd.conf" || w.Line != wantLines[i] {
			t.Errorf("command %d (%s) at %+v, want fwdd.conf:%d", i, c, w, wantLines[i])
		}
	}
	if rl := cmds[6].(*RouteLoad); rl.File != "/etc/fwdd/tables/full.txt" {
		t.Errorf("route load file = %q, want it joined to Options.Dir", rl.File)
	}
}

func TestParseFileAllOrNothing(t *testing.T) {
	bad := goodFile + "route add 10.0.0.1/8 via 198.19.0.2\nfrob\n"
	cmds, err := Parse(strings.NewReader(bad), Options{File: "fwdd.conf"})
	if cmds != nil {
		t.Fatalf("got %d commands from a file with errors", len(cmds))
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("err = %v, want an ErrorList of 2", err)
	}
	want := "fwdd.conf:11: route add: destination 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)\n" +
		"fwdd.conf:12: unknown command \"frob\" (expected set, get, port, addr, route, rule, neigh, lcp or show)"
	if err.Error() != want {
		t.Errorf("error\n got %s\nwant %s", err, want)
	}
	// MaxErrors bounds the list.
	_, err = ParseLines([]string{"x", "y", "z"}, Options{MaxErrors: 2})
	if !errors.As(err, &list) || len(list) != 2 {
		t.Errorf("MaxErrors 2: %v", err)
	}
	// Unnumbered drops them.
	_, err = ParseLines([]string{"route add 198.51.100.0/24 via foo"}, Options{Unnumbered: true})
	if err == nil || err.Error() != `route add: "via" needs an address, got "foo"` {
		t.Errorf("Unnumbered: %v", err)
	}
	// FirstLine shifts the numbers.
	_, err = ParseLines([]string{"x"}, Options{FirstLine: 40})
	if err == nil || !strings.HasPrefix(err.Error(), "line 40: ") {
		t.Errorf("FirstLine 40: %v", err)
	}
}

func TestParseLongLine(t *testing.T) {
	_, err := Parse(strings.NewReader("get a\n"+strings.Repeat("x", 70000)+"\n"), Options{})
	if err == nil || err.Error() != "line 2: line is longer than 4096 bytes" {
		t.Errorf("err = %v", err)
	}
}

func TestQuote(t *testing.T) {
	for _, s := range []string{"plain", "", "a b", `q"uote`, `back\slash`, "#hash", "tab\tx", "ünï"} {
		q := Quote(s)
		w, err := lex("set a " + q)
		if s == "tab\tx" { // control characters cannot be written at all
			if err == nil {
				t.Errorf("Quote(%q) = %s lexed", s, q)
			}
			continue
		}
		if err != nil || len(w) != 3 || w[2].text != s {
			t.Errorf("Quote(%q) = %s lexes to %v, %v", s, q, w, err)
		}
	}
}

func TestNeighJSON(t *testing.T) {
	c, _ := ParseLine("neigh add p1 198.19.0.9 lladdr 02:00:00:00:00:09")
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"line":1,"port":"p1","addr":"198.19.0.9","lladdr":"02:00:00:00:00:09"}`; string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
}

func TestIsShow(t *testing.T) {
	for in, want := range map[string]bool{"show ports": true, "get net.fibs": true, "route get 198.51.100.1": true, "route del 198.51.100.0/24": false, "set net.fibs 2": false} {
		c, err := ParseLine(in)
		if err != nil {
			t.Fatal(err)
		}
		if IsShow(c) != want {
			t.Errorf("IsShow(%q) = %v", in, !want)
		}
	}
}

func TestExecError(t *testing.T) {
	c, _ := ParseLines([]string{"", "port del p9"}, Options{File: "f.conf"})
	e := &ExecError{Cmd: c[0], Err: errors.New("no such port (see show ports)")}
	if got, want := e.Error(), "f.conf:2: port del p9: no such port (see show ports)"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	c1, _ := ParseLines([]string{"port del p9"}, Options{Unnumbered: true})
	e = &ExecError{Cmd: c1[0], Err: errors.New("no such port")}
	if got, want := e.Error(), "port del p9: no such port"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestParseFilePath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fwdd.conf")
	os.WriteFile(path, []byte("route load full.txt blackhole\n"), 0o644)
	cmds, err := ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f := cmds[0].(*RouteLoad).File; f != filepath.Join(dir, "full.txt") {
		t.Errorf("file %q", f)
	}
	if w := cmds[0].Location(); w.File != path || w.Line != 1 {
		t.Errorf("where %+v", w)
	}
	os.WriteFile(path, []byte("\nroute load\n"), 0o644)
	if _, err := ParseFile(path); err == nil || !strings.HasPrefix(err.Error(), path+":2: route load: missing file name") {
		t.Errorf("err %v", err)
	}
	if _, err := ParseFile(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "config open ") {
		t.Errorf("missing: %v", err)
	}
}

// TestErrorsTruncateWords: a file that is not a configuration (fwdd -c
// /etc/shadow) must not be copied into errors and logs: at most the
// offending word, truncated.
func TestErrorsTruncateWords(t *testing.T) {
	secret := "root:$6$saltsalt$" + strings.Repeat("x", 80) + ":19000:0:99999:7:::"
	for _, line := range []string{
		secret,
		"route add " + secret + " blackhole",
		"port add p0 driver null " + secret,
		`route add "` + secret,
	} {
		_, err := ParseLine(line)
		if err == nil {
			t.Fatalf("ParseLine(%.30q) accepted", line)
		}
		if strings.Contains(err.Error(), strings.Repeat("x", MaxQuoted)) {
			t.Errorf("error quotes the line whole: %v", err)
		}
		var e *Error
		if errors.As(err, &e) && len(e.Word) > MaxQuoted+3 {
			t.Errorf("Error.Word is %d bytes: %q", len(e.Word), e.Word)
		}
	}
}
