package lcp

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/txq"
)

// newLCP returns an LCP over one pool with one producer; its Sender
// transmits to a table with no ports (injected frames are counted, then
// dropped by txq as port gone).
func newLCP(t *testing.T, tun string) (*LCP, *mbuf.Pool) {
	t.Helper()
	pool, err := mbuf.NewPool(mbuf.Config{Name: "t", Count: 2048, Checked: true})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := txq.New(txq.Config{Workers: 2, Pools: []*mbuf.Pool{pool}, MaxPorts: 4})
	if err != nil {
		t.Fatal(err)
	}
	cache := pool.NewCache()
	snd, err := tab.NewSender(1, cache)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Config{Workers: 1, Pools: []*mbuf.Pool{pool}, Cache: cache, Sender: snd, MaxPorts: 4, RingSize: 64, TunDevice: tun})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		if st := pool.Stats(); st.InUse != 0 {
			t.Errorf("%d mbufs leaked", st.InUse)
		}
		pool.Close()
	})
	return l, pool
}

var mac = net.HardwareAddr{0x02, 0, 0, 0, 0x4c, 0x01}

// echoFrame is an ICMP echo request from 198.18.7.2 to 198.18.7.1, sent
// to mac.
func echoFrame() []byte {
	f := make([]byte, 14+20+8+8)
	copy(f[0:6], mac)
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0x4c, 0x02})
	binary.BigEndian.PutUint16(f[12:14], 0x0800)
	ip := f[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 1
	binary.BigEndian.PutUint16(ip[2:4], 36)
	copy(ip[12:16], []byte{198, 18, 7, 2})
	copy(ip[16:20], []byte{198, 18, 7, 1})
	binary.BigEndian.PutUint16(ip[10:12], ^sum(ip, 0))
	ic := f[34:]
	ic[0] = 8
	binary.BigEndian.PutUint16(ic[4:6], 0x77)
	binary.BigEndian.PutUint16(ic[2:4], ^sum(ic, 0))
	return f
}

