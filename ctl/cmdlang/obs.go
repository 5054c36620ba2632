package cmdlang

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The observability commands (issue 16): packet trace, capture, the event
// stream and the per-worker load. Monitor and Capture stream: the daemon
// answers them with many frames on the connection (ctlsock's stream mode)
// until the client stops; see IsStream.

// Monitor is "monitor [routes|neigh|ports|rules|lcp|config|all]...": stream
// changes as they are published. No kind means all.
type Monitor struct {
	Where
	// Kinds are the event kinds asked for, sorted, without duplicates;
	// empty means all.
	Kinds []string `json:"kinds,omitempty"`
}

// MonitorKinds are the kinds monitor accepts (besides all).
var MonitorKinds = []string{"config", "lcp", "neigh", "ports", "routes", "rules"}

// Direction selects received or transmitted frames for capture.
type Direction uint8

const (
	DirBoth Direction = iota
	DirRx
	DirTx
)

func (d Direction) String() string {
	switch d {
	case DirRx:
		return "rx"
	case DirTx:
		return "tx"
	}
	return "both"
}

// MarshalText renders rx, tx or both.
func (d Direction) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText accepts what MarshalText writes.
func (d *Direction) UnmarshalText(b []byte) error {
	return unmarshalEnum(d, b, "direction", map[string]Direction{"rx": DirRx, "tx": DirTx, "both": DirBoth})
}

// Capture limits.
const (
	MaxSnaplen      = 65535
	DefaultSnaplen  = 65535
	MaxCaptureCount = 1 << 30
	MaxCaptureTime  = 24 * time.Hour
)

// Capture is "capture PORT [rx|tx|both] [count N] [snaplen N] [duration D]
// [pcapng]": stream the port's frames as pcap (or pcapng). fwdctl's -w
// FILE|- says where they go; the daemon only streams them.
type Capture struct {
	Where
	Port     string        `json:"port"`
	Dir      Direction     `json:"dir"`
	Count    int           `json:"count,omitempty"`    // 0: unlimited
	Snaplen  int           `json:"snaplen,omitempty"`  // 0: DefaultSnaplen
	Duration time.Duration `json:"duration,omitempty"` // 0: until stopped
	PcapNG   bool          `json:"pcapng,omitempty"`
}

// TraceAdd is "trace add N [port P] [from PFX] [to PFX]": record every
// decision for the next N matching packets.
type TraceAdd struct {
	Where
	Count int          `json:"count"`
	Port  string       `json:"port,omitempty"`
	From  netip.Prefix `json:"from,omitzero"`
	To    netip.Prefix `json:"to,omitzero"`
}

// TraceClear is "trace clear": disarm and forget the recorded packets.
type TraceClear struct{ Where }

// ShowTrace is "show trace".
type ShowTrace struct{ Where }

// ShowWorkers is "show workers": per worker polls, polls that found work,
// packets per poll (VPP's vectors/call).
type ShowWorkers struct{ Where }

// MaxTrace bounds trace add N.
const MaxTrace = 1024

func (*Monitor) Verb() string     { return "monitor" }
func (*Capture) Verb() string     { return "capture" }
func (*TraceAdd) Verb() string    { return "trace add" }
func (*TraceClear) Verb() string  { return "trace clear" }
func (*ShowTrace) Verb() string   { return "show trace" }
func (*ShowWorkers) Verb() string { return "show workers" }

func (c *Monitor) String() string {
	if len(c.Kinds) == 0 {
		return "monitor"
	}
	return "monitor " + strings.Join(c.Kinds, " ")
}

func (c *Capture) String() string {
	s := "capture " + c.Port + " " + c.Dir.String()
	if c.Count > 0 {
		s += " count " + strconv.Itoa(c.Count)
	}
	if c.Snaplen > 0 {
		s += " snaplen " + strconv.Itoa(c.Snaplen)
	}
	if c.Duration > 0 {
		s += " duration " + c.Duration.String()
	}
	if c.PcapNG {
		s += " pcapng"
	}
	return s
}

func (c *TraceAdd) String() string {
	s := "trace add " + strconv.Itoa(c.Count)
	if c.Port != "" {
		s += " port " + c.Port
	}
	if c.From.IsValid() {
		s += " from " + c.From.String()
	}
	if c.To.IsValid() {
		s += " to " + c.To.String()
	}
	return s
}

