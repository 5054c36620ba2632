// Package drivers links every poll-mode driver into the binary: import it
// for its side effect. Adding a driver means adding its import here and
// nothing else.
package drivers

import (
	_ "github.com/fwdd/fwdd/pmd/afpacket" // "afpacket": TPACKET rings, the fallback
	_ "github.com/fwdd/fwdd/pmd/afxdp"    // "afxdp": AF_XDP sockets, UMEM = the mbuf pool
	_ "github.com/fwdd/fwdd/pmd/lagg"     // "lagg": link aggregation (failover, loadbalance, roundrobin, LACP)
	_ "github.com/fwdd/fwdd/pmd/null"     // "null": template RX, TX frees
	_ "github.com/fwdd/fwdd/pmd/ringpmd"  // "ring": ports back to back in memory
	_ "github.com/fwdd/fwdd/pmd/vlan"     // "vlan": 802.1Q sub-interfaces
)
