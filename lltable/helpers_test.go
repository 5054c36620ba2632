package lltable

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/fwdd/fwdd/mbuf"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type frame struct {
	port uint16
	data []byte
}

type unreach struct {
	port   uint16
	target netip.Addr
	data   []byte
}

// fakeStack records what the table sends and frees everything it is given.
type fakeStack struct {
	pool    *mbuf.Pool
	mu      sync.Mutex
	tx      []frame
	unreach []unreach
}

func (s *fakeStack) Transmit(port uint16, ms []*mbuf.Mbuf) {
	s.mu.Lock()
	for _, m := range ms {
		s.tx = append(s.tx, frame{port, append([]byte(nil), m.Data()...)})
	}
	s.mu.Unlock()
	s.pool.Free(ms)
}

func (s *fakeStack) Free(ms []*mbuf.Mbuf) { s.pool.Free(ms) }

func (s *fakeStack) Unreachable(port uint16, target netip.Addr, ms []*mbuf.Mbuf) {
	s.mu.Lock()
	for _, m := range ms {
		s.unreach = append(s.unreach, unreach{port, target, append([]byte(nil), m.Data()...)})
	}
	s.mu.Unlock()
	s.pool.Free(ms)
}

// take returns and forgets the recorded frames.
func (s *fakeStack) take() []frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.tx
	s.tx = nil
	return f
}

func (s *fakeStack) takeUnreach() []unreach {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.unreach
	s.unreach = nil
	return u
}

var (
	ourMAC   = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	peerMAC  = [6]byte{0x02, 0, 0, 0, 0, 0x22}
	peerMAC2 = [6]byte{0x02, 0, 0, 0, 0, 0x33}
	our4     = netip.MustParseAddr("198.18.0.1")
	peer4    = netip.MustParseAddr("198.18.0.2")
	our6     = netip.MustParseAddr("2001:2::1")
	ourLL    = netip.MustParseAddr("fe80::1")
	peer6    = netip.MustParseAddr("2001:2::2")
	ourAddrs = []netip.Prefix{
		netip.MustParsePrefix("198.18.0.1/24"),
		netip.MustParsePrefix("2001:2::1/64"),
		netip.MustParsePrefix("fe80::1/64"),
	}
)

const port1 = 1

type env struct {
	t     *testing.T
	tab   *Table
	clk   *fakeClock
	stk   *fakeStack
	pool  *mbuf.Pool
	rd    *Reader
	seqNo uint32
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	pool, err := mbuf.NewPool(mbuf.Config{Name: "test", Count: 512, Checked: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	clk := &fakeClock{now: time.Unix(1_000_000, 0)}
	stk := &fakeStack{pool: pool}
	cfg := Config{Stack: stk, Pool: pool, Clock: clk, Seed: 1}
	if mod != nil {
		mod(&cfg)
	}
	tab, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.SetPort(port1, ourMAC, ourAddrs); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, tab: tab, clk: clk, stk: stk, pool: pool}
	e.rd = tab.NewReader(nil)
	stk.take() // announcements
	return e
}

// packet returns a routed IPv4 or IPv6 packet to dst carrying seq in its
// payload, as the pipeline would punt it (input Ethernet header intact).
func (e *env) packet(dst netip.Addr) *mbuf.Mbuf {
	var ms [1]*mbuf.Mbuf
	if e.pool.Alloc(ms[:]) != 1 {
		e.t.Fatal("pool exhausted")
	}
	m := ms[0]
	e.seqNo++
	if dst.Is4() {
		b := m.Append(etherLen + 20 + 4)
		putEther(b, ourMAC, [6]byte{2, 9, 9, 9, 9, 9}, etherTypeIPv4)
		ip := b[etherLen:]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:4], 24)
		ip[8], ip[9] = 63, 17
		copy(ip[12:16], []byte{198, 19, 0, 9})
		a := dst.As4()
		copy(ip[16:20], a[:])
		binary.BigEndian.PutUint32(ip[20:24], e.seqNo)
	} else {
		b := m.Append(etherLen + 40 + 4)
		putEther(b, ourMAC, [6]byte{2, 9, 9, 9, 9, 9}, etherTypeIPv6)
		ip := b[etherLen:]
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:6], 4)
		ip[6], ip[7] = 17, 63
		a := dst.As16()
		copy(ip[24:40], a[:])
		binary.BigEndian.PutUint32(ip[40:44], e.seqNo)
	}
	m.Port = 2
	return m
}

