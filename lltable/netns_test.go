package lltable

// Real peers: a Linux host in a namespace made by the test, on the other end
// of a veth pair. The table is driven through a raw AF_PACKET socket bound
// to our end (the pipeline does not exist yet); the test goroutine below is
// the control goroutine.
//
// x/sys/unix is used here only: socket, bind, sendto and recvfrom on an
// AF_PACKET socket the test owns and closes.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/mbuf"
	"golang.org/x/sys/unix"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// rawStack transmits on an AF_PACKET socket and records ICMP callbacks.
type rawStack struct {
	fd      int
	ifindex int
	pool    *mbuf.Pool
	mu      sync.Mutex
	unreach []netip.Addr
	sendErr error
}

func (s *rawStack) Transmit(port uint16, ms []*mbuf.Mbuf) {
	for _, m := range ms {
		sa := &unix.SockaddrLinklayer{Ifindex: s.ifindex, Protocol: htons(unix.ETH_P_ALL)}
		if err := unix.Sendto(s.fd, m.Data(), 0, sa); err != nil {
			s.mu.Lock()
			s.sendErr = err
			s.mu.Unlock()
		}
	}
	s.pool.Free(ms)
}

func (s *rawStack) Free(ms []*mbuf.Mbuf) { s.pool.Free(ms) }

func (s *rawStack) Unreachable(port uint16, target netip.Addr, ms []*mbuf.Mbuf) {
	s.mu.Lock()
	for range ms {
		s.unreach = append(s.unreach, target)
	}
	s.mu.Unlock()
	s.pool.Free(ms)
}

func (s *rawStack) unreachable(a netip.Addr) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, u := range s.unreach {
		if u == a {
			n++
		}
	}
	return n
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// peerLab is one namespace with a Linux host and our table on the veth.
type peerLab struct {
	t       *testing.T
	ns, dev string // namespace and the peer's device in it
	ours    string // our end in the root namespace
	myMAC   [6]byte
	my4     netip.Addr
	peer4   netip.Addr
	my6     netip.Addr
	peer6   netip.Addr
	tab     *Table
	rd      *Reader
	stk     *rawStack
	pool    *mbuf.Pool
	mu      sync.Mutex // serialises the control goroutine and the test
	echo4   int        // echo replies received from the peer
	echo6   int
	stop    chan struct{}
	done    chan struct{}
}

