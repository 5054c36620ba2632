package lltable

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/fwdd/fwdd/mbuf"
	"net/netip"
	"testing"
	"time"
)

var families = []struct {
	name string
	peer netip.Addr
}{{"arp", peer4}, {"ndp", peer6}}

// request describes a request frame we sent.
type request struct {
	ok      bool
	unicast bool // Ethernet destination is the peer's MAC
	ethDst  [6]byte
	ipDst   netip.Addr // NS only
	src     netip.Addr
}

// parseRequest checks that f is a valid ARP request / NS for target, and
// parses it with the package's own strict parsers.
func parseRequest(t *testing.T, f []byte, target netip.Addr) request {
	t.Helper()
	typ, p, why := parseEther(f)
	if why != DropNone {
		t.Fatalf("bad frame: %v", why)
	}
	var r request
	copy(r.ethDst[:], f[0:6])
	if [6]byte(f[6:12]) != ourMAC {
		t.Fatalf("source MAC %x", f[6:12])
	}
	if target.Is4() {
		var a arpMsg
		if typ != etherTypeARP || parseARP(p, &a) != DropNone || a.op != arpOpRequest || a.tpa != ip4(target) {
			return r
		}
		if a.sha != ourMAC {
			t.Fatalf("sha %x", a.sha)
		}
		r.src = addr4(a.spa)
	} else {
		var n ndMsg
		if typ != etherTypeIPv6 || parseND(p, &n) != DropNone || n.typ != icmp6NS || n.target != target.As16() {
			return r
		}
		if !n.hasLLA || n.lla != ourMAC {
			t.Fatalf("NS without our SLLA")
		}
		r.ipDst = netip.AddrFrom16(n.dst)
		r.src = netip.AddrFrom16(n.src)
		if !r.ipDst.IsMulticast() && r.ipDst != target {
			t.Fatalf("NS to %v", r.ipDst)
		}
		if r.ipDst.IsMulticast() && (!isSolicitedNode(&n.dst) || r.ethDst != multicastMAC6(n.dst) || n.dst != solicitedNode(target.As16())) {
			t.Fatalf("multicast NS to %v / %x", r.ipDst, r.ethDst)
		}
	}
	r.ok = true
	r.unicast = r.ethDst != broadcastMAC && !isMulticastMAC(r.ethDst)
	return r
}

// requests returns the requests for target among the frames sent.
func (e *env) requests(target netip.Addr) []request {
	var rs []request
	for _, f := range e.stk.take() {
		if r := parseRequest(e.t, f.data, target); r.ok {
			rs = append(rs, r)
		}
	}
	return rs
}

func TestResolveAndRelease(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newEnv(t, nil)
			s1 := e.miss(fam.peer)
			e.wantState(fam.peer, StateIncomplete)
			rs := e.requests(fam.peer)
			if len(rs) != 1 || rs[0].unicast {
				t.Fatalf("requests after miss: %+v", rs)
			}
			if fam.peer.Is4() && rs[0].src != our4 {
				t.Fatalf("request from %v", rs[0].src)
			}
			if fam.peer.Is6() && rs[0].src != our6 {
				t.Fatalf("NS from %v, want the on-link %v", rs[0].src, our6)
			}
			s2, s3 := e.miss(fam.peer), e.miss(fam.peer)
			if rs := e.requests(fam.peer); len(rs) != 0 {
				t.Fatalf("misses on INCOMPLETE sent %d more requests", len(rs))
			}
			e.tab.Poll()
			if _, ok := e.rd.Lookup(e.tab.Snapshot(), fam.peer); ok {
				t.Fatal("INCOMPLETE entry usable in the snapshot")
			}
			e.answer(fam.peer, peerMAC)
			e.wantState(fam.peer, StateReachable)
			out := e.stk.take()
			if len(out) != 3 {
				t.Fatalf("released %d packets, want 3", len(out))
			}
			for i, want := range []uint32{s1, s2, s3} {
				f := out[i].data
				if seqOf(f) != want || [6]byte(f[0:6]) != peerMAC || [6]byte(f[6:12]) != ourMAC || out[i].port != port1 {
					t.Fatalf("packet %d: seq %d dst %x src %x", i, seqOf(f), f[0:6], f[6:12])
				}
			}
			e.tab.Poll()
			mac, ok := e.rd.Lookup(e.tab.Snapshot(), fam.peer)
			if !ok || mac != peerMAC {
				t.Fatalf("snapshot: %x %v", mac, ok)
			}
			// A miss racing with publication is sent at once.
			s4 := e.miss(fam.peer)
			if out := e.stk.take(); len(out) != 1 || seqOf(out[0].data) != s4 {
				t.Fatalf("late miss not sent: %d frames", len(out))
			}
			c := e.tab.Counters()
			if c.Resolved != 1 || c.Released != 4 || c.Held != 3 {
				t.Fatalf("counters %+v", c)
			}
			e.checkNoLeak()
		})
	}
}

