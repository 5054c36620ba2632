package lltable

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// spoof6 returns the i-th on-link IPv6 source of a flood.
func spoof6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0xaa, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)})
}

// spoof4 returns the i-th on-link IPv4 source of a flood (198.18.0.0/24
// has 253 usable ones besides ours and the peers': the test widens it).
func spoof4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
}

// Issue 12.1: NS and ARP requests from thousands of spoofed on-link sources
// fill the table with STALE entries; a new neighbour, in either family,
// still resolves because unused STALE entries are evicted first, and the
// evictions are counted.
func TestSpoofedFloodDoesNotExhaust(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerPort = 256; c.MaxEntries = 300; c.MaxHeld = 10000 })
	wide := []netip.Prefix{netip.MustParsePrefix("198.18.0.1/16"), netip.MustParsePrefix("2001:2::1/64"), netip.MustParsePrefix("fe80::1/64")}
	if err := e.tab.SetPort(port1, ourMAC, wide); err != nil {
		t.Fatal(err)
	}
	e.stk.take()
	for i := 0; i < 6000; i++ {
		mac := [6]byte{0x02, 0xee, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		if i%2 == 0 {
			e.in(nsFrame(spoof6(i), mac, netip.AddrFrom16(solicitedNode(our6.As16())), our6, &mac))
		} else {
			e.in(arpFrame(broadcastMAC, mac, arpOpRequest, mac, spoof4(i+1000), [6]byte{}, our4))
		}
		if i%500 == 0 {
			e.advance(time.Second)
		}
	}
	e.stk.take()
	if n, _ := e.tab.Len(); n > 256 {
		t.Fatalf("%d entries beyond the per-port limit", n)
	}
	c := e.tab.Counters()
	if c.Evicted == 0 {
		t.Fatalf("nothing evicted: %+v", c)
	}
	// Legitimate neighbours of both families resolve, on a full table.
	for _, fam := range families {
		s := e.miss(fam.peer)
		if len(e.requests(fam.peer)) != 1 {
			t.Fatalf("%v: no request sent on a full table (refused port %d total %d)", fam.peer, c.RefusedPort, c.RefusedTotal)
		}
		e.answer(fam.peer, peerMAC)
		e.wantState(fam.peer, StateReachable)
		out := e.stk.take()
		if len(out) != 1 || seqOf(out[0].data) != s {
			t.Fatalf("%v: held packet not released", fam.peer)
		}
	}
	// More flood does not evict entries in use.
	for i := 6000; i < 7000; i++ {
		mac := [6]byte{0x02, 0xee, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		e.in(nsFrame(spoof6(i), mac, our6, our6, &mac))
	}
	e.stk.take()
	for _, fam := range families {
		e.wantState(fam.peer, StateReachable)
	}
	e.checkNoLeak()
}

// Eviction takes the STALE entry unused the longest; an entry used while
// STALE goes DELAY instead of being evicted; REACHABLE, INCOMPLETE and
// static entries are never evicted; when nothing is evictable the new
// entry is refused and counted.
func TestEvictionOrder(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerPort = 4 })
	a := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}) }
	learn := func(i int) {
		mac := [6]byte{0x02, 0xee, 0, 0, 0, byte(i)}
		e.in(arpFrame(broadcastMAC, mac, arpOpRequest, mac, a(i), [6]byte{}, our4))
		e.tab.Poll()
	}
	for i := 0; i < 4; i++ {
		learn(i)
		e.advance(time.Second)
	}
	// a(0) is used: it must survive (and go DELAY).
	e.rd.Lookup(e.tab.Snapshot(), a(0))
	learn(4)
	if e.state(a(0)) != StateDelay || e.state(a(1)) != 0 || e.state(a(4)) != StateStale {
		t.Fatalf("states %v %v %v, want DELAY, gone, STALE", e.state(a(0)), e.state(a(1)), e.state(a(4)))
	}
	// Fill with entries that may not be evicted: static and INCOMPLETE.
	e.stk.take()
	if err := e.tab.AddStatic(port1, a(20), peerMAC); err != nil {
		t.Fatal(err)
	}
	e.miss(a(21))
	e.miss(a(22))
	if e.state(a(2)) != 0 || e.state(a(3)) != 0 || e.state(a(21)) != StateIncomplete {
		t.Fatalf("unused STALE entries not evicted for a miss")
	}
	before := e.tab.Counters().RefusedPort
	e.miss(a(23))
	if e.state(a(23)) != 0 || e.tab.Counters().RefusedPort != before+1 {
		t.Fatal("a miss on a table of unevictable entries was not refused")
	}
	if e.state(a(0)) != StateDelay || e.state(a(20)) != StateStatic {
		t.Fatal("DELAY or static entry evicted")
	}
	e.checkNoLeak()
}

