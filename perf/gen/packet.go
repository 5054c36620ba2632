package gen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Frame geometry. Sizes given to the generator are Ethernet frame sizes
// including the 4-byte FCS (the RFC 2544 convention: "64 bytes" is the
// minimum frame); the buffer handed to the kernel is Size-4 bytes.
const (
	FCSLen     = 4
	ethLen     = 14
	ip4Len     = 20
	ip6Len     = 40
	udpLen     = 8
	StampLen   = 18 // magic(1) stream(1) seq(8, LE) send time ns(8, LE)
	StampMagic = 0xF6

	MinSize = 64
	MaxSize = 1518
)

// IMIX is the "simple IMIX" frame-size pattern (7:4:1 of 64, 594, 1518).
var imixPattern = [12]int{64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 594, 64}

// IMIX returns the simple-IMIX size pattern (7×64, 4×594, 1×1518 bytes),
// interleaved so that every 12 consecutive packets follow the ratio.
func IMIX() []int { p := imixPattern; return p[:] }

// Spec describes the packets of one generator stream.
type Spec struct {
	IPv6             bool
	SrcMAC, DstMAC   [6]byte
	SrcIP, DstIP     netip.Addr
	SrcPort, DstPort uint16
	// Flows is the number of distinct 5-tuples; packet seq uses flow seq%Flows.
	// Flow f uses UDP source port SrcPort+f, source address SrcIP+f%SrcAddrs
	// and destination address DstIP+f%DstAddrs (added to the low 16 bits).
	Flows              int
	SrcAddrs, DstAddrs int
	// Sizes is the frame-size pattern (with FCS); packet seq uses
	// Sizes[seq%len(Sizes)]. One entry for a fixed size, IMIX() for IMIX.
	Sizes []int
}

// MinFrame returns the smallest frame size (with FCS) that holds the headers
// and the stamp for the family: 64 for IPv4, 84 for IPv6.
func MinFrame(ipv6 bool) int {
	if ipv6 {
		return ethLen + ip6Len + udpLen + StampLen + FCSLen
	}
	return ethLen + ip4Len + udpLen + StampLen + FCSLen
}

// ErrSpec is wrapped by every Spec validation error.
var ErrSpec = errors.New("invalid packet spec")

// template is one pre-built frame of one size with its partial checksums
// (computed with every per-packet field zeroed).
type template struct {
	frame  []byte // len = size - FCS
	ipSum  uint32 // IPv4 header partial sum (0 for IPv6)
	udpSum uint32 // pseudo header + UDP header + payload partial sum
}

// Builder writes stamped frames from templates. It is not safe for
// concurrent use; give each worker its own (NewBuilder is cheap).
type Builder struct {
	spec    Spec
	tmpl    []template // per Sizes entry
	l3      int        // IP header offset
	l4      int        // UDP header offset
	srcLo   uint16     // low 16 bits of SrcIP
	dstLo   uint16
	flows   uint64
	nsizes  uint64
	srcOff  int // offset of the src-addr low 16 bits
	dstOff  int
	maxSize int
}

// NewBuilder validates spec and pre-builds one template per size.
func NewBuilder(spec Spec) (*Builder, error) {
	if spec.Flows <= 0 {
		spec.Flows = 1
	}
	if spec.SrcAddrs <= 0 {
		spec.SrcAddrs = 1
	}
	if spec.DstAddrs <= 0 {
		spec.DstAddrs = 1
	}
	if spec.Flows > 1<<20 || spec.SrcAddrs > 65536 || spec.DstAddrs > 65536 {
		return nil, fmt.Errorf("%w: flows ≤ 1048576 and addrs ≤ 65536", ErrSpec)
	}
	if len(spec.Sizes) == 0 {
		spec.Sizes = []int{MinSize}
	}
	if !spec.SrcIP.IsValid() || !spec.DstIP.IsValid() {
		return nil, fmt.Errorf("%w: source and destination addresses are required", ErrSpec)
	}
	if spec.IPv6 != spec.SrcIP.Is6() || spec.IPv6 != spec.DstIP.Is6() || spec.SrcIP.Is4In6() {
		return nil, fmt.Errorf("%w: addresses %v, %v do not match the family (ipv6=%v)", ErrSpec, spec.SrcIP, spec.DstIP, spec.IPv6)
	}
	min := MinFrame(spec.IPv6)
	b := &Builder{spec: spec, l3: ethLen, flows: uint64(spec.Flows), nsizes: uint64(len(spec.Sizes))}
	if spec.IPv6 {
		b.l4 = ethLen + ip6Len
		b.srcOff, b.dstOff = ethLen+8+14, ethLen+24+14
	} else {
		b.l4 = ethLen + ip4Len
		b.srcOff, b.dstOff = ethLen+12+2, ethLen+16+2
	}
	src, dst := spec.SrcIP.AsSlice(), spec.DstIP.AsSlice()
	b.srcLo = binary.BigEndian.Uint16(src[len(src)-2:])
	b.dstLo = binary.BigEndian.Uint16(dst[len(dst)-2:])
	for _, size := range spec.Sizes {
		if size < min || size > MaxSize {
			return nil, fmt.Errorf("%w: frame size %d out of range %d..%d (with FCS)", ErrSpec, size, min, MaxSize)
		}
		if size > b.maxSize {
			b.maxSize = size
		}
		b.tmpl = append(b.tmpl, b.buildTemplate(size, src, dst))
	}
	return b, nil
}

// MaxLen is the largest buffer length Build writes.
func (b *Builder) MaxLen() int { return b.maxSize - FCSLen }

// Spec returns the normalised spec.
func (b *Builder) Spec() Spec { return b.spec }

