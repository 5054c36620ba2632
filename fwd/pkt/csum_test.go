package pkt

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
)

func TestChecksumAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 2100; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if n%7 == 0 {
			for i := range b {
				b[i] = 0xff // carries everywhere
			}
		}
		if got, want := Checksum(b), refChecksum(b); got != want {
			t.Fatalf("len %d: Checksum %#04x, reference %#04x", n, got, want)
		}
		// Chained over even pieces.
		k := (n / 3) &^ 1
		if got, want := ^Fold(Sum(b[k:], Sum(b[:k], 0))), refChecksum(b); got != want {
			t.Fatalf("len %d split %d: %#04x want %#04x", n, k, got, want)
		}
	}
}

// randHeader4 is a random valid IPv4 header (no options) with its checksum.
func randHeader4(r *rand.Rand, ttl uint8) []byte {
	h := make([]byte, 20)
	for i := range h {
		h[i] = byte(r.Uint32())
	}
	h[0] = 0x45
	h[8] = ttl
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:12], refChecksum(h))
	return h
}

func TestDecTTL4(t *testing.T) {
	_, c := testPool(t)
	r := rand.New(rand.NewPCG(3, 4))
	m := load(t, c, make([]byte, 14+20))
	defer free(c, m)
	m.L3Off = 14
	for ttl := 0; ttl < 256; ttl++ {
		for range 2000 {
			h := randHeader4(r, uint8(ttl))
			if r.IntN(50) == 0 {
				// Checksums near the edges (0x0000, 0xffff after update).
				h[10], h[11] = 0, 0
				h[2], h[3] = 0, 0
				s := ^refChecksum(h)
				binary.BigEndian.PutUint16(h[2:4], ^s) // header sum now 0xffff
				binary.BigEndian.PutUint16(h[10:12], refChecksum(h))
			}
			d := m.Data()
			copy(d[14:], h)
			expired := DecTTL4(m)
			if expired != (ttl <= 1) {
				t.Fatalf("ttl %d: expired %v", ttl, expired)
			}
			if expired {
				if string(d[14:]) != string(h) {
					t.Fatalf("ttl %d: header changed", ttl)
				}
				continue
			}
			if int(d[14+8]) != ttl-1 {
				t.Fatalf("ttl %d -> %d", ttl, d[14+8])
			}
			got := binary.BigEndian.Uint16(d[14+10:])
			if want := refIPv4Checksum(d[14:34]); got != want {
				t.Fatalf("ttl %d: checksum %#04x, recomputed %#04x (header % x)", ttl, got, want, h)
			}
		}
	}
	m.L3Off = 20 // no room: refused, no panic
	if !DecTTL4(m) {
		t.Fatal("DecTTL4 beyond the data")
	}
}

func TestUpdateChecksum(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 200000 {
		n := 2 + 2*r.IntN(30)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		b[0] |= 1 // never all zero
		hc := refChecksum(b)
		w := 2 * r.IntN(n/2)
		old := binary.BigEndian.Uint16(b[w:])
		nw := uint16(r.Uint32())
		binary.BigEndian.PutUint16(b[w:], nw)
		b[0] |= 1
		nw = binary.BigEndian.Uint16(b[w:])
		if got, want := UpdateChecksum(hc, old, nw), refChecksum(b); got != want {
			t.Fatalf("update %#04x->%#04x: %#04x want %#04x", old, nw, got, want)
		}
	}
}

func TestDecHopLimit6(t *testing.T) {
	_, c := testPool(t)
	m := load(t, c, udp6(t, 8))
	defer free(c, m)
	if _, r := Parse(m); r != OK {
		t.Fatal(r)
	}
	for hl := 255; hl >= 0; hl-- {
		m.Data()[14+7] = uint8(hl)
		exp := DecHopLimit6(m)
		if exp != (hl <= 1) {
			t.Fatalf("hop limit %d: expired %v", hl, exp)
		}
		if want := uint8(max(hl-1, 1)); !exp && m.Data()[14+7] != want || exp && m.Data()[14+7] != uint8(hl) {
			t.Fatalf("hop limit %d -> %d", hl, m.Data()[14+7])
		}
	}
	m.L3Off = uint16(m.Len())
	if !DecHopLimit6(m) {
		t.Fatal("beyond data")
	}
}

