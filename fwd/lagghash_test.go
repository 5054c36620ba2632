package fwd

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/fwdd/fwdd/fwd/pkt"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd/flowhash"
)

// lagg hash test frames: routed to port 1 (a 2-member lagg) through the
// gateway (the adjacency path, which hashes in the pipeline) and to the
// connected subnet (the gateway itself as destination: the neighbour
// path, which leaves the hash to the lagg), varying every hashed field, with the odd cases: ICMP (no ports),
// IPv4 options (ports 4 bytes on), fragments (ports not hashed), IPv6.
func laggHashFrames(t *testing.T) [][]byte {
	var fs [][]byte
	for i := range 24 {
		dst := netip.AddrFrom4([4]byte{198, 19, byte(i), byte(7 * i)})
		fs = append(fs, frame4(t, pktOpt{dst: dst, sport: uint16(1000 + 13*i), dport: uint16(53 + i), size: 18}))
		fs = append(fs, frame4(t, pktOpt{dst: dst, src: netip.AddrFrom4([4]byte{198, 18, 1, byte(2 + i)}), size: 18}))
		fs = append(fs, frame4(t, pktOpt{dst: dst, icmpEcho: true, size: 8}))
		fs = append(fs, withOptions4(frame4(t, pktOpt{dst: dst, sport: uint16(2000 + i), size: 18})))
		fs = append(fs, fragment4(frame4(t, pktOpt{dst: dst, sport: uint16(3000 + i), size: 18})))
		fs = append(fs, frame4(t, pktOpt{dst: gw4, sport: uint16(4000 + i), size: 18}))
		v6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 1, byte(i), 0, 0, 0, 0, 0, 0, 0, 0, byte(i + 1)})
		fs = append(fs, frame6(t, pktOpt{dst: v6, size: 10}))
		fs = append(fs, frame6(t, pktOpt{dst: v6, icmpEcho: true, size: 8}))
	}
	return fs
}

// viaGateway: f's destination is in 198.19.0.0/16 or 2001:2:1::/48.
func viaGateway(f []byte) bool {
	if binary.BigEndian.Uint16(f[12:14]) == 0x0800 {
		return f[30] == 198 && f[31] == 19
	}
	return binary.BigEndian.Uint32(f[38:42]) == 0x20010002 && binary.BigEndian.Uint16(f[42:44]) == 1
}

// withOptions4 inserts 4 bytes of IPv4 options (NOPs) after the header.
func withOptions4(f []byte) []byte {
	out := append(append(append([]byte(nil), f[:34]...), 1, 1, 1, 1), f[34:]...)
	ip := out[14:]
	ip[0] = 0x46
	binary.BigEndian.PutUint16(ip[2:4], binary.BigEndian.Uint16(ip[2:4])+4)
	fixCsum4(ip)
	return out
}

// fragment4 marks f as the first fragment of a larger datagram (MF).
func fragment4(f []byte) []byte {
	out := append([]byte(nil), f...)
	out[20] |= 0x20
	fixCsum4(out[14:])
	return out
}

