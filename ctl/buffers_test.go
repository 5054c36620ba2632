package ctl

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/pmd"
)

func TestCheckBuffers(t *testing.T) {
	afx := func(name string, ring, queues int) portBuffers {
		return portBuffers{name, pmd.BufferNeed{PerQueue: ring, Queues: queues, Arg: "ring"}}
	}
	mod := func(workers int) func(int) int { return func(q int) int { return q % workers } }
	for _, c := range []struct {
		name          string
		ports         []portBuffers
		workers, pool int
		want          []string // substrings of the error; nil: no error
	}{
		{"one port fits", []portBuffers{afx("p0", 2048, 1)}, 1, 4096, nil},
		{"exactly the margin", []portBuffers{afx("p0", 2048, 1), afx("p1", 1024, 1)}, 1, 4096, nil},
		{"two ports starve", []portBuffers{afx("p0", 2048, 1), afx("p1", 2048, 1)}, 1, 4096,
			[]string{"worker 0 has 4096 mbufs", "keep 4096", "p0 2048 (ring 2048 x 1 queues)", "p1 2048", "fwdd -mbufs", "at least 5120 (+1024)"}},
		{"8192 covers two", []portBuffers{afx("p0", 2048, 1), afx("p1", 2048, 1)}, 1, 8192, nil},
		{"queues over workers", []portBuffers{afx("p0", 2048, 4)}, 2, 4096,
			[]string{"worker 0 has 4096", "p0 4096 (ring 2048 x 2 queues)", "at least 5120"}},
		{"queues spread", []portBuffers{afx("p0", 1024, 4)}, 2, 4096, nil},
		{"drivers that keep nothing", []portBuffers{{"n0", pmd.BufferNeed{}}, {"n1", pmd.BufferNeed{}}}, 1, 64, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkBuffers(c.ports, c.workers, c.pool, mod(c.workers))
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// Two afxdp ports (fill rings of 2048 each) on a worker pool of 4096
// mbufs would leave nothing for ARP answers and forwarding: the second
// port add is refused with the pool, the figure to raise -mbufs to and
// the ports named, while the first keeps forwarding; fwdd -check refuses
// the same file, and accepts it with -mbufs 8192 or smaller rings.
func TestAFXDPPoolTooSmall(t *testing.T) {
	x := newE2E(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "fwdd.conf")
	if err := os.WriteFile(conf, []byte("port add p0 driver afxdp dev r0\naddr add p0 198.18.1.1/24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Start(Options{
		ConfigFile: conf, Socket: filepath.Join(dir, "fwdd.sock"), NetNS: testnet.Path(x.rt),
		Engine: fwd.Config{Workers: 1, PoolSize: 4096, CheckedPools: true},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("start fwdd: %v", err)
	}
	x.d = d
	t.Cleanup(d.Shutdown)
	x.eventuallyPing(x.h1, "198.18.1.1")
	_, err = x.exec("port add p1 driver afxdp dev r1")
	if err == nil {
		t.Fatal("second afxdp port accepted on a pool of 4096")
	}
	for _, w := range []string{"worker 0 has 4096 mbufs", "p0 2048", "p1 2048", "fwdd -mbufs", "at least 5120"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	t.Logf("refused: %v", err)
	x.eventuallyPing(x.h1, "198.18.1.1")
	x.mustExec("port add p1 driver afxdp dev r1 ring 1024")

	// fwdd -check, in the router's namespace.
	two := "port add p0 driver afxdp dev r0\nport add p1 driver afxdp dev r1\n"
	cmds, err := cmdlang.ParseLines(strings.Split(strings.TrimSpace(two), "\n"), cmdlang.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := testnet.Path(x.rt)
	err = CheckBuffers(cmds, ns, fwd.Config{Workers: 1, PoolSize: 4096})
	if err == nil || !strings.Contains(err.Error(), "at least 5120") || !strings.Contains(err.Error(), "port add p1") {
		t.Fatalf("-check with -mbufs 4096: %v", err)
	}
	if err := CheckBuffers(cmds, ns, fwd.Config{Workers: 1, PoolSize: 8192}); err != nil {
		t.Fatalf("-check with -mbufs 8192: %v", err)
	}
	if err := CheckBuffers(cmds, ns, fwd.Config{Workers: 2, PoolSize: 4096}); err == nil {
		t.Fatal("-check: two 1-queue ports on worker 0 of 2 accepted") // queue 0 of both takes from pool 0
	}
}
