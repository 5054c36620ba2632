package pmd

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/fwdd/fwdd/mbuf"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string
		wantErr string
	}{
		{"", "", ""},
		{"dev=r0,queues=2", "dev=r0,queues=2", ""},
		{"queues=2 dev=r0", "dev=r0,queues=2", ""},
		{"dev", "", "want key=value"},
		{"=x", "", "want key=value"},
		{"a=1,a=2", "", "given twice"},
	} {
		a, err := ParseArgs(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseArgs(%q) err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || a.String() != tc.want {
			t.Errorf("ParseArgs(%q) = %q, %v; want %q", tc.in, a.String(), err, tc.want)
		}
	}
}

func TestArgsAccessors(t *testing.T) {
	a := Args{"queues": "2", "zc": "on", "mode": "copy", "bad": "x"}
	if n, err := a.Int("queues", 1, 1, 64); n != 2 || err != nil {
		t.Error("Int", n, err)
	}
	if _, err := a.Int("bad", 1, 1, 64); err == nil {
		t.Error("Int accepted x")
	}
	if n, _ := a.Int("absent", 7, 1, 64); n != 7 {
		t.Error("Int default")
	}
	if b, err := a.Bool("zc", false); !b || err != nil {
		t.Error("Bool", b, err)
	}
	if _, err := a.Bool("bad", false); err == nil {
		t.Error("Bool accepted x")
	}
	if m, err := a.Enum("mode", "auto", "auto", "copy", "zerocopy"); m != "copy" || err != nil {
		t.Error("Enum", m, err)
	}
	if _, err := a.Enum("bad", "auto", "auto"); err == nil {
		t.Error("Enum accepted x")
	}
	if err := a.Check("x", "queues", "zc", "mode"); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Error("Check:", err)
	}
	if a.Str("mode", "") != "copy" || a.Str("none", "d") != "d" {
		t.Error("Str")
	}
}

// stubPort is a minimal Port for registry and table tests.
type stubPort struct {
	info   Info
	closed bool
}

func (p *stubPort) RxBurst(int, []*mbuf.Mbuf) int { return 0 }
func (p *stubPort) TxBurst(int, []*mbuf.Mbuf) int { return 0 }
func (p *stubPort) Info() Info                    { return p.info }
func (p *stubPort) Link() Link                    { return Link{Up: true, Present: true} }
func (p *stubPort) Stats() []QueueStats           { return nil }
func (p *stubPort) Close() error                  { p.closed = true; return nil }

var _ Port = (*stubPort)(nil)

func TestRegistryOpen(t *testing.T) {
	Register(Driver{Name: "stub-test", Help: "test", Args: []Arg{{Name: "fail", Type: ArgString}}, Open: func(cfg Config) (Port, error) {
		if cfg.Args.Str("fail", "") != "" {
			return nil, errors.New("asked to fail")
		}
		return &stubPort{info: Info{Name: cfg.Name, Driver: "stub-test"}}, nil
	}})
	pool, err := mbuf.NewPool(mbuf.Config{Count: 16, CacheSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pools := []*mbuf.Pool{pool}
	if _, err := Open(Config{Name: "p0", Driver: "nosuch", Pools: pools}); !errors.Is(err, ErrUnknownDriver) || !strings.Contains(err.Error(), "stub-test") {
		t.Fatalf("unknown driver: %v", err)
	}
	if _, err := Open(Config{Name: "p0", Driver: "stub-test"}); err == nil {
		t.Fatal("open without pool must fail")
	}
	if _, err := Open(Config{Name: "p0", Driver: "stub-test", Pools: pools, Args: Args{"fail": "1"}}); err == nil || !strings.Contains(err.Error(), "port p0: asked to fail") {
		t.Fatalf("driver error not wrapped with the port name: %v", err)
	}
	p, err := Open(Config{Name: "p0", Driver: "stub-test", Pools: pools})
	if err != nil || p.Info().Name != "p0" {
		t.Fatal(p, err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("double registration must panic")
			}
		}()
		Register(Driver{Name: "stub-test", Args: []Arg{}, Open: func(Config) (Port, error) { return nil, nil }})
	}()
}

func TestTable(t *testing.T) {
	tb := NewTable()
	a := &stubPort{info: Info{Name: "p0", IfIndex: 10}}
	b := &stubPort{info: Info{Name: "p1", IfIndex: 11}}
	if err := tb.Add(0, a); err != nil {
		t.Fatal(err)
	}
	if err := tb.Add(0, b); err == nil {
		t.Fatal("id reuse accepted")
	}
	if err := tb.Add(3, &stubPort{info: Info{Name: "p0"}}); err == nil {
		t.Fatal("name reuse accepted")
	}
	if tb.FreeID() != 1 {
		t.Fatal("FreeID", tb.FreeID())
	}
	tb.Add(1, b)
	if tb.ByID(1) != b || tb.ByIfIndex(10) != a || tb.ByID(9) != nil {
		t.Fatal("lookups")
	}
	if p, id, ok := tb.ByName("p1"); !ok || id != 1 || p != b {
		t.Fatal("ByName")
	}
	if tb.Remove(0) != a || tb.ByIfIndex(10) != nil || tb.Remove(0) != nil {
		t.Fatal("remove")
	}
	if _, _, ok := tb.ByName("p0"); ok || tb.FreeID() != 0 {
		t.Fatal("removed name still found")
	}
}

// TestTableConcurrent: lock-free readers while the control side adds and
// removes ports (run under -race).
func TestTableConcurrent(t *testing.T) {
	tb := NewTable()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for id := uint16(0); id < 8; id++ {
					if p := tb.ByID(id); p != nil {
						_ = p.Info()
					}
					_ = tb.ByIfIndex(int(id) + 100)
				}
			}
		}()
	}
	for i := 0; i < 500; i++ {
		id := uint16(i % 8)
		tb.Remove(id)
		tb.Add(id, &stubPort{info: Info{Name: "p" + string(rune('a'+id)), IfIndex: int(id) + 100}})
	}
	close(stop)
	wg.Wait()
}

func TestQueueCounters(t *testing.T) {
	qs := make([]QueueCounters, 2)
	qs[1].RxPackets.Add(3)
	qs[1].RxBytes.Add(180)
	s := Snapshots(qs)
	var sum QueueStats
	for _, q := range s {
		sum.Add(q)
	}
	if sum.RxPackets != 3 || sum.RxBytes != 180 {
		t.Fatalf("%+v", sum)
	}
}