// The global limit evicts on any port: the oldest unused STALE entry.
func TestEvictionGlobal(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxEntries = 3 })
	if err := e.tab.SetPort(2, [6]byte{2, 0, 0, 0, 0, 2}, []netip.Prefix{netip.MustParsePrefix("198.18.1.1/24")}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		mac := [6]byte{0x02, 0xee, 0, 0, 0, byte(i)}
		e.in(arpFrame(broadcastMAC, mac, arpOpRequest, mac, netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}), [6]byte{}, our4))
		e.advance(time.Second)
	}
	m := e.packet(netip.MustParseAddr("198.18.1.5"))
	e.tab.Resolve(m, 2, netip.MustParseAddr("198.18.1.5"))
	if x, ok := e.tab.Lookup(2, netip.MustParseAddr("198.18.1.5")); !ok || x.State != StateIncomplete {
		t.Fatal("miss on port 2 refused on a full table of unused STALE entries")
	}
	if e.state(netip.MustParseAddr("198.18.0.10")) != 0 {
		t.Fatal("not the oldest entry evicted")
	}
	if c := e.tab.Counters(); c.Evicted != 1 || c.RefusedTotal != 0 {
		t.Fatalf("evicted %d refused %d", c.Evicted, c.RefusedTotal)
	}
	e.checkNoLeak()
}

// Issue 12.1: unsolicited NS and ARP requests create entries only for
// sources a neighbour can have: on a connected prefix of that port, not
// ours, not multicast, unspecified, or an IPv4 subnet's broadcast or
// network address. They are still answered.
func TestLearnOnlyOnLinkSources(t *testing.T) {
	cases := []struct {
		name string
		src  netip.Addr
	}{
		{"v6 off-link", netip.MustParseAddr("2001:2:0:9::2")},
		{"v6 other port's prefix", netip.MustParseAddr("2001:2:0:1::2")},
		{"v4 off-link", netip.MustParseAddr("198.19.0.2")},
		{"v4 subnet broadcast", netip.MustParseAddr("198.18.0.255")},
		{"v4 network address", netip.MustParseAddr("198.18.0.0")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if err := e.tab.SetPort(2, [6]byte{2, 0, 0, 0, 0, 2}, []netip.Prefix{netip.MustParsePrefix("2001:2:0:1::1/64")}); err != nil {
				t.Fatal(err)
			}
			e.stk.take()
			if c.src.Is4() {
				e.in(arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, c.src, [6]byte{}, our4))
			} else {
				e.in(nsFrame(c.src, peerMAC, our6, our6, &peerMAC))
			}
			if n, _ := e.tab.Len(); n != 0 {
				t.Fatalf("%v learned", c.src)
			}
			if len(e.stk.take()) != 1 {
				t.Fatal("not answered")
			}
			if e.tab.Counters().Dropped[DropNotOnLink] != 1 {
				t.Fatal("not counted as not_on_link")
			}
		})
	}
	t.Run("v6 link-local learned", func(t *testing.T) {
		e := newEnv(t, nil)
		ll := netip.MustParseAddr("fe80::2")
		e.in(nsFrame(ll, peerMAC, ourLL, ourLL, &peerMAC))
		e.wantState(ll, StateStale)
	})
}

