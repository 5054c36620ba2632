package cmdlang

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseVnet(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  Command
		canon string
	}{
		{"vnet add blue", &VnetAdd{Where: at1, Name: "blue", UID: NoID, GID: NoID}, ""},
		{"vnet add blue owner 1000:1001 socket /run/fwdd/blue.sock devices veth0,veth1 routes /srv/routes",
			&VnetAdd{at1, "blue", 1000, 1001, "/run/fwdd/blue.sock", []string{"veth0", "veth1"}, "/srv/routes", ""}, ""},
		{"vnet add blue socket /run//b.sock owner 7", &VnetAdd{at1, "blue", 7, NoID, "/run/b.sock", nil, "", ""}, "vnet add blue owner 7 socket /run/b.sock"},
		{"vnet add blue netns rb", &VnetAdd{at1, "blue", NoID, NoID, "", nil, "", "/run/netns/rb"}, "vnet add blue netns /run/netns/rb"},
		{"vnet add blue netns /proc/1/ns/net", &VnetAdd{at1, "blue", NoID, NoID, "", nil, "", "/proc/1/ns/net"}, ""},
		{"vnet del blue", &VnetDel{at1, "blue"}, ""},
		{"show vnets", &ShowVnets{at1}, ""},
		{"show vnet", &ShowVnets{at1}, "show vnets"},
		{"vnet blue show ports", &InVnet{at1, "blue", &ShowPorts{at1}}, ""},
		{"vnet blue route add 198.18.0.0/15 via 198.19.0.2",
			&InVnet{at1, "blue", &RouteAdd{Where: at1, Prefix: pfx("198.18.0.0/15"), Via: []netip.Addr{ip("198.19.0.2")}}}, ""},
	} {
		c, err := ParseLine(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(c, tc.want) {
			t.Errorf("%q: got %#v, want %#v", tc.in, c, tc.want)
		}
		canon := tc.canon
		if canon == "" {
			canon = tc.in
		}
		if c.String() != canon {
			t.Errorf("%q: String() = %q, want %q", tc.in, c.String(), canon)
		}
		back, err := ParseLine(c.String())
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Errorf("%q: canonical text does not parse back: %v", tc.in, err)
		}
	}
}

func TestParseVnetErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"vnet", "missing add, del or a vnet name"},
		{"vnet blue", `missing command after "vnet blue"`},
		{"vnet blue vnet red show ports", "do not nest"},
		{"vnet blue vnet add red", "do not nest"},
		{"vnet del default", "default vnet cannot be deleted"},
		{"vnet add del", "cannot name a vnet"},
		{"vnet add 9x", "vnet name \"9x\" is not valid"},
		{"vnet add b socket rel.sock owner 1", "must be absolute"},
		{"vnet add b socket /" + strings.Repeat("x", 120) + " owner 1", "at most 107"},
		{"vnet add b socket /run/b.sock", "needs an owner"},
		{"vnet add b owner root", "is not a uid"},
		{"vnet add b owner 1:x", "is not a gid"},
		{"vnet add b devices a,,b", "device name \"\" is not valid"},
		{"vnet add b devices a,a", "listed twice"},
		{"vnet add b routes x", "must be absolute"},
		{"vnet add b owner 1 owner 2", "given twice"},
		{"vnet add b colour red", "expected owner, socket, devices, routes or netns"},
		{"vnet add b netns a/b", "give a name"},
		{"vnet blue route add 1.2.3.4/33 via 1.1.1.1", "route add"},
		{"show vnets extra", "unexpected"},
	} {
		_, err := ParseLine(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.want)
		}
	}
}

func TestUnwrap(t *testing.T) {
	c, _ := ParseLine("vnet blue show ports")
	if v, in := Unwrap(c); v != "blue" || in.Verb() != "show ports" {
		t.Errorf("Unwrap = %s, %s", v, in.Verb())
	}
	c, _ = ParseLine("show ports")
	if v, _ := Unwrap(c); v != DefaultVnet {
		t.Errorf("Unwrap = %s", v)
	}
	if c, _ := ParseLine("vnet blue show ports"); !IsShow(c) {
		t.Error("IsShow(vnet blue show ports) = false")
	}
}
