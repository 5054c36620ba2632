package mbuf

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/fwdd/fwdd/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestMbufSize(t *testing.T) {
	if s := unsafe.Sizeof(Mbuf{}); s != mbufSize {
		t.Fatalf("Mbuf is %d bytes, want %d (one cache line)", s, mbufSize)
	}
}

func newPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero count", Config{}, "count 0"},
		{"odd bufsize", Config{Count: 8, BufSize: 3000}, "power of two"},
		{"small bufsize", Config{Count: 8, BufSize: 128}, "power of two"},
		{"headroom", Config{Count: 8, BufSize: 512, Headroom: 512}, "headroom"},
		{"cache", Config{Count: 8, CacheSize: 9}, "cache size"},
		{"region", Config{Count: 8, CacheSize: 2, Region: make([]byte, 100)}, "region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPool(tc.cfg)
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrConfig mentioning %q", err, tc.want)
			}
		})
	}
}

func TestHelpers(t *testing.T) {
	p := newPool(t, Config{Count: 4, BufSize: 512, Headroom: 64, CacheSize: 1, Checked: true})
	ms := make([]*Mbuf, 1)
	if p.Alloc(ms) != 1 {
		t.Fatal("alloc")
	}
	m := ms[0]
	if m.Len() != 0 || m.Headroom() != 64 || m.Tailroom() != 448 {
		t.Fatalf("fresh mbuf: len %d headroom %d tailroom %d", m.Len(), m.Headroom(), m.Tailroom())
	}
	copy(m.Append(10), "0123456789")
	if string(m.Data()) != "0123456789" {
		t.Fatalf("append: %q", m.Data())
	}
	copy(m.Prepend(2), "ab")
	if string(m.Data()) != "ab0123456789" || m.Headroom() != 62 {
		t.Fatalf("prepend: %q", m.Data())
	}
	if m.Prepend(63) != nil || m.Append(449) != nil || m.Adj(13) || m.Trim(13) {
		t.Fatal("oversized operations must fail")
	}
	if string(m.Data()) != "ab0123456789" {
		t.Fatal("failed operations changed the data")
	}
	if !m.Adj(2) || !m.Trim(2) || string(m.Data()) != "01234567" {
		t.Fatalf("adj/trim: %q", m.Data())
	}
	if m.SetData(500, 13) || !m.SetData(0, 512) || m.Len() != 512 || m.Tailroom() != 0 {
		t.Fatal("SetData bounds")
	}
	if len(m.Buf()) != 512 {
		t.Fatal("Buf length")
	}
	if p.ByAddr(p.Addr(m)) != m || p.ByAddr(p.Addr(m)+511) != m || p.ByIndex(m.Index()) != m {
		t.Fatal("address round trip")
	}
	if p.ByAddr(4*512) != nil || p.ByIndex(4) != nil {
		t.Fatal("out of range address must give nil")
	}
	m.SetData(64, 10)
	if p.DataAddr(m) != p.Addr(m)+64 {
		t.Fatal("DataAddr")
	}
	p.Free(ms)
}