// Issue 12.3: an entry created STALE from an NS or an ARP request is
// published at once, and when used goes DELAY, then PROBE with unicast
// requests to the MAC it claimed; unanswered, it fails. Before, it stayed
// STALE until StaleTime.
func TestLearnedEntryIsProbed(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if fam.peer.Is4() {
				e.in(arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, peer4, [6]byte{}, our4))
			} else {
				e.in(nsFrame(peer6, peerMAC, our6, our6, &peerMAC))
			}
			e.stk.take()
			e.wantState(fam.peer, StateStale)
			e.tab.Poll()
			if _, ok := e.rd.Lookup(e.tab.Snapshot(), fam.peer); !ok {
				t.Fatal("learned entry not published")
			}
			e.advance(100 * time.Millisecond)
			e.wantState(fam.peer, StateDelay)
			e.advance(5 * time.Second)
			e.wantState(fam.peer, StateProbe)
			reqs := e.requests(fam.peer)
			if len(reqs) != 1 || !reqs[0].unicast || reqs[0].ethDst != peerMAC {
				t.Fatalf("probe %+v", reqs)
			}
			for i := 0; i < 3; i++ {
				e.advance(time.Second)
			}
			e.wantState(fam.peer, StateFailed)
		})
	}
}

// Issue 12.2: limits change at run time. Raising MaxEntries past the size
// the readers' use marks had keeps usage feedback working for the new
// entries; lowering the limits refuses new entries (nothing is deleted).
func TestSetLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxEntries = 2 })
	if err := e.tab.SetLimits(Limits{MaxEntries: 0}); err == nil {
		t.Fatal("MaxEntries 0 accepted")
	}
	if err := e.tab.SetLimits(Limits{MaxEntries: 5000, MaxPerPort: 5000, MaxIncomplete: 7, HoldLen: 2, MaxHeld: 100, RequestsPerSecond: 1000}); err != nil {
		t.Fatal(err)
	}
	if got := e.tab.Limits(); got != (Limits{MaxEntries: 5000, MaxPerPort: 5000, MaxIncomplete: 7, HoldLen: 2, MaxHeld: 100, RequestsPerSecond: 1000}) {
		t.Fatalf("limits %+v", got)
	}
	wide := []netip.Prefix{netip.MustParsePrefix("198.18.0.1/16"), netip.MustParsePrefix("2001:2::1/64")}
	if err := e.tab.SetPort(port1, ourMAC, wide); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		mac := [6]byte{0x02, 0xee, 0, 0, byte(i >> 8), byte(i)}
		e.in(arpFrame(broadcastMAC, mac, arpOpRequest, mac, spoof4(i+1000), [6]byte{}, our4))
	}
	e.stk.take()
	if n, _ := e.tab.Len(); n != 3000 {
		t.Fatalf("%d entries after raising the limit", n)
	}
	e.tab.Poll()
	last := spoof4(2999 + 1000)
	e.rd.Lookup(e.tab.Snapshot(), last)
	e.advance(100 * time.Millisecond)
	if e.state(last) != StateDelay {
		t.Fatal("use of an entry beyond the old marks size not seen")
	}
	// Hold queue length follows.
	for i := 0; i < 4; i++ {
		e.miss(peer6)
	}
	if x, _ := e.tab.Lookup(port1, peer6); x.Held != 2 {
		t.Fatalf("held %d, want 2", x.Held)
	}
	if err := e.tab.SetLimits(Limits{MaxEntries: 10, MaxPerPort: 10, HoldLen: 2, MaxHeld: 100, RequestsPerSecond: 2}); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.tab.Len(); n != 3001 {
		t.Fatalf("lowering the limit deleted entries: %d", n)
	}
	// The request rate follows: 2 per second from now on.
	e.stk.take()
	e.advance(time.Second)
	e.advance(time.Second)
	if n := len(e.stk.take()); n > 4 {
		t.Fatalf("%d requests in 2 s at 2 per second", n)
	}
	e.checkNoLeak()
}

