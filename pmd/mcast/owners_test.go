package mcast

import (
	"net"
	"slices"
	"testing"
)

func TestOwners(t *testing.T) {
	a, b := AllNodes, AllRouters
	type step struct {
		owner string
		macs  []net.HardwareAddr
	}
	for _, tc := range []struct {
		name   string
		steps  []step
		groups []string
		owners []string
	}{
		{"empty", nil, []string{}, nil},
		{"forget unknown", []step{{"x", nil}}, []string{}, nil},
		{"one", []step{{"x", []net.HardwareAddr{b, a}}}, []string{a.String(), b.String()}, []string{"x"}},
		{"union once", []step{{"x", []net.HardwareAddr{a}}, {"y", []net.HardwareAddr{a, b}}}, []string{a.String(), b.String()}, []string{"x", "y"}},
		{"replace", []step{{"x", []net.HardwareAddr{a}}, {"x", []net.HardwareAddr{b}}}, []string{b.String()}, []string{"x"}},
		{"forget", []step{{"x", []net.HardwareAddr{a}}, {"y", []net.HardwareAddr{b}}, {"x", nil}}, []string{b.String()}, []string{"y"}},
		{"forget all", []step{{"x", []net.HardwareAddr{a}}, {"x", []net.HardwareAddr{}}}, []string{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o Owners
			for _, s := range tc.steps {
				o.Set(s.owner, s.macs)
			}
			g := o.Groups()
			if g == nil || !slices.Equal(g, tc.groups) {
				t.Errorf("Groups() = %#v, want %#v", g, tc.groups)
			}
			var names []string
			for n := range o {
				names = append(names, n)
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.owners) {
				t.Errorf("owners %v, want %v", names, tc.owners)
			}
		})
	}
}