func TestFlowHashDistribution(t *testing.T) {
	_, c := testPool(t)
	r := rand.New(rand.NewPCG(7, 8))
	const flows = 50000
	m4 := load(t, c, udp4(t, 8))
	m6 := load(t, c, udp6(t, 8))
	defer free(c, m4, m6)
	for _, m := range []*mbuf.Mbuf{m4, m6} {
		if _, rs := Parse(m); rs != OK {
			t.Fatal(rs)
		}
		v6 := m == m6
		hs := make([]uint32, flows)
		seen := map[uint32]bool{}
		for i := range hs {
			d := m.Data()
			l3, l4 := int(m.L3Off), int(m.L4Off)
			// Realistic flows: few addresses, varying ports, or one
			// address pair and many ports.
			switch i % 3 {
			case 0:
				binary.BigEndian.PutUint32(d[l4:], r.Uint32())
			case 1:
				binary.BigEndian.PutUint16(d[l4:], uint16(i))
			default:
				if v6 {
					binary.BigEndian.PutUint32(d[l3+20:], uint32(i))
				} else {
					binary.BigEndian.PutUint32(d[l3+12:], 0xc6120000+uint32(i))
				}
			}
			hs[i] = FlowHash(m, 0)
			seen[hs[i]] = true
		}
		if len(seen) < flows*99/100 {
			t.Errorf("v6=%v: only %d distinct hashes of %d", v6, len(seen), flows)
		}
		for n := 2; n <= 64; n++ {
			for _, mode := range []string{"mod", "mulshift"} {
				cnt := make([]int, n)
				for _, h := range hs {
					if mode == "mod" {
						cnt[h%uint32(n)]++
					} else {
						cnt[(uint64(h)*uint64(n))>>32]++
					}
				}
				// Chi-square against uniform; df = n-1. Bound: df + 6*sqrt(2df) (far tail).
				exp := float64(flows) / float64(n)
				chi := 0.0
				for _, k := range cnt {
					d := float64(k) - exp
					chi += d * d / exp
				}
				df := float64(n - 1)
				if limit := df + 6*sqrt(2*df); chi > limit {
					t.Errorf("v6=%v %s %d buckets: chi2 %.1f > %.1f (%v)", v6, mode, n, chi, limit, cnt)
				}
			}
		}
	}
}

func sqrt(x float64) float64 {
	z := x / 2
	for range 30 {
		z = (z + x/z) / 2
	}
	return z
}

func TestFlowHashFields(t *testing.T) {
	_, c := testPool(t)
	for _, v6 := range []bool{false, true} {
		var f []byte
		if v6 {
			f = udp6(t, 8)
		} else {
			f = udp4(t, 8)
		}
		m := load(t, c, f)
		Parse(m)
		base := FlowHash(m, 0)
		if FlowHash(m, 1) == base {
			t.Error("seed ignored")
		}
		d := m.Data()
		d[m.L4Off+1] ^= 1 // source port
		if FlowHash(m, 0) == base {
			t.Error("source port ignored")
		}
		d[m.L4Off+1] ^= 1
		d[m.L4Off+3] ^= 1 // destination port
		if FlowHash(m, 0) == base {
			t.Error("destination port ignored")
		}
		d[m.L4Off+3] ^= 1
		// A fragment hashes without ports, whatever they are.
		m.Flags |= FlagFragment
		fh := FlowHash(m, 0)
		d[m.L4Off] ^= 0xff
		if FlowHash(m, 0) != fh {
			t.Error("fragment hash uses ports")
		}
		m.L4Off = 0
		if FlowHash(m, 0) != fh {
			t.Error("first and later fragments hash differently")
		}
		m.Flags &^= mbuf.FlagIPv4 | mbuf.FlagIPv6
		if FlowHash(m, 0) != 0 {
			t.Error("non-IP hashed")
		}
		free(c, m)
	}
}

// TestFoldAgainstReference: Fold agrees with RFC 1071's fold (add the
// carries back until they are gone) on edge values and random ones.
func TestFoldAgainstReference(t *testing.T) {
	ref := func(acc uint64) uint16 {
		for acc>>16 != 0 {
			hi, lo := acc>>16, acc&0xffff
			acc = hi + lo
		}
		return uint16(acc)
	}
	vals := []uint64{0, 1, 0xfffe, 0xffff, 0x10000, 0x1fffe, 0x1ffff, 0xffff0000, 0xffffffff,
		0x1_0000_0000, 0xffff_ffff_ffff, 0xffff_0000_ffff_0000, 0xffff_ffff_ffff_fffe, ^uint64(0)}
	r := rand.New(rand.NewPCG(3, 4))
	for range 1 << 20 {
		v := r.Uint64()
		vals = append(vals, v, v>>r.IntN(64))
	}
	for _, v := range vals {
		if got, want := Fold(v), ref(v); got != want {
			t.Fatalf("Fold(%#x) = %#04x, want %#04x", v, got, want)
		}
	}
}
