// Package xdpprog holds the XDP programs of the benchmark harness, written
// with cilium/ebpf's asm (no C toolchain needed):
//
//   - Forwarder: the XDP-native redirect forwarder (rewrite both MACs,
//     bpf_redirect to the egress veth), the ceiling fwdd is compared with.
//   - Sink: counts UDP frames per CPU and drops them; everything else passes.
//   - LiveTX: the BPF_PROG_RUN live-frames generator program (XDP_TX), which
//     stamps each frame with its stream's sequence number (and
//     bpf_ktime_get_ns on every Nth), writes the flow's addresses and source
//     port and both checksums from a precomputed (size, flow) table, and cuts
//     the frame to its size for a size pattern; paced, it drops iterations
//     until the next frame is due. RunLive runs it (or any XDP program)
//     without restarting a call a signal interrupted.
//   - Pass: XDP_PASS, to give a veth NAPI so redirected frames are delivered.
//
// Invariants: the programs keep no state but their maps. The sink's
// counters are written only by the program on its own CPU and only read by
// userspace (Sink.Read); LiveTX's flow table is written once before the
// program loads, its state (next seq, flow, size, pacing clock, limit) by
// userspace only while the program does not run (SetSeq, SetLimit).
// Programs are attached through bpf_links (Attach), so the kernel detaches
// them when the owning process exits, however it exits.
package xdpprog
