package pkt

import (
	"encoding/binary"
	"sort"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// bigUDP4 is a UDP/IPv4 frame of ipLen IP bytes with options opts (raw,
// a multiple of 4) and a patterned payload.
func bigUDP4(t testing.TB, ipLen int, opts []byte) []byte {
	ip := ipv4(layers.IPProtocolUDP)
	for range opts {
		ip.Options = append(ip.Options, layers.IPv4Option{OptionType: 1, OptionLength: 1})
	}
	u := &layers.UDP{SrcPort: 4000, DstPort: 5000}
	u.SetNetworkLayerForChecksum(ip)
	pl := make([]byte, ipLen-20-len(opts)-8)
	for i := range pl {
		pl[i] = byte(i*7 + i>>8)
	}
	f := serialize(t, eth(layers.EthernetTypeIPv4), ip, u, gopacket.Payload(pl))
	copy(f[34:], opts)
	return fix4(f, 14)
}

type piece struct {
	off  int
	mf   bool
	data []byte
}

func TestFragment4(t *testing.T) {
	p, c := testPool(t)
	opts := []byte{7, 7, 4, 0, 0, 0, 0, 148, 4, 0, 0, 1} // RR (not copied), router alert (copied), NOP
	for _, tc := range []struct {
		name   string
		opts   []byte
		mtu    int
		preOff int // input already a fragment at this offset (bytes) with MF
	}{
		{"1500 to 1280", nil, 1280, 0},
		{"1500 to 576", nil, 576, 0},
		{"1500 to 68", nil, 68, 0},
		{"1500 to 1499", nil, 1499, 0},
		{"options to 576", opts, 576, 0},
		{"options to 68", opts, 68, 0},
		{"refragment", nil, 600, 1480},
		{"refragment options", opts, 300, 8000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inUse := p.Stats().InUse
			f := bigUDP4(t, 20+len(tc.opts)+(1480-len(tc.opts))&^7, tc.opts)
			if tc.preOff > 0 {
				f = set4(f, func(h []byte) { binary.BigEndian.PutUint16(h[6:8], 0x2000|uint16(tc.preOff/8)) })
			}
			m := parsed(t, c, f)
			m.Port, m.FIB, m.Hash, m.OutPort, m.NextHop = 3, 2, 0xabcd, 4, 99
			orig := append([]byte(nil), m.Data()[14:]...)
			hlen := int(orig[0]&15) * 4
			var frags [64]*mbuf.Mbuf
			n, r := Fragment4(m, tc.mtu, c, frags[:])
			if r != FragOK {
				t.Fatalf("Fragment4: %v", r)
			}
			if frags[0] != m {
				t.Fatal("m is not the first fragment")
			}
			var ps []piece
			for i, fm := range frags[:n] {
				d := fm.Data()
				cl, rs := Parse(fm)
				if cl != ClassIPv4 || rs != OK {
					t.Fatalf("fragment %d parses as %v %v", i, cl, rs)
				}
				ip := d[fm.L3Off:]
				if len(ip) > tc.mtu {
					t.Fatalf("fragment %d: %d bytes > mtu %d", i, len(ip), tc.mtu)
				}
				fh := int(ip[0]&15) * 4
				if got, want := binary.BigEndian.Uint16(ip[10:12]), refIPv4Checksum(ip[:fh]); got != want {
					t.Fatalf("fragment %d: checksum %#x want %#x", i, got, want)
				}
				if i == 0 && string(ip[20:fh]) != string(orig[20:hlen]) {
					t.Fatalf("first fragment options % x", ip[20:fh])
				}
				if i > 0 {
					want := ""
					if len(tc.opts) > 0 {
						want = string([]byte{148, 4, 0, 0})
					}
					if string(ip[20:fh]) != want {
						t.Fatalf("fragment %d options % x, want % x", i, ip[20:fh], want)
					}
					if fm.Port != 3 || fm.FIB != 2 || fm.Hash != 0xabcd || fm.OutPort != 4 || fm.NextHop != 99 {
						t.Fatalf("fragment %d metadata not copied", i)
					}
					if string(d[0:12]) != string(f[0:12]) {
						t.Fatal("link addresses not copied")
					}
				}
				for j := 0; j < 20; j++ {
					if j == 2 || j == 3 || j == 6 || j == 7 || j == 10 || j == 11 || j == 0 {
						continue
					}
					if ip[j] != orig[j] {
						t.Fatalf("fragment %d: header byte %d changed", i, j)
					}
				}
				fw := binary.BigEndian.Uint16(ip[6:8])
				pc := piece{int(fw&0x1fff) * 8, fw&0x2000 != 0, ip[fh:]}
				if pc.mf && len(pc.data)%8 != 0 {
					t.Fatalf("fragment %d: %d data bytes, not a multiple of 8", i, len(pc.data))
				}
				if fm.Flags&FlagFragment == 0 {
					t.Fatal("FlagFragment not set")
				}
				ps = append(ps, pc)
			}
			sort.Slice(ps, func(i, j int) bool { return ps[i].off < ps[j].off })
			var data []byte
			next := tc.preOff
			for i, pc := range ps {
				if pc.off != next {
					t.Fatalf("gap or overlap at %d (fragment starts %d)", next, pc.off)
				}
				next += len(pc.data)
				data = append(data, pc.data...)
				if last := i == len(ps)-1; !last && !pc.mf || last && pc.mf != (tc.preOff > 0) {
					t.Fatalf("fragment %d: MF %v", i, pc.mf)
				}
			}
			if string(data) != string(orig[hlen:]) {
				t.Fatal("reassembled data differs")
			}
			c.Free(frags[:n])
			c.Flush()
			if got := p.Stats().InUse; got != inUse {
				t.Fatalf("in use %d, want %d", got, inUse)
			}
		})
	}
}

