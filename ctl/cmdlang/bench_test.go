package cmdlang

import (
	"fmt"
	"strings"
	"testing"
)

// benchLines is a config-like batch: routes (IPv4 and ECMP IPv6), rules
// and neighbours, the commands that come in thousands.
func benchLines() []string {
	var l []string
	for i := range 4000 {
		switch i % 4 {
		case 0:
			l = append(l, fmt.Sprintf("route add 10.%d.%d.0/24 via 198.19.0.2 fib 1", i>>8&255, i&255))
		case 1:
			l = append(l, fmt.Sprintf("route add 2001:db8:%x::/48 via 2001:2::2 via 2001:2::3", i))
		case 2:
			l = append(l, fmt.Sprintf("rule add %d in p0 from 198.18.0.0/24 proto udp dport 1000-2000 setfib 1", i))
		case 3:
			l = append(l, fmt.Sprintf("neigh add p1 198.19.%d.%d lladdr 02:00:00:00:%02x:%02x", i>>8&255, i&255, i>>8&255, i&255))
		}
	}
	return l
}

// Baseline: only splitting the same lines into words (no validation).
func BenchmarkFieldsBaseline(b *testing.B) {
	lines := benchLines()
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			_ = strings.Fields(l)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
}

func BenchmarkParseLines(b *testing.B) {
	lines := benchLines()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseLines(lines, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
}
