// Package events is fwdd's event stream: the control goroutine publishes
// what changed (routes, neighbours, ports, rules, LCP, configuration
// reloads) and any number of subscribers (fwdctl monitor) receive it.
//
// Invariants:
//   - Publish never blocks and never waits for a subscriber: each
//     subscriber has its own bounded queue; when an event does not fit, the
//     subscriber is dropped (its queue closed, Sub.Dropped says how many
//     events it lost) and the others go on. A slow monitor therefore costs
//     the control goroutine one failed non-blocking send, once.
//   - Kinds nobody subscribed to cost one atomic load (Bus.Wants), so the
//     publisher can skip building events nobody reads (a full table load
//     is a million routes).
//   - The Bus has no package-level state: one per daemon (vnet).
//
// Who writes what: Publish is called by one goroutine (the control
// goroutine); Subscribe and Sub.Close from any goroutine (the monitor
// streams). The subscriber list is guarded by a mutex held for a few
// non-blocking sends at most.
//
// Anchors: iproute2's ip monitor (text form), netlink multicast groups
// (a listener that does not keep up gets ENOBUFS and must resync).
package events
