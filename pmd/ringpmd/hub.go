package ringpmd

import (
	"fmt"
	"sync"

	"github.com/fwdd/fwdd/pmd"
)

// Hub pairs ring ports by name for one stack: the driver keeps one in the
// stack's pmd.Shared (no package-level state) and opens "ring" ports that
// have a peer argument through it. Safe for concurrent use; never on the
// fast path.
type Hub struct {
	mu      sync.Mutex
	waiting map[string]*waiting
}

type waiting struct {
	first  *Port
	params params
	cfg    pmd.Config
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{waiting: map[string]*waiting{}} }

// Open opens a ring port. With peer=NAME, the first Open of NAME creates
// the pair and returns its first port (link down until the peer opens);
// the second returns the other port and frees NAME for a new pair. Without
// peer it makes a loopback port. It has the signature of pmd.Driver.Open;
// errors carry the port name as pmd.Open's do.
func (h *Hub) Open(cfg pmd.Config) (pmd.Port, error) {
	p, err := h.open(cfg)
	if err != nil {
		return nil, fmt.Errorf("port %s: %w", cfg.Name, err)
	}
	return p, nil
}

func (h *Hub) open(cfg pmd.Config) (*Port, error) {
	if cfg.Args == nil {
		cfg.Args = pmd.Args{}
	}
	name, ok := cfg.Args["peer"]
	if !ok {
		return NewLoop(cfg)
	}
	if name == "" {
		return nil, fmt.Errorf("ring: argument peer is empty: name the pair, e.g. peer=link0")
	}
	p, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.waiting[name]; w != nil {
		if w.first.isClosed() {
			delete(h.waiting, name)
		} else {
			if err := agree(w.cfg, cfg, w.params, &p); err != nil {
				return nil, err
			}
			delete(h.waiting, name)
			return newPort(cfg, p, w.first.pair, 1), nil
		}
	}
	pr, err := newPair(p, cfg.Pools)
	if err != nil {
		return nil, err
	}
	first := newPort(cfg, p, pr, 0)
	h.waiting[name] = &waiting{first: first, params: p, cfg: cfg}
	return first, nil
}

// Waiting returns the names of pairs whose second port has not opened.
func (h *Hub) Waiting() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for n, w := range h.waiting {
		if !w.first.isClosed() {
			out = append(out, n)
		}
	}
	return out
}

func (p *Port) isClosed() bool {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	return p.closed
}
