package ringpmd

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/ring"
)

// DriverName is the name the driver registers under.
const DriverName = "ring"

// Limits and defaults of the arguments.
const (
	MaxQueues   = 64
	DefaultSize = 1024
)

// Help describes the driver.
const Help = "ports back to back in memory: alone a loopback port, with peer NAME one of a pair"

// Args describes the driver's arguments.
var Args = []pmd.Arg{
	{Name: "queues", Type: pmd.ArgInt, Min: 1, Max: MaxQueues, Default: "1", Help: "receive and transmit queues"},
	{Name: "size", Type: pmd.ArgInt, Min: 1, Max: ring.MaxSize, PowerOfTwo: true, Default: fmt.Sprint(DefaultSize), Help: "ring size"},
	{Name: "mac", Type: pmd.ArgMAC, Help: "the port's MAC (default 02:00:00:72:ID)"},
	{Name: "peer", Type: pmd.ArgString, Help: "pair name: the two ports given the same peer are connected (the first waits, link down, for the second)"},
}

var argNames = []string{"queues", "size", "mac", "peer"}

// hubKey keys the stack's Hub in pmd.Shared.
type hubKey struct{}

func init() {
	pmd.Register(pmd.Driver{Name: DriverName, Help: Help, Args: Args, Open: func(cfg pmd.Config) (pmd.Port, error) {
		peer, ok := cfg.Args["peer"]
		if !ok {
			return NewLoop(cfg)
		}
		if cfg.Shared == nil {
			return nil, fmt.Errorf("ring: peer=%s: a pair meets in the stack's state (pmd.Config.Shared), and none was given "+
				"(omit peer for a loopback port, or use ringpmd.NewPair)", peer)
		}
		var h *Hub
		cfg.Shared.Do(func(m map[any]any) {
			if h, _ = m[hubKey{}].(*Hub); h == nil {
				h = NewHub()
				m[hubKey{}] = h
			}
		})
		return h.open(cfg)
	}})
}

var _ pmd.Port = (*Port)(nil)

type mring = ring.Ring[*mbuf.Mbuf]

// pair is the state two ports share.
type pair struct {
	mu    sync.Mutex
	rings [2][]*mring // rings[i][q]: from side i to side 1-i (loop: both the same)
	open  [2]atomic.Bool
	pools []*mbuf.Pool // for draining at the last close
}

// Port is a ring port.
type Port struct {
	id    uint16
	side  int
	info  pmd.Info
	pair  *pair
	tx    []*mring
	rx    []*mring
	pools []*mbuf.Pool
	ctr   []pmd.QueueCounters
	loop  bool

	closeMu sync.Mutex
	closed  bool
}

type params struct {
	queues, size int
	mac          net.HardwareAddr
}

func parse(cfg pmd.Config) (params, error) {
	var p params
	if len(cfg.Pools) == 0 {
		return p, fmt.Errorf("ring: no mbuf pool given")
	}
	if err := cfg.Args.Check(DriverName, argNames...); err != nil {
		return p, err
	}
	var err error
	if p.queues, err = cfg.Args.Int("queues", 1, 1, MaxQueues); err != nil {
		return p, fmt.Errorf("ring: %w", err)
	}
	if p.size, err = cfg.Args.Int("size", DefaultSize, 1, ring.MaxSize); err != nil || p.size&(p.size-1) != 0 {
		return p, fmt.Errorf("ring: argument size=%q: want a power of two in [1, %d]", cfg.Args["size"], ring.MaxSize)
	}
	if v, ok := cfg.Args["mac"]; ok {
		if p.mac, err = net.ParseMAC(v); err != nil || len(p.mac) != 6 {
			return p, fmt.Errorf("ring: argument mac=%q: want a MAC address like 02:00:00:00:00:01", v)
		}
	} else {
		p.mac = net.HardwareAddr{0x02, 0, 0, 0x72, byte(cfg.ID >> 8), byte(cfg.ID)}
	}
	return p, nil
}

func newRings(queues, size int) ([]*mring, error) {
	rs := make([]*mring, queues)
	for q := range rs {
		r, err := ring.New[*mbuf.Mbuf](size, ring.SPSC)
		if err != nil {
			return nil, fmt.Errorf("ring: %w", err)
		}
		rs[q] = r
	}
	return rs, nil
}

func newPort(cfg pmd.Config, p params, pr *pair, side int) *Port {
	pt := &Port{
		id: cfg.ID, side: side, pair: pr,
		tx: pr.rings[side], rx: pr.rings[1-side],
		pools: cfg.Pools,
		ctr:   make([]pmd.QueueCounters, p.queues),
		info:  pmd.Info{Name: cfg.Name, Driver: DriverName, MAC: p.mac, MTU: 1500 /* nominal */, RxQueues: p.queues, TxQueues: p.queues},
	}
	pr.open[side].Store(true)
	return pt
}

// NewLoop makes a loopback port: what it transmits on queue q it receives
// on queue q.
func NewLoop(cfg pmd.Config) (*Port, error) {
	p, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	rs, err := newRings(p.queues, p.size)
	if err != nil {
		return nil, err
	}
	pr := &pair{rings: [2][]*mring{rs, rs}, pools: cfg.Pools}
	pt := newPort(cfg, p, pr, 0)
	pt.loop = true
	pr.open[1].Store(true)
	return pt, nil
}

