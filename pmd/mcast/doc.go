// Package mcast keeps a port's link-layer multicast memberships on its
// kernel interface, so that a NIC with a multicast filter delivers the
// groups the port needs (IPv6 solicited-node, all-nodes, all-routers, the
// slow-protocols address on LACP members, what the operator joins) without
// promiscuous mode.
//
// A Set joins through one AF_PACKET socket of its own (PACKET_ADD_MEMBERSHIP,
// PACKET_MR_MULTICAST): the kernel counts each membership on the device
// (ip maddr shows it) and drops it when the socket closes — on Detach,
// when the port closes, and when the process exits, even by a crash — or
// when the interface goes away. So nothing leaks when an interface
// vanishes. Several owners (the stack's addresses, the operator, a lagg)
// want groups independently: a group stays joined while one owner wants
// it (reference counts per group), and is joined once on the device.
//
// Control plane only: nothing here is on the datapath.
//
// Owners is the same per-owner bookkeeping for a port that has no device
// of its own and passes groups on to the ports below it (a lagg to its
// members, a VLAN to its parent, under owner names of its own); it only
// records what each owner asked, for showing and for releasing at close.
//
// Who writes what: a device port (afxdp) owns its Set; it calls Want for
// its owners (pmd.Multicaster.SetMulticast, from the control plane) and
// Attach/Detach as its device comes and goes. A Set locks itself and is
// safe for concurrent use; an Owners is guarded by its port's lock.
// Invariant: a group is joined on the device exactly while the Set is
// attached and at least one owner wants it.
package mcast
