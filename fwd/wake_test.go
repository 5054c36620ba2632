package fwd

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
)

// quietPort is a pollable port that never receives (its descriptor is a
// pipe nobody writes) and counts what it transmits.
type quietPort struct {
	r, w int
	pool *mbuf.Pool
	sent atomic.Uint64
}

var _ pmd.Poller = (*quietPort)(nil)

func (p *quietPort) RxBurst(int, []*mbuf.Mbuf) int { return 0 }
func (p *quietPort) TxBurst(_ int, ms []*mbuf.Mbuf) int {
	p.pool.Free(ms)
	p.sent.Add(uint64(len(ms)))
	return len(ms)
}
func (p *quietPort) Info() pmd.Info {
	return pmd.Info{Name: "q0", Driver: "test", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, MTU: 1500, RxQueues: 1, TxQueues: 1}
}
func (p *quietPort) Link() pmd.Link          { return pmd.Link{Up: true, Present: true} }
func (p *quietPort) Stats() []pmd.QueueStats { return make([]pmd.QueueStats, 1) }
func (p *quietPort) Close() error            { unix.Close(p.r); unix.Close(p.w); return nil }
func (p *quietPort) RxFD(int) int            { return p.r }

// TestSleepingWorkerWoken: an adaptive worker waiting in poll(2) with a
// very long timeout transmits a frame the control path queues for it at
// once: the producer wakes it through its eventfd, the timeout is not what
// moves the frame.
func TestSleepingWorkerWoken(t *testing.T) {
	e, err := New(Config{Workers: 1, PoolSize: 1024, CheckedPools: true, IdleTimeout: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	p := &quietPort{r: fds[0], w: fds[1], pool: e.Pools()[0]}
	if err := e.AttachPort(0, p); err != nil {
		t.Fatal(err)
	}
	e.Start()
	defer e.Close()
	w := e.Workers()[0]
	for round := range 3 {
		testnet.Eventually(t, 10*time.Second, "the worker waits in poll(2)", func() bool { return w.sleeping.Load() && w.offline.Load() })
		ms := make([]*mbuf.Mbuf, 1)
		if e.Pools()[0].Alloc(ms) != 1 {
			t.Fatal("pool empty")
		}
		m := ms[0]
		m.SetLen(60)
		before := p.sent.Load()
		e.ctl.sendFrames(0, []*mbuf.Mbuf{m})
		testnet.Eventually(t, 10*time.Second, "the frame leaves", func() bool { return p.sent.Load() > before })
		t.Logf("round %d: sent", round)
	}
}
