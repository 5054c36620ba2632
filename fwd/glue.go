package fwd

// This file connects the pipeline to the packages it stands on (fwd/pkt,
// fib, lltable, txq). It is the only place that names their types, so the
// stages above read as the algorithm.
//
// TEMPORARY: stubs until those packages land; each returns the
// conservative answer (drop / miss).

import (
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
)

type pktClass uint8

const (
	classDrop pktClass = iota
	classIPv4
	classIPv6
	classARP
)

func classify(m *mbuf.Mbuf) (pktClass, Reason) { return classDrop, DropParse }

func decTTL4(m *mbuf.Mbuf) bool      { return false }
func decHopLimit6(m *mbuf.Mbuf) bool { return false }
func echoReply4(m *mbuf.Mbuf) bool   { return false }
func echoReply6(m *mbuf.Mbuf) bool   { return false }

type icmpKind uint8

const (
	icmpNetUnreach icmpKind = iota
	icmpHostUnreach
	icmpTimeExceeded
	icmpFragNeeded
	icmp6NoRoute
	icmp6AdminProhibited
	icmp6TimeExceeded
	icmp6PacketTooBig
)

func icmpErrorAllowed(m *mbuf.Mbuf) bool                                    { return false }
func buildICMP4(out, m *mbuf.Mbuf, k icmpKind, mtu int, src uint32) bool    { return false }
func buildICMP6(out, m *mbuf.Mbuf, k icmpKind, mtu int, src *[16]byte) bool { return false }
func (p *pipeline) fragment4(m *mbuf.Mbuf, mtu int) bool                    { return false }

type nhKind uint8

const (
	nhNone nhKind = iota
	nhBlackhole
	nhReject
	nhLocal
	nhConnected
	nhGateway
)

type nexthop struct {
	kind nhKind
	port uint16
	gw4  uint32
	gw6  [16]byte
}

type fibSnap = struct{}
type neighSnap = struct{}

type dpGlue struct{}

func (g *dpGlue) init(e *Engine)       {}
func (g *dpGlue) loadFIB() fibSnap     { return fibSnap{} }
func (g *dpGlue) loadNeigh() neighSnap { return neighSnap{} }
func (g *dpGlue) lookup4(fs fibSnap, ms []*mbuf.Mbuf, dst []uint32, nh []uint32) {
	clear(nh)
}
func (g *dpGlue) lookup6(fs fibSnap, ms []*mbuf.Mbuf, dst [][16]byte, nh []uint32) {
	clear(nh)
}
func (g *dpGlue) lookup4One(fs fibSnap, fib uint16, dst uint32) uint32    { return 0 }
func (g *dpGlue) lookup6One(fs fibSnap, fib uint16, dst *[16]byte) uint32 { return 0 }
func (g *dpGlue) nexthop(fs fibSnap, id uint32, hash uint32) nexthop      { return nexthop{} }
func (g *dpGlue) neigh4(ns neighSnap, port uint16, ip uint32) ([6]byte, bool) {
	return [6]byte{}, false
}
func (g *dpGlue) neigh6(ns neighSnap, port uint16, ip *[16]byte) ([6]byte, bool) {
	return [6]byte{}, false
}

func (d *dataplane) addPort(id uint16, p pmd.Port) error { return nil }
func (d *dataplane) removePort(id uint16)                {}
func (d *dataplane) flushPort(id uint16)                 {}
func (d *dataplane) close()                              {}

type workerGlue struct {
	e *Engine
	w *Worker
}

func (g *workerGlue) init(e *Engine, w *Worker)          { g.e, g.w = e, w }
func (g *workerGlue) transmit(port uint16, m *mbuf.Mbuf) { g.w.cache.Free([]*mbuf.Mbuf{m}) }
func (g *workerGlue) flush()                             {}
func (g *workerGlue) drain()                             {}
func (g *workerGlue) shutdown()                          {}
