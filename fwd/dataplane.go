package fwd

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/lcp"
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
	e *Engine
	// view is the State and the FIB set, published together; workers
	// load it once per burst.
	view  atomic.Pointer[view]
	neigh *lltable.Table
	tx    *txq.Table
	// in maps received frames to the stacked ports (vlan, lagg).
	in atomic.Pointer[inMap]
	// obs is what is armed to watch the workers (captures, a trace); nil
	// when nothing is (observe.go).
	obs atomic.Pointer[Observers]
	// lcp holds the ports' kernel interfaces and the punt path to them.
	lcp *lcp.LCP
}

// view is what the control plane publishes for the workers as one
// snapshot: the State and the FIB set whose FIB numbers it uses (ports'
// FIBs, rules' setfib). Publishing them together means a worker never pairs
// a State with a FIB set it was not made for (issue 12.13: with a new rule
// "setfib 7" and the FIB set still of 2, it indexed a FIB that was not
// there). The FIB set itself publishes route changes inside (fib.FIBs.Load);
// its number of FIBs never changes.
type view struct {
	st   *State
	fibs *fib.FIBs
}

// newDataplane builds the shared tables.
func newDataplane(e *Engine) (*dataplane, error) {
	d := &dataplane{e: e}
	d.in.Store(&inMap{})
	f, err := fib.New(fib.Config{FIBs: 1, Readers: e.fibReaders})
	if err != nil {
		return nil, err
	}
	d.view.Store(&view{st: &State{}, fibs: f})
	// The control goroutine's sender is worker number Workers, the lcp
	// punt goroutine's Workers+1: they own no queue (ports use at most
	// Workers TX queues), so they always reach queues through their rings,
	// and wake the queue's owner if it waits.
	tx, err := txq.New(txq.Config{Workers: len(e.pools) + 2, Pools: e.pools, MaxPorts: MaxPorts, Wake: e.wakeWorker})
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
	lcache := e.pools[0].NewCache()
	lsend, err := tx.NewSender(len(e.pools)+1, lcache)
	if err != nil {
		return nil, err
	}
	l, err := lcp.New(lcp.Config{Workers: len(e.pools), Pools: e.pools, Cache: lcache, Sender: lsend, MaxPorts: MaxPorts, Log: e.log})
	if err != nil {
		return nil, err
	}
	d.lcp = l
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

func (d *dataplane) close() { d.lcp.Close() }

// LCP returns the ports' kernel interfaces (control goroutine).
func (e *Engine) LCP() *lcp.LCP { return e.dp.lcp }

// Publish gives the workers a new State and FIB set as one snapshot (control
// goroutine only): a worker sees either the old pair or the new one. Every
// FIB number st uses (ports, rules) must be below f.NumFIBs(); a packet whose
// FIB is not in the set anyway (one held across a change) is dropped and
// counted (drop_fib_missing). A nil st or f keeps the current one. The
// caller must not modify st afterwards.
func (e *Engine) Publish(st *State, f *fib.FIBs) {
	cur := e.dp.view.Load()
	if st == nil {
		st = cur.st
	}
	if f == nil {
		f = cur.fibs
	}
	e.dp.view.Store(&view{st: st, fibs: f})
}

// SetFIB publishes a new FIB set with the current State (control goroutine
// only). When the number of FIBs changes, publish the State that goes with
// it in the same step, with Publish.
func (e *Engine) SetFIB(f *fib.FIBs) { e.Publish(nil, f) }

// FIB returns the current FIB set.
func (e *Engine) FIB() *fib.FIBs { return e.dp.view.Load().fibs }

// Neigh returns the neighbour table (control goroutine only, but for
// NewReader).
func (e *Engine) Neigh() *lltable.Table { return e.dp.neigh }

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
