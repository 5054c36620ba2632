package xsk

// sys.go is the only file of this package that uses unsafe and raw system
// calls (besides program.go, which goes through cilium/ebpf). Every unsafe
// conversion below says why it is safe.

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MapRegion returns size bytes of anonymous, page-aligned, pre-faulted memory
// suitable as a UMEM region. The caller owns it and releases it with
// UnmapRegion after every Umem over it is closed.
func MapRegion(size int) ([]byte, error) {
	if size <= 0 || size%unix.Getpagesize() != 0 {
		return nil, fmt.Errorf("xsk: region size %d: %w (must be a positive multiple of the page size %d)", size, ErrInvalidConfig, unix.Getpagesize())
	}
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("xsk: mmap %d bytes for the UMEM: %w (check RLIMIT_MEMLOCK and free memory)", size, err)
	}
	return b, nil
}

// UnmapRegion releases memory returned by MapRegion.
func UnmapRegion(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}

// regionAddr returns the address of the first byte of b. The UMEM region is
// registered with the kernel by address; the caller keeps it mapped (and, if
// it is Go heap memory, alive and unmoved: Go's heap does not move objects)
// for the lifetime of the Umem, which the Umem documents.
func regionAddr(b []byte) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

func newXDPSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("xsk: socket(AF_XDP): %w (needs CAP_NET_RAW and a kernel with CONFIG_XDP_SOCKETS)", err)
	}
	return fd, nil
}

func setsockoptPtr(fd, level, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockoptPtr(fd, level, opt int, p unsafe.Pointer, size uintptr) (uintptr, error) {
	l := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return 0, e
	}
	return uintptr(l), nil
}

func registerUmem(fd int, region []byte, chunk, headroom uint32) error {
	reg := unix.XDPUmemReg{
		Addr:     uint64(regionAddr(region)),
		Len:      uint64(len(region)),
		Size:     chunk,
		Headroom: headroom,
	}
	// reg is a plain struct on the stack, read by the kernel during the call.
	err := setsockoptPtr(fd, unix.SOL_XDP, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg))
	runtime.KeepAlive(region)
	return err
}

func mmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	// off is a plain struct of uint64 fields matching struct xdp_mmap_offsets
	// (kernel >= 5.4 layout, with the flags offset).
	n, err := getsockoptPtr(fd, unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off))
	if err != nil {
		return off, fmt.Errorf("xsk: getsockopt(XDP_MMAP_OFFSETS): %w", err)
	}
	if n != unsafe.Sizeof(off) {
		return off, fmt.Errorf("xsk: getsockopt(XDP_MMAP_OFFSETS) returned %d bytes, want %d: kernel too old (need >= 5.10)", n, unsafe.Sizeof(off))
	}
	return off, nil
}

// mapRing mmaps one ring of n slots of type T at page offset pgoff and
// returns the index pointers, the slot slice and the mapping (to unmap).
//
// Safety: the mapping is MAP_SHARED kernel memory of at least off.Desc +
// n*sizeof(T) bytes, laid out by the kernel as described by off: the
// producer, consumer and flags words are 4-byte aligned u32s (the kernel
// puts each on its own cache line), and the slots array is aligned for T.
// The mapping stays valid until munmap in Socket.Close, after which none of
// these pointers is used (the ring is zeroed first).
func mapRing[T slot](fd int, pgoff int64, off unix.XDPRingOffset, n uint32) (prod, cons, flags *atomic.Uint32, slots []T, mem []byte, err error) {
	var zero T
	size := int(off.Desc) + int(n)*int(unsafe.Sizeof(zero))
	mem, err = unix.Mmap(fd, pgoff, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	base := unsafe.Pointer(unsafe.SliceData(mem))
	prod = (*atomic.Uint32)(unsafe.Add(base, off.Producer))
	cons = (*atomic.Uint32)(unsafe.Add(base, off.Consumer))
	flags = (*atomic.Uint32)(unsafe.Add(base, off.Flags))
	slots = unsafe.Slice((*T)(unsafe.Add(base, off.Desc)), n)
	return prod, cons, flags, slots, mem, nil
}

func bindXDP(fd, ifindex, queue int, flags uint16, sharedFD int) error {
	sa := &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	if sharedFD >= 0 {
		sa.SharedUmemFD = uint32(sharedFD)
	}
	return unix.Bind(fd, sa)
}

func zeroCopyInUse(fd int) (bool, error) {
	var opts uint32 // struct xdp_options { __u32 flags; }
	if _, err := getsockoptPtr(fd, unix.SOL_XDP, unix.XDP_OPTIONS, unsafe.Pointer(&opts), unsafe.Sizeof(opts)); err != nil {
		return false, fmt.Errorf("xsk: getsockopt(XDP_OPTIONS): %w", err)
	}
	return opts&unix.XDP_OPTIONS_ZEROCOPY != 0, nil
}

func xdpStatistics(fd int) (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	// st matches struct xdp_statistics (kernel >= 5.9 size); an older kernel
	// fills a prefix, which is fine.
	_, err := getsockoptPtr(fd, unix.SOL_XDP, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st))
	return st, err
}

