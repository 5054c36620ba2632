package mcast

import (
	"net"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/pmd"
)

// TestSetOnDevice: a group stays joined while one owner wants it, is joined
// once, and everything goes with Detach; Attach joins what is wanted.
func TestSetOnDevice(t *testing.T) {
	n := testnet.New(t)
	a, b := n.NS("a"), n.NS("b")
	n.Veth(a, "v0", b, "v1")
	maddr := func() string { return n.In(a, "ip", "maddr", "show", "dev", "v0") }
	ifi := 0
	if err := pmd.InNetNS(testnet.Path(a), func() error {
		i, err := net.InterfaceByName("v0")
		if err == nil {
			ifi = i.Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s := New()
	g := net.HardwareAddr{0x01, 0x80, 0xc2, 0, 0, 0x14}
	if err := s.Want("x", []net.HardwareAddr{g}); err != nil {
		t.Fatal(err)
	}
	if err := pmd.InNetNS(testnet.Path(a), func() error { return s.Attach(ifi) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Detach)
	if !strings.Contains(maddr(), g.String()) {
		t.Fatalf("not joined on attach:\n%s", maddr())
	}
	if err := s.Want("y", []net.HardwareAddr{g, SlowProtocols}); err != nil {
		t.Fatal(err)
	}
	if err := s.Want("x", nil); err != nil {
		t.Fatal(err)
	}
	if m := maddr(); !strings.Contains(m, g.String()) || !strings.Contains(m, SlowProtocols.String()) {
		t.Fatalf("y's groups not joined:\n%s", m)
	}
	if got := s.Joined(); len(got) != 2 {
		t.Fatalf("joined %v", got)
	}
	s.Detach()
	if m := maddr(); strings.Contains(m, g.String()) || strings.Contains(m, SlowProtocols.String()) {
		t.Fatalf("left behind after Detach:\n%s", m)
	}
	if err := s.Want("z", []net.HardwareAddr{{0x02, 0, 0, 0, 0, 1}}); err == nil {
		t.Fatal("a unicast address was accepted as a group")
	}
}
