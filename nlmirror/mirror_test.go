package nlmirror

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testnet"
	"golang.org/x/sys/unix"
)

// refState is a reference consumer: it applies batches to plain maps the
// way the contract in Batch and Dump says (a dump sweeps what it did not
// list).
type refState struct {
	mu      sync.Mutex
	routes  map[rkey]Route
	links   map[int32]Link
	addrs   map[Addr]bool
	seen    map[rkey]bool
	batches int
	dumps   []string
}

type rkey struct {
	table uint32
	dst   netip.Prefix
}

func newRef() *refState {
	return &refState{routes: map[rkey]Route{}, links: map[int32]Link{}, addrs: map[Addr]bool{}}
}

func (s *refState) apply(b *Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches++
	if b.Dump&DumpFirst != 0 {
		s.seen = map[rkey]bool{}
		s.links = map[int32]Link{}
		s.addrs = map[Addr]bool{}
		s.dumps = append(s.dumps, b.Reason)
	}
	for _, l := range b.Links {
		if l.Del {
			delete(s.links, l.Index)
		} else {
			s.links[l.Index] = l
		}
	}
	for _, a := range b.Addrs {
		k := a
		k.Del = false
		if a.Del {
			delete(s.addrs, k)
		} else {
			s.addrs[k] = true
		}
	}
	for _, r := range b.Routes {
		k := rkey{r.Table, r.Dst}
		if r.Del {
			delete(s.routes, k)
			continue
		}
		s.routes[k] = r
		if s.seen != nil {
			s.seen[k] = true
		}
	}
	if b.Dump&DumpLast != 0 {
		for k := range s.routes {
			if !s.seen[k] {
				delete(s.routes, k)
			}
		}
		s.seen = nil
	}
}

func (s *refState) route(table uint32, dst string) (Route, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.routes[rkey{table, netip.MustParsePrefix(dst)}]
	return r, ok
}

func (s *refState) count(table uint32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.routes {
		if k.table == table {
			n++
		}
	}
	return n
}

func consume(t *testing.T, m *Mirror, s *refState, pause *sync.Mutex) {
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case b := <-m.Batches():
				if pause != nil {
					pause.Lock()
					pause.Unlock()
				}
				s.apply(b)
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// tapNS makes a namespace with TAP interfaces (up, no carrier: no process
// holds them) and returns its name.
func tapNS(t *testing.T, taps ...string) (*testnet.Net, string) {
	n := testnet.New(t)
	ns := n.NS("nlm")
	for _, tap := range taps {
		n.In(ns, "ip", "tuntap", "add", "dev", tap, "mode", "tap")
		n.In(ns, "ip", "link", "set", tap, "up")
	}
	return n, ns
}

func TestMirrorNetns(t *testing.T) {
	n, ns := tapNS(t, "t0", "t1")
	n.In(ns, "ip", "addr", "add", "198.18.0.1/24", "dev", "t0")
	n.In(ns, "ip", "addr", "add", "198.18.1.1/24", "dev", "t1")
	n.In(ns, "ip", "addr", "add", "2001:2::1/64", "dev", "t0", "nodad")
	n.In(ns, "ip", "route", "add", "198.18.10.0/24", "via", "198.18.0.2")
	n.In(ns, "ip", "route", "add", "198.18.11.0/24", "via", "198.18.0.2", "table", "101")
	n.In(ns, "ip", "route", "add", "blackhole", "198.18.12.0/24")
	n.In(ns, "ip", "route", "add", "198.18.13.0/24", "nexthop", "via", "198.18.0.2", "nexthop", "via", "198.18.1.2")

	m, err := Start(Config{NetNS: testnet.Path(ns)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	s := newRef()
	consume(t, m, s, nil)

	testnet.Eventually(t, 5*time.Second, "the first dump", func() bool {
		_, ok := s.route(254, "198.18.13.0/24")
		return ok
	})
	if r, ok := s.route(254, "198.18.10.0/24"); !ok || r.Hop.Gw != netip.MustParseAddr("198.18.0.2") || r.Type != unix.RTN_UNICAST {
		t.Errorf("198.18.10.0/24: %+v %v", r, ok)
	}
	if _, ok := s.route(101, "198.18.11.0/24"); !ok {
		t.Error("table 101 route missing")
	}
	if r, _ := s.route(254, "198.18.12.0/24"); r.Type != unix.RTN_BLACKHOLE {
		t.Errorf("blackhole: %+v", r)
	}
	if r, _ := s.route(254, "198.18.13.0/24"); len(r.Multi) != 2 {
		t.Errorf("multipath: %+v", r)
	}
	s.mu.Lock()
	if !s.addrs[Addr{Ifindex: ifindex(t, n, ns, "t0"), Prefix: netip.MustParsePrefix("2001:2::1/64")}] {
		t.Errorf("address 2001:2::1/64 on t0 missing from %v", s.addrs)
	}
	s.mu.Unlock()

	// Events.
	n.In(ns, "ip", "route", "add", "198.18.20.0/24", "via", "198.18.1.2")
	n.In(ns, "ip", "-6", "route", "add", "2001:2:20::/48", "via", "2001:2::2")
	n.In(ns, "ip", "route", "del", "198.18.10.0/24")
	n.In(ns, "ip", "route", "replace", "198.18.13.0/24", "via", "198.18.1.3")
	testnet.Eventually(t, 5*time.Second, "events", func() bool {
		_, a := s.route(254, "198.18.20.0/24")
		_, b := s.route(254, "2001:2:20::/48")
		_, c := s.route(254, "198.18.10.0/24")
		r, _ := s.route(254, "198.18.13.0/24")
		return a && b && !c && r.Hop.Gw == netip.MustParseAddr("198.18.1.3")
	})
	n.In(ns, "ip", "addr", "add", "198.18.2.1/24", "dev", "t1")
	testnet.Eventually(t, 5*time.Second, "address event", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.addrs[Addr{Ifindex: ifindex(t, n, ns, "t1"), Prefix: netip.MustParsePrefix("198.18.2.1/24")}]
	})

	// Address writes.
	if !m.WriteAddr(AddrWrite{Ifindex: ifindex(t, n, ns, "t1"), Prefix: netip.MustParsePrefix("198.18.3.1/24")}) {
		t.Fatal("WriteAddr refused")
	}
	testnet.Eventually(t, 5*time.Second, "written address in the kernel", func() bool {
		out, _ := n.TryIn(ns, "ip", "-4", "addr", "show", "dev", "t1")
		return strings.Contains(out, "198.18.3.1/24")
	})
	m.WriteAddr(AddrWrite{Del: true, Ifindex: ifindex(t, n, ns, "t1"), Prefix: netip.MustParsePrefix("198.18.3.1/24")})
	testnet.Eventually(t, 5*time.Second, "written address gone", func() bool {
		out, _ := n.TryIn(ns, "ip", "-4", "addr", "show", "dev", "t1")
		return !strings.Contains(out, "198.18.3.1/24")
	})

	// A forced resync keeps the state. The kernel queues the connected
	// routes' events after the addresses' (and the mirror hands them over
	// in later batches): count only once the mirror has caught up with
	// both, or the stale 198.18.3.0/24 is counted before and not after.
	testnet.Eventually(t, 5*time.Second, "the connected routes of the added and deleted addresses", func() bool {
		_, added := s.route(254, "198.18.2.0/24")
		_, deleted := s.route(254, "198.18.3.0/24")
		return added && !deleted
	})
	before := s.count(254)
	m.Resync("test")
	testnet.Eventually(t, 5*time.Second, "resync", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.dumps) == 2 && s.seen == nil
	})
	if after := s.count(254); after != before {
		t.Errorf("resync changed the route count: %d -> %d", before, after)
	}
}

