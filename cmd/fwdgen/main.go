// Command fwdgen is fwdd's traffic generator and sink: IPv4/IPv6 UDP over
// AF_PACKET (TPACKET_V2 TX ring) or BPF_PROG_RUN live frames, with
// sequence numbers and send timestamps in the payload that the sink checks.
//
//	fwdgen -i eth1 -dst-mac 02:00:00:00:00:01 -size 64 -flows 256 -d 10s
//	fwdgen -i eth2 -rx -d 12s            # sink: loss, reorder, latency
//
// See docs/perf.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fwdd/fwdd/perf/gen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fwdgen:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		dev      = flag.String("i", "", "interface to send on (or receive on with -rx)")
		rx       = flag.Bool("rx", false, "sink mode: receive, count, check sequence numbers and latency")
		backend  = flag.String("backend", "", "tx: afpacket (default: TPACKET_V2 TX ring), mmsg (sendmmsg), afxdp (AF_XDP TX ring, need_wakeup; see -xdp-mode) or live (BPF_PROG_RUN live frames); rx: afpacket (default, checks stamps), xdp or tc (count in BPF only; tc needs NAPI/GRO on veth for redirected frames)")
		v6       = flag.Bool("6", false, "IPv6 (default IPv4)")
		size     = flag.Int("size", 64, "frame size in bytes including FCS (64-1518; IPv6 minimum and default 84)")
		imix     = flag.Bool("imix", false, "simple IMIX (7×64, 4×594, 1×1518) instead of -size")
		flows    = flag.Int("flows", 1, "number of flows (UDP source port varies; see -src-addrs/-dst-addrs)")
		srcAddrs = flag.Int("src-addrs", 1, "source addresses to spread flows over (low 16 bits of -src)")
		dstAddrs = flag.Int("dst-addrs", 1, "destination addresses to spread flows over (low 16 bits of -dst)")
		srcMAC   = flag.String("src-mac", "", "source MAC (default: the interface's)")
		dstMAC   = flag.String("dst-mac", "", "destination MAC: the router's port (required for tx)")
		src      = flag.String("src", "", "source address (default 198.18.0.2 or 2001:2::2)")
		dst      = flag.String("dst", "", "destination address (default 198.19.128.1 or 2001:2:0:8000::1)")
		sport    = flag.Uint("sport", 1024, "UDP source port of flow 0")
		dport    = flag.Uint("dport", 9, "UDP destination port")
		rate     = flag.Float64("rate", 0, "packets per second over all workers (0 = flat out)")
		dur      = flag.Duration("d", 10*time.Second, "duration (0 = until -n or Ctrl-C)")
		count    = flag.Uint64("n", 0, "packets to send in total (0 = no limit)")
		workers  = flag.Int("workers", 1, "sockets/threads (tx: one stream each; rx: fanout group)")
		cpus     = flag.String("cpus", "", "CPUs to pin workers to, e.g. 0 or 2,3 (default unpinned)")
		batch    = flag.Int("batch", 64, "frames per kick")
		noBypass = flag.Bool("no-bypass", false, "AF_PACKET: go through the qdisc (no PACKET_QDISC_BYPASS)")
		stamps   = flag.Bool("ts", true, "live: stamp frames with their send time (latency at the sink; see -ts-every); -ts=false keeps sequence numbers only and costs less per frame")
		tsEvery  = flag.Int("ts-every", 16, "live: write the send time into every Nth frame only (power of two; 1 = every frame); the others count for loss and order but give no latency sample. Reading the clock is the live program's dearest step")
		xdpMode  = flag.String("xdp-mode", "auto", "afxdp: auto (zero-copy if the driver can, else copy), copy or zerocopy")
		jsonOut  = flag.Bool("j", false, "print the summary as JSON")
		quiet    = flag.Bool("q", false, "no progress lines")
	)
	flag.Parse()
	if *dev == "" {
		return fmt.Errorf("-i DEV is required")
	}
	cpuList, err := parseCPUs(*cpus)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := func(p gen.Progress) {
		if *quiet {
			return
		}
		fmt.Fprintf(os.Stderr, "%6.1fs %12d pkts %8.3f Mpps %8.3f Gbit/s\n", p.Elapsed.Seconds(), p.Packets,
			p.PPS/1e6, p.PPS*8*float64(p.Bytes+gen.FCSLen*p.Packets)/float64(max(p.Packets, 1))/1e9)
	}
	var sum *gen.Summary
	if *rx {
		sum, err = gen.Receive(ctx, gen.RxConfig{Dev: *dev, Backend: *backend, Workers: *workers, CPUs: cpuList,
			Duration: *dur, Progress: progress,
			Ready: func() { fmt.Fprintln(os.Stderr, "fwdgen: ready") }})
	} else {
		var spec gen.Spec
		sizeSet := false
		flag.Visit(func(f *flag.Flag) { sizeSet = sizeSet || f.Name == "size" })
		spec, err = buildSpec(*dev, *v6, sizeSet, *size, *imix, *flows, *srcAddrs, *dstAddrs, *srcMAC, *dstMAC, *src, *dst, *sport, *dport)
		if err != nil {
			return err
		}
		sum, err = gen.Transmit(ctx, gen.TxConfig{Dev: *dev, Backend: *backend, Spec: spec, Workers: *workers,
			CPUs: cpuList, Rate: *rate, Duration: *dur, Count: *count, Batch: *batch, NoBypass: *noBypass, XDPMode: *xdpMode, NoTimestamps: !*stamps, StampEvery: *tsEvery,
			Progress: progress})
	}
	if err != nil {
		return err
	}
	if *jsonOut {
		e := json.NewEncoder(os.Stdout)
		e.SetIndent("", "  ")
		return e.Encode(sum)
	}
	printSummary(sum)
	return nil
}

