package null

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/fwdd/fwdd/internal/pktgen"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
)

// DriverName is the name the driver registers under.
const DriverName = "null"

// MaxQueues bounds the queues argument.
const MaxQueues = 64

// MaxTemplateBytes bounds flows*size: the templates are built at Open.
const MaxTemplateBytes = 32 << 20

// Help describes the driver's arguments.
const Help = "RX makes template UDP packets, TX frees them (tests, benchmarks)"

// Args describes the driver's arguments.
var Args = []pmd.Arg{
	{Name: "size", Type: pmd.ArgInt, Min: pktgen.MinSize, Max: pktgen.MaxSize, Default: fmt.Sprint(pktgen.MinSize), Help: "frame size with the Ethernet header, without FCS"},
	{Name: "flows", Type: pmd.ArgInt, Min: 1, Max: pktgen.MaxFlows, Default: "1", Help: "distinct UDP flows (source ports)"},
	{Name: "proto", Type: pmd.ArgEnum, Choices: []string{"ipv4", "ipv6"}, Default: "ipv4", Help: "IP version of the packets"},
	{Name: "smac", Type: pmd.ArgMAC, Help: "source MAC of the packets"},
	{Name: "dmac", Type: pmd.ArgMAC, Help: "destination MAC of the packets"},
	{Name: "src", Type: pmd.ArgString, Help: "source IP address"},
	{Name: "dst", Type: pmd.ArgString, Help: "destination IP address"},
	{Name: "sport", Type: pmd.ArgInt, Min: 1, Max: 65535, Default: fmt.Sprint(pktgen.DefaultSrcPort), Help: "first UDP source port"},
	{Name: "dport", Type: pmd.ArgInt, Min: 1, Max: 65535, Default: fmt.Sprint(pktgen.DefaultDstPort), Help: "UDP destination port"},
	{Name: "queues", Type: pmd.ArgInt, Min: 1, Max: MaxQueues, Default: "1", Help: "receive and transmit queues"},
}

var argNames = []string{"size", "flows", "proto", "smac", "dmac", "src", "dst", "sport", "dport", "queues"}

func init() {
	pmd.Register(pmd.Driver{Name: DriverName, Help: Help, Args: Args, Open: func(cfg pmd.Config) (pmd.Port, error) { return Open(cfg) }})
}

var _ pmd.Port = (*Port)(nil)

// queue is one queue's state, owned by its poller; padded so that two
// queues never share a cache line.
type queue struct {
	cache *mbuf.Cache
	pool  *mbuf.Pool
	flow  int
	_     [40]byte
}

// Port is a null port.
type Port struct {
	id    uint16
	info  pmd.Info
	tmpl  *pktgen.Template
	size  int
	pools []*mbuf.Pool
	qs    []queue
	ctr   []pmd.QueueCounters

	mu     sync.Mutex
	closed bool
}

// ParseArgs turns the driver arguments into a pktgen config and a queue
// count.
func ParseArgs(a pmd.Args) (pktgen.Config, int, error) {
	var c pktgen.Config
	if err := a.Check(DriverName, argNames...); err != nil {
		return c, 0, err
	}
	var err error
	if c.Size, err = a.Int("size", pktgen.MinSize, pktgen.MinSize, pktgen.MaxSize); err != nil {
		return c, 0, fmt.Errorf("null: %w (frame size with Ethernet header, without FCS)", err)
	}
	if c.Flows, err = a.Int("flows", 1, 1, pktgen.MaxFlows); err != nil {
		return c, 0, fmt.Errorf("null: %w", err)
	}
	proto, err := a.Enum("proto", "ipv4", "ipv4", "ipv6")
	if err != nil {
		return c, 0, fmt.Errorf("null: %w", err)
	}
	c.IPv6 = proto == "ipv6"
	for _, m := range []struct {
		key string
		dst *net.HardwareAddr
	}{{"smac", &c.SrcMAC}, {"dmac", &c.DstMAC}} {
		if v, ok := a[m.key]; ok {
			hw, err := net.ParseMAC(v)
			if err != nil || len(hw) != 6 {
				return c, 0, fmt.Errorf("null: argument %s=%q: want a MAC address like 02:00:00:00:00:02", m.key, v)
			}
			*m.dst = hw
		}
	}
	for _, p := range []struct {
		key string
		dst *netip.Addr
	}{{"src", &c.Src}, {"dst", &c.Dst}} {
		if v, ok := a[p.key]; ok {
			ip, err := netip.ParseAddr(v)
			if err != nil {
				return c, 0, fmt.Errorf("null: argument %s=%q: want an IP address", p.key, v)
			}
			*p.dst = ip
		}
	}
	sport, err := a.Int("sport", pktgen.DefaultSrcPort, 1, 65535)
	if err != nil {
		return c, 0, fmt.Errorf("null: %w", err)
	}
	dport, err := a.Int("dport", pktgen.DefaultDstPort, 1, 65535)
	if err != nil {
		return c, 0, fmt.Errorf("null: %w", err)
	}
	c.SrcPort, c.DstPort = uint16(sport), uint16(dport)
	queues, err := a.Int("queues", 1, 1, MaxQueues)
	if err != nil {
		return c, 0, fmt.Errorf("null: %w", err)
	}
	if c.Flows*c.Size > MaxTemplateBytes {
		return c, 0, fmt.Errorf("null: flows=%d of size=%d need %d bytes of templates, more than %d (use fewer flows)", c.Flows, c.Size, c.Flows*c.Size, MaxTemplateBytes)
	}
	if c, err = c.Check(); err != nil {
		return c, 0, fmt.Errorf("null: %w (set proto=ipv6 for IPv6 addresses)", err)
	}
	return c, queues, nil
}

