package vlan

import (
	"fmt"
	"net"
	"sync"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/pmd/mcast"
)

// DriverName is the name the driver registers under.
const DriverName = "vlan"

// Args describes the driver's arguments.
var Args = []pmd.Arg{
	{Name: "parent", Type: pmd.ArgPort, Required: true, Help: "the port carrying the tagged frames (a plain port or a lagg)"},
	{Name: "vid", Type: pmd.ArgInt, Min: 1, Max: 4094, Required: true, Help: "the 802.1Q VLAN id"},
}

func init() {
	pmd.Register(pmd.Driver{Name: DriverName, Help: "802.1Q VLAN sub-interface of another port", Args: Args, Open: func(cfg pmd.Config) (pmd.Port, error) {
		return Open(cfg)
	}})
}

var (
	_ pmd.Port        = (*Port)(nil)
	_ pmd.Stacked     = (*Port)(nil)
	_ pmd.Multicaster = (*Port)(nil)
)

// claimKey keys a (parent, vid) claim in pmd.Shared; the value is the
// claiming port's name.
type claimKey struct {
	parent uint16
	vid    int
}

// Port is a VLAN sub-interface.
type Port struct {
	info     pmd.Info
	parent   pmd.Port
	parentID uint16
	vid      int
	tag      [4]byte
	shared   *pmd.Shared
	pools    []*mbuf.Pool
	tx       []pmd.QueueCounters // per transmit queue
	rx       []pmd.QueueCounters // per worker (pmd.Lower.Rx)

	mu     sync.Mutex
	closed bool
	owners mcast.Owners // multicast groups asked of the parent
}

// Open creates the sub-interface of cfg.Args parent with vid.
func Open(cfg pmd.Config) (*Port, error) {
	vid, err := cfg.Args.Int("vid", 0, 1, 4094)
	if err != nil || vid == 0 {
		return nil, fmt.Errorf("vlan: argument vid: want a VLAN id in [1, 4094]")
	}
	name := cfg.Args.Str("parent", "")
	if cfg.Lookup == nil {
		return nil, fmt.Errorf("vlan: parent %s: this stack gives drivers no other ports (pmd.Config.Lookup)", name)
	}
	parent, pid, ok := cfg.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("vlan: parent %s: no such port (port add %s first)", name, name)
	}
	pi := parent.Info()
	p := &Port{
		parent: parent, parentID: pid, vid: vid, shared: cfg.Shared, pools: cfg.Pools,
		tag:  [4]byte{0x81, 0x00, byte(vid >> 8), byte(vid)},
		tx:   make([]pmd.QueueCounters, max(pi.TxQueues, 1)),
		rx:   make([]pmd.QueueCounters, len(cfg.Pools)+1),
		info: pmd.Info{Name: cfg.Name, Driver: DriverName, MAC: pi.MAC, MTU: pi.MTU, TxQueues: pi.TxQueues},
	}
	if cfg.Shared != nil {
		var taken string
		cfg.Shared.Do(func(m map[any]any) {
			k := claimKey{pid, vid}
			if o, ok := m[k].(string); ok && o != cfg.Name {
				taken = o
				return
			}
			m[k] = cfg.Name
		})
		if taken != "" {
			return nil, fmt.Errorf("vlan: vid %d on %s is port %s already (one sub-interface per VLAN)", vid, name, taken)
		}
	}
	return p, nil
}

// Lowers binds the port to its parent's frames tagged with its VLAN id.
func (p *Port) Lowers() []pmd.Lower {
	return []pmd.Lower{{Port: p.parentID, VID: p.vid, Rx: p.rx}}
}

// RxBurst receives nothing: the workers polling the parent deliver this
// port's frames (pmd.Stacked).
func (p *Port) RxBurst(int, []*mbuf.Mbuf) int { return 0 }

// TxBurst tags ms and transmits them on the parent's queue q. A frame
// without 4 bytes of headroom (never with the stack's pools) or shorter
// than an Ethernet header is freed and counted as a transmit error.
func (p *Port) TxBurst(q int, ms []*mbuf.Mbuf) int {
	// Untaggable frames first (stable, rare): they are ours to free.
	bad := 0
	for i, m := range ms {
		if m.Headroom() < 4 || m.Len() < 12 {
			copy(ms[bad+1:i+1], ms[bad:i])
			ms[bad] = m
			bad++
		}
	}
	if bad > 0 {
		for _, m := range ms[:bad] {
			p.pools[m.PoolID()].Free([]*mbuf.Mbuf{m})
		}
		p.tx[q%len(p.tx)].TxErrors.Add(uint64(bad))
	}
	good := ms[bad:]
	var bytes uint64
	for _, m := range good {
		m.Prepend(4)
		d := m.Data()
		copy(d[0:12], d[4:16])
		copy(d[12:16], p.tag[:])
		bytes += uint64(m.Len())
	}
	sent := p.parent.TxBurst(q, good)
	for _, m := range good[sent:] {
		// Refused: the caller keeps it, as it gave it.
		d := m.Data()
		copy(d[4:16], d[0:12])
		m.Adj(4)
		bytes -= uint64(m.Len() + 4)
	}
	if sent > 0 {
		c := &p.tx[q%len(p.tx)]
		c.TxPackets.Add(uint64(sent))
		c.TxBytes.Add(bytes)
	}
	return bad + sent
}

// Info describes the port.
func (p *Port) Info() pmd.Info { return p.info }

// Link is the parent's.
func (p *Port) Link() pmd.Link { return p.parent.Link() }

// Stats returns the transmit counters per queue, with the receive counters
// (per worker) added to queue 0.
func (p *Port) Stats() []pmd.QueueStats {
	s := pmd.Snapshots(p.tx)
	for i := range p.rx {
		r := p.rx[i].Snapshot()
		s[0].RxPackets += r.RxPackets
		s[0].RxBytes += r.RxBytes
	}
	return s
}

// Close releases the (parent, vid) claim. The parent stays open.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if mc, ok := p.parent.(pmd.Multicaster); ok {
		for o := range p.owners {
			_ = mc.SetMulticast(p.info.Name+"/"+o, nil)
		}
	}
	if p.shared != nil {
		p.shared.Do(func(m map[any]any) {
			k := claimKey{p.parentID, p.vid}
			if m[k] == p.info.Name {
				delete(m, k)
			}
		})
	}
	return nil
}

// SetMulticast passes owner's groups to the parent, under an owner name of
// this port's (a tagged frame to a group passes the parent's filter).
func (p *Port) SetMulticast(owner string, macs []net.HardwareAddr) error {
	mc, ok := p.parent.(pmd.Multicaster)
	if !ok {
		return nil
	}
	p.mu.Lock()
	p.owners.Set(owner, macs)
	p.mu.Unlock()
	return mc.SetMulticast(p.info.Name+"/"+owner, macs)
}

// Multicast returns the groups this port asked its parent for.
func (p *Port) Multicast() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.owners.Groups()
}
