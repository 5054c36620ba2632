// Package pkt is the packet-level library of the forwarding pipeline:
// parsing and validation, flow hash, Internet checksums, TTL and hop-limit
// decrement, ICMP/ICMPv6 errors and echo replies, IPv4 fragmentation, and
// the token bucket that limits ICMP errors.
//
// Everything works in place on mbuf data, one packet per call, as plain
// direct calls: no interfaces, allocation, maps, defer or locks, and no
// panics on any input (bounds are checked against the data, never trusted
// from metadata). The pipeline (fwd/) calls it inside its burst loops.
//
// Metadata: Parse writes the mbuf fields EtherType, VLANTCI, L3Off, L4Off,
// L4Proto and the flags FlagVLAN, FlagIPv4, FlagIPv6 and FlagFragment (bit 5
// of mbuf's parser byte). L4Off == 0 means there is no transport header
// (non-first fragments, ARP). Every other function reads that metadata and
// assumes Parse accepted the packet; given anything else it refuses
// (returns false / a reason) rather than misbehave. Parse trims link-layer
// padding, so after it the data ends where the IP packet ends.
//
// Decisions (RFC 1812, RFC 8200, RFC 4443):
//   - IPv4 options are accepted and forwarded unchanged (Record Route and
//     Timestamp are not updated, which RFC 1812 §5.2.4 allows in practice);
//     source-routed packets (LSRR/SSRR) are dropped as RFC 7126 advises.
//   - IPv6 Hop-by-Hop options go to the control path (ClassHopByHop);
//     neighbour discovery too (ClassND). Other multicast destinations are
//     dropped (no multicast routing).
//   - Link-local addresses (169.254/16, fe80::/10) are not martians here:
//     whether they may leave the link is the FIB's decision.
//   - Fragments, first ones included, hash on addresses and protocol only,
//     so a datagram's fragments share one ECMP path.
//   - Too-big IPv4 packets without DF are fragmented (Fragment4), not
//     dropped. No reassembly: fragmented echo requests are not answered.
//   - ICMP errors: CheckError applies the "never about" rules separately
//     from the builders, so the pipeline counts why it stayed silent.
//
// Anchors: RFC 1812 §4.3.2, §5.2.2, §5.3.7; RFC 1071, RFC 1624 (checksums);
// RFC 791 (fragmentation); RFC 4443, RFC 8200; FreeBSD ip_fastfwd.c and
// icmp_error/badport_bandlim; DPDK rte_ip.h (rte_ipv4_cksum) and
// rte_ipv4_fragment_packet.
package pkt