func newPeerLab(t *testing.T) *peerLab {
	testenv.Root(t, "creates a network namespace and a veth pair")
	testenv.Tool(t, "ip", "iproute2")
	sfx := fmt.Sprintf("%04x%04x", os.Getpid()&0xffff, rand.IntN(1<<16))
	sub := 1 + rand.IntN(250)
	l := &peerLab{t: t, ns: "llt-" + sfx, dev: "lltp" + sfx, ours: "llto" + sfx,
		my4:   netip.AddrFrom4([4]byte{198, 19, byte(sub), 1}),
		peer4: netip.AddrFrom4([4]byte{198, 19, byte(sub), 2}),
		my6:   netip.MustParseAddr(fmt.Sprintf("2001:2:0:%x::1", sub)),
		peer6: netip.MustParseAddr(fmt.Sprintf("2001:2:0:%x::2", sub)),
		stop:  make(chan struct{}), done: make(chan struct{})}
	run(t, "ip", "netns", "add", l.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.ns).Run() })
	run(t, "ip", "link", "add", l.ours, "type", "veth", "peer", "name", l.dev, "netns", l.ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", l.ours).Run() })
	// Our end has no kernel addresses and no kernel IPv6: only the table
	// speaks ARP/NDP there.
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+l.ours+"/disable_ipv6", []byte("1"), 0)
	run(t, "ip", "link", "set", l.ours, "up")
	nsx := func(args ...string) { run(t, append([]string{"ip", "netns", "exec", l.ns}, args...)...) }
	nsx("sysctl", "-qw", "net.ipv4.conf."+l.dev+".arp_notify=1")
	nsx("sysctl", "-qw", "net.ipv6.conf."+l.dev+".ndisc_notify=1")
	run(t, "ip", "-n", l.ns, "addr", "add", l.peer4.String()+"/24", "dev", l.dev)
	run(t, "ip", "-n", l.ns, "addr", "add", l.peer6.String()+"/64", "dev", l.dev, "nodad")
	run(t, "ip", "-n", l.ns, "link", "set", l.dev, "up")
	run(t, "ip", "-n", l.ns, "link", "set", "lo", "up")

	ifc, err := net.InterfaceByName(l.ours)
	if err != nil {
		t.Fatal(err)
	}
	copy(l.myMAC[:], ifc.HardwareAddr)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	testenv.Feature(t, err, "AF_PACKET socket")
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifc.Index, Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval((5 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	l.pool, err = mbuf.NewPool(mbuf.Config{Name: "lab", Count: 1024, Checked: true})
	if err != nil {
		t.Fatal(err)
	}
	l.stk = &rawStack{fd: fd, ifindex: ifc.Index, pool: l.pool}
	l.tab, err = New(Config{Stack: l.stk, Pool: l.pool, BaseReachableTime: time.Second,
		RetransTimer: 200 * time.Millisecond, DelayFirstProbe: 200 * time.Millisecond,
		UseScanInterval: 10 * time.Millisecond, FailedTime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l.rd = l.tab.NewReader(nil)
	if err := l.tab.SetPort(port1, l.myMAC, []netip.Prefix{
		netip.PrefixFrom(l.my4, 24), netip.PrefixFrom(l.my6, 64)}); err != nil {
		t.Fatal(err)
	}
	go l.loop(fd)
	t.Cleanup(func() {
		close(l.stop)
		<-l.done
		l.pool.Close()
	})
	return l
}

// loop is the control goroutine: receive, hand ARP/NDP to the table, poll.
func (l *peerLab) loop(fd int) {
	defer close(l.done)
	buf := make([]byte, 2048)
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		n, from, err := unix.Recvfrom(fd, buf, 0)
		l.mu.Lock()
		if err == nil {
			if sll, ok := from.(*unix.SockaddrLinklayer); !ok || sll.Pkttype != unix.PACKET_OUTGOING {
				l.frame(buf[:n])
			}
		}
		l.tab.Poll()
		l.mu.Unlock()
	}
}

func (l *peerLab) frame(f []byte) {
	if len(f) < etherLen {
		return
	}
	typ := binary.BigEndian.Uint16(f[12:14])
	switch {
	case typ == etherTypeARP:
	case typ == etherTypeIPv6 && len(f) >= etherLen+ipv6HdrLen+1 && f[etherLen+6] == protoICMPv6:
		switch f[etherLen+ipv6HdrLen] {
		case 129: // echo reply
			l.echo6++
			return
		case icmp6NS, icmp6NA:
		default:
			return
		}
	case typ == etherTypeIPv4 && len(f) >= etherLen+21 && f[etherLen+9] == 1 && f[etherLen+20] == 0:
		l.echo4++
		return
	default:
		return
	}
	var ms [1]*mbuf.Mbuf
	if l.pool.Alloc(ms[:]) != 1 {
		return
	}
	copy(ms[0].Append(len(f)), f)
	ms[0].Port = port1
	l.tab.Input(ms[0])
}

// do runs f as the control goroutine.
func (l *peerLab) do(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
}

// waitFor polls cond (run as the control goroutine) until it holds.
func (l *peerLab) waitFor(what string, d time.Duration, cond func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		l.do(func() { ok = cond() })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var list []Entry
			l.do(func() { list = l.tab.List() })
			l.t.Fatalf("timed out waiting for %s; table: %v", what, list)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *peerLab) entry(a netip.Addr) (Entry, bool) { return l.tab.Lookup(port1, a) }

// peerMAC returns the MAC of the peer's device.
func (l *peerLab) peerMAC() [6]byte {
	out := run(l.t, "ip", "-n", l.ns, "-br", "link", "show", "dev", l.dev)
	for _, f := range strings.Fields(out) {
		if hw, err := net.ParseMAC(f); err == nil && len(hw) == 6 {
			return [6]byte(hw)
		}
	}
	l.t.Fatalf("no MAC in %q", out)
	return [6]byte{}
}

// echoRequest builds an ICMP echo request from us to the peer, as the
// pipeline would punt it (Ethernet header still the input one).
func (l *peerLab) echoRequest(dst netip.Addr) *mbuf.Mbuf {
	var ms [1]*mbuf.Mbuf
	if l.pool.Alloc(ms[:]) != 1 {
		l.t.Fatal("pool exhausted")
	}
	m := ms[0]
	if dst.Is4() {
		b := m.Append(etherLen + 20 + 16)
		putEther(b, l.myMAC, [6]byte{2, 9, 9, 9, 9, 9}, etherTypeIPv4)
		ip := b[etherLen:]
		ip[0], ip[8], ip[9] = 0x45, 64, 1
		binary.BigEndian.PutUint16(ip[2:4], 36)
		s, d := l.my4.As4(), dst.As4()
		copy(ip[12:16], s[:])
		copy(ip[16:20], d[:])
		binary.BigEndian.PutUint16(ip[10:12], ^sum16(ip[:20]))
		ic := ip[20:36]
		ic[0] = 8
		binary.BigEndian.PutUint16(ic[4:6], 0x1234)
		copy(ic[8:], "lltable!")
		binary.BigEndian.PutUint16(ic[2:4], ^sum16(ic))
	} else {
		b := m.Append(etherLen + 40 + 16)
		putEther(b, l.myMAC, [6]byte{2, 9, 9, 9, 9, 9}, etherTypeIPv6)
		ip := b[etherLen:]
		ip[0], ip[6], ip[7] = 0x60, protoICMPv6, 64
		binary.BigEndian.PutUint16(ip[4:6], 16)
		s, d := l.my6.As16(), dst.As16()
		copy(ip[8:24], s[:])
		copy(ip[24:40], d[:])
		ic := ip[40:56]
		ic[0] = 128
		binary.BigEndian.PutUint16(ic[4:6], 0x1234)
		copy(ic[8:], "lltable!")
		binary.BigEndian.PutUint16(ic[2:4], icmp6Checksum(&s, &d, ic))
	}
	return m
}

func sum16(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func TestRealPeers(t *testing.T) {
	l := newPeerLab(t)
	testenv.Tool(t, "ping", "iputils-ping")
	pmac := l.peerMAC()
	for _, fam := range []struct {
		name     string
		my, peer netip.Addr
		ping     []string
		echo     func() int
	}{
		{"ipv4", l.my4, l.peer4, []string{"ping", "-c1", "-W1"}, func() int { return l.echo4 }},
		{"ipv6", l.my6, l.peer6, []string{"ping", "-6", "-c1", "-W1"}, func() int { return l.echo6 }},
	} {
		t.Run(fam.name+"/peer resolves us", func(t *testing.T) {
			// The peer pings us: it must resolve our address first. Its
			// ping gets no answer (no pipeline), its neighbour entry shows
			// our MAC, and we learned it from its request.
			exec.Command("ip", append([]string{"netns", "exec", l.ns}, append(fam.ping, fam.my.String())...)...).Run()
			out := run(t, "ip", "-n", l.ns, "neigh", "show", fam.my.String(), "dev", l.dev)
			if !strings.Contains(out, net.HardwareAddr(l.myMAC[:]).String()) {
				t.Fatalf("peer did not resolve %v: %q", fam.my, out)
			}
			// We learned the peer from its request (for IPv6, the NS source
			// may be its link-local address).
			l.waitFor("entry learned from the peer's request", 2*time.Second, func() bool {
				for _, x := range l.tab.List() {
					if x.Addr.Is4() == fam.my.Is4() && x.MAC == pmac && x.State.usable() {
						return true
					}
				}
				return false
			})
		})
		t.Run(fam.name+"/we resolve the peer", func(t *testing.T) {
			l.do(func() { _ = l.tab.Delete(port1, fam.peer) })
			before := 0
			l.do(func() {
				before = fam.echo()
				for i := 0; i < 2; i++ {
					l.tab.Resolve(l.echoRequest(fam.peer), port1, fam.peer)
				}
			})
			l.waitFor("REACHABLE and both held echo requests answered", 3*time.Second, func() bool {
				x, ok := l.entry(fam.peer)
				return ok && x.MAC == pmac && x.State.usable() && fam.echo() >= before+2
			})
			l.waitFor("published", time.Second, func() bool {
				mac, ok := l.rd.Lookup(l.tab.Snapshot(), fam.peer)
				return ok && mac == pmac
			})
		})
	}
	t.Run("peer changes its MAC", func(t *testing.T) {
		newMAC := [6]byte{0x02, 0x11, 0x22, 0x33, 0x44, byte(rand.IntN(256))}
		run(t, "ip", "-n", l.ns, "link", "set", "dev", l.dev, "address", net.HardwareAddr(newMAC[:]).String())
		for _, a := range []netip.Addr{l.peer4, l.peer6} {
			l.waitFor(fmt.Sprintf("%v to follow the new MAC", a), 5*time.Second, func() bool {
				// Keep using the entry so that a STALE one is probed.
				l.rd.Lookup(l.tab.Snapshot(), a)
				mac, ok := l.rd.Lookup(l.tab.Snapshot(), a)
				return ok && mac == newMAC
			})
		}
		// And packets reach the peer at its new MAC.
		var before int
		l.do(func() {
			before = l.echo4
			l.tab.Resolve(l.echoRequest(l.peer4), port1, l.peer4)
		})
		l.waitFor("echo reply at the new MAC", 3*time.Second, func() bool { return l.echo4 > before })
	})
	t.Run("peer disappears", func(t *testing.T) {
		run(t, "ip", "-n", l.ns, "addr", "flush", "dev", l.dev)
		for _, a := range []netip.Addr{l.peer4, l.peer6} {
			// The entry is used: STALE -> DELAY -> PROBE -> FAILED.
			l.waitFor(fmt.Sprintf("%v FAILED", a), 10*time.Second, func() bool {
				l.rd.Lookup(l.tab.Snapshot(), a)
				x, ok := l.entry(a)
				return ok && x.State == StateFailed
			})
			l.do(func() { l.tab.Resolve(l.echoRequest(a), port1, a) })
			l.waitFor("ICMP callback for a packet to a FAILED entry", time.Second, func() bool {
				return l.stk.unreachable(a) >= 1
			})
		}
		// A destination that never answers: held packets get the callback.
		gone := netip.AddrFrom4([4]byte(append(l.peer4.AsSlice()[:3], 77)))
		l.do(func() {
			for i := 0; i < 3; i++ {
				l.tab.Resolve(l.echoRequest(gone), port1, gone)
			}
		})
		l.waitFor("held packets answered unreachable", 3*time.Second, func() bool {
			x, ok := l.entry(gone)
			return ok && x.State == StateFailed && l.stk.unreachable(gone) == 3
		})
	})
	l.stk.mu.Lock()
	err := l.stk.sendErr
	l.stk.mu.Unlock()
	if err != nil {
		t.Errorf("sendto: %v", err)
	}
	var c Counters
	l.do(func() { c = l.tab.Counters() })
	t.Logf("counters: ARP req %d rep %d, NS %d, NA %d, learned %d, moved %d, failed %d, drops %v",
		c.ARPRequestsSent, c.ARPRepliesSent, c.NSSent, c.NASent, c.Learned, c.Moved, c.Failed, c.Dropped)
	_ = bytes.Equal
}