func TestCallerRegion(t *testing.T) {
	region, err := unix.Mmap(-1, 0, 8*2048, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	testenv.Feature(t, err, "anonymous mmap")
	defer unix.Munmap(region)
	p := newPool(t, Config{Count: 8, Region: region, CacheSize: 2, ID: 7})
	ms := make([]*Mbuf, 8)
	if p.Alloc(ms) != 8 {
		t.Fatal("alloc")
	}
	for _, m := range ms {
		copy(m.Append(4), "umem")
		off := p.DataAddr(m)
		if string(region[off:off+4]) != "umem" {
			t.Fatalf("mbuf %d: data not at region offset %d", m.Index(), off)
		}
		if m.PoolID() != 7 {
			t.Fatal("pool id")
		}
	}
	p.Free(ms)
	p.Close()
	p.Close() // idempotent
	if region[0] != 0 && len(region) != 8*2048 {
		t.Fatal("caller region must survive Close")
	}
}

func TestExhaustionAndAccounting(t *testing.T) {
	p := newPool(t, Config{Count: 100, CacheSize: 10})
	c := p.NewCache()
	ms := make([]*Mbuf, 32)
	var held []*Mbuf
	for {
		n := c.Alloc(ms)
		held = append(held, ms[:n]...)
		if n < len(ms) {
			break
		}
	}
	if len(held) != 100 {
		t.Fatalf("got %d mbufs out of a pool of 100", len(held))
	}
	st := p.Stats()
	if st.InUse != 100 || st.Free != 0 || st.AllocMiss == 0 {
		t.Fatalf("stats when exhausted: %+v", st)
	}
	if c.Alloc(ms) != 0 {
		t.Fatal("exhausted pool gave an mbuf")
	}
	c.Free(held)
	st = p.Stats()
	if st.InUse != 0 || st.Free+st.Cached != 100 || st.Cached > 15 {
		t.Fatalf("stats after free: %+v", st)
	}
	c.Flush()
	if st = p.Stats(); st.Free != 100 {
		t.Fatalf("stats after flush: %+v", st)
	}
}

func TestFreshMetadata(t *testing.T) {
	p := newPool(t, Config{Count: 4, CacheSize: 1})
	c := p.NewCache()
	ms := make([]*Mbuf, 4)
	c.Alloc(ms)
	for _, m := range ms {
		m.Port, m.FIB, m.Hash, m.Flags, m.NextHop = 3, 4, 5, FlagVLAN, 9
		m.SetData(10, 20)
	}
	c.Free(ms)
	c.Alloc(ms)
	for _, m := range ms {
		if m.Port|m.FIB|uint16(m.Flags) != 0 || m.Hash|m.NextHop != 0 || m.Offset() != p.Fresh(m.Index()) || m.Len() != 0 {
			t.Fatalf("reallocated mbuf keeps old metadata: %+v", *m)
		}
	}
}

// TestFreshStagger: fresh mbufs start their data at Headroom less 0 to
// StaggerLines-1 cache lines, never below MinHeadroom, always leaving
// BufSize-Headroom after it; the first data lines of 2 KB buffers in a
// row fall into 2*StaggerLines different sets of a cache with 4 KB ways
// (64 sets of 64 bytes), not 2.
func TestFreshStagger(t *testing.T) {
	for _, tc := range []struct {
		bufSize, headroom, offsets int
	}{
		{2048, 256, 4}, {4096, 256, 4}, {1024, 256, 4}, {8192, 256, 4},
		{2048, 128, 2}, {2048, 100, 1}, {2048, 64, 1}, {2048, 32, 1}, {2048, 1024, 4},
	} {
		p := newPool(t, Config{Count: 64, BufSize: tc.bufSize, Headroom: tc.headroom, CacheSize: 64})
		c := p.NewCache()
		ms := make([]*Mbuf, 64)
		if n := c.Alloc(ms); n != 64 {
			t.Fatalf("allocated %d", n)
		}
		offs := map[int]bool{}
		sets := map[uint64]bool{}
		for _, m := range ms {
			off := m.Offset()
			if off != p.Fresh(m.Index()) || off > tc.headroom || off%64 != tc.headroom%64 ||
				(off < tc.headroom && off < MinHeadroom) || m.Tailroom() < tc.bufSize-tc.headroom {
				t.Fatalf("buf %d headroom %d: mbuf %d at offset %d, tailroom %d", tc.bufSize, tc.headroom, m.Index(), off, m.Tailroom())
			}
			offs[off] = true
			sets[(p.DataAddr(m)/64)%64] = true
		}
		if len(offs) != tc.offsets {
			t.Errorf("buf %d headroom %d: %d offsets, want %d", tc.bufSize, tc.headroom, len(offs), tc.offsets)
		}
		if tc.bufSize == 2048 && len(sets) != 2*tc.offsets {
			t.Errorf("buf %d headroom %d: first lines in %d cache sets, want %d", tc.bufSize, tc.headroom, len(sets), 2*tc.offsets)
		}
		c.Free(ms)
	}
}

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one mentioning %q", want)
		}
		if s, _ := r.(string); !strings.Contains(s, want) {
			t.Fatalf("panic %v, want one mentioning %q", r, want)
		}
	}()
	f()
}

func TestCheckedMode(t *testing.T) {
	p := newPool(t, Config{Count: 8, CacheSize: 2, Checked: true})
	other := newPool(t, Config{Count: 8, CacheSize: 2, Checked: true})
	c := p.NewCache()
	ms := make([]*Mbuf, 2)
	c.Alloc(ms)
	copy(ms[0].Append(3), "abc")
	buf := ms[0].Buf()
	c.Free(ms[:1])
	if buf[DefaultHeadroom] != poison {
		t.Fatal("freed data not poisoned")
	}
	mustPanic(t, "double free", func() { c.Free(ms[:1]) })
	foreign := make([]*Mbuf, 1)
	other.Alloc(foreign)
	mustPanic(t, "not from this pool", func() { c.Free(foreign) })
	if checkedBuild {
		mustPanic(t, "use after free", func() { _ = ms[0].Data() })
	}
}

// TestConcurrentCaches: workers allocate and free through their own caches
// and hand mbufs to each other through the shared pool; nothing is lost.
func TestConcurrentCaches(t *testing.T) {
	p := newPool(t, Config{Count: 4096, CacheSize: 64, Checked: true})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := p.NewCache()
			ms := make([]*Mbuf, 48)
			for i := 0; i < 2000; i++ {
				n := c.Alloc(ms[:1+(i+w)%48])
				for _, m := range ms[:n] {
					m.Append(1)[0] = byte(w)
				}
				if i%3 == 0 {
					p.Free(ms[:n])
				} else {
					c.Free(ms[:n])
				}
			}
			c.Flush()
		}(w)
	}
	wg.Wait()
	if st := p.Stats(); st.Free != 4096 || st.InUse != 0 {
		t.Fatalf("after concurrent use: %+v", st)
	}
}

func TestZeroAllocs(t *testing.T) {
	p := newPool(t, Config{Count: 1024, CacheSize: 64})
	c := p.NewCache()
	ms := make([]*Mbuf, 32)
	allocs := testing.AllocsPerRun(1000, func() {
		n := c.Alloc(ms)
		for _, m := range ms[:n] {
			m.Append(64)
			m.Prepend(14)
		}
		c.Free(ms[:n])
		n = p.Alloc(ms)
		p.Free(ms[:n])
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per burst, want 0", allocs)
	}
}
