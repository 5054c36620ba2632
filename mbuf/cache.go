package mbuf

import "sync/atomic"

// Cache is a per-worker stack of free mbufs in front of the pool's shared
// ring. It refills and flushes in bulk, so a worker touches the shared ring
// about once every CacheSize mbufs.
//
// A Cache is owned by one goroutine: Alloc, Free and Flush must not be called
// concurrently. Its counters are atomics so the pool can sum them while the
// owner runs.
type Cache struct {
	pool   *Pool
	objs   []*Mbuf // stack; len is the number held
	size   int     // refill target
	flush  int     // flush threshold
	held   atomic.Int32
	misses atomic.Uint64
}

// NewCache returns a cache for one worker. Caches live as long as the pool;
// Flush one to give its mbufs back.
func (p *Pool) NewCache() *Cache {
	c := &Cache{
		pool:  p,
		objs:  make([]*Mbuf, 0, 2*p.cacheSize+64),
		size:  p.cacheSize,
		flush: p.cacheSize + p.cacheSize/2,
	}
	p.mu.Lock()
	p.caches = append(p.caches, c)
	p.mu.Unlock()
	return c
}

// Pool returns the cache's pool.
func (c *Cache) Pool() *Pool { return c.pool }

// Alloc fills ms with fresh mbufs (data offset Pool.Fresh, length
// 0, metadata zeroed) and returns how many it got. Fewer than len(ms) means
// the pool is exhausted: it is counted, never blocks.
func (c *Cache) Alloc(ms []*Mbuf) int {
	want := len(ms)
	if len(c.objs) < want {
		c.refill(want)
	}
	n := min(want, len(c.objs))
	top := len(c.objs)
	copy(ms[:n], c.objs[top-n:top])
	c.objs = c.objs[:top-n]
	c.pool.prepare(ms[:n])
	if n < want {
		c.misses.Add(1)
	}
	c.setHeld(int32(len(c.objs)))
	return n
}

// refill tops the stack up to size+want from the shared ring.
func (c *Cache) refill(want int) {
	have := len(c.objs)
	room := min(c.size+want, cap(c.objs)) - have
	if room <= 0 {
		return
	}
	n := c.pool.free.DequeueBurst(c.objs[have : have+room])
	c.objs = c.objs[:have+n]
}

// Free returns mbufs to the cache, flushing the excess to the shared ring in
// bulk. The caller must own every mbuf in ms and not use them afterwards.
func (c *Cache) Free(ms []*Mbuf) {
	c.pool.release(ms)
	for len(ms) > 0 {
		room := cap(c.objs) - len(c.objs)
		if room == 0 {
			c.flushTo(c.size)
			continue
		}
		k := copy(c.objs[len(c.objs):cap(c.objs)], ms)
		c.objs = c.objs[:len(c.objs)+k]
		ms = ms[k:]
	}
	if len(c.objs) > c.flush {
		c.flushTo(c.size)
	}
	c.setHeld(int32(len(c.objs)))
}

// Flush returns every mbuf the cache holds to the shared ring.
func (c *Cache) Flush() {
	c.flushTo(0)
	c.setHeld(0)
}

func (c *Cache) flushTo(keep int) {
	if len(c.objs) <= keep {
		return
	}
	c.pool.free.EnqueueBurst(c.objs[keep:])
	c.objs = c.objs[:keep]
}

// Held returns the number of mbufs in the cache.
func (c *Cache) Held() int { return int(c.held.Load()) }

// Misses returns how many Alloc calls got fewer mbufs than asked.
func (c *Cache) Misses() uint64 { return c.misses.Load() }
