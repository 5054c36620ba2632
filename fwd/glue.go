package fwd

// This file connects the pipeline to the packages it stands on (fwd/pkt,
// fib, lltable, txq). It is the only place that names their types, so the
// stages in pipeline.go read as the algorithm.

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/fwd/pkt"
	"github.com/fwdd/fwdd/lltable"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/txq"
)

type pktClass = pkt.Class

const (
	classDrop = pkt.ClassDrop
	classIPv4 = pkt.ClassIPv4
	classIPv6 = pkt.ClassIPv6
	classARP  = pkt.ClassARP
	classND   = pkt.ClassND
	classHBH  = pkt.ClassHopByHop
)

type icmpKind = pkt.Kind

const (
	icmpNetUnreach    = pkt.NetUnreach
	icmpHostUnreach   = pkt.HostUnreach
	icmpTimeExceeded  = pkt.TTLExceeded
	icmpFragNeeded    = pkt.FragNeeded
	icmp6NoRoute      = pkt.NoRoute6
	icmp6Reject       = pkt.RejectRoute6
	icmp6AddrUnreach  = pkt.AddrUnreach6
	icmp6TimeExceeded = pkt.HopLimitExceeded6
	icmp6PacketTooBig = pkt.PacketTooBig6
)

func decTTL4(m *mbuf.Mbuf) bool      { return !pkt.DecTTL4(m) }
func decHopLimit6(m *mbuf.Mbuf) bool { return !pkt.DecHopLimit6(m) }
func echoReply4(m *mbuf.Mbuf) bool   { return pkt.EchoReply4(m) }
func echoReply6(m *mbuf.Mbuf) bool   { return pkt.EchoReply6(m) }

func icmpErrorAllowed(m *mbuf.Mbuf, k icmpKind) bool { return pkt.CheckError(m, k) == pkt.Send }

func buildICMP4(out, m *mbuf.Mbuf, k icmpKind, arg int, src uint32) bool {
	return pkt.BuildError4(out, m, k, uint32(arg), src)
}

func buildICMP6(out, m *mbuf.Mbuf, k icmpKind, arg int, src *[16]byte) bool {
	return pkt.BuildError6(out, m, k, uint32(arg), src)
}

type nhKind = fib.Kind

const (
	nhNone      = fib.KindNone
	nhBlackhole = fib.KindBlackhole
	nhReject    = fib.KindReject
	nhLocal     = fib.KindLocal
	nhConnected = fib.KindConnected
	nhGateway   = fib.KindGateway
)

// nexthop is a resolved FIB next hop (an ECMP group already reduced to the
// member for the packet's hash).
type nexthop struct {
	kind nhKind
	port uint16
	nh   *fib.NextHop
}

func (n nexthop) gw4() uint32 {
	a := n.nh.Addr.As4()
	return uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
}

func (n nexthop) gw6() [16]byte { return n.nh.Addr.As16() }

type fibSnap = *fib.Snapshot
type neighSnap = *lltable.Snapshot

// dpGlue is the engine-wide part: the FIB set (replaced whole when
// net.fibs changes), the neighbour table and the transmit table.
type dpGlue struct {
	fibs  atomic.Pointer[fib.FIBs]
	neigh *lltable.Table
	tx    *txq.Table
}

func (g *dpGlue) loadFIB() fibSnap { return g.fibs.Load().Load() }

// lookup4 looks a burst up, in runs of packets sharing a FIB (usually the
// whole burst is one run).
func (g *dpGlue) lookup4(fs fibSnap, ms []*mbuf.Mbuf, dst []uint32, nh []uint32) {
	for i := 0; i < len(ms); {
		f := ms[i].FIB
		j := i + 1
		for j < len(ms) && ms[j].FIB == f {
			j++
		}
		fs.Lookup4Batch(uint32(f), dst[i:j], nh[i:j])
		i = j
	}
}

func (g *dpGlue) lookup6(fs fibSnap, ms []*mbuf.Mbuf, dst [][16]byte, nh []uint32) {
	for i := 0; i < len(ms); {
		f := ms[i].FIB
		j := i + 1
		for j < len(ms) && ms[j].FIB == f {
			j++
		}
		fs.Lookup6Batch(uint32(f), dst[i:j], nh[i:j])
		i = j
	}
}

func (g *dpGlue) lookup4One(fs fibSnap, f uint16, dst uint32) uint32 {
	return fs.Lookup4(uint32(f), dst)
}

func (g *dpGlue) lookup6One(fs fibSnap, f uint16, dst *[16]byte) uint32 {
	return fs.Lookup6(uint32(f), dst)
}

func (g *dpGlue) isECMP(fs fibSnap, id uint32) bool { return fs.NextHop(id).Kind == fib.KindECMP }

