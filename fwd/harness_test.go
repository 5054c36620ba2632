package fwd

import (
	"net"
	"net/netip"
	"testing"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// capPort is a port that records what it transmits (and frees it), for
// pipeline tests. It never receives: tests inject bursts directly.
type capPort struct {
	info  pmd.Info
	pools []*mbuf.Pool
	out   [][]byte
	// accept, if > 0, is how many packets one TxBurst takes.
	accept int
	// discard frees without recording (allocation tests, benchmarks).
	discard bool
	// cache, if set, takes back mbufs of its pool (as a driver's per-queue
	// cache does); the queue's owner is the worker that owns cache.
	cache *mbuf.Cache
	// meta: each recorded frame's flow hash and flags as transmitted.
	meta []txMeta
}

type txMeta struct {
	hash  uint32
	flags mbuf.Flags
}

func (p *capPort) RxBurst(int, []*mbuf.Mbuf) int { return 0 }
func (p *capPort) TxBurst(q int, ms []*mbuf.Mbuf) int {
	n := len(ms)
	if p.accept > 0 {
		n = min(n, p.accept)
	}
	if p.discard && p.cache != nil {
		p.cache.Free(ms[:n])
		return n
	}
	for i, m := range ms[:n] {
		if !p.discard {
			p.out = append(p.out, append([]byte(nil), m.Data()...))
			p.meta = append(p.meta, txMeta{m.Hash, m.Flags})
		}
		p.pools[m.PoolID()].Free(ms[i : i+1])
	}
	return n
}
func (p *capPort) Info() pmd.Info          { return p.info }
func (p *capPort) Link() pmd.Link          { return pmd.Link{Up: true, Present: true} }
func (p *capPort) Stats() []pmd.QueueStats { return make([]pmd.QueueStats, 1) }
func (p *capPort) Close() error            { return nil }

var _ pmd.Port = (*capPort)(nil)

var (
	macP0   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x10}
	macP1   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
	macHost = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x20}
	macGW   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x21}

	addrP0  = netip.MustParsePrefix("198.18.1.1/24")
	addrP1  = netip.MustParsePrefix("198.18.2.1/24")
	addrP06 = netip.MustParsePrefix("2001:2:0:1::1/64")
	addrP16 = netip.MustParsePrefix("2001:2:0:2::1/64")
	host4   = netip.MustParseAddr("198.18.1.2")
	host6   = netip.MustParseAddr("2001:2:0:1::2")
	gw4     = netip.MustParseAddr("198.18.2.9")
	gw6     = netip.MustParseAddr("2001:2:0:2::9")
)

// harness is an engine with two capture ports and a small routing table:
//
//	p0 198.18.1.1/24 2001:2:0:1::1/64   (host 198.18.1.2 / 2001:2:0:1::2, static neighbour)
//	p1 198.18.2.1/24 2001:2:0:2::1/64   mtu 1400 (gateway .9 / ::9, static neighbour)
//	198.19.0.0/16, 2001:2:1::/48 via the gateway; 198.19.255.0/24 blackhole;
//	198.19.254.0/24 and 2001:2:2::/48 reject; FIB 1 empty.
type harness struct {
	t      testing.TB
	e      *Engine
	w      *Worker
	p0, p1 *capPort
	fibs   *fib.FIBs
	st     *State
}

