package fwd

import (
	"sync/atomic"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/pmd/flowhash"
	"github.com/fwdd/fwdd/ring"
)

// inMap says whose a received frame is, for the ports stacked on others
// (pmd.Stacked: vlan, lagg): a lagg member's frames are the lagg's, a
// frame tagged with VLAN id V on port P is P.V's, an untagged one P's, a
// tagged one with no sub-interface nobody's (drop_unknown_vlan). The
// control side builds it whole on attach, detach and Rebind and publishes
// it; workers load it once per burst.
//
// It also holds the flow hash each port that spreads by one asks for
// (pmd.TxHasher: a loadbalance or lacp lagg), which the pipeline computes
// for the frames it routes there (adj.go).
type inMap struct {
	ports  [MaxPorts]inPort
	txHash [MaxPorts]*flowhash.Hash
}

// inPort is one received-on port's entry.
type inPort struct {
	// master is the port (lagg) this one's frames belong to, if
	// hasMaster; collecting gates them (nil: open); rx counts them.
	hasMaster  bool
	master     uint16
	collecting *atomic.Bool
	rx         []pmd.QueueCounters
	// control takes this port's slow-protocol frames (nil: dropped).
	control *ring.Ring[*mbuf.Mbuf]
	// vlans maps a VLAN id to 1 + an index in subs (0: none); nil when
	// the port has no sub-interfaces.
	vlans *[4096]uint8
	subs  []inSub
}

// inSub is a VLAN sub-interface.
type inSub struct {
	id uint16
	rx []pmd.QueueCounters
}

// buildInMap makes the map for the stacked ports of the engine.
func buildInMap(ports map[uint16]pmd.Port, stacked map[uint16]pmd.Stacked) *inMap {
	im := &inMap{}
	for id, s := range stacked {
		if h, ok := s.(pmd.TxHasher); ok && int(id) < MaxPorts {
			im.txHash[id] = h.TxHash()
		}
		for _, l := range s.Lowers() {
			if _, ok := ports[l.Port]; !ok || int(l.Port) >= MaxPorts {
				continue
			}
			ip := &im.ports[l.Port]
			if l.VID == pmd.AllFrames {
				ip.hasMaster, ip.master, ip.collecting, ip.rx, ip.control = true, id, l.Collecting, l.Rx, l.Control
				continue
			}
			if l.VID <= 0 || l.VID >= 4095 || len(ip.subs) >= 255 {
				continue
			}
			if ip.vlans == nil {
				ip.vlans = new([4096]uint8)
			}
			ip.subs = append(ip.subs, inSub{id: id, rx: l.Rx})
			ip.vlans[l.VID] = uint8(len(ip.subs))
		}
	}
	return im
}

// rebindLocked rebuilds and publishes the input map (e.mu held).
func (e *Engine) rebindLocked() {
	e.dp.in.Store(buildInMap(e.ports, e.stacked))
}

// Rebind re-reads the stacked ports' Lowers (control side).
func (e *Engine) Rebind() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rebindLocked()
}

// Service runs the ports' own protocols (pmd.Servicer: a lagg's LACP) on
// the calling goroutine, which must be the control goroutine (the one that
// also runs the neighbour table): call it periodically (~100 ms) and when
// Woken fires.
func (e *Engine) Service() {
	e.mu.Lock()
	var ss []pmd.Servicer
	for _, p := range e.ports {
		if s, ok := p.(pmd.Servicer); ok {
			ss = append(ss, s)
		}
	}
	e.mu.Unlock()
	for _, s := range ss {
		s.Service(ctlIO{e})
	}
}

// ctlIO is the pmd.ControlIO of the control goroutine.
type ctlIO struct{ e *Engine }

func (c ctlIO) Alloc(ms []*mbuf.Mbuf) int         { return c.e.ctl.pl.cache.Alloc(ms) }
func (c ctlIO) Send(port uint16, ms []*mbuf.Mbuf) { c.e.ctl.sendFrames(port, ms) }
func (c ctlIO) Rebind()                           { c.e.Rebind() }

// stripTag removes m's 802.1Q tag (FlagVLAN set by pkt.Parse): the MACs
// move 4 bytes up, the offsets down.
func stripTag(m *mbuf.Mbuf) {
	d := m.Data()
	copy(d[4:16], d[0:12])
	m.Adj(4)
	m.L3Off -= 4
	if m.L4Off != 0 {
		m.L4Off -= 4
	}
	m.Flags &^= mbuf.FlagVLAN
}