func ifindex(t *testing.T, n *testnet.Net, ns, dev string) int32 {
	out := n.In(ns, "cat", "/sys/class/net/"+dev+"/ifindex")
	var i int32
	fmt.Sscan(strings.TrimSpace(out), &i)
	return i
}

// TestMirrorOverrun makes the route socket overflow (a tiny buffer and a
// consumer that does not take batches for a while) and checks that the
// mirror notices, resubscribes and converges by a dump to exactly the
// kernel's table, with no stale route.
func TestMirrorOverrun(t *testing.T) {
	n, ns := tapNS(t, "t0")
	n.In(ns, "ip", "addr", "add", "198.18.0.1/24", "dev", "t0")
	// Routes that exist at start and are deleted while the consumer sleeps:
	// they must not survive.
	var batch strings.Builder
	for i := range 200 {
		fmt.Fprintf(&batch, "route add 198.19.%d.0/24 via 198.18.0.2\n", i)
	}
	runBatch(t, n, ns, batch.String())

	m, err := Start(Config{NetNS: testnet.Path(ns), RcvBuf: 4096, MaxPending: 2000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	s := newRef()
	var pause sync.Mutex
	consume(t, m, s, &pause)
	testnet.Eventually(t, 5*time.Second, "the first dump", func() bool { return s.count(254) >= 200 })

	pause.Lock()
	batch.Reset()
	for i := range 200 {
		fmt.Fprintf(&batch, "route del 198.19.%d.0/24\n", i)
	}
	for i := range 20000 {
		fmt.Fprintf(&batch, "route add 198.18.%d.%d/32 via 198.18.0.2\n", 100+i/250, i%250)
	}
	runBatch(t, n, ns, batch.String())
	testnet.Eventually(t, 10*time.Second, "an overrun while the consumer is held", func() bool {
		st := m.Stats()
		return st.Dropped > 0 || st.Overruns > 0
	})
	pause.Unlock()

	want := kernelCount(t, n, ns)
	testnet.Eventually(t, 20*time.Second, "convergence to the kernel's table", func() bool { return s.count(254) == want })
	st := m.Stats()
	if st.Overruns == 0 && st.Dropped == 0 {
		t.Errorf("no overrun or drop counted: %+v", st)
	}
	if _, ok := s.route(254, "198.19.5.0/24"); ok {
		t.Error("stale route 198.19.5.0/24 survived")
	}
	s.mu.Lock()
	t.Logf("stats %+v, dumps %v", st, s.dumps)
	s.mu.Unlock()
}

func runBatch(t *testing.T, n *testnet.Net, ns, cmds string) {
	f, err := os.CreateTemp(t.TempDir(), "batch")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(cmds)
	f.Close()
	n.In(ns, "ip", "-batch", f.Name())
}

// kernelCount is the number of routes in table main as the mirror reports
// them (every route, whatever its type or protocol).
func kernelCount(t *testing.T, n *testnet.Net, ns string) int {
	c := 0
	for _, fam := range []string{"-4", "-6"} {
		out := n.In(ns, "ip", fam, "route", "show", "table", "main")
		for _, l := range strings.Split(out, "\n") {
			if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, " ") {
				c++
			}
		}
	}
	return c
}