// Lookup is a test shortcut over Lookup4/Lookup6.
func (r *Reader) Lookup(s *Snapshot, a netip.Addr) ([6]byte, bool) {
	if a.Is4() {
		return r.Lookup4(s, port1, ip4(a))
	}
	b := a.As16()
	return r.Lookup6(s, port1, &b)
}

func TestIncompleteRetriesThenFailed(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.miss(fam.peer)
			e.miss(fam.peer)
			n := len(e.requests(fam.peer))
			for i := 0; i < 2; i++ {
				e.advance(999 * time.Millisecond)
				if got := len(e.requests(fam.peer)); got != 0 {
					t.Fatalf("request before RetransTimer")
				}
				e.advance(time.Millisecond)
				rs := e.requests(fam.peer)
				if len(rs) != 1 || rs[0].unicast {
					t.Fatalf("retransmission %d: %+v", i+1, rs)
				}
				n++
				e.wantState(fam.peer, StateIncomplete)
			}
			if n != 3 {
				t.Fatalf("%d requests", n)
			}
			e.advance(time.Second)
			e.wantState(fam.peer, StateFailed)
			if rs := e.requests(fam.peer); len(rs) != 0 {
				t.Fatalf("request after MAX_MULTICAST_SOLICIT")
			}
			u := e.stk.takeUnreach()
			if len(u) != 2 || u[0].target != fam.peer || u[0].port != port1 || seqOf(u[0].data) != 1 || seqOf(u[1].data) != 2 {
				t.Fatalf("unreachable callback: %+v", u)
			}
			// Packets for a FAILED entry get the callback at once.
			e.miss(fam.peer)
			if u := e.stk.takeUnreach(); len(u) != 1 {
				t.Fatalf("miss on FAILED: %d callbacks", len(u))
			}
			if rs := e.requests(fam.peer); len(rs) != 0 {
				t.Fatal("FAILED entry sent a request")
			}
			e.advance(20*time.Second - time.Millisecond)
			e.wantState(fam.peer, StateFailed)
			e.advance(time.Millisecond)
			e.wantState(fam.peer, 0)
			// Resolution starts over.
			e.miss(fam.peer)
			e.wantState(fam.peer, StateIncomplete)
			if rs := e.requests(fam.peer); len(rs) != 1 {
				t.Fatalf("new resolution: %d requests", len(rs))
			}
			if c := e.tab.Counters(); c.Failed != 1 || c.Unreachable != 3 {
				t.Fatalf("counters %+v", c)
			}
			e.checkNoLeak()
		})
	}
}

func (e *env) reachable(a netip.Addr) {
	e.t.Helper()
	e.miss(a)
	e.answer(a, peerMAC)
	e.wantState(a, StateReachable)
	e.stk.take()
	e.tab.Poll()
}

