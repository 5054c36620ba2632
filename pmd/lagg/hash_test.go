package lagg

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
)

// flowFrame builds a frame of flow i varying in the field vary: "sport",
// "dport", "src", "dst" (IPv4 addresses), "v6src", "v6dst", "vlan" (tagged,
// vid), "frag" (IPv4 fragments: ports not hashed), "icmp", "mac".
func flowFrame(vary string, i int) []byte {
	v6 := vary == "v6src" || vary == "v6dst"
	tag := vary == "vlan"
	f := make([]byte, 0, 96)
	f = append(f, 2, 0, 0, 0, 9, 9, 2, 0, 0, 0, 1, 0)
	if vary == "mac" {
		f[4], f[5] = byte(i>>8), byte(i)
	}
	if tag {
		f = append(f, 0x81, 0, byte(i>>8)&0x0f, byte(i))
	}
	if v6 {
		f = append(f, 0x86, 0xdd)
		ip := make([]byte, 40)
		ip[0], ip[6], ip[7] = 0x60, 17, 64
		copy(ip[8:], []byte{0x20, 0x01, 0, 2, 0, 0, 0, 1})
		copy(ip[24:], []byte{0x20, 0x01, 0, 2, 0, 0, 0, 2})
		ip[23], ip[39] = 1, 1
		if vary == "v6src" {
			ip[22], ip[23] = byte(i>>8), byte(i)
		} else {
			ip[38], ip[39] = byte(i>>8), byte(i)
		}
		f = append(f, ip...)
		return append(f, 0x10, 0x00, 0x00, 0x35, 0, 8, 0, 0)
	}
	f = append(f, 0x08, 0x00)
	ip := make([]byte, 20)
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	copy(ip[12:16], []byte{198, 18, 0, 2})
	copy(ip[16:20], []byte{198, 19, 0, 1})
	sport, dport := 1000, 53
	switch vary {
	case "sport":
		sport += i
	case "dport":
		dport += i
	case "src":
		ip[14], ip[15] = byte(i>>8), byte(i)
	case "dst", "frag", "icmp":
		ip[18], ip[19] = byte(i>>8), byte(i)
	}
	if vary == "frag" {
		ip[6] = 0x20 // more fragments
	}
	if vary == "icmp" {
		ip[9] = 1
	}
	f = append(f, ip...)
	return append(f, byte(sport>>8), byte(sport), byte(dport>>8), byte(dport), 0, 8, 0, 0, 1, 2)
}

// TestHashSpread: 1024 flows varying in one field at a time spread over
// 2, 3 and 4 members with each member's share within 30 % of a fair one
// (the binomial spread of a good hash is ~4 % for 2 members, ~6 % for
// 4: this catches a broken fold, not bad luck), and every frame of a flow
// on one member.
func TestHashSpread(t *testing.T) {
	for _, vary := range []string{"sport", "dport", "src", "dst", "v6src", "v6dst", "vlan", "frag", "icmp", "mac"} {
		for _, k := range []int{2, 3, 4} {
			t.Run(fmt.Sprintf("%s/%d", vary, k), func(t *testing.T) {
				names := []string{"m0", "m1", "m2", "m3"}[:k]
				r := newRig(t, names...)
				args := pmd.Args{"laggport": joinNames(names), "proto": "loadbalance"}
				if vary == "mac" {
					args["hash"] = "l2"
				}
				p, err := r.open("lagg0", args)
				if err != nil {
					t.Fatal(err)
				}
				const flows = 1024
				where := map[string]int{}
				for round := 0; round < 2; round++ {
					for i := 0; i < flows; i += 64 {
						var fs [][]byte
						for j := i; j < i+64; j++ {
							fs = append(fs, flowFrame(vary, j))
						}
						if n := p.TxBurst(0, r.burst(fs...)); n != 64 {
							t.Fatalf("sent %d of 64", n)
						}
					}
					for mi, n := range names {
						for _, f := range r.ports[n].sent {
							if w, ok := where[string(f)]; ok && w != mi {
								t.Fatalf("flow %x on member %d, then %d", f, w, mi)
							}
							where[string(f)] = mi
						}
					}
					if round == 0 {
						fair := float64(flows) / float64(k)
						for _, n := range names {
							got := float64(len(r.ports[n].sent))
							if got < 0.7*fair || got > 1.3*fair {
								t.Errorf("%s: %v of %d flows, fair %.0f", n, got, flows, fair)
							}
						}
					}
					for _, n := range names {
						r.ports[n].sent = nil
					}
				}
				if len(where) != flows {
					t.Fatalf("%d distinct frames, want %d", len(where), flows)
				}
			})
		}
	}
}

func joinNames(ns []string) string {
	s := ""
	for i, n := range ns {
		if i > 0 {
			s += " "
		}
		s += n
	}
	return s
}

