package events

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestSlowSubscriberDropped(t *testing.T) {
	b := NewBus()
	if b.Wants(Route) {
		t.Fatal("wants routes with no subscriber")
	}
	slow := b.Subscribe(MaskOf(Route), 2)
	fast := b.Subscribe(All, 100)
	neighOnly := b.Subscribe(MaskOf(Neigh), 1)
	if !b.Wants(Route) || !b.Wants(Neigh) {
		t.Fatal("Wants misses a subscription")
	}
	start := time.Now()
	for i := 0; i < 10; i++ {
		b.Publish(Event{Kind: Route, Action: "add", Prefix: netip.MustParsePrefix("198.18.0.0/24")})
	}
	if time.Since(start) > time.Second {
		t.Fatal("Publish blocked")
	}
	n := 0
	for range slow.C() {
		n++
	}
	if n != 2 || !slow.Dropped() {
		t.Fatalf("slow subscriber: %d events, dropped %v; want 2, true", n, slow.Dropped())
	}
	if len(fast.C()) != 10 || fast.Dropped() {
		t.Fatalf("fast subscriber has %d events (dropped %v), want 10", len(fast.C()), fast.Dropped())
	}
	if len(neighOnly.C()) != 0 {
		t.Fatal("neigh subscriber got route events")
	}
	fast.Close()
	fast.Close()
	neighOnly.Close()
	if b.Subscribers() != 0 || b.Wants(Route) {
		t.Fatalf("%d subscribers left", b.Subscribers())
	}
}

func TestEventString(t *testing.T) {
	f := 1
	cases := []struct {
		e    Event
		want string
	}{
		{Event{Kind: Route, Action: "add", Prefix: netip.MustParsePrefix("198.18.5.0/24"), Via: []netip.Addr{netip.MustParseAddr("198.18.1.2")}, Dev: "p1", FIB: &f, Origin: "static"}, "198.18.5.0/24 via 198.18.1.2 dev p1 fib 1 proto static"},
		{Event{Kind: Route, Action: "del", Prefix: netip.MustParsePrefix("198.18.5.0/24"), Type: "blackhole"}, "Deleted 198.18.5.0/24 blackhole fib all"},
		{Event{Kind: Neigh, Action: "change", Addr: netip.MustParseAddr("198.18.1.2"), Port: "p1", LLAddr: "02:00:00:00:00:01", State: "reachable", Old: "incomplete"}, "198.18.1.2 dev p1 lladdr 02:00:00:00:00:01 REACHABLE (was INCOMPLETE)"},
		{Event{Kind: Port, Action: "down", Port: "p0"}, "port p0 down"},
		{Event{Kind: Rule, Action: "del", Rule: 100}, "Deleted rule 100"},
		{Event{Kind: Config, Action: "reload", Info: "/etc/fwdd.conf"}, "config reload /etc/fwdd.conf"},
		{Event{Kind: LCP, Action: "del", Port: "p0", Info: "lcp vp0"}, "Deleted lcp port p0 lcp vp0"},
		{Event{Kind: LCP, Action: "mirror", Info: "3 kernel route changes applied"}, "lcp mirror 3 kernel route changes applied"},
	}
	for _, c := range cases {
		if got := c.e.String(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
		if strings.Contains(c.e.String(), "\n") {
			t.Errorf("newline in %q", c.e.String())
		}
	}
}