func parseCPUs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if lo, hi, ok := strings.Cut(f, "-"); ok {
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || b < a {
				return nil, fmt.Errorf("-cpus %q: bad range %q", s, f)
			}
			for c := a; c <= b; c++ {
				out = append(out, c)
			}
			continue
		}
		c, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("-cpus %q: %w", s, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func buildSpec(dev string, v6, sizeSet bool, size int, imix bool, flows, srcAddrs, dstAddrs int, srcMAC, dstMAC, src, dst string,
	sport, dport uint) (gen.Spec, error) {
	sp := gen.Spec{IPv6: v6, Flows: flows, SrcAddrs: srcAddrs, DstAddrs: dstAddrs, SrcPort: uint16(sport), DstPort: uint16(dport)}
	if imix {
		sp.Sizes = gen.IMIX()
		if v6 {
			sp.Sizes = []int{84, 594, 84, 84, 594, 84, 1518, 84, 594, 84, 594, 84}
		}
	} else {
		sp.Sizes = []int{size}
		if v6 && !sizeSet && size < gen.MinFrame(true) {
			sp.Sizes = []int{gen.MinFrame(true)} // the smallest stamped IPv6 frame
		}
	}
	if dstMAC == "" {
		return sp, fmt.Errorf("-dst-mac is required: the MAC of the router port the frames go to (ip link show)")
	}
	m, err := net.ParseMAC(dstMAC)
	if err != nil || len(m) != 6 {
		return sp, fmt.Errorf("-dst-mac %q: not a MAC address", dstMAC)
	}
	copy(sp.DstMAC[:], m)
	if srcMAC == "" {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return sp, fmt.Errorf("interface %q: %w", dev, err)
		}
		copy(sp.SrcMAC[:], ifi.HardwareAddr)
	} else {
		m, err := net.ParseMAC(srcMAC)
		if err != nil || len(m) != 6 {
			return sp, fmt.Errorf("-src-mac %q: not a MAC address", srcMAC)
		}
		copy(sp.SrcMAC[:], m)
	}
	if src == "" {
		src = map[bool]string{false: "198.18.0.2", true: "2001:2::2"}[v6]
	}
	if dst == "" {
		dst = map[bool]string{false: "198.19.128.1", true: "2001:2:0:8000::1"}[v6]
	}
	if sp.SrcIP, err = netip.ParseAddr(src); err != nil {
		return sp, fmt.Errorf("-src: %w", err)
	}
	if sp.DstIP, err = netip.ParseAddr(dst); err != nil {
		return sp, fmt.Errorf("-dst: %w", err)
	}
	return sp, nil
}

func printSummary(s *gen.Summary) {
	if s.Mode == "tx" {
		fmt.Printf("sent %d packets (%d bytes) in %.2fs on %s via %s, %d worker(s): %.3f Mpps, %.3f Gbit/s (L2), %.3f Gbit/s (L1)\n",
			s.Packets, s.Bytes, s.Seconds, s.Dev, s.Backend, s.Workers, s.MPPS, s.Gbps, s.GbpsL1)
		if s.Errors > 0 {
			fmt.Printf("errors: %d\n", s.Errors)
		}
		return
	}
	fmt.Printf("received %d packets (%d bytes) in %.2fs on %s via %s: %.3f Mpps, %.3f Gbit/s (L2)\n",
		s.Packets, s.Bytes, s.Seconds, s.Dev, s.Backend, s.MPPS, s.Gbps)
	if s.Backend == gen.BackendAFPacket {
		fmt.Printf("stamped: %d unique of %d expected, lost %d (%.4f%%), dups %d, reordered %d, late %d, foreign %d, ring drops %d\n",
			s.Unique, s.Expected, s.Lost, s.LossPct, s.Dups, s.Reorder, s.Late, s.Foreign, s.RingDrops)
	}
	if l := s.Latency; l != nil {
		fmt.Printf("latency µs: min %.1f mean %.1f p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f (%d samples)\n",
			l.MinUS, l.MeanUS, l.P50US, l.P90US, l.P99US, l.P999US, l.MaxUS, l.Samples)
	}
}