func TestReachableStaleDelayProbe(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.reachable(fam.peer)
			x, _ := e.tab.Lookup(port1, fam.peer)
			if x.Expires < 15*time.Second || x.Expires > 45*time.Second {
				t.Fatalf("ReachableTime %v outside [15s, 45s]", x.Expires)
			}
			e.advance(x.Expires - time.Millisecond)
			e.wantState(fam.peer, StateReachable)
			e.advance(time.Millisecond)
			e.wantState(fam.peer, StateStale)
			// Still usable; the first lookup marks it.
			s := e.tab.Snapshot()
			if _, ok := e.rd.Lookup(s, fam.peer); !ok {
				t.Fatal("STALE entry not usable")
			}
			e.advance(100 * time.Millisecond) // use scan
			e.wantState(fam.peer, StateDelay)
			if rs := e.requests(fam.peer); len(rs) != 0 {
				t.Fatal("DELAY sent a request")
			}
			e.advance(5*time.Second - time.Millisecond)
			e.wantState(fam.peer, StateDelay)
			e.advance(time.Millisecond)
			e.wantState(fam.peer, StateProbe)
			for i := 0; i < 3; i++ {
				rs := e.requests(fam.peer)
				if len(rs) != 1 || !rs[0].unicast || rs[0].ethDst != peerMAC {
					t.Fatalf("probe %d: %+v", i+1, rs)
				}
				if fam.peer.Is6() && rs[0].ipDst != fam.peer {
					t.Fatalf("probe to %v", rs[0].ipDst)
				}
				if _, ok := e.rd.Lookup(e.tab.Snapshot(), fam.peer); !ok {
					t.Fatal("PROBE entry not usable")
				}
				e.advance(time.Second)
			}
			e.wantState(fam.peer, StateFailed)
			if _, ok := e.rd.Lookup(e.tab.Snapshot(), fam.peer); ok {
				t.Fatal("FAILED entry usable")
			}
			e.checkNoLeak()
		})
	}
}

func TestProbeConfirmed(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.reachable(fam.peer)
			e.advance(46 * time.Second)
			e.wantState(fam.peer, StateStale)
			e.rd.Lookup(e.tab.Snapshot(), fam.peer)
			e.advance(100 * time.Millisecond)
			e.advance(5 * time.Second)
			e.wantState(fam.peer, StateProbe)
			e.answer(fam.peer, peerMAC)
			e.wantState(fam.peer, StateReachable)
			e.advance(2 * time.Second)
			e.wantState(fam.peer, StateReachable)
		})
	}
}

func TestStaleUnusedIsCollected(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.StaleTime = time.Minute })
			e.reachable(fam.peer)
			e.advance(46 * time.Second)
			e.wantState(fam.peer, StateStale)
			e.advance(time.Minute - time.Millisecond)
			e.wantState(fam.peer, StateStale)
			e.advance(time.Millisecond)
			e.wantState(fam.peer, 0)
			if _, ok := e.rd.Lookup(e.tab.Snapshot(), fam.peer); ok {
				t.Fatal("deleted entry still in the snapshot")
			}
		})
	}
}

// A STALE entry used just before its GC timer: the timer checks the marks
// and moves it to DELAY instead of deleting it.
func TestStaleUsedAtGC(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StaleTime = time.Second; c.UseScanInterval = time.Hour })
	e.reachable(peer4)
	e.advance(46 * time.Second)
	e.wantState(peer4, StateStale)
	e.rd.Lookup(e.tab.Snapshot(), peer4)
	e.advance(time.Second)
	e.wantState(peer4, StateDelay)
}

// Marks from an older snapshot (entry REACHABLE then) or of a deleted
// entry whose id was reused do not count as use.
func TestUseMarksGenerations(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StaleTime = time.Minute })
	e.reachable(peer4)
	old := e.tab.Snapshot()
	e.rd.Lookup(old, peer4) // REACHABLE: no mark
	e.advance(46 * time.Second)
	e.wantState(peer4, StateStale)
	e.advance(time.Second)
	e.wantState(peer4, StateStale)
	e.advance(time.Minute)
	e.wantState(peer4, 0)
	other := netip.MustParseAddr("198.18.0.3")
	e.reachable(other) // reuses the id
	e.advance(46 * time.Second)
	e.wantState(other, StateStale)
	e.advance(time.Second)
	e.wantState(other, StateStale)
}

func TestHoldQueueOverflow(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.HoldLen = 2 })
	for i := 0; i < 5; i++ {
		e.miss(peer4)
	}
	if _, held := e.tab.Len(); held != 2 {
		t.Fatalf("held %d", held)
	}
	e.checkNoLeak()
	e.answer(peer4, peerMAC)
	out := e.stk.take()
	var seqs []uint32
	for _, f := range out {
		if binary.BigEndian.Uint16(f.data[12:14]) == etherTypeIPv4 {
			seqs = append(seqs, seqOf(f.data))
		}
	}
	if fmt.Sprint(seqs) != "[4 5]" {
		t.Fatalf("released %v, want the newest two in order", seqs)
	}
	if c := e.tab.Counters(); c.HoldDropped != 3 || c.Held != 5 {
		t.Fatalf("counters %+v", c)
	}
	e.checkNoLeak()
}

