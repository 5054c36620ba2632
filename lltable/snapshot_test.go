package lltable

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwdd/fwdd/mbuf"
)

type refKey struct {
	port uint16
	v6   bool
	ip   [16]byte
}

// randomSnapshot builds a snapshot of n entries and the naive reference
// map it must agree with. Addresses are drawn from a small space so that
// many probes collide.
func randomSnapshot(rng *rand.Rand, n int) (*Snapshot, map[refKey][6]byte, []snapEntry) {
	ref := map[refKey][6]byte{}
	var es []snapEntry
	for len(es) < n {
		var se snapEntry
		se.port = uint16(rng.IntN(4))
		se.v6 = rng.IntN(2) == 0
		if se.v6 {
			se.ip = [16]byte{0x20, 0x01, 0, 2}
			binary.BigEndian.PutUint32(se.ip[12:], rng.Uint32N(4096))
			se.ip[8] = byte(rng.IntN(2))
		} else {
			binary.BigEndian.PutUint32(se.ip[:4], 0xc6120000|rng.Uint32N(4096))
		}
		k := refKey{se.port, se.v6, se.ip}
		if _, dup := ref[k]; dup {
			continue
		}
		binary.BigEndian.PutUint32(se.mac[2:], rng.Uint32())
		se.mac[0] = 2
		se.id = uint32(len(es))
		ref[k] = se.mac
		es = append(es, se)
	}
	return buildSnapshot(7, es), ref, es
}

// Differential test: the open-addressing snapshot answers like a map, for
// present and absent keys, in both families.
func TestSnapshotVersusMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 100, 1000, 5000} {
		s, ref, _ := randomSnapshot(rng, n)
		for i := 0; i < 20000; i++ {
			port := uint16(rng.IntN(5))
			if rng.IntN(2) == 0 {
				ip := 0xc6120000 | rng.Uint32N(4200)
				var k refKey
				k.port = port
				binary.BigEndian.PutUint32(k.ip[:4], ip)
				want, wok := ref[k]
				got, ok := s.Lookup4(port, ip)
				if ok != wok || got != want {
					t.Fatalf("n=%d Lookup4(%d, %x) = %x %v, want %x %v", n, port, ip, got, ok, want, wok)
				}
			} else {
				ip := [16]byte{0x20, 0x01, 0, 2}
				binary.BigEndian.PutUint32(ip[12:], rng.Uint32N(4200))
				ip[8] = byte(rng.IntN(3))
				want, wok := ref[refKey{port, true, ip}]
				got, ok := s.Lookup6(port, &ip)
				if ok != wok || got != want {
					t.Fatalf("n=%d Lookup6(%d, %x) = %x %v, want %x %v", n, port, ip, got, ok, want, wok)
				}
			}
		}
		if a, b := s.Len(); a+b != n {
			t.Fatalf("Len %d+%d != %d", a, b, n)
		}
	}
}

