// Package xdpprog holds the XDP programs of the benchmark harness, written
// with cilium/ebpf's asm (no C toolchain needed):
//
//   - Forwarder: the XDP-native redirect forwarder (rewrite both MACs,
//     bpf_redirect to the egress veth), the ceiling fwdd is compared with.
//   - Sink: counts UDP frames per CPU and drops them; everything else passes.
//   - LiveTX: the BPF_PROG_RUN live-frames generator program (XDP_TX), which
//     stamps each frame with its stream's sequence number and bpf_ktime_get_ns,
//     varies the UDP source port per flow and fixes the UDP checksum.
//   - Pass: XDP_PASS, to give a veth NAPI so redirected frames are delivered.
//
// Invariants: the programs keep no state but their maps, which only
// the program writes on its own CPU and userspace only reads (Sink.Read).
// Programs are attached through bpf_links (Attach), so the kernel detaches
// them when the owning process exits, however it exits.
package xdpprog
