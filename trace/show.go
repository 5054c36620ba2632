package trace

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Resolver turns the numbers a worker recorded into names, on the control
// goroutine at show time.
type Resolver interface {
	// PortName names port id.
	PortName(id int) string
	// Route describes the route of FIB fib that addr matches, if its next
	// hop is still nh: "198.18.5.0/24 (static)"; "" if unknown now.
	Route(fib int, addr netip.Addr, nh uint64) string
	// NeighState is the neighbour entry's state now ("" if none).
	NeighState(port int, addr netip.Addr) string
}

// Shown is a record as show trace prints it (and its JSON).
type Shown struct {
	Seq      int         `json:"seq"`
	Worker   int         `json:"worker"`
	Time     time.Time   `json:"time"`
	Duration int64       `json:"duration_ns"`
	Len      int         `json:"len"`
	Summary  string      `json:"summary"`
	Steps    []ShownStep `json:"steps"`
}

// ShownStep is one decision, rendered.
type ShownStep struct {
	At   int64  `json:"at_ns"`
	What string `json:"what"`
	Text string `json:"text"`
}

// Show renders a record.
func Show(r *Record, res Resolver) Shown {
	s := Shown{Seq: r.Seq, Worker: r.Worker, Time: time.Unix(0, r.Start), Duration: r.End - r.Start, Len: r.Len,
		Summary: Summary(r.Head[:r.NHead]), Steps: []ShownStep{}}
	for i := range r.Steps[:r.NSteps] {
		st := &r.Steps[i]
		s.Steps = append(s.Steps, ShownStep{At: st.At, What: st.What.String(), Text: stepText(st, res)})
	}
	if r.Truncated > 0 {
		s.Steps = append(s.Steps, ShownStep{What: "truncated", Text: fmt.Sprintf("%d more steps not recorded", r.Truncated)})
	}
	return s
}

// Text writes the record like VPP's show trace.
func (s *Shown) Text(b *strings.Builder) {
	fmt.Fprintf(b, "Packet %d: worker %d, %s, %d bytes, %s in the pipeline\n", s.Seq, s.Worker,
		s.Time.Format("15:04:05.000000"), s.Len, time.Duration(s.Duration))
	fmt.Fprintf(b, "  %s\n", s.Summary)
	for _, st := range s.Steps {
		fmt.Fprintf(b, "  %9s  %-15s %s\n", fmt.Sprintf("+%.1fµs", float64(st.At)/1e3), st.What, st.Text)
	}
}

func yes(v uint64) bool { return v != 0 }

func stepText(st *Step, res Resolver) string {
	port := func() string { return res.PortName(st.Port) }
	switch st.What {
	case Rx:
		return fmt.Sprintf("port %s queue %d, worker %d, %d bytes", port(), st.A, st.B, st.C)
	case Parse:
		if st.Text != "" {
			return fmt.Sprintf("%s: refused (%s)", st.Name, st.Text)
		}
		return st.Name
	case NotOurMAC:
		return "destination MAC is not the port's (broadcast, multicast or another host's): not routed"
	case FIBPort:
		return fmt.Sprintf("fib %d (port %s's default)", st.A, port())
	case Rule:
		return fmt.Sprintf("rule %d matched: %s; fib now %d", st.A, st.Name, st.B)
	case Lookup:
		a := st.Addr.String()
		switch st.Name {
		case "none":
			return fmt.Sprintf("fib %d: no route to %s", st.A, a)
		case "no such fib":
			return fmt.Sprintf("fib %d does not exist (net.fibs): dropped", st.A)
		}
		route := res.Route(int(st.A), st.Addr, st.B)
		if route == "" {
			route = "(route changed since)"
		}
		return fmt.Sprintf("fib %d: %s matches %s, next hop #%d (%s)", st.A, a, route, st.B, st.Name)
	case ECMP:
		return fmt.Sprintf("ecmp: member %d of %d chosen by flow hash %#08x", st.A, st.B, st.C)
	case NextHop:
		if st.Addr.IsValid() {
			return fmt.Sprintf("%s %s via port %s", st.Name, st.Addr, port())
		}
		return fmt.Sprintf("%s on port %s", st.Name, port())
	case Local:
		return st.Name
	case TTL:
		if yes(st.B) {
			return fmt.Sprintf("ttl %d: expired (time exceeded)", st.A)
		}
		return fmt.Sprintf("ttl %d -> %d", st.A, st.A-1)
	case Egress:
		if !yes(st.B) {
			return fmt.Sprintf("port %s is down or gone", port())
		}
		return fmt.Sprintf("port %s up, mtu %d", port(), st.A)
	case MTU:
		return fmt.Sprintf("%d bytes > mtu %d: %s", st.A, st.B, st.Name)
	case Neigh:
		now := res.NeighState(st.Port, st.Addr)
		if now != "" {
			now = " (now " + now + ")"
		}
		if st.Name == "found" {
			return fmt.Sprintf("%s on %s is %s%s", st.Addr, port(), net.HardwareAddr(st.MAC[:]), now)
		}
		return fmt.Sprintf("%s on %s: no usable entry; packet handed to the control plane to hold while it resolves%s", st.Addr, port(), now)
	case TxQueue:
		return fmt.Sprintf("port %s queue %d", port(), st.A)
	case ICMP:
		return fmt.Sprintf("%s to %s (unless rate limited or not allowed for this packet)", st.Name, st.Addr)
	case GenRoute:
		if st.Name == "none" {
			return fmt.Sprintf("generated packet to %s: no route", st.Addr)
		}
		return fmt.Sprintf("generated packet to %s: next hop #%d (%s) on port %s", st.Addr, st.B, st.Name, port())
	case Punt:
		return st.Name
	case Outcome:
		return fmt.Sprintf("%s +%d", st.Name, st.A)
	case Control:
		return fmt.Sprintf("%s (port %s)", st.Name, port())
	}
	return st.Name
}

