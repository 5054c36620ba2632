package afpacket

import (
	"errors"
	"fmt"

	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file holds every use of x/sys/unix and unsafe in the driver: the
// AF_PACKET socket, its TPACKET_V2 rings mapped into our memory, and the
// status words the kernel and we hand frames over with.

// ringParams are the geometry of one ring (RX and TX are the same).
type ringParams struct {
	frameSize, frames, blockSize int
}

func (r ringParams) bytes() int { return r.frameSize * r.frames }

// txOff is where a transmitted frame's data starts in its ring frame
// without PACKET_TX_HAS_OFF: TPACKET2_HDRLEN - sizeof(sockaddr_ll), i.e.
// right after the 32-byte tpacket2_hdr.
const txOff = unix.SizeofTpacket2Hdr

// sock is one AF_PACKET socket with its RX and TX rings. The fields are
// set before the sock is published to the queue's poller and never change;
// rxHead and txHead are the poller's cursors (it is their only writer).
type sock struct {
	fd     int
	mem    []byte // RX ring, then TX ring; MAP_SHARED with the kernel
	rp     ringParams
	rxBase int // offset of the RX ring in mem (0)
	txBase int // offset of the TX ring in mem
	rxHead int
	txHead int
}

// hdr returns the tpacket2_hdr at byte offset off of mem.
//
// Safe: off is base + i*frameSize with i < frames, so the 32-byte header
// lies inside mem (frameSize >= minFrameSize > 32, checked at Open); mem is
// an mmap of the socket's rings, page-aligned (so each header is 16-byte
// aligned, TPACKET_ALIGNMENT), outside the Go heap, and unmapped only after
// the poller has let go of the sock (see queue.busy).
func (s *sock) hdr(off int) *unix.Tpacket2Hdr {
	return (*unix.Tpacket2Hdr)(unsafe.Pointer(&s.mem[off]))
}

// Status words and lengths are shared with the kernel: atomic only. An
// atomic store is a release (the kernel sees the frame's bytes we wrote
// before it), an atomic load an acquire (we see the bytes the kernel wrote
// before it set TP_STATUS_USER).
func loadStatus(h *unix.Tpacket2Hdr) uint32     { return atomic.LoadUint32(&h.Status) }
func storeStatus(h *unix.Tpacket2Hdr, v uint32) { atomic.StoreUint32(&h.Status, v) }
func loadSnap(h *unix.Tpacket2Hdr) (length, snap uint32, mac uint16) {
	// Plain-width fields written by the kernel before the status release.
	return atomic.LoadUint32(&h.Len), atomic.LoadUint32(&h.Snaplen), uint16(atomic.LoadUint32((*uint32)(unsafe.Pointer(&h.Mac))))
}
func storeLen(h *unix.Tpacket2Hdr, n int) {
	atomic.StoreUint32(&h.Len, uint32(n))
	atomic.StoreUint32(&h.Snaplen, uint32(n))
}

// vlanOf returns the VLAN tag the kernel stripped, if any.
func vlanOf(h *unix.Tpacket2Hdr, status uint32) (tci, tpid uint16, ok bool) {
	if status&unix.TP_STATUS_VLAN_VALID == 0 {
		return 0, 0, false
	}
	w := atomic.LoadUint32((*uint32)(unsafe.Pointer(&h.Vlan_tci)))
	tci, tpid = uint16(w), uint16(w>>16)
	if status&unix.TP_STATUS_VLAN_TPID_VALID == 0 || tpid == 0 {
		tpid = 0x8100
	}
	return tci, tpid, true
}

// kick asks the kernel to send the frames marked TP_STATUS_SEND_REQUEST,
// without blocking. A raw syscall: unix.Sendto would allocate for the
// empty address. It returns the errno, 0 on success.
func kick(fd int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sockOpts are what openSock needs besides the geometry.
type sockOpts struct {
	ifindex int
	promisc bool
	bypass  bool
	// fanout: 0 for none; otherwise the group id to join, or -1 to create
	// a group with a kernel-assigned unique id (returned by openSock).
	fanout int
}

// openSock makes a socket bound to ifindex with mapped RX and TX rings. It
// returns the fanout group id it joined or created (0 if none). On error
// it has released everything.
func openSock(rp ringParams, o sockOpts) (s *sock, group int, err error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, 0, fmt.Errorf("AF_PACKET socket: %w (needs CAP_NET_RAW)", err)
		}
		return nil, 0, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	s = &sock{fd: fd, rp: rp}
	defer func() {
		if err != nil {
			s.close()
			s = nil
		}
	}()
	setInt := func(opt, v int, what string) error {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, opt, v); err != nil {
			return fmt.Errorf("setsockopt %s: %w", what, err)
		}
		return nil
	}
	if err = setInt(unix.PACKET_VERSION, unix.TPACKET_V2, "PACKET_VERSION TPACKET_V2"); err != nil {
		return
	}
	// Skip malformed TX frames (marked TP_STATUS_WRONG_FORMAT) instead of
	// stopping the ring at them.
	if err = setInt(unix.PACKET_LOSS, 1, "PACKET_LOSS"); err != nil {
		return
	}
	if err = setInt(unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING (kernel >= 4.20)"); err != nil {
		return
	}
	if o.bypass {
		if err = setInt(unix.PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS"); err != nil {
			return
		}
	}
	req := unix.TpacketReq{
		Block_size: uint32(rp.blockSize), Block_nr: uint32(rp.bytes() / rp.blockSize),
		Frame_size: uint32(rp.frameSize), Frame_nr: uint32(rp.frames),
	}
	if err = unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		err = fmt.Errorf("setsockopt PACKET_RX_RING %+v: %w", req, err)
		return
	}
	if err = unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		err = fmt.Errorf("setsockopt PACKET_TX_RING %+v: %w", req, err)
		return
	}
	s.mem, err = unix.Mmap(fd, 0, 2*rp.bytes(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		err = fmt.Errorf("mmap %d bytes of rings: %w (lower frames=)", 2*rp.bytes(), err)
		return
	}
	s.txBase = rp.bytes()
	if err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: o.ifindex}); err != nil {
		err = fmt.Errorf("bind to ifindex %d: %w", o.ifindex, err)
		return
	}
	if o.promisc {
		mr := unix.PacketMreq{Ifindex: int32(o.ifindex), Type: unix.PACKET_MR_PROMISC}
		if err = unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
			err = fmt.Errorf("promiscuous mode: %w", err)
			return
		}
	}
	if o.fanout != 0 {
		mode := unix.PACKET_FANOUT_HASH | unix.PACKET_FANOUT_FLAG_DEFRAG
		id := o.fanout
		if id < 0 {
			id, mode = 0, mode|unix.PACKET_FANOUT_FLAG_UNIQUEID
		}
		if err = setInt(unix.PACKET_FANOUT, id|mode<<16, "PACKET_FANOUT hash"); err != nil {
			return
		}
		v, gerr := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
		if gerr != nil {
			err = fmt.Errorf("getsockopt PACKET_FANOUT: %w", gerr)
			return
		}
		group = v & 0xffff
	}
	return s, group, nil
}

// kernelDrops reads and resets the socket's drop counter (packets the
// kernel could not place in a full RX ring).
func (s *sock) kernelDrops() uint64 {
	st, err := unix.GetsockoptTpacketStats(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0
	}
	return uint64(st.Drops)
}

// close unmaps the rings and closes the socket. The poller must have let
// go of s.
func (s *sock) close() {
	if s.mem != nil {
		_ = unix.Munmap(s.mem)
		s.mem = nil
	}
	if s.fd >= 0 {
		_ = unix.Close(s.fd)
		s.fd = -1
	}
}
