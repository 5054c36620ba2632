// Package vnet runs several isolated routers in one fwdd process, after
// FreeBSD's VIMAGE and jails: a Host owns a set of named vnets, each a
// complete stack (its own ctl.Daemon, fwd.Engine, ports, FIBs, rules,
// neighbour tables, sysctls, counters, mbuf pools and workers). The vnet
// "default" always exists; commands without a "vnet NAME" prefix run in it,
// so a configuration without vnets behaves as before.
//
// It is a layer above the per-stack daemon: the Host is the main control
// socket's cmdlang.Executor. It splits a batch by vnet (cmdlang.Unwrap),
// validates every part (ctl.Daemon.Check, a dry run on the stack's control
// goroutine, or ctl.CheckCommands for a vnet the batch creates) together
// with the host's own rules (names, sockets, device claims), and only then
// applies: vnets created, each part executed on its stack, vnets deleted.
//
// Invariants:
//   - A device (a port's dev argument) is claimed by at most one vnet:
//     the devices granted to it (vnet add NAME devices ...), the devices its
//     ports use, and those a batch in flight is about to open. Claiming
//     another vnet's device is an error naming that vnet (on the main
//     socket; a tenant only learns the device was not given to it).
//   - Batches touching one vnet run concurrently with batches in other
//     vnets (h.mu read-locked; device claims under h.claimMu); batches that
//     create or delete vnets or span several vnets hold h.mu exclusively.
//   - vnet del removes the vnet from the host, then closes its tenant
//     socket and shuts its stack down (workers stopped, ports closed, XDP
//     detached, pools unmapped) before the command returns; its devices
//     stay claimed until then.
//   - A tenant socket's Executor (tenant) sees only its vnet: every command
//     is checked against an allow-list before it reaches the stack.
//
// Atomicity: a batch is validated whole before anything applies. What can
// still fail while applying is the kernel (a device that cannot be opened):
// vnets created by the batch are then deleted again, and the error names
// the vnets already changed by it (a batch within one vnet stays all or
// nothing, as ctl guarantees).
//
// Workers: each vnet has its own (see docs/vnets.md).
//
// Anchors: FreeBSD VNET_DEFINE/vnet(9) and jail(8)'s vnet option.
package vnet
