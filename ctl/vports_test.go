package ctl

import (
	"context"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/ctl/cmdlang"
)

// try parses and runs one line, returning the parse or execution error.
func try(d *Daemon, line string) error {
	cmds, err := cmdlang.ParseLines([]string{line}, cmdlang.Options{})
	if err != nil {
		return err
	}
	_, err = d.Exec(context.Background(), cmds)
	return err
}

// TestLaggModel: the rules between a lagg and its members, checked by the
// stack from the drivers' argument descriptions (nothing lagg-specific in
// ctl): a member has no addresses, belongs to one lagg, a lagg needs
// members, a member in use cannot be deleted; members change live.
func TestLaggModel(t *testing.T) {
	d, _ := nullDaemon(t, `
port add m0 driver null smac 02:00:00:00:00:10
port add m1 driver null smac 02:00:00:00:00:11
port add m2 driver null smac 02:00:00:00:00:12
port add lagg0 driver lagg proto loadbalance laggport m0 laggport m1
addr add lagg0 198.18.1.1/24
`)
	for _, tc := range []struct{ line, want string }{
		{"addr add m0 198.18.2.1/24", "m0 has addresses, and a member has none of its own"},
		{"port add lagg1 driver lagg laggport m1", "m1 is a member of lagg0 already"},
		{"port add lagg1 driver lagg proto lacp", "argument laggport: required"},
		{"port set lagg0 -laggport m0 -laggport m1", "argument laggport: required"},
		{"port del m0", "port m0 is used by port lagg0 (port del lagg0 first, or port set lagg0 -laggport m0)"},
		{"port add m0.5 driver vlan parent m0 vid 5", "port m0.5 names m0, which is a member of lagg0 (laggport m0): use lagg0 instead"},
		{"port set lagg0 -laggport m2", "port lagg0 has no laggport m2"},
		{"port add lagg1 driver lagg laggport lagg0", "lagg0 has addresses, and a member has none of its own"},
	} {
		if err := try(d, tc.line); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.line, err, tc.want)
		}
	}
	if _, err := run(t, d, "port set lagg0 laggport m2 -laggport m0"); err != nil {
		t.Fatal(err)
	}
	sl := text(t, d, "show lagg")
	if !strings.Contains(sl, "m2") || strings.Contains(sl, "m0 ") {
		t.Fatalf("show lagg after the change:\n%s", sl)
	}
	if out := text(t, d, "show ports"); !strings.Contains(out, "laggport m1 laggport m2") {
		t.Errorf("show ports does not list the members as given:\n%s", out)
	}
	// m0 left the lagg: a port of its own again, addresses allowed.
	if _, err := run(t, d, "addr add m0 198.18.9.1/24"); err != nil {
		t.Fatal(err)
	}
	// A vlan over the lagg.
	if _, err := run(t, d, "port add lagg0.7 driver vlan parent lagg0 vid 7", "addr add lagg0.7 198.18.7.1/24"); err != nil {
		t.Fatal(err)
	}
	if err := try(d, "port add x.7 driver vlan parent lagg0 vid 7"); err == nil || !strings.Contains(err.Error(), "is port lagg0.7 already") {
		t.Errorf("second sub-interface for vid 7: %v", err)
	}
}

// TestLaggMetrics: the members' state is exported.
func TestLaggMetrics(t *testing.T) {
	d, _ := nullDaemon(t, `
port add m0 driver null smac 02:00:00:00:00:10
port add m1 driver null smac 02:00:00:00:00:11
port add lagg0 driver lagg proto lacp laggport m0 laggport m1
`)
	mfs, err := d.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() == "fwdd_port_status" {
			n = len(mf.GetMetric())
		}
	}
	if n < 2*7 {
		t.Fatalf("fwdd_port_status has %d samples, want the members' LACP state", n)
	}
}
