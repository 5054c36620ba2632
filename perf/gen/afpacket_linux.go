package gen

// This file holds every use of unsafe and x/sys/unix for AF_PACKET in the
// package: the memory-mapped TPACKET_V2 transmit ring and TPACKET_V3
// receive ring. The rings are shared with the kernel; their status words
// are accessed with sync/atomic only (the kernel reads them with
// smp_load_acquire-style barriers and writes them after the frame data).

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	tpStatusKernel      = 0
	tpStatusUser        = 1
	tpStatusSendRequest = 1
	tpStatusSending     = 2
	tpStatusWrongFormat = 4

	txFrameSize = 2048
	txBlockSize = 1 << 16
	txBlockNr   = 64 // 2048 frames, 4 MiB
	tx2DataOff  = 32 // TPACKET2_HDRLEN - sizeof(sockaddr_ll)

	rxBlockSize = 1 << 20
	rxBlockNr   = 64
	// rxRetireMS is how long the kernel fills a block before it hands it
	// over partly full (tp_retire_blk_tov).
	rxRetireMS  = 2
	rxFrameSize = 2048
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func ifIndex(dev string) (int, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return 0, fmt.Errorf("interface %q: %w (see ip link; run inside its namespace)", dev, err)
	}
	return ifi.Index, nil
}

// txRing is one AF_PACKET socket with a TPACKET_V2 TX ring.
type txRing struct {
	fd    int
	mem   []byte
	nfr   int
	head  int
	dirty int // frames marked SEND_REQUEST since the last kick
}

func newTxRing(dev string, bypass bool) (*txRing, error) {
	idx, err := ifIndex(dev)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w (needs CAP_NET_RAW: run as root)", err)
	}
	r := &txRing{fd: fd}
	fail := func(what string, err error) (*txRing, error) {
		r.close()
		return nil, fmt.Errorf("AF_PACKET tx on %s: %s: %w", dev, what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return fail("TPACKET_V2", err)
	}
	if bypass {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return fail("PACKET_QDISC_BYPASS", err)
		}
	}
	// Room for the whole ring in flight: the send buffer bounds how many
	// frames the kernel holds before they complete.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 64<<20)
	req := unix.TpacketReq{Block_size: txBlockSize, Block_nr: txBlockNr, Frame_size: txFrameSize,
		Frame_nr: txBlockSize / txFrameSize * txBlockNr}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		return fail("PACKET_TX_RING", err)
	}
	r.nfr = int(req.Frame_nr)
	mem, err := unix.Mmap(fd, 0, txBlockSize*txBlockNr, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail("mmap", err)
	}
	r.mem = mem
	// Protocol 0: this socket only transmits, it receives nothing.
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: idx}); err != nil {
		return fail("bind", err)
	}
	return r, nil
}

func (r *txRing) close() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
	if r.fd >= 0 {
		_ = unix.Close(r.fd)
		r.fd = -1
	}
}

// status returns the frame's tp_status word. Safe: the offset is inside the
// mapping and 4-byte aligned (frames are 2048-byte aligned).
func (r *txRing) status(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[i*txFrameSize]))
}

// slot returns the data area of the next free frame, or nil if the kernel
// still owns it (the ring is full).
func (r *txRing) slot() []byte {
	st := atomic.LoadUint32(r.status(r.head))
	if st&(tpStatusSendRequest|tpStatusSending) != 0 {
		return nil
	}
	off := r.head*txFrameSize + tx2DataOff
	return r.mem[off : off+txFrameSize-tx2DataOff]
}

// commit hands the frame filled through slot (n bytes) to the kernel.
func (r *txRing) commit(n int) {
	base := r.head * txFrameSize
	h := r.mem[base : base+16]
	// tp_len and tp_snaplen (offsets 4 and 8); the kernel reads them after
	// it sees SEND_REQUEST, which the atomic store below publishes.
	*(*uint32)(unsafe.Pointer(&h[4])) = uint32(n)
	*(*uint32)(unsafe.Pointer(&h[8])) = uint32(n)
	atomic.StoreUint32(r.status(r.head), tpStatusSendRequest)
	r.head++
	if r.head == r.nfr {
		r.head = 0
	}
	r.dirty++
}

// kick asks the kernel to transmit every frame marked SEND_REQUEST without
// waiting for their completion.
func (r *txRing) kick() error {
	if r.dirty == 0 {
		return nil
	}
	r.dirty = 0
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(r.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	if e != 0 && e != unix.EAGAIN && e != unix.ENOBUFS {
		return fmt.Errorf("AF_PACKET tx kick: %w", e)
	}
	return nil
}

// rxRing is one AF_PACKET socket with a TPACKET_V3 RX ring.
type rxRing struct {
	fd    int
	mem   []byte
	block int
}

func newRxRing(dev string, fanout int) (*rxRing, error) {
	idx, err := ifIndex(dev)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w (needs CAP_NET_RAW: run as root)", err)
	}
	r := &rxRing{fd: fd}
	fail := func(what string, err error) (*rxRing, error) {
		r.close()
		return nil, fmt.Errorf("AF_PACKET rx on %s: %s: %w", dev, what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fail("TPACKET_V3", err)
	}
	// Kernel receive timestamps (tp_sec/tp_nsec) instead of coarse ones.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	req := unix.TpacketReq3{Block_size: rxBlockSize, Block_nr: rxBlockNr, Frame_size: rxFrameSize,
		Frame_nr: rxBlockSize / rxFrameSize * rxBlockNr, Retire_blk_tov: rxRetireMS}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail("PACKET_RX_RING", err)
	}
	mem, err := unix.Mmap(fd, 0, rxBlockSize*rxBlockNr, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail("mmap", err)
	}
	r.mem = mem
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: idx}); err != nil {
		return fail("bind", err)
	}
	if fanout > 0 {
		v := fanout&0xffff | unix.PACKET_FANOUT_HASH<<16
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, v); err != nil {
			return fail("PACKET_FANOUT", err)
		}
	}
	return r, nil
}