func TestMaxHeld(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxHeld = 3 })
	for i := 0; i < 5; i++ {
		e.miss(netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}))
	}
	if _, held := e.tab.Len(); held != 3 {
		t.Fatalf("held %d, want 3", held)
	}
	if c := e.tab.Counters(); c.HoldRefused != 2 {
		t.Fatalf("refused %d", c.HoldRefused)
	}
	e.checkNoLeak()
}

func TestLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerPort = 4; c.MaxEntries = 6; c.RequestsPerSecond = 1000 })
	if err := e.tab.SetPort(2, [6]byte{2, 0, 0, 0, 0, 2}, []netip.Prefix{netip.MustParsePrefix("198.18.1.1/24")}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		e.miss(netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}))
	}
	if n, _ := e.tab.Len(); n != 4 {
		t.Fatalf("%d entries, want 4 (per-port limit)", n)
	}
	for i := 0; i < 10; i++ {
		m := e.packet(netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}))
		e.tab.Resolve(m, 2, netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}))
	}
	if n, _ := e.tab.Len(); n != 6 {
		t.Fatalf("%d entries, want 6 (global limit)", n)
	}
	c := e.tab.Counters()
	if c.RefusedPort != 6 || c.RefusedTotal != 8 {
		t.Fatalf("refused port %d total %d", c.RefusedPort, c.RefusedTotal)
	}
	if err := e.tab.AddStatic(port1, netip.MustParseAddr("198.18.0.200"), peerMAC); err == nil {
		t.Fatal("static entry beyond the limit accepted")
	}
	e.checkNoLeak()
}

// The global request budget: a flood of new destinations sends at most
// RequestsPerSecond requests per second, first requests leaving a quarter
// of it (rounded down) to retries.
func TestRequestBudget(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RequestsPerSecond = 5; c.MaxHeld = 10000 })
	for i := 0; i < 50; i++ {
		e.miss(netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}))
	}
	if n := len(e.stk.take()); n != 4 {
		t.Fatalf("%d first requests sent, want 4 (one of 5 kept for retries)", n)
	}
	e.advance(time.Second)
	if n := len(e.stk.take()); n != 5 {
		t.Fatalf("%d retries in the next second, want 5", n)
	}
	if c := e.tab.Counters(); c.RateLimited != 91 {
		t.Fatalf("rate limited %d", c.RateLimited)
	}
	e.checkNoLeak()
}

func TestStatic(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.miss(fam.peer) // INCOMPLETE, holding one packet
			e.stk.take()
			if err := e.tab.AddStatic(port1, fam.peer, peerMAC); err != nil {
				t.Fatal(err)
			}
			if out := e.stk.take(); len(out) != 1 || [6]byte(out[0].data[0:6]) != peerMAC {
				t.Fatalf("held packet not released on static add: %d", len(out))
			}
			e.tab.Publish()
			if mac, ok := e.rd.Lookup(e.tab.Snapshot(), fam.peer); !ok || mac != peerMAC {
				t.Fatal("static not in snapshot")
			}
			e.advance(24 * time.Hour)
			e.advance(24 * time.Hour)
			e.wantState(fam.peer, StateStatic)
			// Packets never change it.
			if fam.peer.Is4() {
				e.in(arpFrame(ourMAC, peerMAC2, arpOpReply, peerMAC2, fam.peer, ourMAC, our4))
				e.in(arpFrame(broadcastMAC, peerMAC2, arpOpRequest, peerMAC2, fam.peer, [6]byte{}, our4))
			} else {
				e.in(naFrame(fam.peer, peerMAC2, our6, naFlagSolicited|naFlagOverride, fam.peer, &peerMAC2))
				e.in(nsFrame(fam.peer, peerMAC2, our6, our6, &peerMAC2))
			}
			x, _ := e.tab.Lookup(port1, fam.peer)
			if x.State != StateStatic || x.MAC != peerMAC {
				t.Fatalf("static changed: %v", x)
			}
			if c := e.tab.Counters(); c.StaticRejected != 2 {
				t.Fatalf("static rejected %d", c.StaticRejected)
			}
			if err := e.tab.Delete(port1, fam.peer); err != nil {
				t.Fatal(err)
			}
			if err := e.tab.Delete(port1, fam.peer); err == nil {
				t.Fatal("double delete accepted")
			}
			e.tab.Poll()
			if _, ok := e.rd.Lookup(e.tab.Snapshot(), fam.peer); ok {
				t.Fatal("deleted static still in snapshot")
			}
		})
	}
}

