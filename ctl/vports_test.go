package ctl

import (
	"context"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/ctl/cmdlang"
)

// try parses and runs one line, returning the parse or execution error.
func try(d *Daemon, line string) error {
	cmds, err := cmdlang.ParseLines(strings.Split(line, "\n"), cmdlang.Options{})
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
	// The lagg port itself stays (pmd.Reconfigurer): the members change
	// live, not by a reopen.
	instance := func(name string) (p any, id uint16) {
		_ = d.do(func(s *stack) { p, id = s.live[name].port, s.live[name].id })
		return p, id
	}
	before, beforeID := instance("lagg0")
	if _, err := run(t, d, "port set lagg0 laggport m2 -laggport m0"); err != nil {
		t.Fatal(err)
	}
	if after, afterID := instance("lagg0"); after != before || afterID != beforeID {
		t.Fatal("port set lagg0 laggport/-laggport reopened the lagg instead of changing it live")
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
	// A member opened in the same batch as it joins, live; the vlan over
	// the lagg is left alone.
	vlan, _ := instance("lagg0.7")
	if _, err := run(t, d, "port add m3 driver null smac 02:00:00:00:00:13", "port set lagg0 laggport m3"); err != nil {
		t.Fatal(err)
	}
	if after, _ := instance("lagg0"); after != before {
		t.Fatal("adding a member opened in the same batch reopened the lagg")
	}
	if v, _ := instance("lagg0.7"); v != vlan {
		t.Fatal("a live member change reopened the vlan over the lagg")
	}
	if sl := text(t, d, "show lagg"); !strings.Contains(sl, "m3") {
		t.Fatalf("show lagg after adding m3:\n%s", sl)
	}
	// A failing batch after a live change was checked applies nothing.
	if err := try(d, "port set lagg0 -laggport m3\naddr add m9 198.18.10.1/24"); err == nil {
		t.Fatal("a batch with an unknown port succeeded")
	}
	if sl := text(t, d, "show lagg"); !strings.Contains(sl, "m3") {
		t.Fatalf("a failed batch removed m3:\n%s", sl)
	}
	// What the driver cannot change live reopens the lagg (and the vlan
	// over it), still working.
	if _, err := run(t, d, "port set lagg0 proto failover"); err != nil {
		t.Fatal(err)
	}
	if after, _ := instance("lagg0"); after == before {
		t.Fatal("a proto change did not reopen the lagg")
	}
	if v, _ := instance("lagg0.7"); v == vlan {
		t.Fatal("the vlan over the reopened lagg was not reopened")
	}
	if sl := text(t, d, "show lagg"); !strings.Contains(sl, "failover") || !strings.Contains(sl, "m3") {
		t.Fatalf("show lagg after the proto change:\n%s", sl)
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