// The kicks below go through unix.RawSyscall6, without telling the Go
// scheduler (entersyscall/exitsyscall), because they never block: both
// carry MSG_DONTWAIT, and an AF_XDP socket does bounded work for them (at
// most its TX budget of frames, or one busy-poll budget of the NAPI
// context) and returns EAGAIN/EBUSY/ENOBUFS rather than wait. Telling the
// scheduler buys nothing for such a call and costs the bookkeeping on every
// kick; worse, when sysmon finds a busy worker (which never reschedules) in
// the call after 10 ms, it takes the P away (and wakes another thread for
// it) besides asking the goroutine to yield, so the return goes through
// the slow path before the preemption itself. A raw call keeps the P: the
// preemption request reaches the worker at its next function call, and a
// stop-the-world waits at most for the call to return. Never use a raw call
// for anything that can block (pollFD below blocks: unix.Poll).

// kickTx asks the kernel to process the TX ring: sendto(fd, NULL, 0,
// MSG_DONTWAIT, NULL, 0). Raw, never blocks (see above); no allocation,
// errno returned as is.
func kickTx(fd int) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}

// kickRx asks the kernel to refill/poll RX (and busy-polls the NAPI context
// when preferred busy polling is on): recvfrom(fd, NULL, 0, MSG_DONTWAIT,
// NULL, NULL). Raw, never blocks (see above).
func kickRx(fd int) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}

// pollFD waits up to timeoutMs for events on fd and returns the revents.
func pollFD(fd int, events int16, timeoutMs int) (int16, error) {
	pfd := [1]unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		_, err := unix.Poll(pfd[:], timeoutMs)
		if err == unix.EINTR {
			continue
		}
		return pfd[0].Revents, err
	}
}

// ethtoolChannels is struct ethtool_channels.
type ethtoolChannels struct {
	Cmd           uint32
	MaxRx         uint32
	MaxTx         uint32
	MaxOther      uint32
	MaxCombined   uint32
	RxCount       uint32
	TxCount       uint32
	OtherCount    uint32
	CombinedCount uint32
}

// ifreqData is struct ifreq with the ifr_data member of its union.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte // rest of the union (struct ifreq is 40 bytes on 64-bit)
}

// getChannels runs ioctl(SIOCETHTOOL, ETHTOOL_GCHANNELS) for ifname.
func getChannels(ifname string) (ethtoolChannels, error) {
	ch := ethtoolChannels{Cmd: unix.ETHTOOL_GCHANNELS}
	if len(ifname) == 0 || len(ifname) >= unix.IFNAMSIZ {
		return ch, fmt.Errorf("xsk: interface name %q: %w", ifname, ErrInvalidConfig)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ch, err
	}
	defer unix.Close(fd)
	var ifr ifreqData
	copy(ifr.name[:], ifname)
	// ifr.data points at ch, a Go value kept alive across the call; the
	// kernel writes sizeof(struct ethtool_channels) bytes into it.
	ifr.data = unsafe.Pointer(&ch)
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&ch)
	if e != 0 {
		return ch, e
	}
	return ch, nil
}

func setsockoptInt(fd, level, opt, v int) error { return unix.SetsockoptInt(fd, level, opt, v) }
