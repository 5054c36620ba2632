// Package soak holds fwdd's soak test (TestSoak): traffic through a
// daemon on AF_XDP while a chaos loop does everything an unlucky operator
// and a hostile on-link host would, for a long time, then checks that
// nothing leaked and nothing went unaccounted.
//
// Topology (internal/testnet, removed at cleanup):
//
//	h1 198.18.1.2 -- r0 [fwdd afxdp p0 | p1] r1 -- h2 198.19.2.2
//
// Running: the whole time a UDP stream (about 2000 packets/s) goes from h1
// to h2 through fwdd. A chaos loop, in turns: flaps r0 or r1 (down, up),
// deletes r0 or r1 and re-creates it (a new veth, a new MAC, the host side
// re-configured), reloads the configuration file with a change (a route, a
// sysctl, a rule, in turn). Beside it, route churn (add then delete of
// 1000 /32s ten times a second: 10k route changes/s), and from h1 a scapy
// process floods ARP requests and NS from spoofed sources and sends
// malformed frames (bad IHL, bad lengths, bad checksums, truncated
// headers, fuzzed IP and UDP fields, unknown VLAN tags, IPv6 with bad
// payload lengths), all within 198.18.0.0/15 and 2001:2::/48.
//
// At the end, with the traffic stopped: no panic (Daemon.Panics, Err);
// mbufs in use back to the idle baseline taken before the traffic;
// goroutines and file descriptors back to their baseline; after every
// link-up, forwarding resumed (a packet reached h2) within 1 s; and every
// packet the workers received is accounted: rx = forwarded + local_in +
// punted + punted_lcp + the drop counters.
//
// Recovery is measured from the moment the kernel reports both ends of the
// veth up (it is also reported from the up command). h1 holds a permanent
// neighbour entry for its gateway (re-pinned after r0 is re-created):
// Linux flushes a host's neighbours on carrier loss and retransmits ARP
// only after 1 s, which would otherwise be the host's share of the
// recovery (seen as ~0.7 s after every flap of r0, and up to 1.8 s, before
// the pin). Packets the host could not send while its link was down are
// the kernel's drops, not fwdd's; the accounting is of what fwdd received.
//
// Duration: FWDD_SOAK (a Go duration), 60 s by default, which make test
// runs; make soak runs 10 minutes (SOAK=60s to change it). The figures go
// to the test log and, with FWDD_SOAK_REPORT=FILE, to FILE (make soak
// writes bin/soak-report.txt; RELIABILITY.md quotes a run).
package soak