func newHarness(t testing.TB, checked bool) *harness {
	t.Helper()
	e, err := New(Config{Workers: 1, PoolSize: 4096, CheckedPools: checked}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, e: e, w: e.workers[0]}
	t.Cleanup(func() { e.Close() })
	h.p0 = &capPort{info: pmd.Info{Name: "p0", Driver: "cap", MAC: macP0, MTU: 1500, RxQueues: 1, TxQueues: 1}, pools: e.Pools()}
	h.p1 = &capPort{info: pmd.Info{Name: "p1", Driver: "cap", MAC: macP1, MTU: 1400, RxQueues: 1, TxQueues: 1}, pools: e.Pools()}
	for id, p := range []*capPort{h.p0, h.p1} {
		if err := e.AttachPort(uint16(id), p); err != nil {
			t.Fatal(err)
		}
	}
	f, err := fib.New(fib.Config{FIBs: 2})
	if err != nil {
		t.Fatal(err)
	}
	h.fibs = f
	nh := func(n fib.NextHop) uint32 {
		id, err := f.AddNextHop(n)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	c0 := nh(fib.NextHop{Kind: fib.KindConnected, Port: 0})
	c1 := nh(fib.NextHop{Kind: fib.KindConnected, Port: 1})
	g4 := nh(fib.NextHop{Kind: fib.KindGateway, Port: 1, Addr: gw4})
	g6 := nh(fib.NextHop{Kind: fib.KindGateway, Port: 1, Addr: gw6})
	bh := nh(fib.NextHop{Kind: fib.KindBlackhole})
	rj := nh(fib.NextHop{Kind: fib.KindReject})
	changes := []fib.Change{
		{Op: fib.OpAdd, Prefix: addrP0.Masked(), NextHop: c0, Connected: true},
		{Op: fib.OpAdd, Prefix: addrP1.Masked(), NextHop: c1, Connected: true},
		{Op: fib.OpAdd, Prefix: addrP06.Masked(), NextHop: c0, Connected: true},
		{Op: fib.OpAdd, Prefix: addrP16.Masked(), NextHop: c1, Connected: true},
		{Op: fib.OpAdd, Prefix: netip.MustParsePrefix("198.19.0.0/16"), NextHop: g4},
		{Op: fib.OpAdd, Prefix: netip.MustParsePrefix("2001:2:1::/48"), NextHop: g6},
		{Op: fib.OpAdd, Prefix: netip.MustParsePrefix("198.19.255.0/24"), NextHop: bh},
		{Op: fib.OpAdd, Prefix: netip.MustParsePrefix("198.19.254.0/24"), NextHop: rj},
		{Op: fib.OpAdd, Prefix: netip.MustParsePrefix("2001:2:2::/48"), NextHop: rj},
	}
	for _, a := range []netip.Prefix{addrP0, addrP1, addrP06, addrP16} {
		l := nh(fib.NextHop{Kind: fib.KindLocal, Addr: a.Addr()})
		changes = append(changes, fib.Change{Op: fib.OpAdd, Prefix: netip.PrefixFrom(a.Addr(), a.Addr().BitLen()), NextHop: l, Connected: true})
	}
	if err := f.Apply(changes); err != nil {
		t.Fatal(err)
	}
	e.SetFIB(f)
	nt := e.Neigh()
	var m0, m1 [6]byte
	copy(m0[:], macP0)
	copy(m1[:], macP1)
	if err := nt.SetPort(0, m0, []netip.Prefix{addrP0, addrP06}); err != nil {
		t.Fatal(err)
	}
	if err := nt.SetPort(1, m1, []netip.Prefix{addrP1, addrP16}); err != nil {
		t.Fatal(err)
	}
	var mh, mg [6]byte
	copy(mh[:], macHost)
	copy(mg[:], macGW)
	for _, s := range []struct {
		port uint16
		a    netip.Addr
		mac  [6]byte
	}{{0, host4, mh}, {0, host6, mh}, {1, gw4, mg}, {1, gw6, mg}} {
		if err := nt.AddStatic(s.port, s.a, s.mac); err != nil {
			t.Fatal(err)
		}
	}
	nt.Publish()
	h.w.pl.idle() // transmit the announcements queued by the control path
	// Setting the ports announced their addresses (gratuitous ARP,
	// unsolicited NA): those frames are not what the tests look at.
	h.p0.out, h.p1.out = nil, nil
	h.st = &State{Ports: []PortState{
		NewPortState(macP0, 1500, 0, true, []netip.Prefix{addrP0, addrP06}),
		NewPortState(macP1, 1400, 0, true, []netip.Prefix{addrP1, addrP16}),
	}}
	e.PublishState(h.st)
	return h
}

// inject runs frames through the worker's pipeline as one burst received
// on port, and returns the frames each port transmitted.
func (h *harness) inject(port uint16, frames ...[]byte) (out0, out1 [][]byte) {
	h.t.Helper()
	h.p0.out, h.p1.out = nil, nil
	ms := make([]*mbuf.Mbuf, len(frames))
	if n := h.w.cache.Alloc(ms); n != len(ms) {
		h.t.Fatalf("pool exhausted: got %d mbufs", n)
	}
	for i, f := range frames {
		copy(ms[i].Append(len(f)), f)
	}
	h.w.pl.process(port, ms)
	h.w.pl.idle()
	return h.p0.out, h.p1.out
}

// inUse is the number of mbufs not in the pools (caches count as free).
func (h *harness) inUse() int {
	n := 0
	for _, p := range h.e.Pools() {
		n += p.Stats().InUse
	}
	return n
}

// Packet builders (gopacket: independent of fwdd's own code).

type pktOpt struct {
	src, dst netip.Addr
	ttl      uint8
	size     int // IP payload bytes of UDP data
	df       bool
	dstMAC   net.HardwareAddr
	icmpEcho bool
	sport    uint16
	dport    uint16
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func frame4(t testing.TB, o pktOpt) []byte {
	t.Helper()
	if o.ttl == 0 {
		o.ttl = 64
	}
	if o.dstMAC == nil {
		o.dstMAC = macP0
	}
	if !o.src.IsValid() {
		o.src = host4
	}
	if o.sport == 0 {
		o.sport = 1234
	}
	if o.dport == 0 {
		o.dport = 9
	}
	eth := &layers.Ethernet{SrcMAC: macHost, DstMAC: o.dstMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: o.ttl, Id: 0x4242, SrcIP: o.src.AsSlice(), DstIP: o.dst.AsSlice()}
	if o.df {
		ip.Flags = layers.IPv4DontFragment
	}
	payload := gopacket.Payload(make([]byte, o.size))
	for i := range payload {
		payload[i] = byte(i)
	}
	if o.icmpEcho {
		ip.Protocol = layers.IPProtocolICMPv4
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1}
		return serialize(t, eth, ip, icmp, payload)
	}
	ip.Protocol = layers.IPProtocolUDP
	udp := &layers.UDP{SrcPort: layers.UDPPort(o.sport), DstPort: layers.UDPPort(o.dport)}
	_ = udp.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, udp, payload)
}

