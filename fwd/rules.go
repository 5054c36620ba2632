package fwd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Action is what a matching rule does.
type Action uint8

const (
	// ActCount counts the packet and goes on to the next rule.
	ActCount Action = iota
	// ActSetFIB moves the packet to another FIB and goes on to the next
	// rule (as ipfw's setfib), so later rules can match on the new FIB.
	ActSetFIB
	// ActDrop drops the packet (counted per rule and as DropRule).
	ActDrop
)

func (a Action) String() string {
	switch a {
	case ActCount:
		return "count"
	case ActSetFIB:
		return "setfib"
	case ActDrop:
		return "drop"
	}
	return fmt.Sprintf("action(%d)", a)
}

// MaxRules bounds the number of classifier rules of a stack; rule hit
// counters are kept per worker in arrays of this size.
const MaxRules = 1024

// Rule is a classifier rule in control-plane form. Zero values of the match
// fields match anything, except ports, where an empty range (Lo > Hi) is
// refused.
type Rule struct {
	ID     uint32       `json:"id"`
	InPort int          `json:"-"`            // port id, -1: any
	InName string       `json:"in,omitempty"` // the port's name, for people
	FIB    int          `json:"fib"`          // current FIB to match, -1: any
	Src    netip.Prefix `json:"src"`          // invalid prefix: any
	Dst    netip.Prefix `json:"dst"`
	Proto  int          `json:"proto"` // -1: any
	SPort  PortRange    `json:"sport"`
	DPort  PortRange    `json:"dport"`
	Action Action       `json:"action"`
	SetFIB uint16       `json:"setfib,omitempty"`
	// Slot is the rule's hit-counter slot, assigned by the control plane,
	// stable for the rule's life, in [0, MaxRules).
	Slot uint16 `json:"-"`
}

// PortRange is an inclusive transport port range; the zero value and
// {0, 65535} match anything.
type PortRange struct{ Lo, Hi uint16 }

// Any reports whether the range matches every port.
func (r PortRange) Any() bool { return r.Lo == 0 && (r.Hi == 0 || r.Hi == 65535) }

func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return fmt.Sprint(r.Lo)
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// String renders the rule in the command language.
func (r Rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", r.ID)
	if r.InName != "" {
		fmt.Fprintf(&b, " in %s", r.InName)
	} else if r.InPort >= 0 {
		fmt.Fprintf(&b, " in %d", r.InPort)
	}
	if r.FIB >= 0 {
		fmt.Fprintf(&b, " fib %d", r.FIB)
	}
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " from %s", r.Src)
	}
	if r.Dst.IsValid() {
		fmt.Fprintf(&b, " to %s", r.Dst)
	}
	if r.Proto >= 0 {
		fmt.Fprintf(&b, " proto %d", r.Proto)
	}
	if !r.SPort.Any() {
		fmt.Fprintf(&b, " sport %s", r.SPort)
	}
	if !r.DPort.Any() {
		fmt.Fprintf(&b, " dport %s", r.DPort)
	}
	b.WriteString(" " + r.Action.String())
	if r.Action == ActSetFIB {
		fmt.Fprintf(&b, " %d", r.SetFIB)
	}
	return b.String()
}

// ErrRule is wrapped by every rule validation error.
var ErrRule = errors.New("invalid rule")

// Validate checks a rule against the stack's FIB count.
func (r Rule) Validate(fibs int) error {
	if r.Src.IsValid() && r.Dst.IsValid() && r.Src.Addr().Is4() != r.Dst.Addr().Is4() {
		return fmt.Errorf("%w %d: from %s and to %s are of different families", ErrRule, r.ID, r.Src, r.Dst)
	}
	for _, p := range []netip.Prefix{r.Src, r.Dst} {
		if p.IsValid() && p.Masked() != p {
			return fmt.Errorf("%w %d: %s has host bits set (did you mean %s?)", ErrRule, r.ID, p, p.Masked())
		}
	}
	if r.FIB >= fibs || r.FIB < -1 {
		return fmt.Errorf("%w %d: fib %d out of range [0, %d] (set net.fibs to have more)", ErrRule, r.ID, r.FIB, fibs-1)
	}
	if r.Action == ActSetFIB && int(r.SetFIB) >= fibs {
		return fmt.Errorf("%w %d: setfib %d out of range [0, %d] (set net.fibs to have more)", ErrRule, r.ID, r.SetFIB, fibs-1)
	}
	if r.Action > ActDrop {
		return fmt.Errorf("%w %d: unknown action %d", ErrRule, r.ID, r.Action)
	}
	if r.Proto < -1 || r.Proto > 255 {
		return fmt.Errorf("%w %d: protocol %d out of range [0, 255]", ErrRule, r.ID, r.Proto)
	}
	for _, pr := range []PortRange{r.SPort, r.DPort} {
		if !pr.Any() && pr.Lo > pr.Hi {
			return fmt.Errorf("%w %d: port range %d-%d is empty", ErrRule, r.ID, pr.Lo, pr.Hi)
		}
	}
	if (!r.SPort.Any() || !r.DPort.Any()) && r.Proto != 6 && r.Proto != 17 && r.Proto != 132 {
		return fmt.Errorf("%w %d: ports need proto tcp, udp or sctp", ErrRule, r.ID)
	}
	if int(r.Slot) >= MaxRules {
		return fmt.Errorf("%w %d: counter slot %d out of range", ErrRule, r.ID, r.Slot)
	}
	return nil
}

