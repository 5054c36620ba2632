package pktgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Frame size limits, Ethernet header included, FCS excluded.
const (
	MinSize = 64
	MaxSize = 1518
	// MaxFlows bounds Config.Flows.
	MaxFlows = 1 << 20
	// portsPerAddr is how many flows share a source address.
	portsPerAddr = 4096
)

// Header lengths.
const (
	EthLen  = 14
	IPv4Len = 20
	IPv6Len = 40
	UDPLen  = 8
)

// Defaults for Config (unexported: package-level values must not be
// mutable from outside).
var (
	defaultSrc4   = netip.MustParseAddr("198.18.0.1")
	defaultDst4   = netip.MustParseAddr("198.19.0.1")
	defaultSrc6   = netip.MustParseAddr("2001:2::1")
	defaultDst6   = netip.MustParseAddr("2001:2:0:1::1")
	defaultSrcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	defaultDstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
)

const (
	DefaultSrcPort = 1024
	DefaultDstPort = 9 // discard
)

// ErrConfig is wrapped by every error of Config.Check.
var ErrConfig = errors.New("pktgen: invalid config")

// Config describes the frames to build. Zero fields take defaults.
type Config struct {
	// Size of each frame, Ethernet header included, no FCS: [64, 1518].
	// Default 64.
	Size int
	// IPv6 selects IPv6 instead of IPv4.
	IPv6 bool
	// Flows is the number of distinct flows, [1, MaxFlows]. Default 1.
	Flows int
	// SrcMAC and DstMAC; defaults 02:00:00:00:00:01 and :02.
	SrcMAC, DstMAC net.HardwareAddr
	// Src and Dst addresses of flow 0, of the family IPv6 selects.
	// Defaults 198.18.0.1 -> 198.19.0.1 and 2001:2::1 -> 2001:2:0:1::1.
	Src, Dst netip.Addr
	// SrcPort of flow 0 and DstPort of every flow. Defaults 1024 and 9.
	SrcPort, DstPort uint16
	// TTL / hop limit; default 64.
	TTL uint8
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Size == 0 {
		c.Size = MinSize
	}
	if c.Flows == 0 {
		c.Flows = 1
	}
	if c.SrcMAC == nil {
		c.SrcMAC = defaultSrcMAC
	}
	if c.DstMAC == nil {
		c.DstMAC = defaultDstMAC
	}
	if !c.Src.IsValid() {
		c.Src = defaultSrc4
		if c.IPv6 {
			c.Src = defaultSrc6
		}
	}
	if !c.Dst.IsValid() {
		c.Dst = defaultDst4
		if c.IPv6 {
			c.Dst = defaultDst6
		}
	}
	if c.SrcPort == 0 {
		c.SrcPort = DefaultSrcPort
	}
	if c.DstPort == 0 {
		c.DstPort = DefaultDstPort
	}
	if c.TTL == 0 {
		c.TTL = 64
	}
	return c
}

// Check returns the config with defaults applied, or an error saying what
// is wrong.
func (c Config) Check() (Config, error) {
	c = c.withDefaults()
	switch {
	case c.Size < MinSize || c.Size > MaxSize:
		return c, fmt.Errorf("%w: size %d out of range [%d, %d] (Ethernet header included, no FCS)", ErrConfig, c.Size, MinSize, MaxSize)
	case c.Flows < 1 || c.Flows > MaxFlows:
		return c, fmt.Errorf("%w: flows %d out of range [1, %d]", ErrConfig, c.Flows, MaxFlows)
	case len(c.SrcMAC) != 6 || len(c.DstMAC) != 6:
		return c, fmt.Errorf("%w: MAC addresses must be 6 bytes", ErrConfig)
	case c.IPv6 && (!c.Src.Is6() || c.Src.Is4In6() || !c.Dst.Is6() || c.Dst.Is4In6()):
		return c, fmt.Errorf("%w: IPv6 frames need IPv6 addresses (got %v -> %v)", ErrConfig, c.Src, c.Dst)
	case !c.IPv6 && (!c.Src.Is4() || !c.Dst.Is4()):
		return c, fmt.Errorf("%w: IPv4 frames need IPv4 addresses (got %v -> %v)", ErrConfig, c.Src, c.Dst)
	}
	return c, nil
}