func (b *Builder) buildTemplate(size int, src, dst []byte) template {
	f := make([]byte, size-FCSLen)
	copy(f[0:6], b.spec.DstMAC[:])
	copy(f[6:12], b.spec.SrcMAC[:])
	l4len := len(f) - b.l4
	if b.spec.IPv6 {
		binary.BigEndian.PutUint16(f[12:], 0x86DD)
		ip := f[ethLen:]
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(l4len))
		ip[6] = 17
		ip[7] = 64
		copy(ip[8:24], src)
		copy(ip[24:40], dst)
	} else {
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := f[ethLen:]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(len(f)-ethLen))
		ip[8] = 64
		ip[9] = 17
		copy(ip[12:16], src)
		copy(ip[16:20], dst)
	}
	udp := f[b.l4:]
	binary.BigEndian.PutUint16(udp[2:], b.spec.DstPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(l4len))
	// Payload after the stamp: a recognisable filler.
	for i := udpLen + StampLen; i < len(udp); i++ {
		udp[i] = byte(i)
	}
	// Zero the per-packet fields, then take the partial sums.
	f[b.srcOff], f[b.srcOff+1] = 0, 0
	f[b.dstOff], f[b.dstOff+1] = 0, 0
	var t template
	t.frame = f
	if !b.spec.IPv6 {
		t.ipSum = sum16(f[ethLen : ethLen+ip4Len])
	}
	// Pseudo header: addresses (zeroed low bits), protocol, UDP length.
	var ps uint32
	if b.spec.IPv6 {
		ps = sum16(f[ethLen+8 : ethLen+40])
	} else {
		ps = sum16(f[ethLen+12 : ethLen+20])
	}
	ps += 17 + uint32(l4len)
	t.udpSum = ps + sum16(udp)
	return t
}

// sum16 is the plain (unfolded) sum of big-endian 16-bit words; an odd
// trailing byte is padded with zero.
func sum16(b []byte) uint32 {
	var s uint32
	n := len(b) &^ 1
	for i := 0; i < n; i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)&1 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	return uint16(s)
}

// Build writes packet seq of stream into dst (len(dst) ≥ MaxLen) stamped with
// send time ts (ns, CLOCK_MONOTONIC) and returns its length. No allocation.
func (b *Builder) Build(dst []byte, stream uint8, seq, ts uint64) int {
	t := &b.tmpl[0]
	if b.nsizes > 1 {
		t = &b.tmpl[seq%b.nsizes]
	}
	n := copy(dst, t.frame)
	f := dst[:n]
	flow := seq % b.flows
	srcLo := b.srcLo + uint16(flow%uint64(b.spec.SrcAddrs))
	dstLo := b.dstLo + uint16(flow%uint64(b.spec.DstAddrs))
	sport := b.spec.SrcPort + uint16(flow)
	binary.BigEndian.PutUint16(f[b.srcOff:], srcLo)
	binary.BigEndian.PutUint16(f[b.dstOff:], dstLo)
	udp := f[b.l4:]
	binary.BigEndian.PutUint16(udp[0:], sport)
	st := udp[udpLen : udpLen+StampLen]
	st[0] = StampMagic
	st[1] = stream
	binary.LittleEndian.PutUint64(st[2:], seq)
	binary.LittleEndian.PutUint64(st[10:], ts)
	vs := uint32(srcLo) + uint32(dstLo)
	if !b.spec.IPv6 {
		binary.BigEndian.PutUint16(f[ethLen+10:], ^fold(t.ipSum+vs))
	}
	c := ^fold(t.udpSum + vs + uint32(sport) + sum16(st))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], c)
	return n
}

// Stamp is what a receiver reads back from a generated frame.
type Stamp struct {
	Stream uint8
	Seq    uint64
	TS     uint64 // send time, ns CLOCK_MONOTONIC
}

// ParseStamp finds the stamp in an Ethernet frame built by a Builder (or by
// the live-frames program). ok is false for anything else. It never panics.
func ParseStamp(f []byte) (s Stamp, ok bool) {
	if len(f) < ethLen+ip4Len+udpLen+StampLen {
		return s, false
	}
	var off int
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		ihl := int(f[ethLen]&0x0f) * 4
		if f[ethLen]>>4 != 4 || ihl < ip4Len || f[ethLen+9] != 17 {
			return s, false
		}
		off = ethLen + ihl + udpLen
	case 0x86DD:
		if f[ethLen]>>4 != 6 || f[ethLen+6] != 17 {
			return s, false
		}
		off = ethLen + ip6Len + udpLen
	default:
		return s, false
	}
	if len(f) < off+StampLen || f[off] != StampMagic {
		return s, false
	}
	s.Stream = f[off+1]
	s.Seq = binary.LittleEndian.Uint64(f[off+2:])
	s.TS = binary.LittleEndian.Uint64(f[off+10:])
	return s, true
}

// StampOffset is the offset of the stamp in a frame of the family (used by
// the live-frames program).
func StampOffset(ipv6 bool) int {
	if ipv6 {
		return ethLen + ip6Len + udpLen
	}
	return ethLen + ip4Len + udpLen
}

// Template returns a copy of the template frame for Sizes[i] with the
// per-packet fields of flow 0 filled (stamp seq 0, ts 0) and its checksums
// valid. Used to seed the live-frames generator.
func (b *Builder) Template(i int, stream uint8) []byte {
	f := make([]byte, len(b.tmpl[i].frame))
	save := b.nsizes
	b.nsizes = 1
	t0 := b.tmpl[0]
	b.tmpl[0] = b.tmpl[i]
	b.Build(f, stream, 0, 0)
	b.tmpl[0] = t0
	b.nsizes = save
	return f
}