// NewPair makes two ports back to back. Both configs must agree on queues
// and size (b may omit them); their pools must be the same stack's.
func NewPair(a, b pmd.Config) (*Port, *Port, error) {
	pa, err := parse(a)
	if err != nil {
		return nil, nil, fmt.Errorf("port %s: %w", a.Name, err)
	}
	pb, err := parse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("port %s: %w", b.Name, err)
	}
	if err := agree(a, b, pa, &pb); err != nil {
		return nil, nil, err
	}
	pr, err := newPair(pa, a.Pools)
	if err != nil {
		return nil, nil, err
	}
	return newPort(a, pa, pr, 0), newPort(b, pa, pr, 1), nil
}

// agree checks that the second port's arguments match the first's; b
// inherits what it omits.
func agree(a, b pmd.Config, pa params, pb *params) error {
	if _, ok := b.Args["queues"]; ok && pb.queues != pa.queues {
		return fmt.Errorf("port %s: ring: queues=%d differs from its peer %s's queues=%d (give both the same or omit it)", b.Name, pb.queues, a.Name, pa.queues)
	}
	if _, ok := b.Args["size"]; ok && pb.size != pa.size {
		return fmt.Errorf("port %s: ring: size=%d differs from its peer %s's size=%d (give both the same or omit it)", b.Name, pb.size, a.Name, pa.size)
	}
	pb.queues, pb.size = pa.queues, pa.size
	return nil
}

func newPair(p params, pools []*mbuf.Pool) (*pair, error) {
	ab, err := newRings(p.queues, p.size)
	if err != nil {
		return nil, err
	}
	ba, err := newRings(p.queues, p.size)
	if err != nil {
		return nil, err
	}
	return &pair{rings: [2][]*mring{ab, ba}, pools: pools}, nil
}

// RxBurst dequeues what the peer transmitted on queue q, up to len(ms),
// stamps port and queue, clears the sender's pipeline metadata, and returns
// how many. The caller owns ms[:n].
func (p *Port) RxBurst(q int, ms []*mbuf.Mbuf) int {
	if uint(q) >= uint(len(p.rx)) {
		return 0
	}
	n := p.rx[q].DequeueBurst(ms)
	bytes := 0
	for _, m := range ms[:n] {
		bytes += m.Len()
		m.Port, m.Queue = p.id, uint16(q)
		m.FIB, m.Flags, m.Hash = 0, 0, 0
		m.L3Off, m.L4Off, m.EtherType, m.VLANTCI = 0, 0, 0, 0
		m.NextHop, m.OutPort, m.L4Proto = 0, 0, 0
	}
	if n > 0 {
		c := &p.ctr[q]
		c.RxPackets.Add(uint64(n))
		c.RxBytes.Add(uint64(bytes))
	}
	return n
}

// TxBurst enqueues as many leading mbufs of ms as the ring towards the
// peer has room for and returns that count; the caller keeps ms[n:].
func (p *Port) TxBurst(q int, ms []*mbuf.Mbuf) int {
	if uint(q) >= uint(len(p.tx)) {
		return 0
	}
	// Count bytes before handing over (the peer may free them at once):
	// with one producer the room can only grow, so all of ms[:k] fit.
	r := p.tx[q]
	k := min(r.Cap()-r.Len(), len(ms))
	bytes := 0
	for _, m := range ms[:k] {
		bytes += m.Len()
	}
	n := r.EnqueueBurst(ms[:k])
	c := &p.ctr[q]
	c.TxPackets.Add(uint64(n))
	c.TxBytes.Add(uint64(bytes))
	return n
}

// Info describes the port.
func (p *Port) Info() pmd.Info { return p.info }

// Link is up while the peer is open.
func (p *Port) Link() pmd.Link {
	return pmd.Link{Up: p.pair.open[1-p.side].Load() && p.pair.open[p.side].Load(), Present: true}
}

// Stats returns per-queue counters.
func (p *Port) Stats() []pmd.QueueStats { return pmd.Snapshots(p.ctr) }

// Close frees what waits in the port's receive rings (and, for the last
// port of a pair, in every ring). Polling of this port must have stopped.
// Idempotent.
func (p *Port) Close() error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	pr := p.pair
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.open[p.side].Store(false)
	drain(p.rx, p.pools)
	if p.loop || !pr.open[1-p.side].Load() {
		drain(pr.rings[0], pr.pools)
		drain(pr.rings[1], pr.pools)
	}
	return nil
}

// drain frees every mbuf waiting in rs to its pool. It runs as the rings'
// consumer: the consumers (the receiving ports' pollers) have stopped.
func drain(rs []*mring, pools []*mbuf.Pool) {
	var buf [64]*mbuf.Mbuf
	for _, r := range rs {
		for {
			n := r.DequeueBurst(buf[:])
			if n == 0 {
				break
			}
			FreeByPool(pools, buf[:n])
		}
	}
}

// FreeByPool frees each mbuf of ms to pools[m.PoolID()], in runs of the
// same pool. Mbufs naming no pool are left alone (and leak: a bug of the
// caller that gave them to a port of another stack); it returns how many.
func FreeByPool(pools []*mbuf.Pool, ms []*mbuf.Mbuf) int {
	lost := 0
	for i := 0; i < len(ms); {
		id := ms[i].PoolID()
		j := i + 1
		for j < len(ms) && ms[j].PoolID() == id {
			j++
		}
		if int(id) < len(pools) && pools[id] != nil {
			pools[id].Free(ms[i:j])
		} else {
			lost += j - i
		}
		i = j
	}
	return lost
}