// FlushDynamic (a port whose device vanished) keeps static entries.
func TestFlushDynamic(t *testing.T) {
	e := newEnv(t, nil)
	e.reachable(peer4)
	e.miss(peer6)
	static := netip.MustParseAddr("198.18.0.9")
	if err := e.tab.AddStatic(port1, static, peerMAC); err != nil {
		t.Fatal(err)
	}
	if n := e.tab.FlushDynamic(port1); n != 2 {
		t.Fatalf("flushed %d", n)
	}
	e.tab.Poll()
	if _, ok := e.rd.Lookup(e.tab.Snapshot(), peer4); ok {
		t.Fatal("flushed entry still published")
	}
	if _, ok := e.rd.Lookup(e.tab.Snapshot(), static); !ok {
		t.Fatal("static entry flushed")
	}
	e.checkNoLeak()
}

// A flood of misses to unresolvable destinations that fills MaxHeld does
// not keep a new neighbour from resolving: its first packet is refused
// (counted), its entry is made and solicited, and once it answers the next
// packets flow.
func TestMaxHeldDoesNotBlockResolution(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxHeld = 10 })
	for i := 0; i < 50; i++ {
		e.miss(netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)}))
	}
	e.stk.take()
	e.advance(time.Second) // request budget refills
	e.stk.take()
	refused := e.tab.Counters().HoldRefused
	e.miss(peer4)
	if len(e.requests(peer4)) != 1 {
		t.Fatal("no request for a new neighbour while MaxHeld is reached")
	}
	if e.tab.Counters().HoldRefused != refused+1 {
		t.Fatal("the refused packet is not counted")
	}
	e.answer(peer4, peerMAC)
	e.wantState(peer4, StateReachable)
	e.checkNoLeak()
}

// A scan: misses to thousands of unresolvable on-link destinations (one
// packet each, 2000 per second of each family, faster than the request
// budget) while, from the second second on, two real neighbours are
// sent a packet every 50 ms. The
// INCOMPLETE entries stay within MaxIncomplete at every step, the table
// and its id space stay bounded, the scan's entries are evicted and
// counted, and both neighbours resolve during the scan; once it stops,
// everything it made expires.
func TestIncompleteFloodBounded(t *testing.T) {
	const maxInc = 64
	e := newEnv(t, func(c *Config) { c.MaxIncomplete = maxInc; c.MaxHeld = 10000; c.RequestsPerSecond = 200 })
	wide := []netip.Prefix{netip.MustParsePrefix("198.18.0.1/16"), netip.MustParsePrefix("2001:2::1/64"), netip.MustParsePrefix("fe80::1/64")}
	if err := e.tab.SetPort(port1, ourMAC, wide); err != nil {
		t.Fatal(err)
	}
	e.stk.take()
	rnd := rand.New(rand.NewPCG(1, 2))
	resolvedAt := map[netip.Addr]int{}
	maxEntries := 0
	for step := 0; step < 400; step++ { // 4 s of 10 ms steps
		for i := 0; i < 20; i++ {
			v := rnd.Uint32()
			e.miss(netip.AddrFrom4([4]byte{198, 18, byte(1 + v%250), byte(v >> 8)}))
			e.miss(spoof6(int(v>>8) + 1000))
		}
		if step >= 100 && step%5 == 0 { // a flow: a packet every 50 ms
			for _, fam := range families {
				if _, ok := resolvedAt[fam.peer]; !ok {
					e.miss(fam.peer)
				}
			}
		}
		e.advance(10 * time.Millisecond)
		for _, f := range e.stk.take() {
			for _, fam := range families {
				if parseRequest(t, f.data, fam.peer).ok {
					e.answer(fam.peer, peerMAC)
				}
			}
		}
		for _, fam := range families {
			if _, ok := resolvedAt[fam.peer]; !ok && e.state(fam.peer) == StateReachable {
				resolvedAt[fam.peer] = step
			}
		}
		e.stk.take()
		if e.tab.nInc > maxInc {
			t.Fatalf("step %d: %d INCOMPLETE entries, limit %d", step, e.tab.nInc, maxInc)
		}
		n, _ := e.tab.Len()
		maxEntries = max(maxEntries, n)
	}
	c := e.tab.Counters()
	t.Logf("max entries %d, ids %d, resolved at steps %v, %+v", maxEntries, len(e.tab.byID), resolvedAt, c)
	// INCOMPLETE entries, the neighbours, and scan entries that failed
	// after their retries (FAILED, evictable).
	if maxEntries > 4*maxInc || len(e.tab.byID) > 4*maxInc {
		t.Fatalf("table grew to %d entries (%d ids) for MaxIncomplete %d", maxEntries, len(e.tab.byID), maxInc)
	}
	if c.EvictedIncomplete == 0 || c.RateLimited == 0 {
		t.Fatalf("scan entries not evicted or requests not limited: %+v", c)
	}
	for _, fam := range families {
		if _, ok := resolvedAt[fam.peer]; !ok {
			t.Fatalf("%v did not resolve during the scan", fam.peer)
		}
	}
	for i := 0; i < 30; i++ {
		e.advance(time.Second)
	}
	if n, held := e.tab.Len(); n != 2 || held != 0 || e.tab.nInc != 0 {
		t.Fatalf("after the scan: %d entries, %d held, %d INCOMPLETE (want the 2 neighbours)", n, held, e.tab.nInc)
	}
	e.checkNoLeak()
}

