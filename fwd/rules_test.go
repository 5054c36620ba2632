package fwd

import (
	"errors"
	"net/netip"
	"testing"
)

func key4(in int32, fib int32, proto uint8, src, dst string, sport, dport uint16) *flowKey {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	return &flowKey{inPort: in, fib: fib, proto: proto, sport: sport, dport: dport,
		src4: uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3]),
		dst4: uint32(d[0])<<24 | uint32(d[1])<<16 | uint32(d[2])<<8 | uint32(d[3])}
}

func key6(in int32, fib int32, proto uint8, src, dst string) *flowKey {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	be := func(b []byte) uint64 {
		var v uint64
		for _, x := range b {
			v = v<<8 | uint64(x)
		}
		return v
	}
	return &flowKey{inPort: in, fib: fib, proto: proto, v6: true,
		src6: [2]uint64{be(s[:8]), be(s[8:])}, dst6: [2]uint64{be(d[:8]), be(d[8:])}}
}

func anyRule(id uint32) Rule { return Rule{ID: id, InPort: -1, FIB: -1, Proto: -1, Slot: uint16(id)} }

func TestRulesMatch(t *testing.T) {
	r1 := anyRule(1)
	r1.Src = netip.MustParsePrefix("198.18.1.0/24")
	r1.Action, r1.SetFIB = ActSetFIB, 2
	r2 := anyRule(2)
	r2.FIB = 2
	r2.Proto = 17
	r2.DPort = PortRange{53, 53}
	r2.Action = ActDrop
	r3 := anyRule(3)
	r3.InPort = 1
	r3.Action = ActCount
	r4 := anyRule(4)
	r4.Dst = netip.MustParsePrefix("2001:2:0:1::/64")
	r4.Action, r4.SetFIB = ActSetFIB, 3
	rs, err := CompileRules([]Rule{r1, r2, r3, r4}, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		k        *flowKey
		wantFIB  int32
		wantDrop bool
		hits     []uint16
	}{
		{"no match", key4(0, 0, 6, "198.18.2.1", "198.19.0.1", 1, 2), 0, false, nil},
		{"setfib", key4(0, 0, 6, "198.18.1.9", "198.19.0.1", 1, 2), 2, false, []uint16{1}},
		{"setfib then drop dns", key4(0, 0, 17, "198.18.1.9", "198.19.0.1", 1000, 53), 2, true, []uint16{1, 2}},
		{"dns in fib 0 passes", key4(0, 0, 17, "198.18.2.9", "198.19.0.1", 1000, 53), 0, false, nil},
		{"count on port 1", key4(1, 0, 6, "198.18.2.1", "198.19.0.1", 1, 2), 0, false, []uint16{3}},
		{"v6 rule", key6(0, 0, 58, "2001:2::1", "2001:2:0:1::5"), 3, false, []uint16{4}},
		{"v4 rule does not match v6", key6(0, 0, 58, "2001:2::1", "2001:2:0:2::5"), 0, false, nil},
		{"v6 rule does not match v4", key4(0, 0, 1, "198.18.3.1", "198.18.4.1", 0, 0), 0, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits [MaxRules]uint32
			fib, drop := rs.match(tc.k, &hits)
			if fib != tc.wantFIB || drop != tc.wantDrop {
				t.Fatalf("got fib %d drop %v, want %d %v", fib, drop, tc.wantFIB, tc.wantDrop)
			}
			want := map[uint16]bool{}
			for _, s := range tc.hits {
				want[s] = true
			}
			for s := range uint16(8) {
				if (hits[s] == 1) != want[s] {
					t.Fatalf("slot %d hits %d, want hit=%v", s, hits[s], want[s])
				}
			}
		})
	}
}

func TestRulesValidate(t *testing.T) {
	bad := []Rule{
		func() Rule { r := anyRule(1); r.Src = netip.MustParsePrefix("198.18.0.1/24"); return r }(),
		func() Rule {
			r := anyRule(1)
			r.Src = netip.MustParsePrefix("198.18.0.0/24")
			r.Dst = netip.MustParsePrefix("2001:2::/64")
			return r
		}(),
		func() Rule { r := anyRule(1); r.FIB = 4; return r }(),
		func() Rule { r := anyRule(1); r.Action, r.SetFIB = ActSetFIB, 9; return r }(),
		func() Rule { r := anyRule(1); r.DPort = PortRange{80, 80}; return r }(),
		func() Rule { r := anyRule(1); r.Proto = 6; r.DPort = PortRange{90, 80}; return r }(),
		func() Rule { r := anyRule(1); r.Proto = 300; return r }(),
	}
	for i, r := range bad {
		if _, err := CompileRules([]Rule{anyRule(9), r}, 4); !errors.Is(err, ErrRule) {
			t.Errorf("bad rule %d (%s): err %v", i, r, err)
		}
	}
}

func TestRulesZeroAllocs(t *testing.T) {
	r := anyRule(1)
	r.Src = netip.MustParsePrefix("198.18.0.0/15")
	r.Action = ActCount
	rs, _ := CompileRules([]Rule{r}, 1)
	k := key4(0, 0, 6, "198.18.1.9", "198.19.0.1", 1, 2)
	var hits [MaxRules]uint32
	if a := allocsPerRun(100, func() { rs.match(k, &hits) }); a != 0 {
		t.Fatalf("%v allocs", a)
	}
}
