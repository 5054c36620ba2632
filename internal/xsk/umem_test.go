package xsk

import (
	"errors"
	"testing"
)

func TestNewUmemValidation(t *testing.T) {
	region, err := MapRegion(16 * 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer UnmapRegion(region)
	for _, tc := range []struct {
		name   string
		region []byte
		cfg    UmemConfig
		ok     bool
	}{
		{"default", region, UmemConfig{}, true},
		{"2048", region, UmemConfig{ChunkSize: 2048}, true},
		{"not a power of two", region, UmemConfig{ChunkSize: 3000}, false},
		{"too small", region, UmemConfig{ChunkSize: 1024}, false},
		{"too big", region, UmemConfig{ChunkSize: 8192}, false},
		{"unaligned", region[64 : 64+4096], UmemConfig{}, false},
		{"ragged length", region[:4096+100], UmemConfig{}, false},
		{"empty", nil, UmemConfig{}, false},
		{"headroom too big", region, UmemConfig{ChunkSize: 2048, Headroom: 2000}, false},
	} {
		_, err := NewUmem(tc.region, tc.cfg)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if _, err := MapRegion(100); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("MapRegion(100): %v", err)
	}
}

// FuzzFrame checks Umem.Frame against a naive reference: the range must lie
// inside the region and inside one chunk.
func FuzzFrame(f *testing.F) {
	region, err := MapRegion(8 * 4096)
	if err != nil {
		f.Fatal(err)
	}
	u, err := NewUmem(region, UmemConfig{ChunkSize: 2048})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][2]uint64{{0, 0}, {0, 2048}, {256, 1792}, {256, 1793}, {2047, 1}, {2047, 2}, {8*4096 - 1, 1}, {8 * 4096, 0}, {1<<64 - 1, 2}} {
		f.Add(s[0], uint32(s[1]))
	}
	f.Fuzz(func(t *testing.T, addr uint64, n uint32) {
		got := u.Frame(addr, n)
		ok := true
		if addr > uint64(len(region)) || uint64(len(region))-addr < uint64(n) {
			ok = false
		} else if n > 0 {
			for i := addr; i < addr+uint64(n); i++ {
				if i/2048 != addr/2048 {
					ok = false
					break
				}
			}
		}
		if (got != nil) != ok {
			t.Fatalf("Frame(%d, %d) = %v bytes, reference ok=%v", addr, n, len(got), ok)
		}
		if got != nil && (len(got) != int(n) || cap(got) != int(n) || (n > 0 && &got[0] != &region[addr])) {
			t.Fatalf("Frame(%d, %d): wrong slice", addr, n)
		}
	})
}
