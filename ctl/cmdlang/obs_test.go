package cmdlang

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseObs(t *testing.T) {
	l1 := Where{Line: 1}
	ok := []struct {
		in   string
		want Command
	}{
		{"monitor", &Monitor{Where: l1}},
		{"monitor all", &Monitor{Where: l1}},
		{"monitor routes neigh route", &Monitor{Where: l1, Kinds: []string{"neigh", "routes"}}},
		{"monitor routes all", &Monitor{Where: l1}},
		{"capture p0", &Capture{Where: l1, Port: "p0"}},
		{"capture p0 rx count 10 snaplen 128 duration 1m30s pcapng", &Capture{Where: l1, Port: "p0", Dir: DirRx, Count: 10, Snaplen: 128, Duration: 90 * time.Second, PcapNG: true}},
		{"trace add 5", &TraceAdd{Where: l1, Count: 5}},
		{"trace add 5 port p1 from 198.18.0.0/24 to 2001:2::/48", &TraceAdd{Where: l1, Count: 5, Port: "p1", From: pfx("198.18.0.0/24"), To: pfx("2001:2::/48")}},
		{"trace clear", &TraceClear{Where: l1}},
		{"show trace", &ShowTrace{Where: l1}},
		{"show workers", &ShowWorkers{Where: l1}},
	}
	for _, tc := range ok {
		c, err := ParseLine(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(c, tc.want) {
			t.Errorf("%q: got %#v, want %#v", tc.in, c, tc.want)
		}
		again, err := ParseLine(c.String())
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Errorf("%q: canonical %q does not parse back: %v", tc.in, c.String(), err)
		}
	}
	bad := []struct{ in, want string }{
		{"monitor frobs", `unexpected "frobs"`},
		{"capture", "missing the port"},
		{"capture p0 count 0", "from 1 to"},
		{"capture p0 duration -1s", "positive duration"},
		{"capture p0 rx tx", "conflicts"},
		{"trace add", "missing how many"},
		{"trace add 0", "from 1 to 1024"},
		{"trace add 3 port", `"port" needs a port name`},
		{"trace clear now", "unexpected"},
		{"trace frob", "unknown subcommand"},
	}
	for _, tc := range bad {
		_, err := ParseLine(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}