func TestStaticErrors(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		port uint16
		addr string
		mac  [6]byte
	}{
		{9, "198.18.0.2", peerMAC},
		{port1, "224.0.0.1", peerMAC},
		{port1, "ff02::1", peerMAC},
		{port1, "0.0.0.0", peerMAC},
		{port1, "198.18.0.2", [6]byte{1, 0, 0, 0, 0, 1}},
		{port1, "198.18.0.2", [6]byte{}},
		{port1, "198.18.0.1", peerMAC},
	} {
		if err := e.tab.AddStatic(c.port, netip.MustParseAddr(c.addr), c.mac); err == nil {
			t.Errorf("AddStatic(%d, %s, %x) accepted", c.port, c.addr, c.mac)
		}
	}
}

func TestFlushPort(t *testing.T) {
	e := newEnv(t, nil)
	e.reachable(peer4)
	e.miss(peer6)
	if err := e.tab.AddStatic(port1, netip.MustParseAddr("198.18.0.9"), peerMAC); err != nil {
		t.Fatal(err)
	}
	if n := e.tab.FlushPort(port1); n != 3 {
		t.Fatalf("flushed %d", n)
	}
	e.tab.Poll()
	if a, b := e.tab.Snapshot().Len(); a+b != 0 {
		t.Fatal("snapshot not empty")
	}
	e.checkNoLeak()
	e.tab.RemovePort(port1)
	e.miss(peer4)
	if n, _ := e.tab.Len(); n != 0 {
		t.Fatal("entry created on a removed port")
	}
	e.checkNoLeak()
}

func TestList(t *testing.T) {
	e := newEnv(t, nil)
	e.reachable(peer6)
	e.reachable(peer4)
	e.miss(netip.MustParseAddr("198.18.0.7"))
	_ = e.tab.AddStatic(port1, netip.MustParseAddr("198.18.0.9"), peerMAC2)
	l := e.tab.List()
	var got []string
	for _, x := range l {
		got = append(got, x.Addr.String()+" "+x.State.String()+" "+x.LLAddr)
	}
	want := "[198.18.0.2 REACHABLE 02:00:00:00:00:22 198.18.0.7 INCOMPLETE  198.18.0.9 PERMANENT 02:00:00:00:00:33 2001:2::2 REACHABLE 02:00:00:00:00:22]"
	if fmt.Sprint(got) != want {
		t.Fatalf("List:\n%v\nwant\n%v", got, want)
	}
	if s := l[0].String(); s == "" {
		t.Fatal("empty String")
	}
}

// Re-armed timers do not accumulate: the heap holds each entry at most once.
func TestTimerHeapBounded(t *testing.T) {
	e := newEnv(t, nil)
	e.into(peer4, StateReachable)
	for i := 0; i < 10000; i++ {
		e.in(arpFrame(ourMAC, peerMAC, arpOpReply, peerMAC, peer4, ourMAC, our4))
	}
	if n, _ := e.tab.Len(); len(e.tab.timers) > n {
		t.Fatalf("%d timers for %d entries", len(e.tab.timers), n)
	}
	e.wantState(peer4, StateReachable)
}

// A flood of misses to unresolvable destinations: entries, held mbufs and
// requests stay within their limits, everything refused is counted, and
// once the flood stops everything is released.
func TestFlood(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxPerPort = 1000
		c.MaxHeld = 200
		c.RequestsPerSecond = 100
	})
	const n = 20000
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		e.miss(a)
		if i%1000 == 999 {
			e.advance(100 * time.Millisecond)
		}
	}
	entries, held := e.tab.Len()
	if entries > 1000 || held > 200 {
		t.Fatalf("%d entries, %d held", entries, held)
	}
	if got := e.pool.Stats().InUse; got != held {
		t.Fatalf("%d mbufs in use, %d held", got, held)
	}
	if sent := len(e.stk.take()); sent > 100+2*100+1 {
		t.Fatalf("%d requests in 2 s", sent)
	}
	c := e.tab.Counters()
	if c.HoldRefused+c.RefusedPort+c.HoldDropped == 0 || c.RateLimited == 0 {
		t.Fatalf("nothing refused: %+v", c)
	}
	// Entries are made even when MaxHeld is reached (only packets are
	// refused), so the last ones are a few seconds younger: run the
	// timers second by second until every entry failed and expired.
	for i := 0; i < 30; i++ {
		e.advance(time.Second)
	}
	if entries, held := e.tab.Len(); entries != 0 || held != 0 {
		t.Fatalf("after the flood: %d entries, %d held", entries, held)
	}
	e.checkNoLeak()
}

