package fwd

import "github.com/fwdd/fwdd/mbuf"

// dataplane is the state the workers share read-only: the snapshots the
// control plane publishes and the transmit table. (Being wired up: the
// pipeline stages land with fib/, lltable/, txq/ and fwd/pkt.)
type dataplane struct{ e *Engine }

func newDataplane(e *Engine) *dataplane             { return &dataplane{e: e} }
func (d *dataplane) addPort(id uint16, p any) error { return nil }
func (d *dataplane) removePort(id uint16)           {}
func (d *dataplane) flushPort(id uint16)            {}
func (d *dataplane) close()                         {}

// pipeline is a worker's per-burst state.
type pipeline struct {
	w  *Worker
	rx [Burst]*mbuf.Mbuf
}

func (p *pipeline) init(e *Engine, w *Worker) { p.w = w }

// process handles one received burst. For now: drop everything.
func (p *pipeline) process(port uint16, ms []*mbuf.Mbuf) { p.w.cache.Free(ms) }

func (p *pipeline) idle()     {}
func (p *pipeline) shutdown() { p.w.cache.Flush() }
