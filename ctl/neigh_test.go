package ctl

import (
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/lltable"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
)

// Issue 12.2: every net.neigh.* key is read by the neighbour table (and
// every key is explained by help); bad values are refused.
func TestNeighSysctlsApplied(t *testing.T) {
	d, _ := nullDaemon(t, nullConfig)
	limits := func() (l lltable.Limits) {
		if err := d.do(func(s *stack) { l = s.nb.t.Limits() }); err != nil {
			t.Fatal(err)
		}
		return l
	}
	if got, want := limits(), (lltable.Limits{MaxEntries: 16384, MaxPerPort: 4096, MaxIncomplete: 1024, HoldLen: 16, MaxHeld: 1024, RequestsPerSecond: 1000}); got != want {
		t.Fatalf("default limits %+v, want %+v (the sysctl defaults)", got, want)
	}
	if _, err := run(t, d, "set net.neigh.max_entries 100", "set net.neigh.max_per_port 50",
		"set net.neigh.max_incomplete 33", "set net.neigh.hold 3", "set net.neigh.max_held 77", "set net.neigh.max_requests 9"); err != nil {
		t.Fatal(err)
	}
	if got, want := limits(), (lltable.Limits{MaxEntries: 100, MaxPerPort: 50, MaxIncomplete: 33, HoldLen: 3, MaxHeld: 77, RequestsPerSecond: 9}); got != want {
		t.Fatalf("limits %+v, want %+v", got, want)
	}
	for _, line := range []string{"set net.neigh.hold 0", "set net.neigh.hold 257", "set net.neigh.max_entries 0",
		"set net.neigh.max_per_port 0", "set net.neigh.max_incomplete 0", "set net.neigh.max_held -1", "set net.neigh.max_requests 0"} {
		if _, err := run(t, d, line); err == nil {
			t.Errorf("%s accepted", line)
		}
	}
	// Static neighbours beyond a limit are refused with the batch.
	if _, err := run(t, d, "set net.neigh.max_per_port 1", "neigh add p0 198.18.1.7 lladdr 02:00:00:00:00:07",
		"neigh add p0 198.18.1.8 lladdr 02:00:00:00:00:08"); err == nil || !strings.Contains(err.Error(), "max_per_port") {
		t.Fatalf("two static neighbours on a port limited to one: %v", err)
	}
	for _, k := range slices.Sorted(maps.Keys(sysctlDefaults)) {
		if !strings.Contains(cmdlang.Help, k+" ") {
			t.Errorf("help does not explain %s", k)
		}
	}
}

// Issue 12.4: the neighbour table's counters are in show stats (scope
// neigh) and in the metrics (fwdd_neigh_events_total), every one of them.
func TestNeighCountersShown(t *testing.T) {
	d, _ := nullDaemon(t, nullConfig)
	res, err := run(t, d, "show stats")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range res[0].Data.([]show.Counter) {
		if r.Scope == "neigh" {
			names[r.Name] = true
		}
	}
	var c lltable.Counters
	want := c.List()
	for _, x := range want {
		if !names[x.Name] {
			t.Errorf("show stats: neigh %s missing", x.Name)
		}
	}
	srv := httptest.NewServer(promhttp.HandlerFor(d.Metrics(), promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]bool{}
	for _, m := range fams["fwdd_neigh_events_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "event" {
				events[l.GetValue()] = true
			}
		}
	}
	for _, x := range want {
		if !events[x.Name] {
			t.Errorf("metrics: fwdd_neigh_events_total{event=%q} missing", x.Name)
		}
	}
}
