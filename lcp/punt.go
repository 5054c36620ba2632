package lcp

import (
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/ring"
	"golang.org/x/sys/unix"
)

// Producer is one worker's side of the punt path. Owned by that worker:
// Punt and Flush are called from it only.
type Producer struct {
	l   *LCP
	r   *ring.Ring[*mbuf.Mbuf]
	buf [Burst]*mbuf.Mbuf
	n   int
	// ctr counts punt_drop by port (ring full); written by the worker only.
	ctr []pmd.Counter
	// cache frees what the ring refused: the worker's cache (set by
	// SetCache), else the pools.
	cache *mbuf.Cache
}

// SetCache gives the producer its worker's mbuf cache, to free refused
// frames of the worker's own pool without touching the shared ring.
func (p *Producer) SetCache(c *mbuf.Cache) { p.cache = c }

// Punt takes ownership of m (a complete Ethernet frame, m.Port its input
// port) for the kernel interface of m.Port. It never blocks: the frame is
// buffered until Flush, and what the ring cannot take then is freed and
// counted as punt_drop.
func (p *Producer) Punt(m *mbuf.Mbuf) {
	if p.n == len(p.buf) {
		p.Flush()
	}
	p.buf[p.n] = m
	p.n++
}

// Pending reports how many frames wait for Flush.
func (p *Producer) Pending() int { return p.n }

// Flush ends a burst: one ring enqueue for everything buffered, drops
// counted per port, and a wake-up of the punt goroutine if it sleeps. Call
// it once per burst.
func (p *Producer) Flush() {
	if p.n == 0 {
		return
	}
	k := p.r.EnqueueBurst(p.buf[:p.n])
	if k < p.n {
		rest := p.buf[k:p.n]
		for _, m := range rest {
			i := min(int(m.Port), len(p.ctr)-1)
			p.ctr[i].Add(1)
		}
		p.freeRest(rest)
	}
	clear(p.buf[:p.n])
	p.n = 0
	if k > 0 && p.l.sleeping.Load() {
		p.l.wake()
	}
}

func (p *Producer) freeRest(ms []*mbuf.Mbuf) {
	for i, m := range ms {
		if p.cache != nil && m.PoolID() == p.cache.Pool().ID() {
			p.cache.Free(ms[i : i+1])
		} else {
			p.l.cfg.Pools[m.PoolID()].Free(ms[i : i+1])
		}
	}
}

// run is the punt goroutine: it moves punted frames from the rings to the
// TAPs and frames from the TAPs to the ports, and sleeps in poll(2) on the
// TAPs and its eventfd when there is nothing to do.
func (l *LCP) run() {
	defer close(l.done)
	for !l.stop.Load() {
		taps := *l.taps.Load()
		if l.step(taps) == 0 {
			l.sleeping.Store(true)
			// Re-check after announcing sleep: a producer that enqueued
			// before it saw sleeping is caught here.
			if l.ringsEmpty() {
				l.sleep(taps)
			}
			l.sleeping.Store(false)
		}
		l.epoch.Store(l.epoch.Load() + 1)
	}
	l.cfg.Sender.Flush()
}

// step does one round of work and returns how many frames it moved.
func (l *LCP) step(taps []*tap) int {
	n := 0
	for _, r := range l.rings {
		for {
			k := r.DequeueBurst(l.scratch[:])
			if k == 0 {
				break
			}
			l.toKernel(taps, l.scratch[:k])
			n += k
			if k < len(l.scratch) {
				break
			}
		}
	}
	for _, t := range taps {
		if t != nil {
			n += l.fromKernel(t)
		}
	}
	if n > 0 {
		l.cfg.Sender.Flush()
	}
	l.cfg.Sender.Drain()
	return n
}

func (l *LCP) ringsEmpty() bool {
	for _, r := range l.rings {
		if r.Len() > 0 {
			return false
		}
	}
	return true
}

// toKernel writes each frame to its port's TAP and frees it.
func (l *LCP) toKernel(taps []*tap, ms []*mbuf.Mbuf) {
	for _, m := range ms {
		c := &l.ctr[min(int(m.Port), l.cfg.MaxPorts)]
		var t *tap
		if int(m.Port) < len(taps) {
			t = taps[m.Port]
		}
		if t == nil {
			c.puntDrop.Add(1)
			continue
		}
		// One frame per write(2) on a TAP without a packet-info header.
		if _, err := unix.Write(t.fd, m.Data()); err != nil {
			c.puntDrop.Add(1)
			continue
		}
		c.punted.Add(1)
	}
	l.free(ms)
	clear(ms)
}

// fromKernel reads up to Burst frames from t and transmits them on t's
// port as they are.
func (l *LCP) fromKernel(t *tap) int {
	c := &l.ctr[t.port]
	n := 0
	one := l.one[:]
	for n < Burst {
		if l.cfg.Cache.Alloc(one) == 0 {
			// No mbuf: read the frame away (the kernel truncates a read
			// to the buffer), so that poll(2) does not spin on it.
			if k, err := unix.Read(t.fd, l.discard[:]); err != nil || k <= 0 {
				return n
			}
			c.injectDrop.Add(1)
			n++
			continue
		}
		m := one[0]
		room := m.Buf()[m.Offset():]
		k, err := unix.Read(t.fd, room)
		if err != nil || k <= 0 {
			l.cfg.Cache.Free(one)
			return n
		}
		n++
		if k < 14 || k >= len(room) {
			// Too short for Ethernet, or as long as the buffer: maybe
			// truncated.
			c.injectDrop.Add(1)
			l.cfg.Cache.Free(one)
			continue
		}
		m.SetLen(k)
		m.Port = t.port
		c.injected.Add(1)
		l.cfg.Sender.TransmitOne(t.port, m)
	}
	return n
}

// sleep waits in poll(2) for a TAP to have a frame or the eventfd to be
// written, at most 100 ms (a safety net: wake-ups are not lost, see run).
func (l *LCP) sleep(taps []*tap) {
	l.fds = l.fds[:0]
	l.fds = append(l.fds, unix.PollFd{Fd: int32(l.efd), Events: unix.POLLIN})
	for _, t := range taps {
		if t != nil {
			l.fds = append(l.fds, unix.PollFd{Fd: int32(t.fd), Events: unix.POLLIN})
		}
	}
	_, _ = unix.Poll(l.fds, 100)
	if l.fds[0].Revents&unix.POLLIN != 0 {
		var b [8]byte
		_, _ = unix.Read(l.efd, b[:])
	}
}
