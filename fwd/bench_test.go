package fwd

import (
	"bufio"
	"compress/gzip"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/mbuf"
	"golang.org/x/sys/unix"
)

// The pipeline benchmarks: one worker, the full Internet table from
// ../shared/data, 64-byte UDP packets over 1024 flows whose destinations
// are random addresses inside random prefixes of the table, received the
// way the null driver receives (an mbuf from the worker's cache and a copy
// of the frame into it) and transmitted to a port that frees them.

func sharedData(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("no go.mod above the package")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "data", "fulltable-2024.txt.gz")
	if _, err := os.Stat(p); err != nil {
		tb.Skip("full table not found at ../shared/data (benchmark data lives outside the repository)")
	}
	return p
}

var (
	tableOnce      sync.Once
	table4, table6 []netip.Prefix
	tableErr       error
)

func fullTable(tb testing.TB) ([]netip.Prefix, []netip.Prefix) {
	path := sharedData(tb)
	tableOnce.Do(func() {
		f, err := os.Open(path)
		if err != nil {
			tableErr = err
			return
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			tableErr = err
			return
		}
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			p, err := netip.ParsePrefix(strings.TrimSpace(sc.Text()))
			if err != nil {
				continue
			}
			if p.Addr().Is4() {
				table4 = append(table4, p)
			} else {
				table6 = append(table6, p)
			}
		}
		tableErr = sc.Err()
	})
	if tableErr != nil {
		tb.Fatal(tableErr)
	}
	return table4, table6
}

// randomIn returns a random address inside p.
func randomIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	a := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		if r.IntN(2) == 1 {
			a[i/8] |= 0x80 >> (i % 8)
		}
	}
	out := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		out = out.Unmap()
	}
	return out
}

// loadFullTable installs the table in the harness's FIB 0, each prefix via
// one of 16 gateways on p1 (with static neighbours).
func (h *harness) loadFullTable(tb testing.TB, v6 bool) []netip.Prefix {
	t4, t6 := fullTable(tb)
	prefixes := t4
	if v6 {
		prefixes = t6
	}
	f := h.fibs
	var gws []uint32
	nt := h.e.Neigh()
	mac := [6]byte{0x02, 0, 0, 0, 0x22, 0}
	for i := range 16 {
		var gw netip.Addr
		if v6 {
			gw = netip.MustParseAddr("2001:2:0:2::100").Next()
			for range i {
				gw = gw.Next()
			}
		} else {
			gw = netip.AddrFrom4([4]byte{198, 18, 2, byte(100 + i)})
		}
		id, err := f.AddNextHop(fib.NextHop{Kind: fib.KindGateway, Port: 1, Addr: gw})
		if err != nil {
			tb.Fatal(err)
		}
		gws = append(gws, id)
		mac[5] = byte(i)
		if err := nt.AddStatic(1, gw, mac); err != nil {
			tb.Fatal(err)
		}
	}
	nt.Publish()
	changes := make([]fib.Change, 0, len(prefixes))
	for i, p := range prefixes {
		// Keep the harness's own routes (the benchmarking ranges) intact.
		if p.Overlaps(netip.MustParsePrefix("198.18.0.0/15")) || p.Overlaps(netip.MustParsePrefix("2001:2::/48")) {
			continue
		}
		changes = append(changes, fib.Change{Op: fib.OpAdd, Prefix: p, NextHop: gws[i%len(gws)]})
	}
	if err := f.Apply(changes); err != nil {
		tb.Fatal(err)
	}
	h.p0.discard, h.p1.discard = true, true
	h.p0.cache, h.p1.cache = h.w.cache, h.w.cache
	return prefixes
}

func benchPipeline(b *testing.B, v6 bool) { benchPipelineOn(b, v6, false) }

// benchPipelineOn runs the pipeline benchmark; with lagged, p0 and p1 are
// each a lagg of two members: the bursts arrive on a member of lagg 0 and
// leave through lagg 1, spread over its members by flow hash.
func benchPipelineOn(b *testing.B, v6, lagged bool) {
	h := newHarness(b, false)
	rxPort := uint16(0)
	if lagged {
		h.laggify(0, 4, 5)
		h.laggify(1, 6, 7)
		rxPort = 4
	}
	prefixes := h.loadFullTable(b, v6)
	r := rand.New(rand.NewPCG(1, 2))
	const flows = 1024
	frames := make([][]byte, flows)
	for i := range frames {
		dst := randomIn(r, prefixes[r.IntN(len(prefixes))])
		o := pktOpt{dst: dst, sport: uint16(1024 + i), size: 18}
		if v6 {
			o.size = 0 // 14 + 40 + 8 = 62: pad to 64 below
			frames[i] = frame6(b, o)
			frames[i] = append(frames[i], 0, 0)
		} else {
			frames[i] = frame4(b, o) // 14 + 20 + 8 + 18 = 60 (+4 FCS on the wire = 64)
		}
	}
	ms := make([]*mbuf.Mbuf, Burst)
	pl := &h.w.pl
	cache := h.w.cache
	// Start from a collected heap: the table load leaves garbage whose
	// collection would otherwise run (with write barriers on) during the
	// measurement.
	runtime.GC()
	// CPU time of this thread, reported next to wall time: on a shared,
	// loaded machine being descheduled inflates wall time, not CPU time.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	b.ReportAllocs()
	b.ResetTimer()
	next := 0
	for done := 0; done < b.N; done += Burst {
		n := cache.Alloc(ms)
		for _, m := range ms[:n] {
			f := frames[next]
			next = (next + 1) & (flows - 1)
			copy(m.Append(len(f)), f)
		}
		pl.receive(rxPort, 0, ms[:n])
		pl.idle()
	}
	b.StopTimer()
	b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/pkt")
	c := h.e.Counters()
	if c["forwarded"] < uint64(b.N)*9/10 {
		b.Fatalf("only %d of %d packets forwarded: %v", c["forwarded"], b.N, c)
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s/1e6, "Mpps")
	}
}

// BenchmarkPipeline4: ns/op is per packet.
func BenchmarkPipeline4(b *testing.B) { benchPipeline(b, false) }

// BenchmarkPipeline6: ns/op is per packet.
func BenchmarkPipeline6(b *testing.B) { benchPipeline(b, true) }

// BenchmarkPipeline4Lagg is BenchmarkPipeline4 with both ports laggs of
// two members (issue 14: within 10% of plain ports).
func BenchmarkPipeline4Lagg(b *testing.B) { benchPipelineOn(b, false, true) }

// threadCPU returns the calling thread's CPU time in nanoseconds.
func threadCPU() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