// A packet that reaches the control goroutine for a STALE entry (the
// snapshot was not yet republished) is sent and moves the entry to DELAY.
func TestResolveOnStale(t *testing.T) {
	e := newEnv(t, nil)
	e.into(peer6, StateStale)
	s := e.miss(peer6)
	e.wantState(peer6, StateDelay)
	if out := e.stk.take(); len(out) != 1 || seqOf(out[0].data) != s || [6]byte(out[0].data[0:6]) != peerMAC {
		t.Fatal("packet not sent")
	}
}

// A FAILED entry that hears from its neighbour comes back.
func TestFailedRelearned(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.miss(fam.peer)
			for i := 0; i < 3; i++ {
				e.advance(time.Second)
			}
			e.wantState(fam.peer, StateFailed)
			if fam.peer.Is4() {
				e.in(arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, peer4, [6]byte{}, our4))
			} else {
				e.in(nsFrame(peer6, peerMAC, our6, our6, &peerMAC))
			}
			e.wantState(fam.peer, StateStale)
			e.tab.Poll()
			if _, ok := e.rd.Lookup(e.tab.Snapshot(), fam.peer); !ok {
				t.Fatal("not usable again")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	pool, err := mbuf.NewPool(mbuf.Config{Count: 16, CacheSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	stk := &fakeStack{pool: pool}
	for _, c := range []Config{
		{Pool: pool},
		{Stack: stk},
		{Stack: stk, Pool: pool, HoldLen: 1000},
		{Stack: stk, Pool: pool, RetransTimer: time.Millisecond},
		{Stack: stk, Pool: pool, MissRing: 1000},
		{Stack: stk, Pool: pool, MaxEntries: -1},
	} {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v): %v", c, err)
		}
	}
	if _, err := ParseMAC("01:00:5e:00:00:01"); err == nil {
		t.Error("multicast lladdr accepted")
	}
	if m, err := ParseMAC("02:00:5e:10:00:01"); err != nil || m != [6]byte{2, 0, 0x5e, 0x10, 0, 1} {
		t.Errorf("ParseMAC: %x %v", m, err)
	}
}

// Changes that do not affect forwarding wait up to LazyPublish; changes to
// usable entries are published at the end of the iteration.
func TestLazyPublish(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.StaleTime = time.Minute; c.LazyPublish = time.Second })
	e.into(peer4, StateStale)
	e.advance(time.Minute - 10*time.Millisecond)
	if err := e.tab.AddStatic(port1, netip.MustParseAddr("198.18.0.9"), peerMAC); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Millisecond) // publishes the static entry at once
	gen := e.tab.Snapshot().Gen()
	if _, ok := e.tab.Snapshot().lookupAddr(port1, netip.MustParseAddr("198.18.0.9")); !ok {
		t.Fatal("static entry not published")
	}
	e.advance(10 * time.Millisecond) // peer4 collected: lazy
	e.wantState(peer4, 0)
	if e.tab.Snapshot().Gen() != gen {
		t.Fatal("lazy change published at once")
	}
	e.advance(time.Second)
	if _, ok := e.tab.Snapshot().lookupAddr(port1, peer4); ok || e.tab.Snapshot().Gen() == gen {
		t.Fatal("lazy change never published")
	}
}

func TestResolveBadTarget(t *testing.T) {
	e := newEnv(t, nil)
	for _, a := range []string{"198.18.0.1", "224.0.0.5", "255.255.255.255", "0.0.0.0", "ff02::1", "::", "2001:2::1"} {
		e.tab.Resolve(e.packet(peer4), port1, netip.MustParseAddr(a))
	}
	e.tab.Resolve(e.packet(peer4), 42, peer4)
	c := e.tab.Counters()
	if n, _ := e.tab.Len(); n != 0 || c.Dropped[DropBadTarget] != 7 || c.Dropped[DropNoPort] != 1 || len(e.stk.take()) != 0 {
		t.Fatalf("bad targets: %d entries, %v", n, c.Dropped)
	}
	e.checkNoLeak()
}
