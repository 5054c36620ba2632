// Package linkmon watches one kernel network interface by name, through
// netlink link notifications (RTNLGRP_LINK) in a given network namespace,
// and reports its State: present or not, up (administratively up with
// carrier) or not, ifindex, MAC and MTU.
//
// Kernel-backed drivers (afpacket, afxdp) use it to notice an interface that
// goes down, is deleted, or is re-created under the same name (with a new
// ifindex), so that they can release their sockets and come back.
//
// A Monitor owns one goroutine that reads the notifications. It calls the
// callback given to Watch on that goroutine, once per change of State, in
// order, never concurrently with itself; the callback may block briefly
// (re-opening sockets) but must not call the Monitor's Close. State is safe
// to call from any goroutine (an atomic pointer to an immutable State).
//
// The netlink subscription ends if the kernel drops notifications (socket
// buffer overrun); the Monitor then subscribes again, reads the current
// state, and counts a resync. Close stops the goroutine and waits for it.
//
// Nothing here is on the fast path: a driver reads the state it needs from
// its own published snapshot, not from the Monitor.
package linkmon
