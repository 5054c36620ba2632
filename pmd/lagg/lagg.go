package lagg

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/pmd/flowhash"
	"github.com/fwdd/fwdd/pmd/mcast"
	"github.com/fwdd/fwdd/ring"
)

// DriverName is the name the driver registers under.
const DriverName = "lagg"

// MaxMembers bounds the members of one lagg.
const MaxMembers = 16

// maxBurst is the largest burst TxBurst takes at once; the caller keeps
// the rest (TxBurst's contract).
const maxBurst = 64

// memberBuf is the length of a member's burst buffer: maxBurst and the
// slack split2Vec writes past a member's count (eight slots a step).
const memberBuf = maxBurst + 8

// Protocols.
const (
	ProtoFailover    = "failover"
	ProtoLoadBalance = "loadbalance"
	ProtoRoundRobin  = "roundrobin"
	ProtoLACP        = "lacp"
)

// Args describes the driver's arguments.
var Args = []pmd.Arg{
	{Name: "proto", Type: pmd.ArgEnum, Choices: []string{ProtoFailover, ProtoLoadBalance, ProtoRoundRobin, ProtoLACP}, Default: ProtoFailover,
		Help: "aggregation protocol"},
	{Name: "laggport", Type: pmd.ArgPort, Repeat: true, Member: true, Required: true,
		Help: "a member port (no addresses of its own; in order: failover's first is the primary)"},
	{Name: "hash", Type: pmd.ArgSet, Choices: []string{"l2", "l3", "l4"}, Default: "l2,l3,l4",
		Help: "headers the flow hash covers (loadbalance, lacp)"},
	{Name: "lacp", Type: pmd.ArgEnum, Choices: []string{"fast", "slow"}, Default: "slow",
		Help: "LACP timeout asked of the partner: fast (1 s PDUs, 3 s timeout) or slow (30 s, 90 s)"},
	{Name: "failover_rx_all", Type: pmd.ArgBool, Default: "off",
		Help: "failover: receive on every member whose link is up, not only on the active one (FreeBSD net.link.lagg.failover_rx_all)"},
}

func init() {
	pmd.Register(pmd.Driver{Name: DriverName, Status: true, Help: "link aggregation (FreeBSD lagg): failover, loadbalance, roundrobin, LACP (IEEE 802.1AX)",
		Args: Args, Open: func(cfg pmd.Config) (pmd.Port, error) { return Open(cfg) }})
}

var (
	_ pmd.Port        = (*Port)(nil)
	_ pmd.Stacked     = (*Port)(nil)
	_ pmd.Servicer    = (*Port)(nil)
	_ pmd.Statuser    = (*Port)(nil)
	_ pmd.Multicaster = (*Port)(nil)
	_ pmd.TxHasher    = (*Port)(nil)
)

// memberKey claims a member port in pmd.Shared; the value is the lagg's
// name.
type memberKey struct{ id uint16 }

// member is one member port.
type member struct {
	port pmd.Port
	id   uint16
	name string
	mac  [6]byte
	// collecting gates the member's received frames (pmd.Lower).
	collecting atomic.Bool
	// atJoin: its counters when it joined live (zero for the members the
	// lagg was opened with: their traffic so far is the lagg's).
	atJoin pmd.QueueStats
	// Control goroutine only:
	up   bool
	lacp lacpPort
}

// txSet is the members transmit spreads over, published whole.
type txSet struct {
	ports []pmd.Port
	idx   []int // member index of each
}

// txQueue is one transmit queue's scratch, used by the queue's owner only.
type txQueue struct {
	n    [MaxMembers]int // frames each member refused
	bufs [MaxMembers][memberBuf]*mbuf.Mbuf
	sel  [maxBurst]uint8 // member of each frame (spread's scratch)
	rr   uint32
	// ctr counts TxDrops (no member to send on); what the members send
	// they count (Stats sums them): a counter store per burst costs an
	// atomic exchange, so the lagg keeps no second count of it.
	ctr pmd.QueueCounters
}