// FlowSrc returns the source address and UDP source port of flow i.
func (c Config) FlowSrc(i int) (netip.Addr, uint16) {
	c = c.withDefaults()
	return addAddr(c.Src, uint32(i/portsPerAddr)), c.SrcPort + uint16(i%portsPerAddr)
}

// addAddr adds n to the low 32 bits of a.
func addAddr(a netip.Addr, n uint32) netip.Addr {
	b := a.As16()
	lo := binary.BigEndian.Uint32(b[12:]) + n
	binary.BigEndian.PutUint32(b[12:], lo)
	r := netip.AddrFrom16(b)
	if a.Is4() {
		return r.Unmap()
	}
	return r
}

// Write writes the frame of flow i into buf, which must hold Size bytes,
// and returns its length. It allocates nothing.
func (c Config) Write(buf []byte, i int) (int, error) {
	c, err := c.Check()
	if err != nil {
		return 0, err
	}
	if len(buf) < c.Size {
		return 0, fmt.Errorf("%w: buffer of %d bytes is smaller than the frame size %d", ErrConfig, len(buf), c.Size)
	}
	f := buf[:c.Size]
	clear(f)
	copy(f[0:6], c.DstMAC)
	copy(f[6:12], c.SrcMAC)
	src, sport := c.FlowSrc(i)
	var l4 []byte
	if c.IPv6 {
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
		ip := f[EthLen : EthLen+IPv6Len]
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(c.Size-EthLen-IPv6Len))
		ip[6] = 17
		ip[7] = c.TTL
		s, d := src.As16(), c.Dst.As16()
		copy(ip[8:24], s[:])
		copy(ip[24:40], d[:])
		l4 = f[EthLen+IPv6Len:]
	} else {
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := f[EthLen : EthLen+IPv4Len]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(c.Size-EthLen))
		binary.BigEndian.PutUint16(ip[4:], uint16(i)) // identification
		ip[6] = 0x40                                  // DF
		ip[8] = c.TTL
		ip[9] = 17
		s, d := src.As4(), c.Dst.As4()
		copy(ip[12:16], s[:])
		copy(ip[16:20], d[:])
		binary.BigEndian.PutUint16(ip[10:], Checksum(ip, 0))
		l4 = f[EthLen+IPv4Len:]
	}
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], c.DstPort)
	binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	// Payload: a recognisable pattern (flow index, then a byte ramp).
	pl := l4[UDPLen:]
	for j := range pl {
		pl[j] = byte(j)
	}
	if len(pl) >= 4 {
		binary.BigEndian.PutUint32(pl, uint32(i))
	}
	ck := Checksum(l4, PseudoHeaderSum(src, c.Dst, 17, len(l4)))
	if ck == 0 {
		ck = 0xffff // RFC 768: zero means "no checksum"
	}
	binary.BigEndian.PutUint16(l4[6:], ck)
	return c.Size, nil
}

// Template holds one frame per flow in one contiguous array (stride Size),
// so a receive loop copies from it without pointer chasing.
type Template struct {
	Size  int
	Flows int
	data  []byte
}

// Build makes the frames of every flow.
func Build(c Config) (*Template, error) {
	c, err := c.Check()
	if err != nil {
		return nil, err
	}
	t := &Template{Size: c.Size, Flows: c.Flows, data: make([]byte, c.Size*c.Flows)}
	for i := 0; i < c.Flows; i++ {
		if _, err := c.Write(t.data[i*c.Size:(i+1)*c.Size], i); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Frame returns the frame of flow i (0 <= i < Flows). The slice aliases
// the template and must not be modified.
func (t *Template) Frame(i int) []byte { return t.data[i*t.Size : (i+1)*t.Size : (i+1)*t.Size] }

// Checksum returns the Internet checksum (RFC 1071) of b, starting from
// the 32-bit partial sum initial (e.g. a pseudo-header sum).
func Checksum(b []byte, initial uint32) uint16 {
	s := uint64(initial)
	for len(b) >= 2 {
		s += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// PseudoHeaderSum returns the unfolded sum of the IPv4 or IPv6 pseudo
// header for a transport segment of length n.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, n int) uint32 {
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		add(a[:])
		add(b[:])
	} else {
		a, b := src.As16(), dst.As16()
		add(a[:])
		add(b[:])
	}
	s += uint32(proto) + uint32(n&0xffff) + uint32(n>>16)
	return s
}