// seqOf returns the sequence number in a frame made by packet.
func seqOf(f []byte) uint32 {
	if binary.BigEndian.Uint16(f[12:14]) == etherTypeIPv4 {
		return binary.BigEndian.Uint32(f[etherLen+20:])
	}
	return binary.BigEndian.Uint32(f[etherLen+40:])
}

// miss hands a packet for dst to the table as a resolution miss.
func (e *env) miss(dst netip.Addr) uint32 {
	m := e.packet(dst)
	e.tab.Resolve(m, port1, dst)
	return e.seqNo
}

// in feeds one received frame.
func (e *env) in(f []byte) {
	var ms [1]*mbuf.Mbuf
	if e.pool.Alloc(ms[:]) != 1 {
		e.t.Fatal("pool exhausted")
	}
	copy(ms[0].Append(len(f)), f)
	ms[0].Port = port1
	e.tab.Input(ms[0])
}

func (e *env) advance(d time.Duration) {
	e.clk.Advance(d)
	e.tab.Poll()
}

func (e *env) state(a netip.Addr) State {
	x, ok := e.tab.Lookup(port1, a)
	if !ok {
		return 0
	}
	return x.State
}

func (e *env) wantState(a netip.Addr, want State) {
	e.t.Helper()
	if got := e.state(a); got != want {
		e.t.Fatalf("%v: state %v, want %v", a, got, want)
	}
}

// checkNoLeak fails if mbufs are still in use besides what the table holds.
func (e *env) checkNoLeak() {
	e.t.Helper()
	_, held := e.tab.Len()
	if got := e.pool.Stats().InUse; got != held {
		e.t.Fatalf("%d mbufs in use, table holds %d", got, held)
	}
}

// arp builds an ARP frame from a peer.
func arpFrame(ethDst, ethSrc [6]byte, op uint16, sha [6]byte, spa netip.Addr, tha [6]byte, tpa netip.Addr) []byte {
	b := make([]byte, arpFrameLen)
	buildARP(b, ethDst, ethSrc, op, sha, ip4(spa), tha, ip4(tpa))
	return b
}

func naFrame(src netip.Addr, srcMAC [6]byte, dst netip.Addr, flags uint8, target netip.Addr, tlla *[6]byte) []byte {
	b := make([]byte, ndFrameLen)
	ethDst := ourMAC
	if dst.IsMulticast() {
		ethDst = multicastMAC6(dst.As16())
	}
	n := buildND(b, ethDst, srcMAC, src.As16(), dst.As16(), icmp6NA, flags, target.As16(), tlla)
	return b[:n]
}

func nsFrame(src netip.Addr, srcMAC [6]byte, dst netip.Addr, target netip.Addr, slla *[6]byte) []byte {
	b := make([]byte, ndFrameLen)
	ethDst := ourMAC
	if dst.IsMulticast() {
		ethDst = multicastMAC6(dst.As16())
	}
	n := buildND(b, ethDst, srcMAC, src.As16(), dst.As16(), icmp6NS, 0, target.As16(), slla)
	return b[:n]
}

// reply makes the peer answer for target as solicited.
func (e *env) answer(target netip.Addr, mac [6]byte) {
	if target.Is4() {
		e.in(arpFrame(ourMAC, mac, arpOpReply, mac, target, ourMAC, our4))
	} else {
		e.in(naFrame(target, mac, our6, naFlagSolicited|naFlagOverride, target, &mac))
	}
}