// Port is a lagg.
type Port struct {
	info  pmd.Info
	proto string
	// roundRobin: proto is roundrobin (read per packet: a bool, not a
	// string compare).
	roundRobin bool
	hashL2     bool
	hashL3     bool
	hashL4     bool
	fh         *flowhash.Hash // flow hash over the layers (hash.go)
	// splitVec: the two-member split runs split2Vec (this CPU has
	// AVX-512), else split2; chosen at Open.
	splitVec bool
	fast     bool
	// rxAll: failover receives on every up member (failover_rx_all).
	rxAll   bool
	members []*member
	pools   []*mbuf.Pool
	shared  *pmd.Shared
	ctl     *ring.Ring[*mbuf.Mbuf]
	active  atomic.Pointer[txSet]
	qs      []txQueue

	// LACP system identity and key.
	sysPrio uint16
	sys     [6]byte
	key     uint16
	// aggPartner is the partner the aggregator is bound to (LACP).
	aggPartner lacpInfo
	aggBound   bool

	// hashArg, lacpArg: the arguments as given (Reconfigure compares).
	hashArg, lacpArg string
	// departed: members removed live, owed a last LACPDU (Service).
	departed []departed
	// base: the counters of members removed live, while they were members
	// (the lagg's counters never go back).
	base pmd.QueueStats

	mu     sync.Mutex // Status, Stats, Lowers, Reconfigure, Close vs Service
	closed bool
	owners mcast.Owners // multicast groups asked of the members
	rxBad  uint64
}

// Open creates a lagg over the members named by laggport.
func Open(cfg pmd.Config) (*Port, error) {
	a := cfg.Args
	proto, err := a.Enum("proto", ProtoFailover, ProtoFailover, ProtoLoadBalance, ProtoRoundRobin, ProtoLACP)
	if err != nil {
		return nil, fmt.Errorf("lagg: %w", err)
	}
	names := a.List("laggport")
	if len(names) == 0 {
		return nil, fmt.Errorf("lagg: no members: name them with laggport PORT (a lagg without members is an error)")
	}
	if len(names) > MaxMembers {
		return nil, fmt.Errorf("lagg: %d members, at most %d (name fewer laggport members)", len(names), MaxMembers)
	}
	if cfg.Lookup == nil {
		return nil, fmt.Errorf("lagg: this stack gives drivers no other ports (pmd.Config.Lookup)")
	}
	p := &Port{proto: proto, pools: cfg.Pools, shared: cfg.Shared, sysPrio: 0x8000, key: 0x100 | cfg.ID, splitVec: splitVecOK()}
	p.hashArg, p.lacpArg = a.Str("hash", "l2,l3,l4"), a.Str("lacp", "slow")
	for _, h := range strings.Split(p.hashArg, ",") {
		switch h {
		case "l2":
			p.hashL2 = true
		case "l3":
			p.hashL3 = true
		case "l4":
			p.hashL4 = true
		}
	}
	p.fast = p.lacpArg == "fast"
	if p.rxAll, err = a.Bool("failover_rx_all", false); err != nil {
		return nil, fmt.Errorf("lagg: %w", err)
	}
	p.roundRobin = proto == ProtoRoundRobin
	mtu, txq := 0, 0
	for i, n := range names {
		mp, id, ok := cfg.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("lagg: laggport %s: no such port (port add %s first)", n, n)
		}
		if _, stacked := mp.(pmd.Stacked); stacked {
			return nil, fmt.Errorf("lagg: laggport %s: a %s port cannot be a member (members are ports on devices)", n, mp.Info().Driver)
		}
		info := mp.Info()
		m := &member{port: mp, id: id, name: n}
		copy(m.mac[:], info.MAC)
		if i == 0 {
			mtu, txq = info.MTU, info.TxQueues
			copy(p.sys[:], info.MAC)
		}
		mtu, txq = min(mtu, info.MTU), min(txq, info.TxQueues)
		p.members = append(p.members, m)
	}
	if txq < 1 {
		return nil, fmt.Errorf("lagg: a member has no transmit queue")
	}
	if cfg.Shared != nil {
		var clash string
		cfg.Shared.Do(func(sh map[any]any) {
			for _, m := range p.members {
				if o, ok := sh[memberKey{m.id}].(string); ok && o != cfg.Name {
					clash = fmt.Sprintf("lagg: laggport %s is a member of %s already (a port belongs to at most one lagg)", m.name, o)
					return
				}
			}
			for _, m := range p.members {
				sh[memberKey{m.id}] = cfg.Name
			}
		})
		if clash != "" {
			return nil, fmt.Errorf("%s", clash)
		}
	}
	r, err := ring.New[*mbuf.Mbuf](256, ring.MPSC)
	if err != nil {
		return nil, fmt.Errorf("lagg: %w", err)
	}
	p.ctl = r
	p.fh = flowhash.New(p.hashL2, p.hashL3, p.hashL4, p.sys, cfg.ID)
	p.qs = make([]txQueue, txq)
	p.info = pmd.Info{Name: cfg.Name, Driver: DriverName, MAC: append([]byte(nil), p.sys[:]...), MTU: mtu, TxQueues: txq}
	for i, m := range p.members {
		m.lacp.init(p, uint16(i+1))
	}
	// LACP members receive the slow-protocols group.
	if proto == ProtoLACP {
		if err := p.SetMulticast("lacp", []net.HardwareAddr{mcast.SlowProtocols}); err != nil {
			cfg.Logger().Warn("lagg: joining the slow-protocols group on the members", "port", cfg.Name, "err", err)
		}
	}
	// Until the first Service: static protocols start from the links as
	// they are now; LACP from nothing (no member distributing).
	p.refresh(time.Now())
	return p, nil
}