// TestHashLayers: each layer set hashes exactly its fields (FreeBSD
// lagghash): frames differing only outside the layers hash alike, frames
// differing in a covered field (almost always) do not.
func TestHashLayers(t *testing.T) {
	r := newRig(t, "m0", "m1")
	for _, tc := range []struct {
		hash    string
		covered []string // fields whose variation changes the hash
		ignored []string // fields whose variation does not
	}{
		{"l2", []string{"mac", "vlan"}, []string{"sport", "dport", "src", "dst", "v6src", "v6dst"}},
		{"l3", []string{"src", "dst", "v6src", "v6dst", "frag"}, []string{"mac", "sport", "dport"}},
		{"l4", []string{"sport", "dport"}, []string{"mac", "src", "dst", "frag", "icmp"}},
		{"l3,l4", []string{"src", "dst", "sport", "dport"}, []string{"mac"}},
		{"l2,l3,l4", []string{"mac", "vlan", "src", "dst", "v6src", "v6dst", "sport", "dport", "frag", "icmp"}, nil},
	} {
		p, err := r.open("lagg"+tc.hash, pmd.Args{"laggport": "m0 m1", "proto": "loadbalance", "hash": tc.hash})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range tc.covered {
			seen := map[uint32]bool{}
			for i := 0; i < 64; i++ {
				seen[p.hash(flowFrame(v, i))] = true
			}
			if len(seen) < 60 {
				t.Errorf("hash %s: 64 flows varying %s: %d hashes", tc.hash, v, len(seen))
			}
		}
		for _, v := range tc.ignored {
			seen := map[uint32]bool{}
			for i := 0; i < 64; i++ {
				seen[p.hash(flowFrame(v, i))] = true
			}
			if len(seen) != 1 {
				t.Errorf("hash %s: 64 flows varying %s: %d hashes, want 1", tc.hash, v, len(seen))
			}
		}
		p.Close()
	}
}

// TestSpreadMatchesHash: spread's paths (frames hashed by the pipeline,
// mbuf.FlagTxHash: all, some, none; the inline hash; the reference) pick
// the member the reference (flowhash Frame) picks, in order, for every
// kind of frame and layer set, short and odd frames included, with 2, 3
// and 9 members.
func TestSpreadMatchesHash(t *testing.T) {
	r := newRig(t, "m0", "m1", "m2")
	opts := flowFrame("sport", 5)
	opts = append(opts[:14:14], append([]byte{0x46}, opts[15:34]...)...)
	opts = append(opts, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78) // IHL 6: the ports 4 bytes on
	// The odd ones first (a burst is at most maxBurst frames).
	frames := [][]byte{opts, flowFrame("sport", 1)[:37], flowFrame("sport", 1)[:38], flowFrame("sport", 1)[:13], {}}
	for _, v := range []string{"sport", "dport", "src", "dst", "v6src", "v6dst", "vlan", "frag", "icmp", "mac"} {
		for i := 0; i < 8; i++ {
			frames = append(frames, flowFrame(v, i*37))
		}
	}
	for _, h := range []string{"l2,l3,l4", "l3,l4", "l2", "l4"} {
		for _, tc := range []struct {
			k      int
			hashed string // frames carrying the pipeline's hash: none, all, odd
		}{{2, "none"}, {3, "none"}, {2, "all"}, {3, "all"}, {9, "all"}, {2, "odd"}, {3, "odd"}, {9, "odd"}} {
			k := tc.k
			p, err := r.open("lagg"+h, pmd.Args{"laggport": "m0 m1 m2", "proto": "loadbalance", "hash": h})
			if err != nil {
				t.Fatal(err)
			}
			ms := r.burst(frames[:min(len(frames), maxBurst)]...)
			for i, m := range ms {
				if tc.hashed == "all" || tc.hashed == "odd" && i%2 == 1 {
					m.Hash = p.hash(m.Data())
					m.Flags |= mbuf.FlagTxHash | mbuf.FlagHashValid
				}
			}
			// Both two-member splits: split2, and split2Vec where the CPU
			// has it.
			for _, vec := range []bool{false, splitVecOK()} {
				p.splitVec = vec
				var bufs [MaxMembers][memberBuf]*mbuf.Mbuf
				var sel [maxBurst]uint8
				lo, hi := p.spread(ms, sel[:], &bufs, k)
				var want [MaxMembers][]*mbuf.Mbuf
				for _, m := range ms {
					j := int(uint64(p.hash(m.Data())) * uint64(k) >> 32)
					want[j] = append(want[j], m)
				}
				for j := 0; j < k; j++ {
					n := int(lanesCount(j, lo, hi))
					if n != len(want[j]) {
						t.Fatalf("hash %s, %d members, %s hashed, split2Vec %v: member %d got %d frames, reference %d", h, k, tc.hashed, vec, j, n, len(want[j]))
					}
					for i := range want[j] {
						if bufs[j][i] != want[j][i] {
							t.Fatalf("hash %s, %d members, %s hashed, split2Vec %v: member %d frame %d differs from the reference (order or member)", h, k, tc.hashed, vec, j, i)
						}
					}
				}
			}
			r.pool.Free(ms)
			p.Close()
		}
	}
}

