package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// The C reference leg: perf/xskfwd/xskfwd.c, a minimal AF_XDP forwarder in
// the structure of the kernel's xsk_fwd sample (shared UMEM, need_wakeup,
// bursts of 64, MAC rewrite only), built here against libxdp. fwdd's afxdp
// leg is compared with it: same devices, generators, sink and router CPU.

// defaultXskfwdSource is where the harness finds the C forwarder, relative
// to the repository root (make bench-e2e runs there); -xskfwd overrides it.
const defaultXskfwdSource = "perf/xskfwd/xskfwd.c"

// buildXskfwd compiles the C forwarder into the bin directory. The error
// says what is missing; the leg is skipped with it.
func (h *harness) buildXskfwd(ctx context.Context) (string, error) {
	src := h.cfg.xskfwdSrc
	if src == "" {
		src = defaultXskfwdSource
	}
	out := filepath.Join(h.cfg.bin, "xskfwd")
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("C reference: %s not found (run from the repository root, or give -xskfwd)", src)
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		return "", errors.New("C reference: no gcc (apt-get install gcc libxdp-dev libbpf-dev)")
	}
	for _, hdr := range []string{"/usr/include/xdp/xsk.h", "/usr/include/bpf/libbpf.h"} {
		if _, err := os.Stat(hdr); err != nil {
			return "", fmt.Errorf("C reference: %s missing (apt-get install libxdp-dev libbpf-dev)", hdr)
		}
	}
	cmd := exec.CommandContext(ctx, "gcc", "-O2", "-Wall", "-o", out, src, "-lxdp", "-lbpf")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("C reference: gcc: %v: %s", err, tail(string(b), 400))
	}
	return out, nil
}

// startXskfwd runs the C forwarder in the router namespace pinned to the
// router CPU, r0 -> r1, rewriting the destination MAC to the sink's.
func (h *harness) startXskfwd(ctx context.Context) (func(), error) {
	bin, err := h.buildXskfwd(ctx)
	if err != nil {
		return nil, err
	}
	t := h.topo
	args := []string{"netns", "exec", t.R, "taskset", "-c", strconv.Itoa(h.cfg.rtrCPU)}
	// Ordinary scheduling, like fwdd -poll busy: it busy-polls, and a
	// SCHED_FIFO thread that never sleeps starves the softirq work the
	// kernel defers to ksoftirqd on its CPU (measured: 0.1 Mpps instead of
	// 0.3 on a loaded machine).
	if h.cfg.crefRT > 0 {
		// For A/B runs on a loaded machine, beside fwdd -rt: both
		// forwarders then get their CPU whatever else runs there.
		args = append(args, "chrt", "-f", strconv.Itoa(h.cfg.crefRT))
	}
	args = append(args, bin, "-i", t.R0, "-o", t.R1, "-d", t.MAC[t.S0], "-s", t.MAC[t.R1])
	p, err := start(ctx, "xskfwd: ready", "ip", args...)
	if err != nil {
		return nil, fmt.Errorf("C reference: %w", err)
	}
	h.routerPid = p.cmd.Process.Pid // ip and taskset exec in place
	return func() {
		h.routerPid = 0
		_ = p.stop()
		if s := strings.TrimSpace(p.stdout.String()); s != "" {
			h.notes = append(h.notes, "c-afxdp counters: "+strings.ReplaceAll(s, "\n", " "))
		}
	}, nil
}
