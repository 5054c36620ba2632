package lltable

// Drop is why the table refused a received ARP/NDP frame or a packet.
type Drop uint8

// Drop reasons. Frames dropped for these reasons never change the table.
const (
	DropNone               Drop = iota
	DropShort                   // frame or message shorter than its headers say
	DropVLAN                    // 802.1Q/802.1ad tagged frame (ports are untagged)
	DropEtherType               // neither ARP nor IPv6
	DropARPHardware             // ARP hardware type is not Ethernet (1)
	DropARPProtocol             // ARP protocol type is not IPv4
	DropARPLength               // ARP hardware/protocol lengths are not 6/4
	DropARPOp                   // ARP opcode is neither request nor reply
	DropBadSourceMAC            // sender link-layer address zero or multicast
	DropIPVersion               // IPv6 header with another version
	DropNDType                  // ICMPv6 other than NS/NA, or behind extension headers
	DropHopLimit                // NDP hop limit != 255 (RFC 4861 §7.1)
	DropNDCode                  // ICMPv6 code != 0
	DropChecksum                // bad ICMPv6 checksum
	DropTargetMulticast         // NS/NA target is multicast
	DropSourceMulticast         // IPv6 source is multicast
	DropOption                  // option of length 0, truncated, or bad link-layer option length
	DropDADDest                 // NS from :: not to a solicited-node address
	DropDADOption               // NS from :: carrying a source link-layer option
	DropSolicitedMulticast      // NA to a multicast address with S set
	DropSpoof                   // sender claims one of our addresses or our MAC
	DropNoPort                  // frame or packet for a port the table does not know
	DropNotOnLink               // sender address outside the port's prefixes: not learned
	DropNotForUs                // request for an address that is not ours
	DropBadTarget               // miss for a multicast, unspecified or own address
	NumDrops
)

var dropNames = [NumDrops]string{
	DropNone: "none", DropShort: "short", DropVLAN: "vlan", DropEtherType: "ethertype",
	DropARPHardware: "arp_hardware", DropARPProtocol: "arp_protocol", DropARPLength: "arp_length",
	DropARPOp: "arp_op", DropBadSourceMAC: "bad_source_mac", DropIPVersion: "ip_version",
	DropNDType: "nd_type", DropHopLimit: "hop_limit", DropNDCode: "nd_code", DropChecksum: "checksum",
	DropTargetMulticast: "target_multicast", DropSourceMulticast: "source_multicast",
	DropOption: "option", DropDADDest: "dad_dest", DropDADOption: "dad_option",
	DropSolicitedMulticast: "solicited_multicast", DropSpoof: "spoof", DropNoPort: "no_port",
	DropNotOnLink: "not_on_link", DropNotForUs: "not_for_us", DropBadTarget: "bad_target",
}

func (d Drop) String() string {
	if d < NumDrops {
		return dropNames[d]
	}
	return "unknown"
}

// Counters are the table's counters. The control goroutine writes them;
// read them through Table.Counters (same goroutine).
type Counters struct {
	// Input: frames handed to the table (Input: every one, each then
	// counted once more as InARP, InND or a drop before that), and those
	// dropped by reason.
	Input       uint64
	InARP, InND uint64
	Dropped     [NumDrops]uint64

	// Answers and announcements we sent.
	ARPRequestsSent, ARPRepliesSent uint64
	NSSent, NASent                  uint64
	Announcements                   uint64 // gratuitous ARP and unsolicited NA

	// Resolution.
	Misses       uint64 // packets that reached the control goroutine for resolution
	Held         uint64 // packets put in a hold queue
	HoldDropped  uint64 // oldest held packet dropped because its queue was full
	HoldRefused  uint64 // packet refused because the global hold limit was reached
	Released     uint64 // held or missed packets sent once resolved
	Unreachable  uint64 // packets handed to the ICMP-unreachable callback
	Resolved     uint64 // INCOMPLETE -> REACHABLE/STALE
	Failed       uint64 // entries that went FAILED
	RefusedPort  uint64 // entries not created: per-port limit, nothing evictable
	RefusedTotal uint64 // entries not created: global limit, nothing evictable
	Evicted      uint64 // unused STALE or FAILED entries deleted to make room
	// EvictedIncomplete: INCOMPLETE entries wanted by one packet deleted
	// to make room for a new one at MaxIncomplete (their held packet is
	// counted in HoldDropped); RefusedIncomplete: misses refused at
	// MaxIncomplete, every INCOMPLETE entry being wanted by more.
	EvictedIncomplete uint64
	RefusedIncomplete uint64
	RateLimited       uint64 // requests deferred by the global request budget
	NoSource          uint64 // requests not sent: no address of that family on the port
	AllocFailed       uint64 // requests or answers not sent: no mbuf
	MissRingFull      uint64 // packets refused by the miss ring (summed from readers)
	InputRingFull     uint64 // frames refused by the input ring (summed from readers)
	BadMissTag        uint64 // miss-ring packets without a valid target tag
	Learned           uint64 // entries created or updated from a request aimed at us
	Moved             uint64 // entries whose link-layer address changed
	Conflicts         uint64 // frames claiming one of our addresses from another MAC
	Publishes         uint64 // snapshots published
	StaticRejected    uint64 // packets that tried to change a static entry
}

// Counter is one named counter of the table, for show stats and metrics.
type Counter struct {
	Name  string
	Value uint64
}

// List returns every counter with a stable snake_case name, in a fixed
// order: the input counters, the drops by reason (drop_REASON, all of
// them, so that every frame handed to the table is in some row), then the
// others. Adding a field to Counters means adding it here; a test checks
// that every field is listed.
func (c *Counters) List() []Counter {
	out := []Counter{{"input", c.Input}, {"in_arp", c.InARP}, {"in_nd", c.InND}}
	for d := DropShort; d < NumDrops; d++ {
		out = append(out, Counter{"drop_" + d.String(), c.Dropped[d]})
	}
	return append(out,
		Counter{"arp_requests_sent", c.ARPRequestsSent}, Counter{"arp_replies_sent", c.ARPRepliesSent},
		Counter{"ns_sent", c.NSSent}, Counter{"na_sent", c.NASent}, Counter{"announcements", c.Announcements},
		Counter{"misses", c.Misses}, Counter{"held", c.Held}, Counter{"hold_dropped", c.HoldDropped},
		Counter{"hold_refused", c.HoldRefused}, Counter{"released", c.Released}, Counter{"unreachable", c.Unreachable},
		Counter{"resolved", c.Resolved}, Counter{"failed", c.Failed},
		Counter{"refused_port_limit", c.RefusedPort}, Counter{"refused_table_limit", c.RefusedTotal},
		Counter{"evicted", c.Evicted}, Counter{"evicted_incomplete", c.EvictedIncomplete},
		Counter{"refused_incomplete", c.RefusedIncomplete}, Counter{"requests_rate_limited", c.RateLimited},
		Counter{"requests_no_source", c.NoSource}, Counter{"alloc_failed", c.AllocFailed},
		Counter{"miss_ring_full", c.MissRingFull}, Counter{"input_ring_full", c.InputRingFull},
		Counter{"bad_miss_tag", c.BadMissTag}, Counter{"learned", c.Learned}, Counter{"moved", c.Moved},
		Counter{"conflicts", c.Conflicts}, Counter{"publishes", c.Publishes}, Counter{"static_rejected", c.StaticRejected},
	)
}
