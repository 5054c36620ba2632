package fwd

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/lltable"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/txq"
)

// dataplane is what the workers share read-only: the snapshots the control
// plane publishes (State, the FIB set), the neighbour table they read
// through their own lltable.Reader and the transmit table they send
// through their own txq.Sender. Only the control goroutine stores into it.
type dataplane struct {
	e     *Engine
	state atomic.Pointer[State]
	// fibs is the FIB set, replaced whole when net.fibs changes; workers
	// load fibs.Load().Load() once per burst.
	fibs  atomic.Pointer[fib.FIBs]
	neigh *lltable.Table
	tx    *txq.Table
	// in maps received frames to the stacked ports (vlan, lagg).
	in atomic.Pointer[inMap]
}

// newDataplane builds the shared tables.
func newDataplane(e *Engine) (*dataplane, error) {
	d := &dataplane{e: e}
	d.state.Store(&State{})
	d.in.Store(&inMap{})
	f, err := fib.New(fib.Config{FIBs: 1})
	if err != nil {
		return nil, err
	}
	d.fibs.Store(f)
	// The control goroutine's sender is worker number Workers: it owns no
	// queue (ports use at most Workers TX queues), so it always reaches
	// queues through their rings.
	tx, err := txq.New(txq.Config{Workers: len(e.pools) + 1, Pools: e.pools, MaxPorts: MaxPorts})
	if err != nil {
		return nil, err
	}
	d.tx = tx
	ncfg := e.cfg.Neigh
	ncfg.Stack = &ctlStack{e: e}
	ncfg.Pool = e.pools[0]
	nt, err := lltable.New(ncfg)
	if err != nil {
		return nil, fmt.Errorf("neighbour table: %w", err)
	}
	d.neigh = nt
	return d, nil
}

// MaxPorts is the number of port ids an engine supports.
const MaxPorts = 64

func (d *dataplane) addPort(id uint16, p pmd.Port) error {
	if int(id) >= MaxPorts {
		return fmt.Errorf("port id %d: at most %d ports", id, MaxPorts)
	}
	q := min(p.Info().TxQueues, len(d.e.workers))
	return d.tx.Add(id, txq.PortConfig{Port: p, TxQueues: q})
}

func (d *dataplane) removePort(id uint16) { _ = d.tx.Remove(id) }

func (d *dataplane) flushPort(id uint16) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.tx.Synchronize(ctx); err != nil {
		d.e.log.Warn("transmit queues still busy; mbufs of the removed port may be lost", "port", id, "err", err)
		return
	}
	if _, err := d.tx.Flush(id); err != nil {
		d.e.log.Warn("flushing transmit queues", "port", id, "err", err)
	}
}

func (d *dataplane) close() {}

// SetFIB publishes a new FIB set (control goroutine only).
func (e *Engine) SetFIB(f *fib.FIBs) { e.dp.fibs.Store(f) }

// FIB returns the current FIB set.
func (e *Engine) FIB() *fib.FIBs { return e.dp.fibs.Load() }

// Neigh returns the neighbour table (control goroutine only, but for
// NewReader).
func (e *Engine) Neigh() *lltable.Table { return e.dp.neigh }

// TxStats returns the transmit counters of port id.
func (e *Engine) TxStats(id uint16) txq.Stats { return e.dp.tx.Stats(id) }

// ctlStack is what the neighbour table calls back into, from the control
// goroutine: the control pipeline transmits, frees and answers ICMP.
type ctlStack struct{ e *Engine }

func (s *ctlStack) Transmit(port uint16, ms []*mbuf.Mbuf) {
	s.e.ctl.sendFrames(port, ms)
}

func (s *ctlStack) Free(ms []*mbuf.Mbuf) { s.e.FreeMbufs(ms) }

func (s *ctlStack) Unreachable(port uint16, target netip.Addr, ms []*mbuf.Mbuf) {
	s.e.ctl.unreachable(ms)
}
