package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

type report struct {
	h       *harness
	elapsed time.Duration
	when    time.Time
}

func mpps(v float64) string { return fmt.Sprintf("%.3f", v/1e6) }

func machine() string {
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	kern, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%d vCPUs (%s), Linux %s, %s", runtime.NumCPU(), cpu, strings.TrimSpace(string(kern)), runtime.Version())
}

type ratio struct {
	name, num, den, target         string
	numLeg, numGen, denLeg, denGen string
	// denAlt is another leg measuring the same forwarder set up
	// differently; the better of the two medians is the denominator (the
	// forwarder's own limit on this machine).
	denAlt string
	min    float64
}

var ratios = []ratio{
	{name: "fwdd-afxdp vs Linux", numLeg: "fwdd-afxdp", numGen: genAFP, denLeg: "linux", denGen: genAFP, min: 1.5, target: "≥ 1.5×"},
	{name: "fwdd-afpacket vs Linux", numLeg: "fwdd-afpacket", numGen: genAFP, denLeg: "linux", denGen: genAFP},
	{name: "fwdd-afxdp vs the C AF_XDP forwarder", numLeg: "fwdd-afxdp", numGen: genLive, denLeg: "c-afxdp", denGen: genLive, min: 1.2, target: "≥ 1.2×"},
	{name: "fwdd-afxdp vs the C AF_XDP forwarder", numLeg: "fwdd-afxdp", numGen: genAFP, denLeg: "c-afxdp", denGen: genAFP},
	{name: "fwdd-afxdp vs XDP-native", numLeg: "fwdd-afxdp", numGen: genLive, denLeg: "xdp", denAlt: "xdp-inline", denGen: genLive, min: 0.8, target: "≥ 0.8×"},
	{name: "XDP-native vs Linux", numLeg: "xdp", numGen: genAFP, denLeg: "linux", denGen: genAFP},
	{name: "Linux (threaded NAPI) vs Linux (backlog)", numLeg: "linux", numGen: genAFP, denLeg: "linux-backlog", denGen: genAFP},
}

// saturated reports whether the forwarder lost a tenth or more of what was
// offered in the median trial: it forwarded all it could.
func (r *result) saturated() bool {
	var loss []float64
	for _, t := range r.Trials {
		loss = append(loss, t.LossPct)
	}
	return median(loss) >= 10
}

func (r *report) ratioLines() []string {
	h := r.h
	var out []string
	for _, q := range ratios {
		n, d := h.find(q.numLeg, q.numGen, 64), h.find(q.denLeg, q.denGen, 64)
		if alt := h.find(q.denAlt, q.denGen, 64); alt != nil && (d == nil || median(alt.delivered()) > median(d.delivered())) {
			d = alt
		}
		if n == nil || d == nil {
			continue
		}
		// Ratio of medians, and of the matching repetitions' extremes.
		rm := median(n.delivered()) / median(d.delivered())
		nl, nh := minmax(n.delivered())
		dl, dh := minmax(d.delivered())
		verdict := ""
		if q.min > 0 {
			verdict = fmt.Sprintf(" — target %s: ", q.target)
			if rm >= q.min {
				verdict += "met"
			} else {
				verdict += "NOT met"
			}
		}
		line := fmt.Sprintf("%s, 64 B, %s generator: %.2f× (median %s / %s Mpps of %s; range %.2f–%.2f×)%s",
			q.name, q.numGen, rm, mpps(median(n.delivered())), mpps(median(d.delivered())), d.Leg, nl/dh, nh/dl, verdict)
		if nc, dc := n.perCPU(), d.perCPU(); nc != nil && dc != nil && n.saturated() && d.saturated() {
			// What each forwarder did with the CPU time it got: the ratio
			// that survives a shared machine's scheduler. Only when both
			// were offered more than they forwarded: an adaptive poller
			// that keeps up spends CPU spinning for the next packet.
			ncl, nch := minmax(nc)
			dcl, dch := minmax(dc)
			line += fmt.Sprintf("; per forwarder CPU-second %.2f× (%s / %s Mpps per CPU-s; range %.2f–%.2f×)",
				median(nc)/median(dc), mpps(median(nc)), mpps(median(dc)), ncl/dch, nch/dcl)
		}
		out = append(out, line)
	}
	return out
}

