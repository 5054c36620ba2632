package trace

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
)

func frame4(src, dst [4]byte, vlan bool) []byte {
	f := make([]byte, 0, 64)
	f = append(f, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2)
	if vlan {
		f = append(f, 0x81, 0x00, 0, 7)
	}
	f = append(f, 0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0)
	f = append(f, src[:]...)
	f = append(f, dst[:]...)
	return append(f, 0x04, 0xd2, 0, 9, 0, 8, 0, 0)
}

func TestMatch(t *testing.T) {
	a, b := [4]byte{198, 18, 1, 2}, [4]byte{198, 19, 2, 2}
	cases := []struct {
		f    Filter
		port uint16
		fr   []byte
		want bool
	}{
		{Filter{Port: -1}, 3, []byte{1, 2}, true},
		{Filter{Port: 1}, 3, frame4(a, b, false), false},
		{Filter{Port: 1}, 1, frame4(a, b, false), true},
		{Filter{Port: -1, From: netip.MustParsePrefix("198.18.1.0/24")}, 0, frame4(a, b, false), true},
		{Filter{Port: -1, From: netip.MustParsePrefix("198.18.1.0/24")}, 0, frame4(b, a, false), false},
		{Filter{Port: -1, To: netip.MustParsePrefix("198.19.2.2/32")}, 0, frame4(a, b, true), true},
		{Filter{Port: -1, To: netip.MustParsePrefix("2001:2::/48")}, 0, frame4(a, b, false), false},
		{Filter{Port: -1, To: netip.MustParsePrefix("198.19.2.2/32")}, 0, frame4(a, b, false)[:20], false},
	}
	for i, c := range cases {
		if got := New(1, c.f).Match(c.port, c.fr); got != c.want {
			t.Errorf("case %d: got %v", i, got)
		}
	}
	if s := Summary(frame4(a, b, true)); !strings.Contains(s, "vlan 7") || !strings.Contains(s, "198.18.1.2 > 198.19.2.2: UDP 1234 > 9, ttl 64") {
		t.Errorf("summary %q", s)
	}
}

// TestClaimConcurrent: workers racing for records get each at most once,
// N in all; only published records are read.
func TestClaimConcurrent(t *testing.T) {
	s := New(100, Filter{Port: -1})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if r := s.Claim(w, []byte{1, 2, 3}); r != nil {
					r.Add(Step{What: Rx, Port: w})
					s.Publish(r)
				}
				_ = s.Records()
			}
		}()
	}
	wg.Wait()
	rs := s.Records()
	if len(rs) != 100 || !s.Full() || s.Claimed() != 100 {
		t.Fatalf("%d records, full %v", len(rs), s.Full())
	}
	for i, r := range rs {
		if r.Seq != i+1 || r.NSteps != 1 || r.Steps[0].Port != r.Worker || r.End < r.Start {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	var r Record
	for range MaxSteps + 2 {
		r.Add(Step{What: Outcome})
	}
	if r.NSteps != MaxSteps || r.Truncated != 2 {
		t.Errorf("steps %d truncated %d", r.NSteps, r.Truncated)
	}
}