// Lowers binds every member's frames to the lagg, gated by its collecting
// state, its slow-protocol frames to the control ring.
func (p *Port) Lowers() []pmd.Lower {
	p.mu.Lock()
	defer p.mu.Unlock()
	ls := make([]pmd.Lower, len(p.members))
	for i, m := range p.members {
		ls[i] = pmd.Lower{Port: m.id, VID: pmd.AllFrames, Collecting: &m.collecting, Control: p.ctl}
	}
	return ls
}

// RxBurst receives nothing: the workers polling the members deliver the
// lagg's frames (pmd.Stacked).
func (p *Port) RxBurst(int, []*mbuf.Mbuf) int { return 0 }

// TxBurst spreads ms over the distributing members by flow hash
// (roundrobin: in turn), one TxBurst per member on the same queue q. What
// a member refuses stays the caller's; with no member to send on, the
// frames are freed and counted as tx drops.
func (p *Port) TxBurst(q int, ms []*mbuf.Mbuf) int {
	set := p.active.Load()
	if uint(q) >= uint(len(p.qs)) {
		q %= len(p.qs) // not on the common path: a division per burst costs
	}
	tq := &p.qs[q]
	if len(ms) > maxBurst {
		ms = ms[:maxBurst]
	}
	k := len(set.ports)
	switch {
	case k == 0:
		for i := range ms {
			p.pools[ms[i].PoolID()].Free(ms[i : i+1])
		}
		tq.ctr.TxDrops.Add(uint64(len(ms)))
		return len(ms)
	case k == 1:
		return set.ports[0].TxBurst(q, ms)
	}
	// Each frame into its member's burst (spread), in order.
	var lo, hi uint64
	if p.roundRobin {
		for _, m := range ms {
			j := uint(tq.rr%uint32(k)) & (MaxMembers - 1)
			tq.rr++
			c := lanesCount(int(j), lo, hi)
			lo, hi = addCount(int(j), lo, hi)
			tq.bufs[j][c&(maxBurst-1)] = m
		}
	} else {
		lo, hi = p.spread(ms, tq.sel[:], &tq.bufs, k)
	}
	// Each member's frames in order. The caller reads only ms[sent:] (the
	// refused, which TxBurst's contract wants after the sent ones), so
	// the sent are not copied back: ms[:sent] is left as it is.
	sent, refused := 0, 0
	for i := 0; i < k; i++ {
		tq.n[i] = 0
		b := tq.bufs[i][:lanesCount(i, lo, hi)]
		if len(b) == 0 {
			continue
		}
		n := set.ports[i].TxBurst(q, b)
		sent += n
		tq.n[i] = len(b) - n
		refused += len(b) - n
	}
	if refused > 0 {
		j := sent
		for i := 0; i < k; i++ {
			if r := tq.n[i]; r > 0 {
				b := tq.bufs[i][:]
				all := int(lanesCount(i, lo, hi))
				j += copy(ms[j:], b[all-r:all])
			}
		}
	}
	return sent
}

