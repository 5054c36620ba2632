// Package flowhash is the transmit flow hash of ports that spread frames
// over lower ports by flow (a lagg's loadbalance and lacp; FreeBSD
// lagg_hashmbuf with hash layers l2, l3, l4).
//
// A Hash is a key and a set of layers, immutable once made (New): its
// Frame is the reference — a pure function of the frame's bytes. Every
// frame of a flow has the same hashed fields, hence the same hash: no
// reordering within a flow, whoever computes it.
//
// Fields: l2 the destination and source MACs and the VLAN id of an
// 802.1Q-tagged frame; l3 the IPv4 or IPv6 source and destination
// addresses; l4 the TCP, UDP or SCTP ports of a frame that is not an IPv4
// fragment (all fragments of a datagram hash by l3 alone). They are loaded
// as whole words and folded into two 64-bit lanes, a started from the key
// (the MACs and addresses go there) and b from the constant LaneB (the
// ports, a VLAN id); one 64x64->128-bit multiply mixes them, the low 32
// bits of its two halves xored (Mix).
//
// Sharing the hash (one per packet): a port that spreads by it implements
// pmd.TxHasher. The pipeline, which has a routed packet's headers at hand
// when it rewrites them, computes the same value from the steps Eth,
// AddIPv4 and AddPorts (the lanes after each layer; the Ethernet part of
// a routed frame is constant per next hop, so lane a after it is computed
// once per adjacency: one word) and passes it in mbuf.Hash with mbuf.FlagTxHash; the port
// then reads the mbuf, not the frame. Frame is the reference the steps
// must agree with (TestStepsMatchFrame, and fwd's TestLaggTxHash on
// forwarded frames).
//
// No state, no allocation: safe for any number of goroutines.
package flowhash