func (*TraceClear) String() string  { return "trace clear" }
func (*ShowTrace) String() string   { return "show trace" }
func (*ShowWorkers) String() string { return "show workers" }

// IsStream reports whether c is answered by a stream of frames (monitor,
// capture) rather than one response.
func IsStream(c Command) bool {
	if iv, ok := c.(*InVnet); ok {
		c = iv.Cmd
	}
	switch c.(type) {
	case *Monitor, *Capture:
		return true
	}
	return false
}

// IsObs reports whether c is one of the observability commands that
// neither changes the configuration nor streams (trace add/clear, show
// trace, show workers): executors answer them like queries.
func IsObs(c Command) bool {
	if iv, ok := c.(*InVnet); ok {
		c = iv.Cmd
	}
	switch c.(type) {
	case *TraceAdd, *TraceClear, *ShowTrace, *ShowWorkers:
		return true
	}
	return false
}

func (p *parser) monitor() Command {
	c := &Monitor{Where: p.at}
	all := false
	for p.more() {
		w := p.next()
		k := w.text
		switch k {
		case "route":
			k = "routes"
		case "port":
			k = "ports"
		case "rule":
			k = "rules"
		case "neighbours", "neighbors":
			k = "neigh"
		}
		switch {
		case k == "all":
			all = true
		case slices.Contains(MonitorKinds, k):
			if !slices.Contains(c.Kinds, k) {
				c.Kinds = append(c.Kinds, k)
			}
		default:
			p.unexpected(w, "routes, neigh, ports, rules, lcp, config or all")
			return nil
		}
	}
	if all {
		c.Kinds = nil
	}
	slices.Sort(c.Kinds)
	return c
}

func (p *parser) capture() Command {
	c := &Capture{Where: p.at}
	w := p.next()
	if w == nil {
		p.fail(nil, "missing the port to capture on (capture PORT [rx|tx|both] [count N] [snaplen N] [duration D])")
		return nil
	}
	c.Port = p.name(w, "port")
	for p.more() {
		w := p.next()
		switch w.text {
		case "rx", "tx", "both":
			if p.once(w, "direction") {
				_ = c.Dir.UnmarshalText([]byte(w.text))
			}
		case "count":
			if p.once(w, "count") {
				c.Count = p.num(w, "a packet count", 1, MaxCaptureCount)
			}
		case "snaplen":
			if p.once(w, "snaplen") {
				c.Snaplen = p.num(w, "a snapshot length in bytes", 64, MaxSnaplen)
			}
		case "duration":
			if p.once(w, "duration") {
				v := p.value(w, "a duration (10s, 1m30s)")
				if v == nil {
					return nil
				}
				d, err := time.ParseDuration(v.text)
				if err != nil || d <= 0 || d > MaxCaptureTime || d%time.Millisecond != 0 {
					p.fail(v, "duration %q: want a positive duration in whole milliseconds up to 24h, like 10s or 1m30s", v.text)
					return nil
				}
				c.Duration = d
			}
		case "pcapng":
			if p.once(w, "pcapng") {
				c.PcapNG = true
			}
		default:
			p.unexpected(w, "rx, tx, both, count N, snaplen N, duration D or pcapng")
		}
	}
	if p.err != nil {
		return nil
	}
	return c
}

func (p *parser) trace() Command {
	switch p.sub("trace", "add", "clear") {
	case "add":
		c := &TraceAdd{Where: p.at}
		w := p.next()
		if w == nil {
			p.fail(nil, "missing how many packets to trace (trace add N [port P] [from PFX] [to PFX]), N from 1 to %d", MaxTrace)
			return nil
		}
		c.Count = p.numWord(nil, w, "a packet count", 1, MaxTrace)
		for p.more() {
			w := p.next()
			switch w.text {
			case "port":
				if p.once(w, "port") {
					c.Port = p.name(p.value(w, "a port name"), "port")
				}
			case "from":
				if p.once(w, "from") {
					c.From = p.rulePrefix(w)
				}
			case "to":
				if p.once(w, "to") {
					c.To = p.rulePrefix(w)
				}
			default:
				p.unexpected(w, "port P, from PFX or to PFX")
			}
		}
		if p.err != nil {
			return nil
		}
		return c
	case "clear":
		p.end()
		if p.err != nil {
			return nil
		}
		return &TraceClear{Where: p.at}
	}
	return nil
}
