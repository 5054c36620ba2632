// Package perf is the home of fwdd's performance tooling:
//
//   - perf/gen: the traffic generator and sink library (cmd/fwdgen);
//   - perf/xdpprog: the XDP/tc programs of the harness (XDP-native
//     forwarder, counting sink, live-frames generator);
//   - perf/e2e: the end-to-end harness behind `make bench-e2e`.
//
// See docs/perf.md for how to run them and docs/tuning.md for profiling.
package perf
