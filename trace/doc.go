// Package trace records, for the next N packets matching a filter, every
// decision the forwarding pipeline takes about them (fwdctl trace add N
// [port P] [from PFX] [to PFX]; show trace).
//
// A Session holds N preallocated Records. A worker that sees a matching
// packet claims the next free Record (one atomic add on the session: only
// while a trace is armed and only for matching packets), fills it with
// Steps - plain values, no allocation - and publishes it; the control
// goroutine renders the published records on show trace, resolving what
// the worker only had as numbers (port names, the prefix a next hop came
// from, the neighbour's current state) through a Resolver.
//
// Invariants:
//   - Nothing here runs unless a trace is armed: the pipeline checks one
//     pointer per burst (fwd.Observers).
//   - Record i is written by the one worker that claimed index i, then
//     published with a release store; readers read only published records.
//   - No package-level state.
//
// Anchors: VPP's packet trace (trace add INPUT-NODE N, show trace) and
// grout's trace; the decisions are recorded as typed steps like VPP's
// per-node trace records, and formatted only when shown.
package trace
