package pktgen

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"small", Config{Size: 63}},
		{"big", Config{Size: 1519}},
		{"flows", Config{Flows: MaxFlows + 1}},
		{"v6 addr for v4", Config{Src: defaultSrc6}},
		{"v4 addr for v6", Config{IPv6: true, Dst: defaultDst4}},
		{"mac", Config{DstMAC: []byte{1, 2, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Build(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("err %v, want ErrConfig", err)
			}
		})
	}
}

// TestDecode decodes every frame with gopacket, checks the fields, and
// checks the checksums by letting gopacket recompute them independently.
func TestDecode(t *testing.T) {
	for _, tc := range []Config{
		{},
		{Size: 1518, Flows: 5000},
		{IPv6: true, Size: 78, Flows: 3},
		{IPv6: true, Size: 1518, Flows: 4097},
		{Size: 65, Flows: 2, SrcPort: 65535}, // odd length, port wrap
		{Size: 128, Src: netip.MustParseAddr("198.18.255.255"), Flows: 4097},
	} {
		cfg, err := tc.Check()
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := Build(tc)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for i := 0; i < cfg.Flows; i++ {
			f := tmpl.Frame(i)
			if len(f) != cfg.Size {
				t.Fatalf("%+v flow %d: len %d", tc, i, len(f))
			}
			pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
			// Errors above UDP (a source port that gopacket takes for
			// RADIUS, say) do not concern us.
			if el := pkt.ErrorLayer(); el != nil && pkt.Layer(layers.LayerTypeUDP) == nil {
				t.Fatalf("%+v flow %d: decode: %v", tc, i, el.Error())
			}
			eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if !bytes.Equal(eth.DstMAC, cfg.DstMAC) || !bytes.Equal(eth.SrcMAC, cfg.SrcMAC) {
				t.Fatalf("macs %v %v", eth.SrcMAC, eth.DstMAC)
			}
			udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if udp == nil {
				t.Fatalf("flow %d: no UDP layer", i)
			}
			wantSrc, wantPort := cfg.FlowSrc(i)
			if uint16(udp.SrcPort) != wantPort || uint16(udp.DstPort) != cfg.DstPort {
				t.Fatalf("flow %d: ports %d %d", i, udp.SrcPort, udp.DstPort)
			}
			var net gopacket.NetworkLayer
			if cfg.IPv6 {
				ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				if int(ip.Length) != cfg.Size-EthLen-IPv6Len || ip.HopLimit != 64 {
					t.Fatalf("ipv6 %+v", ip)
				}
				udp.SetNetworkLayerForChecksum(ip)
				net = ip
			} else {
				ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				if int(ip.Length) != cfg.Size-EthLen || ip.TTL != 64 {
					t.Fatalf("ipv4 %+v", ip)
				}
				// Independent check: re-serialise the header with gopacket
				// computing the checksum.
				want := ip.Checksum
				buf := gopacket.NewSerializeBuffer()
				ipc := *ip
				if err := ipc.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
					t.Fatal(err)
				}
				if got := buf.Bytes()[10:12]; uint16(got[0])<<8|uint16(got[1]) != want {
					t.Fatalf("flow %d: IPv4 checksum %#04x, gopacket computes %#02x", i, want, got)
				}
				udp.SetNetworkLayerForChecksum(ip)
				net = ip
			}
			if got, _ := netip.AddrFromSlice(net.NetworkFlow().Src().Raw()); got.Unmap() != wantSrc {
				t.Fatalf("flow %d: src %v want %v", i, got, wantSrc)
			}
			want := udp.Checksum
			buf := gopacket.NewSerializeBuffer()
			udpc := *udp
			if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, &udpc, gopacket.Payload(udp.Payload)); err != nil {
				t.Fatal(err)
			}
			if got := buf.Bytes()[6:8]; uint16(got[0])<<8|uint16(got[1]) != want {
				t.Fatalf("flow %d: UDP checksum %#04x, gopacket computes %x", i, want, got)
			}
			key := string(net.NetworkFlow().Src().Raw()) + udp.SrcPort.String()
			if seen[key] {
				t.Fatalf("flow %d repeats an earlier flow's source", i)
			}
			seen[key] = true
		}
	}
}

// TestChecksumNaive compares Checksum with a naive one's-complement sum.
func TestChecksumNaive(t *testing.T) {
	b := make([]byte, 0, 301)
	for i := 0; i < 301; i++ {
		b = append(b, byte(i*7+3))
		var s uint32
		for j := 0; j < len(b); j += 2 {
			w := uint32(b[j]) << 8
			if j+1 < len(b) {
				w |= uint32(b[j+1])
			}
			s += w
			s = (s & 0xffff) + (s >> 16)
		}
		if got, want := Checksum(b, 0), ^uint16(s); got != want {
			t.Fatalf("len %d: %#x want %#x", len(b), got, want)
		}
	}
}

func TestWriteAllocs(t *testing.T) {
	c := Config{Size: 128, Flows: 10}
	buf := make([]byte, 128)
	if n := testing.AllocsPerRun(100, func() { c.Write(buf, 3) }); n != 0 {
		t.Fatalf("Write allocates %v times", n)
	}
}
