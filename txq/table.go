package txq

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/ring"
)

// BurstSize is the capacity of a Sender's per-port transmit buffer and the
// largest burst handed to one TxBurst call.
const BurstSize = 64

// Defaults for Config and PortConfig.
const (
	DefaultMaxPorts = 64
	DefaultRingSize = 1024
	DefaultBacklog  = 256
	// MaxBacklog bounds PortConfig.Backlog.
	MaxBacklog = 1 << 16
)

// Errors returned by the control-plane methods.
var (
	ErrConfig   = errors.New("txq: invalid configuration")
	ErrPort     = errors.New("txq: no such port")
	ErrPortBusy = errors.New("txq: port id in use")
	// ErrInUse: Flush was called before every worker passed a quiescent
	// state since the port was removed. Wait for a grace period
	// (Table.Synchronize or the engine's) and call Flush again.
	ErrInUse = errors.New("txq: port may still be in use by a worker")
)

// Config describes a Table.
type Config struct {
	// Workers is the number of workers (ids 0..Workers-1), each with one
	// Sender. Required.
	Workers int
	// Pools are the stack's mbuf pools indexed by mbuf.PoolID (nil holes
	// allowed). Every mbuf handed to Transmit must come from one of them.
	Pools []*mbuf.Pool
	// MaxPorts bounds port ids: ids are in [0, MaxPorts). Each Sender keeps
	// a BurstSize buffer per possible port. Default DefaultMaxPorts.
	MaxPorts int
	// Wake, if set, is called after a Sender published packets into the
	// MPSC ring of a queue owned by worker owner: once per ring enqueue
	// (per burst and target queue), never per packet. An owner that waits
	// for work when idle uses it to be woken; it must not block.
	Wake func(owner int)
}

// PortConfig describes a transmit port.
type PortConfig struct {
	// Port is the driver. Required.
	Port pmd.Port
	// TxQueues is the number of TX queues to use; 0 means Port.Info().TxQueues.
	// Queues >= Workers have no owner and are never used.
	TxQueues int
	// RingSize is the capacity of each queue's MPSC ring (a power of two),
	// the queue of packets from workers that do not own a queue on this port.
	// Rings exist only when TxQueues < Workers. Default DefaultRingSize.
	RingSize int
	// Backlog bounds the packets the owner of a queue keeps when the device
	// refuses them; beyond it they are dropped and counted. Default
	// DefaultBacklog.
	Backlog int
}

// Table is a stack's set of transmit ports. The control plane calls Add,
// Remove, Synchronize, Flush and Stats (serialised by an internal mutex,
// never taken on the fast path); workers read an immutable snapshot through
// an atomic.Pointer, loaded once per burst by their Sender.
type Table struct {
	wake     func(owner int) // Config.Wake; nil: nobody to wake
	workers  int
	maxPorts int
	pools    []*mbuf.Pool

	snap atomic.Pointer[snapshot]
	// tap, if set, sees every burst a Sender hands on (SetTap).
	tap atomic.Pointer[tapBox]

	mu      sync.Mutex
	gen     uint64             // generation of the published snapshot
	removed map[uint16]*txPort // removed, not yet flushed
	senders []*Sender          // index = worker id; nil until NewSender
	retired []Stats            // counters of closed Senders, index = port id (last: ids >= maxPorts)
	flushed []uint64           // mbufs freed by Flush, index = port id
	leaked  uint64             // Leaked of closed Senders
}

// Tap sees the frames a Sender is about to hand to a port's queue (its own
// queue's device, or another worker's ring): packet capture. It is called
// once per burst per port on the Sender's goroutine; it must copy what it
// keeps, never block, and not keep ms.
type Tap interface {
	Tx(worker int, port uint16, ms []*mbuf.Mbuf)
}

type tapBox struct{ t Tap }

// SetTap installs tp (nil removes it). A Sender may still be inside the
// old tap until its next burst: wait for a grace period before freeing
// what the old tap uses.
func (t *Table) SetTap(tp Tap) {
	if tp == nil {
		t.tap.Store(nil)
		return
	}
	t.tap.Store(&tapBox{tp})
}

// snapshot is immutable once published.
type snapshot struct {
	gen   uint64
	ports []*txPort      // len maxPorts; nil where no port
	owned [][]ownedQueue // per worker: queues it owns, over all ports
}

type ownedQueue struct {
	port *txPort
	q    *txQueue
}