// compiledRule is a rule in the form the fast path evaluates: masks
// precomputed, "any" as all-matching values.
type compiledRule struct {
	// family: 0 any, 4 or 6.
	family      uint8
	action      Action
	anyProto    bool
	proto       uint8
	inPort      int32
	fib         int32
	setFIB      uint16
	slot        uint16
	sLo, sHi    uint16
	dLo, dHi    uint16
	src4, src4m uint32
	dst4, dst4m uint32
	src6, src6m [2]uint64
	dst6, dst6m [2]uint64
}

// Rules is an immutable, ordered rule set, evaluated by workers.
type Rules struct {
	rules []compiledRule
	src   []Rule
}

// CompileRules validates and compiles rules in order. Nothing is returned
// if any rule is invalid.
func CompileRules(rules []Rule, fibs int) (*Rules, error) {
	if len(rules) > MaxRules {
		return nil, fmt.Errorf("%w: %d rules, at most %d", ErrRule, len(rules), MaxRules)
	}
	rs := &Rules{rules: make([]compiledRule, len(rules)), src: append([]Rule(nil), rules...)}
	for i, r := range rules {
		if err := r.Validate(fibs); err != nil {
			return nil, err
		}
		c := compiledRule{
			action: r.Action, inPort: int32(r.InPort), fib: int32(r.FIB), setFIB: r.SetFIB, slot: r.Slot,
			anyProto: r.Proto < 0, proto: uint8(r.Proto),
			sLo: 0, sHi: 65535, dLo: 0, dHi: 65535,
		}
		if !r.SPort.Any() {
			c.sLo, c.sHi = r.SPort.Lo, r.SPort.Hi
		}
		if !r.DPort.Any() {
			c.dLo, c.dHi = r.DPort.Lo, r.DPort.Hi
		}
		for k, p := range []netip.Prefix{r.Src, r.Dst} {
			if !p.IsValid() {
				continue
			}
			if p.Addr().Is4() {
				c.family = 4
				a := p.Addr().As4()
				v := binary.BigEndian.Uint32(a[:])
				m := uint32(0)
				if p.Bits() > 0 {
					m = ^uint32(0) << (32 - p.Bits())
				}
				if k == 0 {
					c.src4, c.src4m = v, m
				} else {
					c.dst4, c.dst4m = v, m
				}
			} else {
				c.family = 6
				a := p.Addr().As16()
				v := [2]uint64{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])}
				m := mask6(p.Bits())
				if k == 0 {
					c.src6, c.src6m = v, m
				} else {
					c.dst6, c.dst6m = v, m
				}
			}
		}
		rs.rules[i] = c
	}
	return rs, nil
}

func mask6(bits int) [2]uint64 {
	switch {
	case bits <= 0:
		return [2]uint64{}
	case bits < 64:
		return [2]uint64{^uint64(0) << (64 - bits), 0}
	case bits == 64:
		return [2]uint64{^uint64(0), 0}
	case bits < 128:
		return [2]uint64{^uint64(0), ^uint64(0) << (128 - bits)}
	}
	return [2]uint64{^uint64(0), ^uint64(0)}
}

// Len returns the number of rules.
func (rs *Rules) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.rules)
}

// List returns the rules in control-plane form, in order.
func (rs *Rules) List() []Rule {
	if rs == nil {
		return nil
	}
	return append([]Rule(nil), rs.src...)
}

// flowKey is what rules match on, extracted once per packet by the parser.
type flowKey struct {
	inPort       int32
	fib          int32
	proto        uint8
	v6           bool
	sport, dport uint16
	src4, dst4   uint32
	src6, dst6   [2]uint64
}

// match evaluates the rules against k, calling hit(slot) for every matching
// rule, and returns the FIB to use and whether the packet is to be dropped.
// The hit counters are the caller's (per worker), passed as a slice indexed
// by slot.
func (rs *Rules) match(k *flowKey, hits *[MaxRules]uint32) (fib int32, drop bool) {
	fib = k.fib
	for i := range rs.rules {
		r := &rs.rules[i]
		if r.inPort >= 0 && r.inPort != k.inPort {
			continue
		}
		if r.fib >= 0 && r.fib != fib {
			continue
		}
		if !r.anyProto && r.proto != k.proto {
			continue
		}
		if k.sport < r.sLo || k.sport > r.sHi || k.dport < r.dLo || k.dport > r.dHi {
			continue
		}
		switch r.family {
		case 4:
			if k.v6 || k.src4&r.src4m != r.src4 || k.dst4&r.dst4m != r.dst4 {
				continue
			}
		case 6:
			if !k.v6 ||
				k.src6[0]&r.src6m[0] != r.src6[0] || k.src6[1]&r.src6m[1] != r.src6[1] ||
				k.dst6[0]&r.dst6m[0] != r.dst6[0] || k.dst6[1]&r.dst6m[1] != r.dst6[1] {
				continue
			}
		}
		hits[r.slot]++
		switch r.action {
		case ActSetFIB:
			fib = int32(r.setFIB)
		case ActDrop:
			return fib, true
		}
	}
	return fib, false
}