func TestFragment4Refuses(t *testing.T) {
	p, c := testPool(t)
	var frags [64]*mbuf.Mbuf
	check := func(name string, m *mbuf.Mbuf, mtu int, fr []*mbuf.Mbuf, want FragResult) {
		t.Helper()
		before := string(m.Data())
		inUse := p.Stats().InUse
		n, r := Fragment4(m, mtu, c, fr)
		if r != want || n != 0 {
			t.Errorf("%s: %d, %v; want %v", name, n, r, want)
		}
		if string(m.Data()) != before {
			t.Errorf("%s: m changed", name)
		}
		c.Flush()
		if got := p.Stats().InUse; got != inUse {
			t.Errorf("%s: leaked %d mbufs", name, got-inUse)
		}
	}
	m := parsed(t, c, bigUDP4(t, 1500, nil))
	defer free(c, m)
	check("fits", m, 1500, frags[:], FragNotNeeded)
	check("too many", m, 576, frags[:2], FragTooMany)
	check("mtu 27", m, 27, frags[:], FragMTU)
	df := parsed(t, c, set4(bigUDP4(t, 1500, nil), func(h []byte) { h[6] = 0x40 }))
	defer free(c, df)
	check("df", df, 1280, frags[:], FragDF)
	v6 := parsed(t, c, udp6(t, 1400))
	defer free(c, v6)
	check("ipv6", v6, 1280, frags[:], FragNotIPv4)

	// Pool exhaustion: a small pool with 1 free mbuf for 3 fragments.
	sp, err := mbuf.NewPool(mbuf.Config{Name: "small", Count: 4, CacheSize: 1, Checked: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	sc := sp.NewCache()
	var hold [3]*mbuf.Mbuf
	if sc.Alloc(hold[:]) != 3 {
		t.Fatal("alloc")
	}
	n, r := Fragment4(m, 576, sc, frags[:])
	if r != FragNoBuffer || n != 0 {
		t.Errorf("exhausted: %d %v", n, r)
	}
	sc.Free(hold[:])
	sc.Flush()
	if sp.Stats().InUse != 0 {
		t.Errorf("small pool leaked %d", sp.Stats().InUse)
	}
	for r := FragOK; r < NumFragResults; r++ {
		if r.String() == "unknown" {
			t.Errorf("%d has no name", r)
		}
	}
}
