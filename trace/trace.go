package trace

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"
)

// Filter selects the packets to trace.
type Filter struct {
	Port     int          // port id, -1 for any
	From, To netip.Prefix // source and destination; invalid: any
}

// What is a step's kind.
type What uint8

const (
	Rx        What = iota + 1 // Port, Queue (A), Worker (B), frame length (C)
	Parse                     // Name: class; Text: refusal reason (if any)
	NotOurMAC                 // destination MAC is not the port's
	FIBPort                   // A: the port's default FIB
	Rule                      // A: rule id; Name: action; B: FIB after it
	Lookup                    // A: FIB, Addr: destination, B: next-hop id, Name: next-hop kind
	ECMP                      // A: member index, B: members, C: flow hash
	NextHop                   // Name: kind, Addr: gateway (if any), Port
	Local                     // Name: what happens (echo reply, unhandled)
	TTL                       // A: TTL/hop limit as received; B: 1 if expired
	Egress                    // Port, A: MTU, B: 1 if up
	MTU                       // A: packet length, B: MTU, Name: action
	Neigh                     // Port, Addr: target, Name: found/miss, MAC
	TxQueue                   // Port, A: queue
	ICMP                      // Name: ICMP kind, Addr: to
	GenRoute                  // generated packet: Addr dst, Name: next-hop kind, Port, B: next hop id
	Punt                      // Name: why (ARP, ND)
	Outcome                   // Name: counter that moved, A: by how much
	Control                   // the control plane's own path: Name says what, Port
)

var whatNames = [...]string{"", "rx", "parse", "not-our-mac", "fib-port", "rule", "lookup", "ecmp", "next-hop",
	"local", "ttl", "egress", "mtu", "neighbour", "tx-queue", "icmp", "generated-route", "punt", "outcome", "control"}

func (w What) String() string {
	if int(w) < len(whatNames) {
		return whatNames[w]
	}
	return "unknown"
}

// Step is one decision. Name and Text hold static strings only (counter
// and kind names), so that filling a step never allocates.
type Step struct {
	What    What
	Name    string
	Text    string
	Port    int
	A, B, C uint64
	Addr    netip.Addr
	MAC     [6]byte
	// At is the time since the record's start, in ns.
	At int64
}

// MaxSteps bounds one record's steps (a packet and the ICMP it made).
const MaxSteps = 32

// HeadLen is how many bytes of each traced frame are kept.
const HeadLen = 128

// Record is one traced packet.
type Record struct {
	Seq    int
	Worker int
	Start  int64 // ns since the epoch
	End    int64
	Len    int
	Head   [HeadLen]byte
	NHead  int
	Steps  [MaxSteps]Step
	NSteps int
	// Truncated counts steps that did not fit.
	Truncated int
}

// Add appends a step, stamped with the time since Start.
func (r *Record) Add(s Step) {
	if r.NSteps == MaxSteps {
		r.Truncated++
		return
	}
	s.At = time.Now().UnixNano() - r.Start
	r.Steps[r.NSteps] = s
	r.NSteps++
}

// Session is one armed trace.
type Session struct {
	f     Filter
	next  atomic.Int64
	recs  []Record
	done  []atomic.Bool
	Armed time.Time
}

// New arms a trace of the next n matching packets.
func New(n int, f Filter) *Session {
	return &Session{f: f, recs: make([]Record, n), done: make([]atomic.Bool, n), Armed: time.Now()}
}

// Filter returns the session's filter.
func (s *Session) Filter() Filter { return s.f }

// Want is the number of packets asked for.
func (s *Session) Want() int { return len(s.recs) }

// Full reports whether every record was claimed.
func (s *Session) Full() bool { return s.next.Load() >= int64(len(s.recs)) }

// Match reports whether a frame received on port passes the filter. It
// reads the Ethernet and IP headers only (one 802.1Q tag skipped); with a
// from or to prefix, non-IP frames do not match.
func (s *Session) Match(port uint16, d []byte) bool {
	if s.f.Port >= 0 && int(port) != s.f.Port {
		return false
	}
	if !s.f.From.IsValid() && !s.f.To.IsValid() {
		return true
	}
	if len(d) < 14 {
		return false
	}
	et, off := binary.BigEndian.Uint16(d[12:14]), 14
	if et == 0x8100 && len(d) >= 18 {
		et, off = binary.BigEndian.Uint16(d[16:18]), 18
	}
	var src, dst netip.Addr
	switch {
	case et == 0x0800 && len(d) >= off+20:
		src = netip.AddrFrom4([4]byte(d[off+12 : off+16]))
		dst = netip.AddrFrom4([4]byte(d[off+16 : off+20]))
	case et == 0x86dd && len(d) >= off+40:
		src = netip.AddrFrom16([16]byte(d[off+8 : off+24]))
		dst = netip.AddrFrom16([16]byte(d[off+24 : off+40]))
	default:
		return false
	}
	return (!s.f.From.IsValid() || s.f.From.Contains(src)) && (!s.f.To.IsValid() || s.f.To.Contains(dst))
}

// Claim returns the next free record, started now, or nil when the trace
// has all its packets. The caller fills it and calls Publish.
func (s *Session) Claim(worker int, frame []byte) *Record {
	if s.Full() {
		return nil
	}
	i := s.next.Add(1) - 1
	if i >= int64(len(s.recs)) {
		return nil
	}
	r := &s.recs[i]
	r.Seq = int(i) + 1
	r.Worker = worker
	r.Start = time.Now().UnixNano()
	r.Len = len(frame)
	r.NHead = copy(r.Head[:], frame)
	return r
}

// Publish makes a filled record visible to readers.
func (s *Session) Publish(r *Record) {
	r.End = time.Now().UnixNano()
	s.done[r.Seq-1].Store(true)
}

// Records returns copies of the published records, in claim order.
func (s *Session) Records() []Record {
	var out []Record
	for i := range s.recs {
		if s.done[i].Load() {
			out = append(out, s.recs[i])
		}
	}
	return out
}

// Claimed returns how many records were claimed (traced or being traced).
func (s *Session) Claimed() int { return int(min(s.next.Load(), int64(len(s.recs)))) }
