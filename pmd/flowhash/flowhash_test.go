package flowhash

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// frame returns a random untagged frame: IPv4 (with options, fragments,
// TCP, UDP, SCTP, ICMP) or IPv6 (UDP, TCP, ICMPv6, a fragment header).
func frame(r *rand.Rand) []byte {
	f := make([]byte, 14, 128)
	for i := range 12 {
		f[i] = byte(r.Uint32())
	}
	protos := []byte{6, 17, 132, 1, 58, 44}
	proto := protos[r.IntN(len(protos))]
	if r.IntN(2) == 0 {
		f[12], f[13] = 0x08, 0x00
		ihl := 5 + r.IntN(3)
		ip := make([]byte, ihl*4)
		ip[0] = byte(0x40 | ihl)
		ip[9] = proto
		if r.IntN(4) == 0 {
			binary.BigEndian.PutUint16(ip[6:8], uint16(r.IntN(0x4000)))
		}
		for i := 12; i < 20; i++ {
			ip[i] = byte(r.Uint32())
		}
		f = append(f, ip...)
	} else {
		f[12], f[13] = 0x86, 0xdd
		ip := make([]byte, 40)
		ip[0], ip[6] = 0x60, proto
		for i := 8; i < 40; i++ {
			ip[i] = byte(r.Uint32())
		}
		f = append(f, ip...)
	}
	for range 8 {
		f = append(f, byte(r.Uint32()))
	}
	return f
}

// TestStepsMatchFrame: the steps the pipeline uses on a routed frame
// (Eth, AddIPv4 or AddIPv6, AddPorts) give Frame's value, for every layer
// set, when fed as documented (the fields of the frame's own layers).
func TestStepsMatchFrame(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for layers := range 8 {
		l2, l3, l4 := layers&1 != 0, layers&2 != 0, layers&4 != 0
		h := New(l2, l3, l4, [6]byte{2, 0, 0, 0, 0, byte(layers)}, uint16(layers))
		for range 2000 {
			f := frame(r)
			a, b := h.Eth(binary.LittleEndian.Uint64(f[0:8]), binary.LittleEndian.Uint32(f[8:12])), uint64(LaneB)
			var proto byte
			l4off := 0
			if f[12] == 0x08 {
				ip := f[14:]
				if l3 {
					a = AddIPv4(a, binary.LittleEndian.Uint64(ip[12:20]))
				}
				if binary.BigEndian.Uint16(ip[6:8])&0x3fff == 0 {
					proto, l4off = ip[9], 14+int(ip[0]&0x0f)*4
				}
			} else {
				if l3 {
					a, b = AddIPv6(a, b, f[14:54])
				}
				proto, l4off = f[20], 54
			}
			if l4 && l4off != 0 && HasPorts(proto) {
				b = AddPorts(b, binary.LittleEndian.Uint32(f[l4off:]))
			}
			if got, want := Mix(a, b), h.Frame(f); got != want {
				t.Fatalf("layers %d: steps %#x, Frame %#x, frame %x", layers, got, want, f)
			}
		}
	}
}

// TestFrameShort: frames shorter than their headers hash what they have,
// never read past their end.
func TestFrameShort(t *testing.T) {
	h := New(true, true, true, [6]byte{2}, 1)
	r := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		f := frame(r)
		for n := 0; n <= len(f); n++ {
			_ = h.Frame(f[:n:n])
		}
	}
}

// TestPick: Pick spreads over k choices and stays in range.
func TestPick(t *testing.T) {
	for _, k := range []int{1, 2, 3, 7, 16} {
		seen := make([]int, k)
		for i := range 4096 {
			j := Pick(Mix(uint64(i)*0x9e3779b97f4a7c15|1, 0x1234567|1), k)
			if j < 0 || j >= k {
				t.Fatalf("Pick(_, %d) = %d", k, j)
			}
			seen[j]++
		}
		for j, n := range seen {
			if fair := 4096 / k; n < fair*7/10 || n > fair*13/10 {
				t.Errorf("k %d: choice %d taken %d times, fair %d", k, j, n, fair)
			}
		}
	}
	if Pick(^uint32(0), 2) != 1 || Pick(0, 2) != 0 {
		t.Fatal("Pick(h, 2) is not h's top bit")
	}
}