func TestFlowFrameSane(t *testing.T) {
	f := flowFrame("sport", 3)
	if binary.BigEndian.Uint16(f[34:36]) != 1003 {
		t.Fatalf("sport at 34: %x", f)
	}
}

// TestTxHash: loadbalance and lacp ask the pipeline for their flow hash
// (pmd.TxHasher) over their layers; failover and roundrobin for none.
func TestTxHash(t *testing.T) {
	r := newRig(t, "m0", "m1")
	f := flowFrame("sport", 7)
	for _, tc := range []struct {
		proto, hash string
		want        bool
	}{{"loadbalance", "l2,l3,l4", true}, {"lacp", "l3", true}, {"loadbalance", "l4", true}, {"failover", "", false}, {"roundrobin", "", false}} {
		args := pmd.Args{"laggport": "m0 m1", "proto": tc.proto}
		if tc.hash != "" {
			args["hash"] = tc.hash
		}
		p, err := r.open("lagg-"+tc.proto+tc.hash, args)
		if err != nil {
			t.Fatal(err)
		}
		h := p.TxHash()
		if (h != nil) != tc.want {
			t.Fatalf("%s: TxHash %v, want one: %v", tc.proto, h, tc.want)
		}
		if h != nil && h.Frame(f) != p.hash(f) {
			t.Fatalf("%s %s: TxHash is not the lagg's hash", tc.proto, tc.hash)
		}
		p.Close()
	}
}

// TestSplit2Vec: split2Vec (AVX-512) gives split2's result — the same
// frames in the same order for each member, the same counts, the same ok —
// for bursts of every length 0-64 (full steps of eight and tails), random
// hashes, mbufs in any order, a frame without mbuf.FlagTxHash anywhere;
// and writes nothing past a member's buffer (memberBuf).
func TestSplit2Vec(t *testing.T) {
	if !splitVecOK() {
		t.Skip("this CPU has no AVX-512 F/DQ: split2Vec is not used here (split2 is, and TestSpreadMatchesHash covers it)")
	}
	r := newRig(t)
	all := make([]*mbuf.Mbuf, 256)
	if n := r.pool.Alloc(all); n != len(all) {
		t.Fatal("pool exhausted")
	}
	t.Cleanup(func() { r.pool.Free(all) })
	rnd := rand.New(rand.NewPCG(3, 4))
	type bufs struct {
		b0, b1 [memberBuf]*mbuf.Mbuf
		guard  [8]*mbuf.Mbuf // after b1: must stay nil
	}
	for trial := 0; trial < 20000; trial++ {
		n := trial % (maxBurst + 1)
		ms := make([]*mbuf.Mbuf, n)
		for i := range ms {
			m := all[rnd.IntN(len(all))]
			m.Hash = rnd.Uint32()
			switch trial % 4 {
			case 0:
				m.Hash |= 1 << 31 // all to member 1
			case 1:
				m.Hash &^= 1 << 31 // all to member 0
			}
			m.Flags = mbuf.Flags(rnd.Uint32()) | mbuf.FlagTxHash
			m.FIB = uint16(rnd.Uint32())
			ms[i] = m
		}
		if n > 0 && trial%7 == 0 {
			ms[rnd.IntN(n)].Flags &^= mbuf.FlagTxHash
		}
		var a, v bufs
		c0, c1, ok := split2(ms, &a.b0, &a.b1)
		v1, vok := split2Vec(ms, &v.b0, &v.b1)
		if ok != vok {
			t.Fatalf("burst of %d: split2 ok %v, split2Vec %v", n, ok, vok)
		}
		if v.guard != [8]*mbuf.Mbuf{} {
			t.Fatalf("burst of %d: split2Vec wrote past member 1's buffer", n)
		}
		if !ok {
			continue
		}
		if v1 != c1 || c0+c1 != uint(n) {
			t.Fatalf("burst of %d: member 1 gets %d frames, split2 says %d (member 0 %d)", n, v1, c1, c0)
		}
		for i := range c0 {
			if v.b0[i] != a.b0[i] {
				t.Fatalf("burst of %d: member 0's frame %d differs", n, i)
			}
		}
		for i := range c1 {
			if v.b1[i] != a.b1[i] {
				t.Fatalf("burst of %d: member 1's frame %d differs", n, i)
			}
		}
	}
}
