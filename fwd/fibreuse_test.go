package fwd

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/internal/testnet"
)

// TestWorkersLetFIBReuse: the engine's FIB set reuses the snapshot memory
// its running workers have left (fib.Config.Readers = FIBReaders): a busy
// worker reports a quiescent point every iteration, an adaptive one that
// sleeps is offline; neither holds reuse back for good.
func TestWorkersLetFIBReuse(t *testing.T) {
	for _, mode := range []PollMode{PollBusy, PollAdaptive} {
		t.Run(mode.String(), func(t *testing.T) {
			e, err := New(Config{Workers: 1, PoolSize: 1024, CheckedPools: true, PollMode: mode, IdleTimeout: time.Hour}, nil)
			if err != nil {
				t.Fatal(err)
			}
			e.Start()
			defer e.Close()
			f := e.FIB()
			nh, err := f.AddNextHop(fib.NextHop{Kind: fib.KindBlackhole})
			if err != nil {
				t.Fatal(err)
			}
			p := netip.MustParsePrefix("198.18.0.0/24")
			i := 0
			testnet.Eventually(t, 30*time.Second, "replaced snapshot parts reused", func() bool {
				op := fib.OpAdd
				if i%2 == 1 {
					op = fib.OpDelete
				}
				i++
				if err := f.Apply([]fib.Change{{Op: op, Prefix: p, NextHop: nh}}); err != nil {
					t.Fatal(err)
				}
				reused, _ := f.ReuseStats()
				return reused > 0
			})
		})
	}
}