func fixCsum4(ip []byte) {
	hl := int(ip[0]&0x0f) * 4
	ip[10], ip[11] = 0, 0
	var s uint32
	for i := 0; i < hl; i += 2 {
		s += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	binary.BigEndian.PutUint16(ip[10:12], ^uint16(s))
}

// TestLaggTxHash: the flow hash the pipeline computes for a lagg
// (mbuf.FlagTxHash, pmd.TxHasher) is the lagg's own hash of the frame as
// sent (flowhash.Hash.Frame), for every layer set and kind of frame; the
// frames on the adjacency path carry it (the lagg reads no header) and
// every frame is on the member that hash picks. A lagg re-created with
// other layers is followed at once (the adjacency cache is the input
// map's).
func TestLaggTxHash(t *testing.T) {
	h := newHarness(t, true)
	frames := laggHashFrames(t)
	for _, layers := range []string{"l2,l3,l4", "l3,l4", "l3", "l4", "l2", "l2,l4"} {
		t.Run(layers, func(t *testing.T) {
			l, mem := h.laggWith(1, 4, 5, layers, false)
			// laggWith publishes a State with the members; the gateway and
			// the connected subnet stay on port 1, the lagg.
			fh := l.TxHash()
			if fh == nil {
				t.Fatal("a loadbalance lagg asks for no hash")
			}
			hashed, want := 0, 0
			for start := 0; start < len(frames); start += Burst {
				h.inject(0, frames[start:min(start+Burst, len(frames))]...)
			}
			total := 0
			for mi, c := range mem {
				for i, f := range c.out {
					total++
					ref := fh.Frame(f)
					if j := flowhash.Pick(ref, 2); j != mi {
						t.Errorf("frame %x on member %d, its hash picks %d", f, mi, j)
					}
					md := c.meta[i]
					if md.flags&mbuf.FlagTxHash != 0 {
						hashed++
						if md.hash != ref {
							t.Errorf("pipeline hash %#x, lagg's %#x, of %x", md.hash, ref, f)
						}
					}
					// The frames routed through the gateway are the
					// adjacency path's: hashed in the pipeline.
					if viaGateway(f) {
						want++
						if md.flags&mbuf.FlagTxHash == 0 {
							t.Errorf("frame %x through the gateway without the pipeline's hash", f)
						}
					}
				}
				c.out, c.meta = nil, nil
			}
			if total != len(frames) || want == 0 || hashed != want {
				t.Fatalf("%d of %d frames sent, %d hashed in the pipeline, %d through the gateway", total, len(frames), hashed, want)
			}
			// Back to a plain port for the next layer set.
			h.e.DetachPort(4)
			h.e.DetachPort(5)
			h.e.DetachPort(1)
			l.Close()
			p1 := &capPort{info: mem[0].info, pools: h.e.Pools()}
			p1.info.Name = "p1"
			if err := h.e.AttachPort(1, p1); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := h.inUse(); n != 0 {
		t.Errorf("%d mbufs leaked", n)
	}
}

// TestLaggHashZeroAllocs: bursts out through a 2-member lagg, hashed in
// the pipeline and spread over the members, allocate nothing.
func TestLaggHashZeroAllocs(t *testing.T) {
	h := newHarness(t, false)
	h.laggify(1, 4, 5)
	var fs [][]byte
	for i := range Burst {
		fs = append(fs, frame4(t, pktOpt{dst: netip.AddrFrom4([4]byte{198, 19, 0, byte(i)}), sport: uint16(1000 + i), size: 18}))
	}
	ms := make([]*mbuf.Mbuf, Burst)
	run := func() {
		n := h.w.cache.Alloc(ms)
		for i, m := range ms[:n] {
			copy(m.Append(len(fs[i])), fs[i])
		}
		h.w.pl.process(0, ms[:n])
		h.w.pl.idle()
	}
	run()
	if c := h.e.Counters(); c["forwarded"] != Burst {
		t.Fatalf("forwarded %d of %d: %v", c["forwarded"], Burst, c)
	}
	if a := allocsPerRun(200, run); a != 0 {
		t.Fatalf("%v allocations per burst, want 0", a)
	}
}

// TestTxHashClearedOnParse: a received frame's FlagTxHash (a hash of the
// frame as some port sent it) does not survive parsing.
func TestTxHashClearedOnParse(t *testing.T) {
	h := newHarness(t, true)
	ms := make([]*mbuf.Mbuf, 1)
	h.w.cache.Alloc(ms)
	f := frame4(t, pktOpt{dst: remote4, size: 18})
	copy(ms[0].Append(len(f)), f)
	ms[0].Flags |= mbuf.FlagTxHash | mbuf.FlagHashValid
	if cls, why := pkt.Parse(ms[0]); cls != pkt.ClassIPv4 || ms[0].Flags&mbuf.FlagTxHash != 0 {
		t.Fatalf("class %v (%v), flags %#x", cls, why, ms[0].Flags)
	}
	h.w.cache.Free(ms)
}

// TestAdjSize: an adjacency entry is 32 bytes: half a cache line, so that
// no entry straddles two lines; the lagg's flow hash lane is its last
// word.
func TestAdjSize(t *testing.T) {
	if n := unsafe.Sizeof(adj{}); n != 32 {
		t.Fatalf("adj is %d bytes, want 32", n)
	}
}