// Open creates a null port from cfg (see Help for the arguments).
func Open(cfg pmd.Config) (*Port, error) {
	if len(cfg.Pools) == 0 {
		return nil, fmt.Errorf("null: no mbuf pool given")
	}
	gc, queues, err := ParseArgs(cfg.Args)
	if err != nil {
		return nil, err
	}
	tmpl, err := pktgen.Build(gc)
	if err != nil {
		return nil, fmt.Errorf("null: %w", err)
	}
	p := &Port{
		id:    cfg.ID,
		tmpl:  tmpl,
		size:  gc.Size,
		pools: cfg.Pools,
		qs:    make([]queue, queues),
		ctr:   make([]pmd.QueueCounters, queues),
		info: pmd.Info{
			Name: cfg.Name, Driver: DriverName, MAC: append(net.HardwareAddr(nil), gc.SrcMAC...),
			MTU: 1500, RxQueues: queues, TxQueues: queues,
		},
	}
	for q := range p.qs {
		pool := cfg.Pool(q)
		if pool == nil {
			return nil, fmt.Errorf("null: queue %d has no pool", q)
		}
		if room := pool.BufSize() - pool.Headroom(); room < gc.Size {
			return nil, fmt.Errorf("null: pool %s has %d bytes after headroom, frames of size=%d do not fit (use a smaller size or a larger BufSize)", pool.Name(), room, gc.Size)
		}
		p.qs[q].pool = pool
	}
	// Caches are registered with their pool for good, so make them only
	// once every check has passed.
	for q := range p.qs {
		p.qs[q].cache = p.qs[q].pool.NewCache()
	}
	return p, nil
}

// RxBurst fills ms with template packets (flows in turn) from the queue's
// pool and returns how many; fewer than len(ms) only when the pool is
// exhausted (counted as RxDrops). The caller owns ms[:n].
func (p *Port) RxBurst(q int, ms []*mbuf.Mbuf) int {
	if uint(q) >= uint(len(p.qs)) {
		return 0
	}
	qs := &p.qs[q]
	n := qs.cache.Alloc(ms)
	flow, flows, size := qs.flow, p.tmpl.Flows, p.size
	for _, m := range ms[:n] {
		// Append cannot fail: Open checked the room after headroom.
		copy(m.Append(size), p.tmpl.Frame(flow))
		m.Port, m.Queue = p.id, uint16(q)
		flow++
		if flow == flows {
			flow = 0
		}
	}
	qs.flow = flow
	c := &p.ctr[q]
	c.RxPackets.Add(uint64(n))
	c.RxBytes.Add(uint64(n * size))
	if n < len(ms) {
		c.RxDrops.Add(uint64(len(ms) - n))
	}
	return n
}

// TxBurst frees every mbuf of ms to its pool and returns len(ms). An mbuf
// whose PoolID names no pool of the stack is refused (counted as TxErrors):
// the burst stops there and the caller keeps the rest.
func (p *Port) TxBurst(q int, ms []*mbuf.Mbuf) int {
	if uint(q) >= uint(len(p.qs)) {
		return 0
	}
	qs := &p.qs[q]
	bytes, i := 0, 0
	for i < len(ms) {
		id := ms[i].PoolID()
		if int(id) >= len(p.pools) || p.pools[id] == nil {
			p.ctr[q].TxErrors.Add(1)
			break
		}
		j := i
		for j < len(ms) && ms[j].PoolID() == id {
			bytes += ms[j].Len()
			j++
		}
		if pool := p.pools[id]; pool == qs.pool {
			qs.cache.Free(ms[i:j])
		} else {
			pool.Free(ms[i:j])
		}
		i = j
	}
	c := &p.ctr[q]
	c.TxPackets.Add(uint64(i))
	c.TxBytes.Add(uint64(bytes))
	return i
}

// Info describes the port.
func (p *Port) Info() pmd.Info { return p.info }

// Link is always up.
func (p *Port) Link() pmd.Link { return pmd.Link{Up: true, Present: true} }

// Stats returns per-queue counters.
func (p *Port) Stats() []pmd.QueueStats { return pmd.Snapshots(p.ctr) }

// Close returns the mbufs the queue caches hold to their pools. Polling
// must have stopped. Idempotent.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	for q := range p.qs {
		p.qs[q].cache.Flush()
	}
	return nil
}