func frame6(t testing.TB, o pktOpt) []byte {
	t.Helper()
	if o.ttl == 0 {
		o.ttl = 64
	}
	if o.dstMAC == nil {
		o.dstMAC = macP0
	}
	if !o.src.IsValid() {
		o.src = host6
	}
	eth := &layers.Ethernet{SrcMAC: macHost, DstMAC: o.dstMAC, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: o.ttl, SrcIP: o.src.AsSlice(), DstIP: o.dst.AsSlice()}
	payload := gopacket.Payload(make([]byte, o.size))
	if o.icmpEcho {
		ip.NextHeader = layers.IPProtocolICMPv6
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
		_ = icmp.SetNetworkLayerForChecksum(ip)
		echo := &layers.ICMPv6Echo{Identifier: 7, SeqNumber: 1}
		return serialize(t, eth, ip, icmp, echo, payload)
	}
	ip.NextHeader = layers.IPProtocolUDP
	udp := &layers.UDP{SrcPort: 1234, DstPort: 9}
	_ = udp.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, udp, payload)
}

// decoded is a transmitted frame decoded by gopacket, checksums verified.
type decoded struct {
	eth   *layers.Ethernet
	ip4   *layers.IPv4
	ip6   *layers.IPv6
	icmp4 *layers.ICMPv4
	icmp6 *layers.ICMPv6
	udp   *layers.UDP
	pkt   gopacket.Packet
}

func decode(t testing.TB, b []byte) decoded {
	t.Helper()
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("transmitted frame does not decode: %v", el.Error())
	}
	var d decoded
	d.pkt = p
	d.eth, _ = p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	d.ip4, _ = p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	d.ip6, _ = p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	d.icmp4, _ = p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	d.icmp6, _ = p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	d.udp, _ = p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if d.ip4 != nil {
		hdr := b[14 : 14+int(d.ip4.IHL)*4]
		if sum := inetChecksum(hdr); sum != 0 {
			t.Fatalf("IPv4 header checksum does not verify (residue %#04x)", sum)
		}
	}
	return d
}

// inetChecksum is a from-scratch RFC 1071 sum: 0 over a valid header.
func inetChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// allocsPerRun is testing.AllocsPerRun taken three times, returning the
// least. AllocsPerRun counts the whole process's allocations, so a
// goroutine an earlier test left winding down (or the runtime's own work
// under -race on a loaded machine) can add to one measurement; an
// allocation on the path under test happens in every run and shows in all
// three.
func allocsPerRun(runs int, f func()) float64 {
	least := testing.AllocsPerRun(runs, f)
	for i := 0; i < 2 && least > 0; i++ {
		least = min(least, testing.AllocsPerRun(runs, f))
	}
	return least
}
