package mbuf

import "unsafe"

// Flags describe an mbuf's contents. The low byte is reserved for drivers and
// parsers; fwd/ defines its own flags from FlagUser up.
type Flags uint16

const (
	// FlagVLAN: the frame carried an 802.1Q tag (VLANTCI holds it).
	FlagVLAN Flags = 1 << iota
	// FlagIPv4 / FlagIPv6: the parser found that L3 header at L3Off.
	FlagIPv4
	FlagIPv6
	// FlagCopied: a driver had to copy the payload between memories
	// (AF_XDP across different UMEMs, afpacket).
	FlagCopied
	// FlagHashValid: Hash holds a flow hash of the packet.
	FlagHashValid

	// FlagTxHash (with FlagHashValid): Hash is the flow hash the egress
	// port asked for (pmd.TxHasher: a lagg's member choice) of the frame
	// as it is now, computed by the pipeline when it rewrote the frame.
	// Whoever changes the hashed headers or sends the frame elsewhere
	// clears it; parsing a received frame clears it. Bit 5 is fwd/pkt's
	// FlagFragment.
	FlagTxHash Flags = 1 << 6

	// FlagUser is the first flag free for packages above the drivers.
	FlagUser Flags = 1 << 8
)

// Mbuf is a packet buffer: the metadata of one fixed-size buffer of a Pool.
//
// The struct lives in memory the pool mmaps outside the Go heap, and the
// buffer it describes lives in the pool's region (also off-heap, or the
// caller's UMEM). A *Mbuf is therefore a stable pointer the garbage collector
// neither scans nor moves, and rings and bursts of *Mbuf cost it nothing.
//
// Ownership: exactly one goroutine owns an mbuf at a time; handing it over
// through a ring or a driver transfers ownership. A free mbuf must not be
// touched; in checked pools that is caught (see Config.Checked).
//
// Layout of the buffer: [0, off) headroom, [off, off+len) data,
// [off+len, bufLen) tailroom. Invariant: off+len <= bufLen.
type Mbuf struct {
	buf    unsafe.Pointer // first byte of the buffer, off-heap
	idx    uint32         // index in the pool
	bufLen uint32         // the pool's buffer size
	off    uint16         // data offset from buf
	len    uint16         // data length

	// Port and Queue the packet arrived on.
	Port  uint16
	Queue uint16
	// FIB is the routing table the packet uses (FreeBSD M_SETFIB).
	FIB   uint16
	Flags Flags
	// Hash is the flow hash (valid with FlagHashValid).
	Hash uint32

	// Per-packet metadata of the pipeline, written by the parser and fwd/.
	L3Off     uint16 // L3 header offset from the start of data
	L4Off     uint16 // L4 header offset from the start of data
	EtherType uint16 // after any VLAN tag
	VLANTCI   uint16 // with FlagVLAN
	NextHop   uint32 // FIB next-hop id
	OutPort   uint16 // egress port chosen by fwd/
	L4Proto   uint8  // IP protocol / next header of the transport
	state     uint8  // checked pools: stateFree or stateInUse
	poolID    uint16 // Config.ID of the owning pool
	home      uint16 // data offset when allocated (Pool.Fresh)

	_ [12]byte // reserved; keeps the struct one cache line
}

// Size of Mbuf in bytes: one cache line. Checked by a test.
const mbufSize = 64

const (
	stateFree  = 1
	stateInUse = 2
)

// PoolID returns the Config.ID of the pool the mbuf belongs to, so that code
// holding mbufs of several pools (a transmit path copying between UMEMs) can
// free each to its own pool.
func (m *Mbuf) PoolID() uint16 { return m.poolID }

// Index returns the mbuf's index in its pool, in [0, Pool.Count()).
func (m *Mbuf) Index() uint32 { return m.idx }

// Len returns the data length.
func (m *Mbuf) Len() int { return int(m.len) }

// Offset returns the data offset from the start of the buffer.
func (m *Mbuf) Offset() int { return int(m.off) }

// Headroom returns the bytes free in front of the data.
func (m *Mbuf) Headroom() int { return int(m.off) }

// Tailroom returns the bytes free after the data.
func (m *Mbuf) Tailroom() int { return int(m.bufLen) - int(m.off) - int(m.len) }

// Data returns the packet bytes. The slice aliases the buffer and is valid
// while the caller owns the mbuf.
func (m *Mbuf) Data() []byte {
	checkInUse(m)
	// Safe: off+len <= bufLen and buf points at bufLen bytes of off-heap
	// memory that lives as long as the pool.
	return unsafe.Slice((*byte)(unsafe.Add(m.buf, uintptr(m.off))), int(m.len))
}

// Buf returns the whole buffer, headroom and tailroom included.
func (m *Mbuf) Buf() []byte {
	checkInUse(m)
	return unsafe.Slice((*byte)(m.buf), int(m.bufLen))
}

// SetData sets the data window to [off, off+n) of the buffer. It reports
// false, changing nothing, if the window does not fit. Drivers use it when a
// device reports where it wrote a frame.
func (m *Mbuf) SetData(off, n int) bool {
	if off < 0 || n < 0 || off+n > int(m.bufLen) {
		return false
	}
	m.off, m.len = uint16(off), uint16(n)
	return true
}

// SetLen sets the data length, keeping the offset. It reports false,
// changing nothing, if the data would not fit.
func (m *Mbuf) SetLen(n int) bool { return m.SetData(int(m.off), n) }

// Prepend grows the data by n bytes at the front and returns the new first n
// bytes, or nil (changing nothing) if the headroom is smaller than n.
func (m *Mbuf) Prepend(n int) []byte {
	if n < 0 || n > int(m.off) {
		return nil
	}
	m.off -= uint16(n)
	m.len += uint16(n)
	return m.Data()[:n]
}

// Append grows the data by n bytes at the end and returns those bytes, or nil
// (changing nothing) if the tailroom is smaller than n.
func (m *Mbuf) Append(n int) []byte {
	if n < 0 || n > m.Tailroom() {
		return nil
	}
	m.len += uint16(n)
	d := m.Data()
	return d[len(d)-n:]
}

// Adj removes n bytes from the front of the data (m_adj with n > 0). It
// reports false, changing nothing, if the data is shorter than n.
func (m *Mbuf) Adj(n int) bool {
	if n < 0 || n > int(m.len) {
		return false
	}
	m.off += uint16(n)
	m.len -= uint16(n)
	return true
}

// Trim removes n bytes from the end of the data (m_adj with n < 0). It
// reports false, changing nothing, if the data is shorter than n.
func (m *Mbuf) Trim(n int) bool {
	if n < 0 || n > int(m.len) {
		return false
	}
	m.len -= uint16(n)
	return true
}

// reset gives a freshly allocated mbuf its defaults.
func (m *Mbuf) reset() {
	m.off = m.home
	m.len = 0
	m.Port, m.Queue, m.FIB, m.Flags, m.Hash = 0, 0, 0, 0, 0
	m.L3Off, m.L4Off, m.EtherType, m.VLANTCI = 0, 0, 0, 0
	m.NextHop, m.OutPort, m.L4Proto = 0, 0, 0
}
