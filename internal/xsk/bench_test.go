package xsk

import (
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// naiveRing is the asavie/xdp way of driving a ring (made race-free with
// atomics): read both indexes on every call, no cached opposite index.
type naiveRing struct {
	prod, cons *atomic.Uint32
	slots      []Desc
	mask       uint32
}

func (r *naiveRing) produce(in []Desc) int {
	p, c := r.prod.Load(), r.cons.Load()
	free := uint32(len(r.slots)) - (p - c)
	n := min(uint32(len(in)), free)
	for i := range n {
		r.slots[(p+i)&r.mask] = in[i]
	}
	r.prod.Store(p + n)
	return int(n)
}

func (r *naiveRing) consume(out []Desc) int {
	p, c := r.prod.Load(), r.cons.Load()
	n := min(uint32(len(out)), p-c)
	for i := range n {
		out[i] = r.slots[(c+i)&r.mask]
	}
	r.cons.Store(c + n)
	return int(n)
}

// BenchmarkRingBurst64 moves bursts of 64 descriptors through a 2048-slot
// ring, ns/op per descriptor: this package's ring against the naive one in
// the same run. One goroutine plays both sides (produce a burst, consume
// it): on a shared, oversubscribed 2-vCPU machine a two-goroutine spin test
// measures the scheduler, not the ring. This shows the per-burst index cost;
// across cores the cached index also saves a cache-line transfer per burst.
func BenchmarkRingBurst64(b *testing.B) {
	run := func(b *testing.B, produce, consume func([]Desc) int) {
		var in, out [64]Desc
		for i := range in {
			in[i].Addr = uint64(i) << 11
		}
		for done := 0; done < b.N; done += 64 {
			produce(in[:])
			consume(out[:])
		}
	}
	b.Run("cached", func(b *testing.B) {
		mem := newFakeRing[Desc](2048, 0)
		p, c := mem.producer(), mem.consumer()
		b.ReportAllocs()
		run(b, p.produce, c.consume)
	})
	b.Run("naive", func(b *testing.B) {
		mem := newFakeRing[Desc](2048, 0)
		p := &naiveRing{&mem.prod, &mem.cons, mem.slots, 2047}
		c := &naiveRing{&mem.prod, &mem.cons, mem.slots, 2047}
		b.ReportAllocs()
		run(b, p.produce, c.consume)
	})
}

// BenchmarkKickCost is the cost of a system call that returns at once
// (recvfrom MSG_DONTWAIT on an empty UDP socket: EAGAIN) made raw, as the
// kicks are, and through the scheduler-aware unix.Syscall6 (entersyscall,
// exitsyscall), in the same run: the difference is what each kick saves.
func BenchmarkKickCost(b *testing.B) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Skip(err)
	}
	defer unix.Close(fd)
	for _, c := range []struct {
		name string
		call func(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, uintptr, unix.Errno)
	}{{"raw", unix.RawSyscall6}, {"scheduler", unix.Syscall6}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, e := c.call(unix.SYS_RECVFROM, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0); e != unix.EAGAIN {
					b.Fatal(e)
				}
			}
		})
	}
}