func (r *report) text() string {
	h := r.h
	var b bytes.Buffer
	fmt.Fprintf(&b, "\n== end-to-end report (%s, %s, %.0fs)\n", machine(), r.when.Format(time.RFC3339), r.elapsed.Seconds())
	fmt.Fprintf(&b, "generator CPU %d, router CPU %d, %d flows, %v per run, %d reps\n\n",
		h.cfg.genCPU, h.cfg.rtrCPU, h.cfg.flows, h.cfg.dur, h.cfg.reps)
	fmt.Fprintf(&b, "%-14s %-9s %5s %4s %12s %18s %12s %8s\n", "forwarder", "generator", "size", "reps", "delivered", "min–max", "offered", "loss %")
	for _, x := range h.res {
		lo, hi := minmax(x.delivered())
		var loss []float64
		for _, t := range x.Trials {
			loss = append(loss, t.LossPct)
		}
		fmt.Fprintf(&b, "%-14s %-9s %5d %4d %7s Mpps %8s–%-8s %7s Mpps %8.2f\n", x.Leg, x.Gen, x.Size, len(x.Trials),
			mpps(median(x.delivered())), mpps(lo), mpps(hi), mpps(median(x.offered())), median(loss))
	}
	if len(h.srch) > 0 {
		fmt.Fprintf(&b, "\nRFC 2544-style throughput (loss ≤ %.1f%%, AF_PACKET generator):\n", lossThreshold)
		for _, s := range h.srch {
			note := ""
			if n := s.note(); n != "" {
				note = "; " + n
			}
			fmt.Fprintf(&b, "  %-14s %5d B: %s Mpps (%.2f Gbit/s L1), %d trials%s\n", s.Leg, s.Size, mpps(s.PPS),
				s.PPS*float64(s.Size+20)*8/1e9, s.Trials, note)
		}
	}
	if l := r.ratioLines(); len(l) > 0 {
		fmt.Fprintf(&b, "\nComparisons (delivered packets/s at the sink):\n")
		for _, s := range l {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	if l := r.latencyLines(); len(l) > 0 {
		fmt.Fprintf(&b, "\n%s\n", r.latencyHeading())
		for _, s := range l {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	for _, p := range h.prof {
		fmt.Fprintf(&b, "\nCPU profile of %s", p.Label)
		if p.Err != "" {
			fmt.Fprintf(&b, ": %s\n", p.Err)
			continue
		}
		fmt.Fprintf(&b, " (%s, %v of samples):\n", p.File, p.Total.Round(time.Millisecond))
		for _, f := range p.Top {
			fmt.Fprintf(&b, "  %6.1f%% %6.1f%%  %s\n", 100*f.Flat, 100*f.Cum, f.Name)
		}
	}
	for _, s := range h.fwddStats {
		fmt.Fprintf(&b, "\n%s", s)
	}
	for _, s := range h.skips {
		fmt.Fprintf(&b, "\nskipped: %s", s)
	}
	for _, s := range h.notes {
		fmt.Fprintf(&b, "\nnote: %s", s)
	}
	b.WriteString("\n")
	return b.String()
}

func (r *report) markdown(svg string) string {
	h := r.h
	var b bytes.Buffer
	fmt.Fprintf(&b, "Measured %s by `make bench-e2e` (perf/e2e; %.0f s) on %s.\n", r.when.Format("2006-01-02 15:04 UTC"), r.elapsed.Seconds(), machine())
	fmt.Fprintf(&b, "Topology: gen namespace → veth → router namespace → veth → sink namespace (RFC 2544 addresses); "+
		"the sink counts UDP frames in a BPF program and drops them (per leg: %s; tc at tcx ingress is cheapest for skbs, XDP for redirected xdp frames). Generator pinned to CPU %d, router work "+
		"(fwdd's worker; for linux and xdp the ingress veth's threaded NAPI, SCHED_FIFO %d so that other tenants of this shared machine do not starve it, as they cannot starve softirqs) to CPU %d. %d flows, IPv4 UDP, %v per run, "+
		"median of %d runs (min–max). The machine is shared and noisy: compare rows of one run only.\n\n",
		strings.Join(h.legSinks, ", "), h.cfg.genCPU, h.cfg.napiRT, h.cfg.rtrCPU, h.cfg.flows, h.cfg.dur, h.cfg.reps)
	fmt.Fprintf(&b, "Scheduling: the Linux and XDP legs' NAPI thread and fwdd's worker in adaptive mode (`-rt %d`) run SCHED_FIFO %d; "+
		"busy pollers (c-afxdp, fwdd `-poll busy`) run at ordinary priority, since a SCHED_FIFO thread that never sleeps starves the "+
		"softirq work the kernel defers to ksoftirqd on its CPU.\n\n", h.cfg.napiRT, h.cfg.napiRT)
	b.WriteString("Generators: `afpacket` = fwdgen's AF_PACKET TPACKET_V2 TX ring (feeds the kernel stack, so it is the one for the Linux comparison); " +
		"`live` = fwdgen's BPF_PROG_RUN live-frames generator (XDP_TX; its frames do not reach the kernel IP stack, so it only feeds XDP/AF_XDP forwarders).\n\n")
	b.WriteString("| forwarder | generator | frame size | delivered Mpps (median) | min–max | offered Mpps | loss % |\n|---|---|---|---|---|---|---|\n")
	for _, x := range h.res {
		lo, hi := minmax(x.delivered())
		var loss []float64
		for _, t := range x.Trials {
			loss = append(loss, t.LossPct)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s–%s | %s | %.1f |\n", x.Leg, x.Gen, x.Size, mpps(median(x.delivered())),
			mpps(lo), mpps(hi), mpps(median(x.offered())), median(loss))
	}
	if l := r.ratioLines(); len(l) > 0 {
		b.WriteString("\nComparisons:\n\n")
		for _, s := range l {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	if l := r.latencyLines(); len(l) > 0 {
		fmt.Fprintf(&b, "\n%s\n\n", r.latencyHeading())
		for _, s := range l {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	if len(h.srch) > 0 {
		fmt.Fprintf(&b, "\nRFC 2544-style throughput (highest offered rate with loss ≤ %.1f %%, AF_PACKET generator, %v trials, ≤ %d per size):\n\n",
			lossThreshold, h.cfg.searchDur, h.cfg.searchMax)
		b.WriteString("| forwarder | frame size | throughput Mpps | Gbit/s (L1) | trials | note |\n|---|---|---|---|---|---|\n")
		for _, s := range h.srch {
			note := s.note()
			fmt.Fprintf(&b, "| %s | %d | %s | %.2f | %d | %s |\n", s.Leg, s.Size, mpps(s.PPS), s.PPS*float64(s.Size+20)*8/1e9, s.Trials, note)
		}
	}
	for _, p := range h.prof {
		fmt.Fprintf(&b, "\nCPU profile of %s: ", p.Label)
		if p.Err != "" {
			fmt.Fprintf(&b, "%s\n", p.Err)
			continue
		}
		b.WriteString("\n\n| flat | cum | function |\n|---|---|---|\n")
		for _, f := range p.Top {
			fmt.Fprintf(&b, "| %.1f%% | %.1f%% | `%s` |\n", 100*f.Flat, 100*f.Cum, f.Name)
		}
	}
	if len(h.skips) > 0 {
		b.WriteString("\nNot measured:\n\n")
		for _, s := range h.skips {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	if svg != "" {
		fmt.Fprintf(&b, "\n![delivered Mpps per frame size per forwarder](%s)\n", svg)
	}
	return b.String()
}

// rewriteSection replaces the body of "## title" in the markdown file (up
// to the next "## " heading), or appends the section.
func rewriteSection(path, title, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	lines := strings.Split(string(old), "\n")
	head := "## " + title
	var out []string
	i := 0
	found := false
	for i < len(lines) {
		if strings.TrimSpace(lines[i]) == head {
			found = true
			out = append(out, head, "", strings.TrimRight(body, "\n"), "")
			i++
			for i < len(lines) && !strings.HasPrefix(lines[i], "## ") {
				i++
			}
			continue
		}
		out = append(out, lines[i])
		i++
	}
	if !found {
		for len(out) > 0 && out[len(out)-1] == "" {
			out = out[:len(out)-1]
		}
		out = append(out, "", head, "", strings.TrimRight(body, "\n"), "")
	}
	return os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644)
}

// svg draws grouped bars: delivered Mpps (median) per frame size, one bar
// per forwarder/generator pair.
func (r *report) svg() string {
	h := r.h
	type key struct{ leg, gen string }
	var series []key
	sizes := map[int]bool{}
	var sizeList []int
	for _, x := range h.res {
		k := key{x.Leg, x.Gen}
		found := false
		for _, s := range series {
			if s == k {
				found = true
			}
		}
		if !found {
			series = append(series, k)
		}
		if !sizes[x.Size] {
			sizes[x.Size] = true
			sizeList = append(sizeList, x.Size)
		}
	}
	maxV := 0.0
	for _, x := range h.res {
		if v := median(x.delivered()) / 1e6; v > maxV {
			maxV = v
		}
	}
	if maxV == 0 {
		maxV = 1
	}
	const W, H, L, B, T = 760.0, 360.0, 60.0, 40.0, 30.0
	colors := []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", W, H+20*float64(len(series)/3+1))
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="14">Delivered Mpps at the sink per frame size (median)</text>`+"\n", L)
	plotW, plotH := W-L-20, H-B-T
	for i := 0; i <= 4; i++ {
		v := maxV * float64(i) / 4
		y := T + plotH - plotH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%.2f</text>`+"\n", L, y, L+plotW, y, L-5, y+4, v)
	}
	gw := plotW / float64(max(len(sizeList), 1))
	bw := gw * 0.8 / float64(max(len(series), 1))
	for si, size := range sizeList {
		gx := L + gw*float64(si) + gw*0.1
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%d B</text>`+"\n", L+gw*float64(si)+gw/2, T+plotH+18, size)
		for ki, k := range series {
			x := h.find(k.leg, k.gen, size)
			if x == nil {
				continue
			}
			v := median(x.delivered()) / 1e6
			bh := plotH * v / maxV
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s/%s %d B: %.3f Mpps</title></rect>`+"\n",
				gx+bw*float64(ki), T+plotH-bh, bw-2, bh, colors[ki%len(colors)], k.leg, k.gen, size, v)
		}
	}
	for ki, k := range series {
		x := L + float64(ki%3)*230
		y := H + float64(ki/3)*20
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/><text x="%.0f" y="%.0f">%s (%s generator)</text>`+"\n",
			x, y-10, colors[ki%len(colors)], x+16, y, k.leg, k.gen)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
