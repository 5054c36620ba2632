package pkt

// Class is what Parse found: where the pipeline sends the packet next.
type Class uint8

const (
	// ClassDrop: drop the packet and count the Reason.
	ClassDrop Class = iota
	// ClassIPv4: a valid IPv4 packet to route (or deliver locally).
	ClassIPv4
	// ClassIPv6: a valid IPv6 packet to route (or deliver locally), no
	// Hop-by-Hop header, not neighbour discovery.
	ClassIPv6
	// ClassARP: an Ethernet/IPv4 ARP packet, for lltable.
	ClassARP
	// ClassND: ICMPv6 neighbour discovery (types 133-137) with hop limit
	// 255, for lltable / the control plane. Never forwarded.
	ClassND
	// ClassHopByHop: IPv6 with a Hop-by-Hop Options header, which RFC 8200
	// §4.3 asks routers to examine: to the control path (or drop).
	ClassHopByHop

	NumClasses
)

var classNames = [NumClasses]string{"drop", "ipv4", "ipv6", "arp", "nd", "hop_by_hop"}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "unknown"
}

// Reason says why Parse refused a packet (OK when it did not). Each one is
// a counter the pipeline keeps per worker.
type Reason uint8

const (
	OK Reason = iota

	// Link layer.
	TooShort         // frame shorter than the headers it announces (Ethernet, tag, IP, ARP)
	VLANStacked      // more than one VLAN tag (QinQ is not terminated here)
	QinQ             // an 802.1ad S-tag (0x88a8): QinQ is not terminated here
	UnknownEtherType // not IPv4, IPv6 or ARP
	BadARP           // ARP that is not Ethernet/IPv4

	// IP headers (RFC 1812 §5.2.2, RFC 8200).
	BadVersion        // IP version does not match the EtherType
	BadIHL            // IPv4 IHL < 5
	BadTotalLength    // IPv4 total length < header or > frame
	BadChecksum       // IPv4 header checksum
	BadOptions        // IPv4 options malformed (length out of bounds)
	SourceRoute       // IPv4 LSRR/SSRR option: not honoured, dropped (RFC 7126 §4.3, 4.4)
	BadFragment       // IPv4 fragment ending beyond 65535 bytes
	BadPayloadLength  // IPv6 payload length > frame
	BadExtHeader      // IPv6 extension header truncated, or Hop-by-Hop not first
	TooManyExtHeaders // IPv6 header chain longer than MaxExtHeaders
	BadNDHopLimit     // neighbour discovery with hop limit != 255 (RFC 4861 §7.1)

	// Martian addresses (RFC 1812 §5.3.7, RFC 4291 §2.5.2-2.5.3, 2.7).
	SrcUnspecified // 0.0.0.0/8, ::
	SrcLoopback    // 127.0.0.0/8, ::1
	SrcMulticast   // 224.0.0.0/4, ff00::/8
	SrcReserved    // 240.0.0.0/4 (class E) and 255.255.255.255
	DstUnspecified // 0.0.0.0/8, ::
	DstLoopback    // 127.0.0.0/8, ::1
	DstMulticast   // 224.0.0.0/4, ff00::/8 (not routed: no multicast forwarding)
	DstReserved    // 240.0.0.0/4 except 255.255.255.255
	DstBroadcast   // 255.255.255.255 (never forwarded, RFC 1812 §5.3.5.1)

	NumReasons
)

var reasonNames = [NumReasons]string{
	OK: "ok", TooShort: "too_short", VLANStacked: "vlan_stacked", QinQ: "qinq", UnknownEtherType: "unknown_ethertype",
	BadARP: "bad_arp", BadVersion: "bad_version", BadIHL: "bad_ihl", BadTotalLength: "bad_total_length",
	BadChecksum: "bad_checksum", BadOptions: "bad_options", SourceRoute: "source_route",
	BadFragment: "bad_fragment", BadPayloadLength: "bad_payload_length", BadExtHeader: "bad_ext_header",
	TooManyExtHeaders: "too_many_ext_headers", BadNDHopLimit: "bad_nd_hop_limit",
	SrcUnspecified: "src_unspecified", SrcLoopback: "src_loopback", SrcMulticast: "src_multicast",
	SrcReserved: "src_reserved", DstUnspecified: "dst_unspecified", DstLoopback: "dst_loopback",
	DstMulticast: "dst_multicast", DstReserved: "dst_reserved", DstBroadcast: "dst_broadcast",
}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Category groups reasons for coarse counters.
type Category uint8

const (
	CatNone      Category = iota // OK
	CatParse                     // truncated or malformed link layer
	CatNotIP                     // an EtherType we do not handle
	CatBadHeader                 // IP header failed validation
	CatMartian                   // source or destination not routable
)

// Category returns the reason's group: fwd/ maps it onto its drop counters
// (DropParse, DropNotIP, DropBadHeader, DropMartian).
func (r Reason) Category() Category {
	switch {
	case r == OK:
		return CatNone
	case r == UnknownEtherType:
		return CatNotIP
	case r <= BadARP:
		return CatParse
	case r < SrcUnspecified:
		return CatBadHeader
	case r < NumReasons:
		return CatMartian
	}
	return CatParse
}