// At MaxIncomplete a new miss evicts an entry one packet wanted and no
// request went out for, else one asked for at least RetransTimer/10 ago;
// an entry wanted again is never evicted, and when every INCOMPLETE entry
// is protected or just asked for, the miss is refused and counted. A
// destination crowded out and wanted again within RetransTimer is kept.
func TestIncompleteEvictionOrder(t *testing.T) {
	a := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}) }
	t.Run("unsent first", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxIncomplete = 3; c.RequestsPerSecond = 2 })
		e.miss(a(0)) // asked for (no reserve at 2/s)
		e.miss(a(1)) // asked for
		e.miss(a(2)) // budget spent: not asked for
		e.stk.take()
		e.miss(a(3)) // evicts a(2)
		if e.state(a(2)) != 0 || e.state(a(0)) != StateIncomplete || e.state(a(1)) != StateIncomplete {
			t.Fatalf("states %v %v %v: the entry no request went out for was not evicted first", e.state(a(0)), e.state(a(1)), e.state(a(2)))
		}
		e.clk.Advance(time.Second) // budget back
		e.miss(a(2))               // wanted again: evicts a(3) (unsent), kept and asked for
		if e.state(a(3)) != 0 || len(e.requests(a(2))) != 1 {
			t.Fatal("a destination crowded out and wanted again was not asked for")
		}
		e.miss(a(4)) // evicts a(0), asked for 1 s ago; a(2) is kept
		if e.state(a(0)) != 0 || e.state(a(2)) != StateIncomplete {
			t.Fatalf("states a0 %v a2 %v", e.state(a(0)), e.state(a(2)))
		}
		e.checkNoLeak()
	})
	t.Run("protected and refused", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxIncomplete = 3 })
		e.miss(a(0))
		e.miss(a(1))
		e.miss(a(2)) // all three asked for
		e.miss(a(3)) // refused: every entry asked for just now
		if c := e.tab.Counters(); e.state(a(3)) != 0 || c.RefusedIncomplete != 1 {
			t.Fatalf("miss not refused: a(3) %v, refused %d", e.state(a(3)), c.RefusedIncomplete)
		}
		e.miss(a(1)) // wanted again: protected
		e.clk.Advance(150 * time.Millisecond)
		e.miss(a(3)) // evicts a(0), asked for 150 ms ago
		e.miss(a(4)) // evicts a(2); a(1) is protected
		if e.state(a(0)) != 0 || e.state(a(2)) != 0 || e.state(a(1)) != StateIncomplete || e.state(a(3)) != StateIncomplete {
			t.Fatalf("states a0 %v a1 %v a2 %v a3 %v", e.state(a(0)), e.state(a(1)), e.state(a(2)), e.state(a(3)))
		}
		e.miss(a(5)) // a(3) protected (recalled), a(4) just asked for: refused
		if c := e.tab.Counters(); c.EvictedIncomplete != 2 || c.RefusedIncomplete != 2 || c.HoldDropped != 2 {
			t.Fatalf("evicted %d refused %d hold dropped %d, want 2 2 2", c.EvictedIncomplete, c.RefusedIncomplete, c.HoldDropped)
		}
		e.checkNoLeak()
	})
}
