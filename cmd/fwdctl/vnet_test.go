package main

import (
	"slices"
	"testing"
)

func TestPrefixVnet(t *testing.T) {
	in := []string{"show ports", "", "  # comment", "route add 198.19.0.0/16 blackhole"}
	want := []string{"vnet blue show ports", "", "  # comment", "vnet blue route add 198.19.0.0/16 blackhole"}
	if got := prefixVnet(in, "blue"); !slices.Equal(got, want) {
		t.Errorf("prefixVnet = %q, want %q", got, want)
	}
	if got := prefixVnet(in, ""); !slices.Equal(got, in) {
		t.Errorf("no -V changed the lines: %q", got)
	}
}