// Lookups allocate nothing, hits and misses, with and without marks.
func TestLookupZeroAlloc(t *testing.T) {
	e := newEnv(t, nil)
	e.into(peer4, StateStale)
	e.into(peer6, StateReachable)
	s := e.rd.Load()
	ip6 := peer6.As16()
	miss6 := netip.MustParseAddr("2001:2::77").As16()
	var sink byte
	allocs := testing.AllocsPerRun(1000, func() {
		s := e.rd.Load()
		m, _ := e.rd.Lookup4(s, port1, ip4(peer4))
		sink ^= m[5]
		m, _ = e.rd.Lookup6(s, port1, &ip6)
		sink ^= m[5]
		m, _ = e.rd.Lookup4(s, port1, 0xc6120063)
		sink ^= m[5]
		m, _ = e.rd.Lookup6(s, port1, &miss6)
		sink ^= m[5]
		m, _ = s.Lookup4(port1, ip4(peer4))
		sink ^= m[5]
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per lookup round, want 0", allocs)
	}
	if _, ok := e.rd.Lookup4(s, port1, ip4(peer4)); !ok {
		t.Fatal("lookup failed")
	}
	_ = sink
}

// The miss ring: workers tag and enqueue, the control goroutine drains.
func TestMissRing(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MissRing = 4 })
	for i := 0; i < 6; i++ {
		m := e.packet(peer4)
		e.rd.Miss4(m, port1, ip4(peer4))
	}
	t6 := peer6.As16()
	e.rd.Miss6(e.packet(peer6), port1, &t6)
	// An mbuf without headroom for the tag.
	m := e.packet(peer4)
	m.SetData(0, m.Len())
	e.rd.Miss4(m, port1, ip4(peer4))
	e.tab.Poll()
	e.wantState(peer4, StateIncomplete)
	c := e.tab.Counters()
	if c.MissRingFull != 3 || c.BadMissTag != 1 || c.Held != 4 || c.Misses != 4 {
		t.Fatalf("counters %+v", c)
	}
	e.rd.Miss6(e.packet(peer6), port1, &t6)
	e.tab.Poll()
	e.wantState(peer6, StateIncomplete)
	// A packet on the miss ring without a tag (someone else's) is dropped.
	e.tab.missRing.Enqueue(e.packet(peer4))
	e.tab.Poll()
	if c := e.tab.Counters(); c.BadMissTag != 2 {
		t.Fatalf("untagged packet: %d", c.BadMissTag)
	}
	// The input ring.
	f := arpFrame(broadcastMAC, peerMAC, arpOpRequest, peerMAC, peer4, [6]byte{}, our4)
	e.rd.Input(e.packetRaw(f))
	e.tab.Poll()
	e.wantState(peer4, StateStale)
	e.checkNoLeak()
}

// Workers read while the control goroutine publishes (run with -race):
// every hit returns the MAC the control goroutine wrote for that address
// in some snapshot, and marks never disturb anything.
func TestConcurrentReaders(t *testing.T) {
	pool, err := mbuf.NewPool(mbuf.Config{Name: "race", Count: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	clk := &fakeClock{now: time.Unix(1_000_000, 0)}
	stk := &fakeStack{pool: pool}
	tab, err := New(Config{Stack: stk, Pool: pool, Clock: clk, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.SetPort(port1, ourMAC, ourAddrs); err != nil {
		t.Fatal(err)
	}
	const nAddr = 64
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)}) }
	var stop atomic.Bool
	var wg sync.WaitGroup
	var hits atomic.Uint64
	for w := 0; w < 2; w++ {
		rd := tab.NewReader(pool.NewCache())
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip6 := peer6.As16()
			for !stop.Load() {
				s := rd.Load()
				for i := 0; i < nAddr; i++ {
					mac, ok := rd.Lookup4(s, port1, ip4(addr(i)))
					if ok {
						hits.Add(1)
						if mac[0] != 2 || (i < nAddr && mac[5] != byte(i)) {
							panic("torn or foreign MAC")
						}
					}
				}
				rd.Lookup6(s, port1, &ip6)
				for i := 100; i < 116; i++ {
					rd.Lookup4(s, port1, ip4(addr(i))) // STALE: marks
				}
			}
		}()
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for round := 0; time.Now().Before(deadline) || hits.Load() == 0; round++ {
		for i := 0; i < nAddr; i++ {
			if (i+round)%3 == 0 {
				_ = tab.Delete(port1, addr(i))
			} else {
				_ = tab.AddStatic(port1, addr(i), [6]byte{2, byte(round), 0, 0, 0, byte(i)})
			}
		}
		for i := 100; i < 116; i++ {
			var ms [1]*mbuf.Mbuf
			if pool.Alloc(ms[:]) == 1 {
				mac := [6]byte{2, 0, 0, 0, 1, byte(round)}
				copy(ms[0].Append(arpFrameLen), arpFrame(broadcastMAC, mac, arpOpRequest, mac, addr(i), [6]byte{}, our4))
				ms[0].Port = port1
				tab.Input(ms[0])
			}
		}
		clk.Advance(50 * time.Millisecond)
		tab.Poll()
	}
	stop.Store(true)
	wg.Wait()
	if c := tab.Counters(); c.Publishes == 0 || c.Learned == 0 {
		t.Fatalf("nothing published or learned: %+v", c)
	}
}