func (r *rxRing) close() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
	if r.fd >= 0 {
		_ = unix.Close(r.fd)
		r.fd = -1
	}
}

// u32 reads a native uint32 at off. Safe: callers pass offsets the kernel
// wrote inside the mapping, 4-byte aligned by TPACKET_ALIGN.
func (r *rxRing) u32(off int) uint32 { return *(*uint32)(unsafe.Pointer(&r.mem[off])) }

// next waits up to timeoutMS for a retired block and calls fn for each frame
// in it with the kernel receive time (ns, CLOCK_REALTIME); it returns the
// number of frames.
func (r *rxRing) next(timeoutMS int, fn func(frame []byte, rxRealNS int64)) (int, error) {
	base := r.block * rxBlockSize
	st := (*uint32)(unsafe.Pointer(&r.mem[base+8])) // h1.block_status
	if atomic.LoadUint32(st)&tpStatusUser == 0 {
		pfd := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN | unix.POLLERR}}
		if _, err := unix.Poll(pfd, timeoutMS); err != nil && !errors.Is(err, unix.EINTR) {
			return 0, fmt.Errorf("AF_PACKET rx poll: %w", err)
		}
		if atomic.LoadUint32(st)&tpStatusUser == 0 {
			return 0, nil
		}
	}
	num := int(r.u32(base + 12))
	off := base + int(r.u32(base+16))
	for i := 0; i < num; i++ {
		next := int(r.u32(off))
		sec, nsec := r.u32(off+4), r.u32(off+8)
		snap := int(r.u32(off + 12))
		mac := int(*(*uint16)(unsafe.Pointer(&r.mem[off+24])))
		if s, e := off+mac, off+mac+snap; e <= len(r.mem) && s < e {
			fn(r.mem[s:e], int64(sec)*1e9+int64(nsec))
		}
		if next == 0 {
			break
		}
		off += next
	}
	atomic.StoreUint32(st, tpStatusKernel)
	r.block++
	if r.block == rxBlockNr {
		r.block = 0
	}
	return num, nil
}

// drops returns and resets the kernel's count of frames the ring had no
// room for (PACKET_STATISTICS).
func (r *rxRing) drops() uint64 {
	s, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0
	}
	return uint64(s.Drops)
}

// monoNow reads CLOCK_MONOTONIC (the clock of bpf_ktime_get_ns) in ns.
func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func realNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &ts)
	return ts.Nano()
}

// pinThread binds the calling OS thread to cpu (the caller has locked the
// goroutine to its thread).
func pinThread(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to cpu %d: %w", cpu, err)
	}
	return nil
}

// mmsgHdr is struct mmsghdr (amd64/arm64 layout: msghdr then msg_len).
type mmsgHdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// mmsgTx is an AF_PACKET socket sending batches with sendmmsg: the kernel
// copies each frame into a linear skb. Unlike the TX ring (whose skbs
// point into the ring's pages), nothing has to be copied again when a
// veth hands the skb to its peer (skb_copy_ubufs).
type mmsgTx struct {
	fd   int
	bufs [][]byte
	iov  []unix.Iovec
	hdr  []mmsgHdr
}

func newMmsgTx(dev string, bypass bool, batch int) (*mmsgTx, error) {
	idx, err := ifIndex(dev)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w (needs CAP_NET_RAW: run as root)", err)
	}
	m := &mmsgTx{fd: fd}
	if bypass {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			m.close()
			return nil, fmt.Errorf("AF_PACKET tx on %s: PACKET_QDISC_BYPASS: %w", dev, err)
		}
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 64<<20)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: idx}); err != nil {
		m.close()
		return nil, fmt.Errorf("AF_PACKET tx on %s: bind: %w", dev, err)
	}
	m.bufs = make([][]byte, batch)
	m.iov = make([]unix.Iovec, batch)
	m.hdr = make([]mmsgHdr, batch)
	for i := range m.bufs {
		m.bufs[i] = make([]byte, txFrameSize)
		m.iov[i].Base = &m.bufs[i][0]
		m.hdr[i].hdr.Iov = &m.iov[i]
		m.hdr[i].hdr.Iovlen = 1
	}
	return m, nil
}

func (m *mmsgTx) close() {
	if m.fd >= 0 {
		_ = unix.Close(m.fd)
		m.fd = -1
	}
}

// send transmits frames 0..n-1 of bufs with lengths lens and returns how
// many the kernel took. Safe: hdr, iov and bufs are heap slices that stay
// referenced by m (Go's collector does not move them) for the whole call.
func (m *mmsgTx) send(lens []int) (int, error) {
	n := len(lens)
	for i, l := range lens {
		m.iov[i].Len = uint64(l)
	}
	sent := 0
	for sent < n {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(m.fd), uintptr(unsafe.Pointer(&m.hdr[sent])), uintptr(n-sent), 0, 0, 0)
		if e != 0 {
			if e == unix.EINTR || e == unix.EAGAIN || e == unix.ENOBUFS {
				if sent == 0 {
					return 0, nil
				}
				return sent, nil
			}
			return sent, fmt.Errorf("AF_PACKET sendmmsg: %w", e)
		}
		sent += int(r)
	}
	return sent, nil
}