// txPort is one port's transmit state. It outlives snapshots: the same
// *txPort is carried into each new snapshot until the port is removed.
type txPort struct {
	id       uint16
	dev      pmd.Port
	nq       int       // TX queues in use (as configured)
	mod      fastmod   // x % nq, without a division
	queues   []txQueue // len min(nq, workers): queue q is owned by worker q
	ringSize int
	backlog  int
	busy     []busyMark // Senders inside a burst when the port was removed
}

// txQueue is one TX queue. ring is multi-producer (any non-owner worker),
// single-consumer (the owner). The backlog fields are written by the owner
// only, and read by Table.Flush after a grace period. Padded so that two
// queues' owner-written fields never share a cache line.
type txQueue struct {
	_    [128]byte
	idx  int
	ring *ring.Ring[*mbuf.Mbuf] // nil when every worker owns a queue on the port
	// Backlog FIFO: blog[head:tail] are packets the device refused, oldest
	// first.
	blog       []*mbuf.Mbuf
	head, tail int
}

func (q *txQueue) blen() int { return q.tail - q.head }

// push appends ms to the backlog and returns how many fit.
func (q *txQueue) push(ms []*mbuf.Mbuf) int {
	if len(q.blog)-q.tail < len(ms) && q.head > 0 {
		n := copy(q.blog, q.blog[q.head:q.tail])
		clear(q.blog[n:q.tail])
		q.head, q.tail = 0, n
	}
	k := copy(q.blog[q.tail:], ms)
	q.tail += k
	return k
}

// pop consumes n packets from the backlog's head.
func (q *txQueue) pop(n int) {
	clear(q.blog[q.head : q.head+n])
	q.head += n
	if q.head == q.tail {
		q.head, q.tail = 0, 0
	}
}

// New returns an empty table.
func New(cfg Config) (*Table, error) {
	if cfg.MaxPorts == 0 {
		cfg.MaxPorts = DefaultMaxPorts
	}
	if cfg.Workers < 1 || cfg.Workers > 1<<16 {
		return nil, fmt.Errorf("%w: %d workers, want 1 to 65536", ErrConfig, cfg.Workers)
	}
	if cfg.MaxPorts < 1 || cfg.MaxPorts > 1<<16 {
		return nil, fmt.Errorf("%w: max ports %d, want 1 to 65536", ErrConfig, cfg.MaxPorts)
	}
	if len(cfg.Pools) == 0 {
		return nil, fmt.Errorf("%w: no mbuf pools (pass the stack's pools indexed by mbuf.PoolID)", ErrConfig)
	}
	for i, p := range cfg.Pools {
		if p != nil && int(p.ID()) != i {
			return nil, fmt.Errorf("%w: pool %q has ID %d but sits at index %d (Pools must be indexed by mbuf.PoolID)", ErrConfig, p.Name(), p.ID(), i)
		}
	}
	t := &Table{
		wake:     cfg.Wake,
		workers:  cfg.Workers,
		maxPorts: cfg.MaxPorts,
		pools:    append([]*mbuf.Pool(nil), cfg.Pools...),
		removed:  map[uint16]*txPort{},
		senders:  make([]*Sender, cfg.Workers),
		retired:  make([]Stats, cfg.MaxPorts+1),
		flushed:  make([]uint64, cfg.MaxPorts),
	}
	t.snap.Store(&snapshot{ports: make([]*txPort, cfg.MaxPorts), owned: make([][]ownedQueue, cfg.Workers)})
	return t, nil
}

// Workers returns the configured number of workers.
func (t *Table) Workers() int { return t.workers }

// MaxPorts returns the bound on port ids.
func (t *Table) MaxPorts() int { return t.maxPorts }