func sum(b []byte, s uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// TestPuntInject: a frame punted for a port reaches the kernel through
// its TAP, and the kernel's answer comes back as an injected frame.
func TestPuntInject(t *testing.T) {
	testnet.Skip(t)
	n := testnet.New(t)
	ns := n.NS("lcp")
	l, pool := newLCP(t, "")
	info, err := l.Add(2, "tap-t0", testnet.Path(ns), mac, 1500, true)
	if err != nil {
		t.Fatal(err)
	}
	if info.Ifindex == 0 {
		t.Errorf("no ifindex: %+v", info)
	}
	out := n.In(ns, "ip", "link", "show", "tap-t0")
	if !strings.Contains(out, "02:00:00:00:4c:01") || !strings.Contains(out, "LOWER_UP") || !strings.Contains(out, "mtu 1500") {
		t.Fatalf("tap-t0:\n%s", out)
	}
	n.In(ns, "ip", "addr", "add", "198.18.7.1/24", "dev", "tap-t0")
	n.In(ns, "ip", "neigh", "add", "198.18.7.2", "lladdr", "02:00:00:00:4c:02", "dev", "tap-t0")
	c := pool.NewCache()
	p := l.Producer(0)
	p.SetCache(c)
	f := echoFrame()
	testnet.Eventually(t, 5*time.Second, "the echo request punted and a frame (its reply) injected", func() bool {
		var ms [1]*mbuf.Mbuf
		if c.Alloc(ms[:]) == 1 {
			copy(ms[0].Append(len(f)), f)
			ms[0].Port = 2
			p.Punt(ms[0])
			p.Flush()
		}
		time.Sleep(20 * time.Millisecond)
		// Both counters: the kernel may inject frames of its own (IPv6
		// multicast listener reports when the TAP comes up) before the
		// writer has counted the punt.
		st := l.Stats(2)
		return st.Punted > 0 && st.Injected > 0
	})
	c.Flush()
	if err := l.SetCarrier(2, false); err != nil {
		t.Fatal(err)
	}
	if out := n.In(ns, "ip", "link", "show", "tap-t0"); !strings.Contains(out, "NO-CARRIER") {
		t.Errorf("carrier off:\n%s", out)
	}
	if err := l.SetMTU(2, 1400); err != nil {
		t.Fatal(err)
	}
	if out := n.In(ns, "ip", "link", "show", "tap-t0"); !strings.Contains(out, "mtu 1400") {
		t.Errorf("mtu 1400:\n%s", out)
	}
	// A taken name fails and changes nothing.
	if _, err := l.Add(1, "tap-t0", testnet.Path(ns), mac, 1500, true); !errors.Is(err, ErrExists) {
		t.Errorf("second tap-t0: %v", err)
	}
	if _, err := l.Add(1, "lo", testnet.Path(ns), mac, 1500, true); !errors.Is(err, ErrExists) {
		t.Errorf("lo: %v", err)
	}
	if _, ok := l.Lookup(1); ok {
		t.Error("a failed Add left an interface")
	}
	if err := l.Remove(2); err != nil {
		t.Fatal(err)
	}
	if _, err := n.TryIn(ns, "ip", "link", "show", "tap-t0"); err == nil {
		t.Error("Remove left tap-t0")
	}
	// Punting to a port without a TAP: freed and counted.
	var ms [1]*mbuf.Mbuf
	c.Alloc(ms[:])
	copy(ms[0].Append(len(f)), f)
	ms[0].Port = 2
	p.Punt(ms[0])
	p.Flush()
	testnet.Eventually(t, 2*time.Second, "punt_drop for a removed TAP", func() bool { return l.Stats(2).PuntDrop > 0 })
	c.Flush()
}

// TestNoTun: a missing TUN device is a clear error that creates nothing.
func TestNoTun(t *testing.T) {
	testnet.Skip(t)
	l, _ := newLCP(t, "/nonexistent/tun")
	_, err := l.Add(0, "tap-none", "", mac, 1500, true)
	if !errors.Is(err, ErrNoTun) || !strings.Contains(err.Error(), "modprobe tun") {
		t.Fatalf("err = %v", err)
	}
	if _, err := net.InterfaceByName("tap-none"); err == nil {
		t.Fatal("tap-none exists")
	}
}

// TestProducerZeroAllocs: Punt and Flush allocate nothing, with the ring
// full or not; overflow is counted per port.
func TestProducerZeroAllocs(t *testing.T) {
	l, pool := newLCP(t, "")
	c := pool.NewCache()
	p := l.Producer(0)
	p.SetCache(c)
	ms := make([]*mbuf.Mbuf, Burst)
	run := func() {
		n := c.Alloc(ms)
		for _, m := range ms[:n] {
			m.Port = 1
			p.Punt(m)
		}
		p.Flush()
	}
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("%v allocations per burst", a)
	}
	// No punt goroutine runs (no TAP): the 64-slot ring filled and the
	// rest was dropped.
	if d := l.Stats(1).PuntDrop; d != 101*Burst-64 {
		t.Errorf("punt_drop %d, want %d", d, 101*Burst-64)
	}
	c.Flush()
}

// TestPuntGoroutineZeroAllocs: one iteration of the punt goroutine's work
// (rings to TAP, TAP to txq) allocates nothing. The iteration runs on the
// test goroutine; no punt goroutine is started.
func TestPuntGoroutineZeroAllocs(t *testing.T) {
	testnet.Skip(t)
	n := testnet.New(t)
	ns := n.NS("lcpa")
	l, pool := newLCP(t, "")
	tp, err := openTap(TunDevice, testnet.Path(ns), "tap-a0", mac, 1500, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.close() })
	tp.port = 2
	taps := make([]*tap, 4)
	taps[2] = tp
	n.In(ns, "ip", "addr", "add", "198.18.7.1/24", "dev", "tap-a0")
	n.In(ns, "ip", "neigh", "add", "198.18.7.2", "lladdr", "02:00:00:00:4c:02", "dev", "tap-a0")
	c := pool.NewCache()
	p := l.Producer(0)
	p.SetCache(c)
	f := echoFrame()
	var ms [4]*mbuf.Mbuf
	run := func() {
		k := c.Alloc(ms[:])
		for _, m := range ms[:k] {
			copy(m.Append(len(f)), f)
			m.Port = 2
			p.Punt(m)
		}
		p.Flush()
		l.step(taps)
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("%v allocations per iteration", a)
	}
	testnet.Eventually(t, 2*time.Second, "echo replies read back", func() bool {
		l.step(taps)
		return l.Stats(2).Injected > 0
	})
	if st := l.Stats(2); st.Punted < 400 {
		t.Errorf("stats %+v", st)
	}
	c.Flush()
}
