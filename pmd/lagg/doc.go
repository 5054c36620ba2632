// Package lagg is the "lagg" driver: link aggregation after FreeBSD's
// if_lagg, with failover, loadbalance, roundrobin and LACP (IEEE 802.1AX,
// formerly 802.3ad):
//
//	port add m0 driver afxdp dev eth0
//	port add m1 driver afxdp dev eth1
//	port add lagg0 driver lagg proto lacp laggport m0 laggport m1 [hash l2,l3,l4] [lacp fast|slow]
//
// Members are ordinary ports of the stack with no addresses of their own,
// each in at most one lagg (claimed in pmd.Shared; the stack also checks
// both in its model). The lagg is a pmd.Stacked port: the workers polling
// a member take its frames as the lagg's (never as the member's), dropped
// while the member is not collecting; slow-protocol frames (LACP, marker)
// go through a bounded MPSC ring to the lagg's protocol and are never
// forwarded.
//
// Transmit: TxBurst spreads a burst over the distributing members — by a
// flow hash over the chosen layers (MACs and VLAN id, IP addresses,
// TCP/UDP/SCTP ports; pmd/flowhash: whole-word loads, one 128-bit
// multiply), so one flow keeps one member and its order, or in turn for
// roundrobin — and calls each member's TxBurst once on the same queue.
// loadbalance and lacp ask the stack for the hash (pmd.TxHasher): the
// pipeline computes it when it rewrites a routed frame and passes it in
// the mbuf (mbuf.FlagTxHash), so that the lagg reads no header (hash.go:
// one pass over the mbufs; with two members and AVX-512, eight frames a
// step, split_amd64.s, checked against the Go pass); frames without it (from the control path, a
// vlan over the lagg, connected next hops) are hashed here, to the same
// value. The set of distributing members is an immutable snapshot loaded
// once per burst; per-queue scratch arrays belong to the queue's owner. No
// lock, allocation or per-packet interface call. The lagg's transmit
// queues are the fewest of its members', so queue q of every member is
// driven by one worker only.
//
// Protocols: failover sends and receives on the first member (laggport
// order) whose link is up — frames arriving on the others are dropped
// (drop_lagg_not_collecting), as FreeBSD does, unless failover_rx_all;
// loadbalance and roundrobin use every up member; a link event changes
// the set at the next Service, which a member's driver triggers on the
// kernel's link notification (pmd.Config.LinkChanged; the ~100 ms periodic
// call otherwise). lacp runs per member the receive machine (CURRENT,
// EXPIRED, DEFAULTED, PORT_DISABLED), periodic transmission (1 s while the
// partner asks for short timeouts, else 30 s; at most 3 LACPDUs a second),
// the selection of one aggregator by partner system and key, and the mux
// machine with coupled control (ATTACHED when selected, COLLECTING and
// DISTRIBUTING together once the partner is in sync); a member whose
// partner falls silent leaves within the short timeout (3 s) and is
// defaulted after another; link down takes it out at once. The marker
// responder answers marker PDUs. The actor system is the lagg's MAC
// (priority 0x8000), the key 0x100 + the lagg's port id.
//
// Members change live (Reconfigure, pmd.Reconfigurer): a member added
// starts its own LACP machine, one removed stops collecting and leaves
// the transmit set at once (the stack then synchronises its workers),
// gives back its multicast groups and claim, and is sent one last LACPDU
// out of sync; the others keep their state. proto, hash and lacp changes
// need a reopen.
//
// Churn detection (6.4.17) flags a member whose actor or partner stays
// out of sync for 60 s (show lagg: actor_churn, partner_churn; metrics
// lagg_lacp_*_churn): an indication for the operator only.
//
// Simplified, knowingly: LACP is always active (never passive); no
// wait_while (aggregation delay: members attach as soon as selected); the
// mux uses coupled control only; one aggregator per lagg (members whose
// partner differs from the one most members see stay standby); marker
// PDUs are answered, never generated (a member leaving is told by its last
// LACPDU instead); priority bits of the actor port are constant (0x8000).
// failover's active member is the first up one in laggport order, with no
// LACP or other agreement with the peer (configure the peer to prefer the
// same member). The flow hash key is derived from the lagg's MAC and id,
// not random, so that a test sees the same spread each run.
//
// All protocol work runs in Service on the stack's control goroutine
// (pmd.Servicer), which also transmits the LACPDUs through the stack's
// control path: nothing of LACP runs on the workers.
package lagg