// Add registers a transmit port under id and publishes a new snapshot.
// Workers see it from their next burst.
func (t *Table) Add(id uint16, pc PortConfig) error {
	if pc.Port == nil {
		return fmt.Errorf("%w: port %d: no driver", ErrConfig, id)
	}
	if int(id) >= t.maxPorts {
		return fmt.Errorf("%w: port id %d >= max ports %d (raise Config.MaxPorts)", ErrConfig, id, t.maxPorts)
	}
	if pc.TxQueues == 0 {
		pc.TxQueues = pc.Port.Info().TxQueues
	}
	if pc.RingSize == 0 {
		pc.RingSize = DefaultRingSize
	}
	if pc.Backlog == 0 {
		pc.Backlog = DefaultBacklog
	}
	if pc.TxQueues < 1 || pc.TxQueues > 1<<16 {
		return fmt.Errorf("%w: port %d: %d TX queues, want at least 1", ErrConfig, id, pc.TxQueues)
	}
	if pc.Backlog < 1 || pc.Backlog > MaxBacklog {
		return fmt.Errorf("%w: port %d: backlog %d, want 1 to %d", ErrConfig, id, pc.Backlog, MaxBacklog)
	}
	p := &txPort{id: id, dev: pc.Port, nq: pc.TxQueues, mod: newFastmod(uint32(pc.TxQueues)), ringSize: pc.RingSize, backlog: pc.Backlog}
	p.queues = make([]txQueue, min(pc.TxQueues, t.workers))
	for q := range p.queues {
		tq := &p.queues[q]
		tq.idx = q
		tq.blog = make([]*mbuf.Mbuf, pc.Backlog)
		if pc.TxQueues < t.workers {
			r, err := ring.New[*mbuf.Mbuf](pc.RingSize, ring.MPSC)
			if err != nil {
				return fmt.Errorf("%w: port %d: ring size: %w", ErrConfig, id, err)
			}
			tq.ring = r
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.snap.Load()
	if old.ports[id] != nil {
		return fmt.Errorf("%w: port %d exists (remove it first)", ErrPortBusy, id)
	}
	if _, ok := t.removed[id]; ok {
		return fmt.Errorf("%w: port %d was removed but not flushed (call Flush after a grace period)", ErrPortBusy, id)
	}
	ports := append([]*txPort(nil), old.ports...)
	ports[id] = p
	t.publish(ports)
	return nil
}

// Remove takes port id out of the published snapshot. Workers that loaded
// the previous snapshot may still transmit to it until they finish their
// burst; from their next burst on, packets for id are dropped and counted
// as port gone. The port's queued packets stay until Flush.
func (t *Table) Remove(id uint16) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.snap.Load()
	if int(id) >= len(old.ports) || old.ports[id] == nil {
		return fmt.Errorf("%w: %d", ErrPort, id)
	}
	p := old.ports[id]
	ports := append([]*txPort(nil), old.ports...)
	ports[id] = nil
	t.publish(ports)
	p.busy = t.busySenders()
	t.removed[id] = p
	return nil
}

// publish builds and stores a snapshot. t.mu held.
func (t *Table) publish(ports []*txPort) {
	t.gen++
	s := &snapshot{gen: t.gen, ports: ports, owned: make([][]ownedQueue, t.workers)}
	for _, p := range ports {
		if p == nil {
			continue
		}
		for q := range p.queues {
			s.owned[q] = append(s.owned[q], ownedQueue{port: p, q: &p.queues[q]})
		}
	}
	t.snap.Store(s)
}

// busyMark records a Sender found inside a burst, and its state then.
type busyMark struct {
	s  *Sender
	st uint64
}

// busySenders returns the Senders now inside a burst. Called after
// publishing, a Sender not in the list cannot hold an older snapshot, and
// one in the list no longer does once its state has moved. t.mu held.
func (t *Table) busySenders() []busyMark {
	var out []busyMark
	for _, s := range t.senders {
		if s == nil {
			continue
		}
		if st := s.state.Load(); st&1 != 0 {
			out = append(out, busyMark{s, st})
		}
	}
	return out
}

// passed reports whether every marked Sender has left the burst it was in.
func passed(marks []busyMark) bool {
	for _, b := range marks {
		if b.s.state.Load() == b.st {
			return false
		}
	}
	return true
}

// Synchronize waits until no Sender can still hold a snapshot published
// before the call (a grace period, RCU's synchronize_rcu, restricted to
// txq): every Sender that was inside a burst has left it. Idle Senders
// (between bursts, or stopped) do not delay it. It returns ctx's error if a
// Sender stays inside one burst past ctx's end. Control plane only.
func (t *Table) Synchronize(ctx context.Context) error {
	t.mu.Lock()
	marks := t.busySenders()
	t.mu.Unlock()
	for spins := 0; !passed(marks); spins++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("txq: grace period: a worker is stuck in a burst: %w", err)
		}
		if spins < 64 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
		}
	}
	return nil
}