// Summary describes a frame's headers in one line, like tcpdump -n.
func Summary(d []byte) string {
	if len(d) < 14 {
		return fmt.Sprintf("runt frame (%d bytes)", len(d))
	}
	eth := fmt.Sprintf("%s > %s", net.HardwareAddr(d[6:12]), net.HardwareAddr(d[0:6]))
	et, off := binary.BigEndian.Uint16(d[12:14]), 14
	tag := ""
	if et == 0x8100 && len(d) >= 18 {
		tag = fmt.Sprintf("vlan %d ", binary.BigEndian.Uint16(d[14:16])&0xfff)
		eth += " " + tag[:len(tag)-1]
		et, off = binary.BigEndian.Uint16(d[16:18]), 18
	}
	p := d[off:]
	switch et {
	case 0x0806:
		if len(p) >= 28 {
			op := "request"
			if binary.BigEndian.Uint16(p[6:8]) == 2 {
				op = "reply"
			}
			return fmt.Sprintf("%s ARP %s who-has %s tell %s", eth, op, netip.AddrFrom4([4]byte(p[24:28])), netip.AddrFrom4([4]byte(p[14:18])))
		}
		return eth + " ARP (truncated)"
	case 0x0800:
		if len(p) < 20 {
			return eth + " IPv4 (truncated)"
		}
		ihl := int(p[0]&0xf) * 4
		s := fmt.Sprintf("%s%s > %s", tag, netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])))
		return s + l4(p[9], p[min(ihl, len(p)):], false) + fmt.Sprintf(", ttl %d, len %d", p[8], binary.BigEndian.Uint16(p[2:4]))
	case 0x86dd:
		if len(p) < 40 {
			return eth + " IPv6 (truncated)"
		}
		s := fmt.Sprintf("%s%s > %s", tag, netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40])))
		return s + l4(p[6], p[40:], true) + fmt.Sprintf(", hlim %d, payload %d", p[7], binary.BigEndian.Uint16(p[4:6]))
	}
	return fmt.Sprintf("%s ethertype %#04x", eth, et)
}

func l4(proto byte, p []byte, v6 bool) string {
	switch {
	case (proto == 1 && !v6 || proto == 58 && v6) && len(p) >= 2:
		return fmt.Sprintf(": %s", icmpName(p[0], p[1], v6))
	case (proto == 6 || proto == 17) && len(p) >= 4:
		n := "UDP"
		if proto == 6 {
			n = "TCP"
		}
		return fmt.Sprintf(": %s %d > %d", n, binary.BigEndian.Uint16(p[0:2]), binary.BigEndian.Uint16(p[2:4]))
	}
	return fmt.Sprintf(": proto %d", proto)
}

func icmpName(t, c byte, v6 bool) string {
	if v6 {
		switch t {
		case 128:
			return "ICMP6 echo request"
		case 129:
			return "ICMP6 echo reply"
		case 1:
			return fmt.Sprintf("ICMP6 destination unreachable code %d", c)
		case 2:
			return "ICMP6 packet too big"
		case 3:
			return "ICMP6 time exceeded"
		case 135:
			return "ICMP6 neighbour solicitation"
		case 136:
			return "ICMP6 neighbour advertisement"
		}
		return fmt.Sprintf("ICMP6 type %d code %d", t, c)
	}
	switch t {
	case 8:
		return "ICMP echo request"
	case 0:
		return "ICMP echo reply"
	case 3:
		return fmt.Sprintf("ICMP unreachable code %d", c)
	case 11:
		return "ICMP time exceeded"
	}
	return fmt.Sprintf("ICMP type %d code %d", t, c)
}
