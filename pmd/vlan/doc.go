// Package vlan is the "vlan" driver: IEEE 802.1Q sub-interfaces (FreeBSD
// if_vlan) over another port of the stack, its parent — a plain port or a
// lagg:
//
//	port add p0.100 driver vlan parent p0 vid 100
//
// Receive: the port has no receive queues. It is a pmd.Stacked port bound
// to (parent, vid): the workers polling the parent take frames tagged with
// vid as received on this port (its addresses, FIB, rules, neighbours,
// receive counters) after removing the tag; untagged frames stay the
// parent's; a tag no sub-interface claims is dropped and counted
// (drop_unknown_vlan), QinQ (0x88a8) too (parse_qinq).
//
// Transmit: TxBurst inserts the tag (TPID 0x8100, the port's VLAN id,
// priority 0 and DEI 0: the priority bits of received frames are not
// kept) and hands the burst to the parent's TxBurst on the same queue:
// one interface call per burst, no allocation. The vlan port has the
// parent's transmit queues, so transmit queue q of both is used by one
// worker only. Frames the parent refuses get their tag removed again and
// stay the caller's, as TxBurst's contract says.
//
// Invariants: one sub-interface per (parent, vid) in a stack (claimed in
// pmd.Shared); the MAC is the parent's; the MTU is the parent's (the tag is
// not counted, as on Linux). The parent stays open while the vlan port is
// (the stack opens ports in dependency order and refuses to delete a
// parent in use).
package vlan