// Flush (if_qflush) returns to their pools every mbuf queued for the removed
// port id: its MPSC rings and its backlogs. It returns how many it freed.
//
// PRECONDITION: no worker may touch the port any more. The port must have
// been removed (Remove) and every worker must have passed a quiescent state
// since: call Synchronize, or wait for the engine's own grace period (a
// worker that finished a poll iteration, that is called Sender.Flush and
// Sender.Drain since Remove, is quiescent). Flush checks this against the
// Senders' states and fails with ErrInUse, freeing nothing, when it cannot
// prove it; call it again after a grace period.
//
// Link down: Remove, grace period, Flush; on link up Add the port again.
func (t *Table) Flush(id uint16) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.removed[id]
	if !ok {
		if s := t.snap.Load(); int(id) < len(s.ports) && s.ports[id] != nil {
			return 0, fmt.Errorf("%w: port %d is still in use (Remove it, wait for a grace period, then Flush)", ErrInUse, id)
		}
		return 0, fmt.Errorf("%w: %d (nothing to flush)", ErrPort, id)
	}
	if !passed(p.busy) {
		return 0, fmt.Errorf("%w: port %d: wait for a grace period (Synchronize) and retry", ErrInUse, id)
	}
	freed := 0
	var buf [BurstSize]*mbuf.Mbuf
	for q := range p.queues {
		tq := &p.queues[q]
		if n := tq.blen(); n > 0 {
			freeTo(t.pools, nil, tq.blog[tq.head:tq.tail])
			tq.pop(n)
			freed += n
		}
		if tq.ring != nil {
			for {
				n := tq.ring.DequeueBurst(buf[:])
				if n == 0 {
					break
				}
				freeTo(t.pools, nil, buf[:n])
				freed += n
			}
		}
	}
	delete(t.removed, id)
	t.flushed[id] += uint64(freed)
	return freed, nil
}

// Queued returns how many packets wait in port id's MPSC rings (removed
// ports included until Flush; owner-private backlogs are not counted).
// Racy while workers run: for statistics.
func (t *Table) Queued(id uint16) int {
	t.mu.Lock()
	p := t.removed[id]
	t.mu.Unlock()
	if p == nil {
		if s := t.snap.Load(); int(id) < len(s.ports) {
			p = s.ports[id]
		}
	}
	if p == nil {
		return 0
	}
	n := 0
	for q := range p.queues {
		tq := &p.queues[q]
		if tq.ring != nil {
			n += tq.ring.Len()
		}
	}
	return n
}

// freeTo returns each mbuf to its own pool: to cache when the pool is the
// cache's, else with Pool.Free (thread-safe). Runs of equal pool ids go in
// one call. It returns how many it could not free (unknown pool id): those
// are leaked, which only a bug elsewhere can cause.
func freeTo(pools []*mbuf.Pool, cache *mbuf.Cache, ms []*mbuf.Mbuf) int {
	own := -1
	if cache != nil {
		own = int(cache.Pool().ID())
	}
	leaked := 0
	for len(ms) > 0 {
		id := ms[0].PoolID()
		k := 1
		for k < len(ms) && ms[k].PoolID() == id {
			k++
		}
		switch {
		case int(id) == own:
			cache.Free(ms[:k])
		case int(id) < len(pools) && pools[id] != nil:
			pools[id].Free(ms[:k])
		default:
			leaked += k
		}
		ms = ms[k:]
	}
	return leaked
}

// Stats returns port id's counters summed over the workers (closed Senders
// included). Ids >= MaxPorts share one set of counters (only DropPortGone
// can be non-zero there). For a port id, every mbuf given to Transmit is
// sent, dropped, freed by Flush, or still queued.
func (t *Table) Stats(id uint16) Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := min(int(id), t.maxPorts)
	st := t.retired[i]
	if i < t.maxPorts {
		st.Flushed = t.flushed[i]
	}
	for _, s := range t.senders {
		if s != nil {
			st.Add(s.counters(id).snapshot())
		}
	}
	return st
}

// Leaked returns how many mbufs the Senders could not free because their
// PoolID named no pool of the table (a bug elsewhere; never expected).
func (t *Table) Leaked() uint64 {
	t.mu.Lock()
	n := t.leaked
	defer t.mu.Unlock()
	for _, s := range t.senders {
		if s != nil {
			n += s.leaked.Load()
		}
	}
	return n
}

// fastmod computes x % d for 32-bit x with two multiplications instead of a
// division (Lemire, Kaser, Kurz: "Faster remainder by direct computation",
// 2019): exact for every uint32 x and d >= 1.
type fastmod struct {
	m uint64
	d uint64
}

func newFastmod(d uint32) fastmod {
	return fastmod{m: ^uint64(0)/uint64(d) + 1, d: uint64(d)}
}

func (f fastmod) mod(x uint32) uint32 {
	hi, _ := bits.Mul64(f.m*uint64(x), f.d)
	return uint32(hi)
}