func (g *dpGlue) nexthop(fs fibSnap, id uint32, hash uint32) nexthop {
	nh := fs.NextHop(id)
	if nh.Kind == fib.KindECMP {
		nh = fs.NextHop(fs.Select(id, hash))
	}
	return nexthop{kind: nh.Kind, port: uint16(nh.Port), nh: nh}
}

// workerGlue is a worker's own part: its neighbour reader (which also
// carries misses and ARP/NDP frames to the control plane) and its txq
// sender.
type workerGlue struct {
	reader *lltable.Reader
	sender *txq.Sender
}

func (g *workerGlue) init(e *Engine, id int, cache *mbuf.Cache) error {
	g.reader = e.dp.glue.neigh.NewReader(cache)
	s, err := e.dp.glue.tx.NewSender(id, cache)
	if err != nil {
		return err
	}
	g.sender = s
	return nil
}

func (g *workerGlue) loadNeigh() neighSnap { return g.reader.Load() }

func (g *workerGlue) neigh4(ns neighSnap, port uint16, ip uint32) ([6]byte, bool) {
	return g.reader.Lookup4(ns, port, ip)
}

func (g *workerGlue) neigh6(ns neighSnap, port uint16, ip *[16]byte) ([6]byte, bool) {
	return g.reader.Lookup6(ns, port, ip)
}

func (g *workerGlue) miss4(m *mbuf.Mbuf, port uint16, target uint32) bool {
	return g.reader.Miss4(m, port, target)
}

func (g *workerGlue) miss6(m *mbuf.Mbuf, port uint16, target *[16]byte) bool {
	return g.reader.Miss6(m, port, target)
}

func (g *workerGlue) input(m *mbuf.Mbuf) bool            { return g.reader.Input(m) }
func (g *workerGlue) transmit(port uint16, m *mbuf.Mbuf) { g.sender.TransmitOne(port, m) }
func (g *workerGlue) flush()                             { g.sender.Flush() }
func (g *workerGlue) drain()                             { g.sender.Drain() }
func (g *workerGlue) shutdown()                          { g.sender.Close() }

// newDataplane builds the shared tables.
func newDataplane(e *Engine) (*dataplane, error) {
	d := &dataplane{e: e}
	d.state.Store(&State{})
	f, err := fib.New(fib.Config{FIBs: 1})
	if err != nil {
		return nil, err
	}
	d.glue.fibs.Store(f)
	// The control goroutine's sender is worker number Workers: it owns no
	// queue (ports use at most Workers TX queues), so it always reaches
	// queues through their rings.
	tx, err := txq.New(txq.Config{Workers: len(e.pools) + 1, Pools: e.pools, MaxPorts: MaxPorts})
	if err != nil {
		return nil, err
	}
	d.glue.tx = tx
	ncfg := e.cfg.Neigh
	ncfg.Stack = &ctlStack{e: e}
	ncfg.Pool = e.pools[0]
	nt, err := lltable.New(ncfg)
	if err != nil {
		return nil, fmt.Errorf("neighbour table: %w", err)
	}
	d.glue.neigh = nt
	return d, nil
}

// MaxPorts is the number of port ids an engine supports.
const MaxPorts = 64

func (d *dataplane) addPort(id uint16, p pmd.Port) error {
	if int(id) >= MaxPorts {
		return fmt.Errorf("port id %d: at most %d ports", id, MaxPorts)
	}
	q := min(p.Info().TxQueues, len(d.e.workers))
	return d.glue.tx.Add(id, txq.PortConfig{Port: p, TxQueues: q})
}

func (d *dataplane) removePort(id uint16) { _ = d.glue.tx.Remove(id) }

func (d *dataplane) flushPort(id uint16) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.glue.tx.Synchronize(ctx); err != nil {
		d.e.log.Warn("transmit queues still busy; mbufs of the removed port may be lost", "port", id, "err", err)
		return
	}
	if _, err := d.glue.tx.Flush(id); err != nil {
		d.e.log.Warn("flushing transmit queues", "port", id, "err", err)
	}
}

func (d *dataplane) close() {}

// SetFIB publishes a new FIB set (control goroutine only).
func (e *Engine) SetFIB(f *fib.FIBs) { e.dp.glue.fibs.Store(f) }

// FIB returns the current FIB set.
func (e *Engine) FIB() *fib.FIBs { return e.dp.glue.fibs.Load() }

// Neigh returns the neighbour table (control goroutine only, but for
// NewReader).
func (e *Engine) Neigh() *lltable.Table { return e.dp.glue.neigh }

// TxStats returns the transmit counters of port id.
func (e *Engine) TxStats(id uint16) txq.Stats { return e.dp.glue.tx.Stats(id) }

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
