// Package pktgen builds test frames: Ethernet + IPv4 or IPv6 + UDP, of an
// exact size, one per flow index, with valid IPv4 header and UDP checksums.
//
// It owns no state beyond a Template (the frames it built). The null driver
// copies templates into mbufs on receive; the traffic generator (perf/)
// reuses it. Frames use only the benchmarking ranges 198.18.0.0/15 and
// 2001:2::/48 by default (RFC 2544, RFC 5180).
//
// Flow i differs from flow 0 in its UDP source port (SrcPort + i mod 4096)
// and its source address (Src + i/4096), so that a flow hash over the
// 5-tuple spreads flows over queues.
package pktgen