// lanesCount is member i's count in the packed per-member counts lo, hi.
func lanesCount(i int, lo, hi uint64) uint64 {
	if i < 8 {
		return lo >> (8 * i) & 0xff
	}
	return hi >> (8 * (i - 8)) & 0xff
}

// addCount adds one to member i's count in lo, hi.
func addCount(i int, lo, hi uint64) (uint64, uint64) {
	if i < 8 {
		return lo + 1<<(8*i), hi
	}
	return lo, hi + 1<<(8*(i-8))
}

// Info describes the lagg.
func (p *Port) Info() pmd.Info { return p.info }

// Link is up while a member distributes.
func (p *Port) Link() pmd.Link { return pmd.Link{Up: len(p.active.Load().ports) > 0, Present: true} }

// Stats: the members' counters summed into queue 0 (their traffic is the
// lagg's, LACPDUs included), with the lagg's own drops (nothing to send
// on) per queue.
func (p *Port) Stats() []pmd.QueueStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := make([]pmd.QueueStats, len(p.qs))
	for i := range p.qs {
		s[i].TxDrops = p.qs[i].ctr.TxDrops.Load()
	}
	s[0].Add(p.base)
	for _, m := range p.members {
		s[0].Add(m.since())
	}
	return s
}

// since is the member's counters since it joined the lagg (summed over
// its queues).
func (m *member) since() pmd.QueueStats {
	var t pmd.QueueStats
	for _, ms := range m.port.Stats() {
		t.Add(ms)
	}
	j := m.atJoin
	return pmd.QueueStats{
		RxPackets: t.RxPackets - j.RxPackets, RxBytes: t.RxBytes - j.RxBytes, RxDrops: t.RxDrops - j.RxDrops, RxErrors: t.RxErrors - j.RxErrors,
		TxPackets: t.TxPackets - j.TxPackets, TxBytes: t.TxBytes - j.TxBytes, TxDrops: t.TxDrops - j.TxDrops, TxErrors: t.TxErrors - j.TxErrors,
		Copies: t.Copies - j.Copies,
	}
}

// SetMulticast passes owner's groups to every member (the lagg's frames
// arrive on any of them).
func (p *Port) SetMulticast(owner string, macs []net.HardwareAddr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.owners.Set(owner, macs)
	var first error
	for _, m := range p.members {
		if mc, ok := m.port.(pmd.Multicaster); ok {
			if err := mc.SetMulticast(p.info.Name+"/"+owner, macs); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// Multicast returns the groups the lagg asked its members for.
func (p *Port) Multicast() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.owners.Groups()
}

// Close releases the member claims and the control ring's frames. The
// members stay open: they are ports of their own.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	for _, m := range p.members {
		m.collecting.Store(false)
		if mc, ok := m.port.(pmd.Multicaster); ok {
			for o := range p.owners {
				_ = mc.SetMulticast(p.info.Name+"/"+o, nil)
			}
		}
	}
	p.active.Store(&txSet{})
	if p.shared != nil {
		p.shared.Do(func(sh map[any]any) {
			for _, m := range p.members {
				if sh[memberKey{m.id}] == p.info.Name {
					delete(sh, memberKey{m.id})
				}
			}
		})
	}
	var one [1]*mbuf.Mbuf
	for p.ctl.DequeueBurst(one[:]) == 1 {
		p.pools[one[0].PoolID()].Free(one[:])
	}
	return nil
}
