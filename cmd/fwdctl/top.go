package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/ctl/show"
	"golang.org/x/term"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// topSample is what one refresh asks the daemon for, in one batch.
type topSample struct {
	at      time.Time
	ports   []show.Port
	stats   []show.Counter
	fibs    []show.FIB
	runtime show.Runtime
}

var topLines = []string{"show ports", "show stats", "show fibs", "show workers"}

func takeSample(ctx context.Context, c *ctlsock.Client) (*topSample, error) {
	resp, err := c.Do(ctx, &ctlsock.Request{Lines: topLines, JSON: true, Source: "top"})
	if err != nil {
		return nil, err
	}
	if !resp.OK {
		return nil, fmt.Errorf("%s", resp.Error)
	}
	if len(resp.Data) != len(topLines) {
		return nil, fmt.Errorf("fwdd answered %d results for %d commands", len(resp.Data), len(topLines))
	}
	s := &topSample{at: time.Now()}
	for i, v := range []any{&s.ports, &s.stats, &s.fibs, &s.runtime} {
		if err := json.Unmarshal(resp.Data[i], v); err != nil {
			return nil, fmt.Errorf("%s: %w", topLines[i], err)
		}
	}
	return s, nil
}

// Sort keys of top.
var topKeys = []string{"rx", "tx", "drops", "name"}

// portRate is one port's rates over an interval.
type portRate struct {
	name                  string
	rxPPS, txPPS          float64
	rxBPS, txBPS          float64
	dropsPS               float64
	rxTotal, txTotal      uint64
	running, up, noDevice bool
}

// renderTop writes one screen from two samples.
func renderTop(w io.Writer, prev, cur *topSample, key string) {
	dt := cur.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		dt = 1
	}
	rate := func(a, b uint64) float64 {
		if b < a {
			return 0
		}
		return float64(b-a) / dt
	}
	old := map[string]show.Port{}
	for _, p := range prev.ports {
		old[p.Name] = p
	}
	var rows []portRate
	for _, p := range cur.ports {
		o := old[p.Name]
		rows = append(rows, portRate{name: p.Name,
			rxPPS: rate(o.Stats.RxPackets, p.Stats.RxPackets), txPPS: rate(o.Stats.TxPackets, p.Stats.TxPackets),
			rxBPS: 8 * rate(o.Stats.RxBytes, p.Stats.RxBytes), txBPS: 8 * rate(o.Stats.TxBytes, p.Stats.TxBytes),
			dropsPS: rate(o.Stats.RxDrops+o.Stats.TxDrops, p.Stats.RxDrops+p.Stats.TxDrops),
			rxTotal: p.Stats.RxPackets, txTotal: p.Stats.TxPackets, running: p.Running, up: p.Up, noDevice: p.NoDevice})
	}
	slices.SortStableFunc(rows, func(a, b portRate) int {
		switch key {
		case "tx":
			return cmpDesc(a.txPPS, b.txPPS)
		case "drops":
			return cmpDesc(a.dropsPS, b.dropsPS)
		case "name":
			return strings.Compare(a.name, b.name)
		}
		return cmpDesc(a.rxPPS, b.rxPPS)
	})
	fmt.Fprintf(w, "fwdd top  %s  every %.1fs  sorted by %s  (q quit; r rx, t tx, d drops, n name)\n\n",
		cur.at.Format("15:04:05"), dt, key)
	fmt.Fprintf(w, "%-12s %5s %12s %12s %12s %12s %10s\n", "PORT", "STATE", "RX pps", "RX bit/s", "TX pps", "TX bit/s", "drops/s")
	for _, r := range rows {
		state := "up"
		switch {
		case r.noDevice:
			state = "gone"
		case !r.up:
			state = "down"
		case !r.running:
			state = "nolnk"
		}
		fmt.Fprintf(w, "%-12s %5s %12s %12s %12s %12s %10s\n", r.name, state, si(r.rxPPS), si(r.rxBPS), si(r.txPPS), si(r.txBPS), si(r.dropsPS))
	}
	// Pipeline drops by reason, over every worker ("fwd" scope).
	oldC := map[string]uint64{}
	for _, c := range prev.stats {
		if c.Scope == "fwd" {
			oldC[c.Name] = c.Value
		}
	}
	type drop struct {
		name string
		ps   float64
	}
	var drops []drop
	var fwdPS float64
	for _, c := range cur.stats {
		if c.Scope != "fwd" {
			continue
		}
		r := rate(oldC[c.Name], c.Value)
		if c.Name == "forwarded" {
			fwdPS = r
		}
		if strings.HasPrefix(c.Name, "drop") && r > 0 {
			drops = append(drops, drop{c.Name, r})
		}
	}
	slices.SortFunc(drops, func(a, b drop) int { return cmpDesc(a.ps, b.ps) })
	fmt.Fprintf(w, "\nforwarded/s %s   drops/s by reason:", si(fwdPS))
	if len(drops) == 0 {
		fmt.Fprint(w, " none")
	}
	for _, d := range drops {
		fmt.Fprintf(w, " %s %s", strings.TrimPrefix(d.name, "drop_"), si(d.ps))
	}
	fmt.Fprintln(w)
	// Workers: share of polls that found work, packets per busy poll.
	fmt.Fprintf(w, "\n%-7s %4s %8s %12s %10s\n", "WORKER", "CPU", "busy %", "pkts/poll", "pps")
	oldW := map[int]show.Worker{}
	for _, x := range prev.runtime.Workers {
		oldW[x.Worker] = x
	}
	for _, x := range cur.runtime.Workers {
		o := oldW[x.Worker]
		d := show.Worker{Polls: x.Polls - o.Polls, BusyPolls: x.BusyPolls - o.BusyPolls, Packets: x.Packets - o.Packets}
		if x.Polls < o.Polls {
			d = x
		}
		cpu := "-"
		if x.CPU >= 0 {
			cpu = fmt.Sprint(x.CPU)
		}
		fmt.Fprintf(w, "%-7d %4s %8.1f %12.2f %10s\n", x.Worker, cpu, d.Busy(), d.PerPoll(), si(float64(d.Packets)/dt))
	}
	// Pools, neighbours, FIBs.
	fmt.Fprint(w, "\nmbufs:")
	pools := map[string]map[string]uint64{}
	var order []string
	for _, c := range cur.stats {
		if name, ok := strings.CutPrefix(c.Scope, "mbuf pool "); ok {
			if pools[name] == nil {
				pools[name] = map[string]uint64{}
				order = append(order, name)
			}
			pools[name][c.Name] = c.Value
		}
	}
	for _, name := range order {
		p := pools[name]
		pct := 0.0
		if p["mbufs"] > 0 {
			pct = 100 * float64(p["in use"]) / float64(p["mbufs"])
		}
		fmt.Fprintf(w, " %s %d/%d in use (%.0f%%)", name, p["in use"], p["mbufs"], pct)
	}
	fmt.Fprintf(w, "\nneighbours: %d (held packets %d)   fibs:", cur.runtime.Neighbours, cur.runtime.NeighHeld)
	for _, f := range cur.fibs {
		fmt.Fprintf(w, " %d: %d+%d routes", f.FIB, f.Routes4, f.Routes6)
	}
	fmt.Fprintln(w)
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// si formats a rate with k/M/G suffixes.
func si(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// runTop is fwdctl top: a live view on a terminal, or -n N plain
// snapshots (for scripts and non-terminals).
func runTop(ctx context.Context, sock string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fwdctl top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 0, "print `N` plain snapshots, one per interval, then exit (for scripts; the default when not on a terminal is 1)")
	interval := fs.Duration("i", time.Second, "refresh `interval`")
	key := fs.String("o", "rx", "sort ports by `KEY`: rx, tx, drops or name")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fwdctl top: unexpected %q (flags: -n N, -i INTERVAL, -o KEY)\n", fs.Arg(0))
		return 2
	}
	if !slices.Contains(topKeys, *key) {
		fmt.Fprintf(stderr, "fwdctl top: -o %q: sort by rx, tx, drops or name\n", *key)
		return 2
	}
	if *interval < 100*time.Millisecond {
		fmt.Fprintln(stderr, "fwdctl top: -i: at least 100ms")
		return 2
	}
	c, err := ctlsock.Dial(ctx, sock)
	if err != nil {
		fmt.Fprintf(stderr, "fwdctl: %v\n", err)
		return 1
	}
	defer c.Close()
	tty, _ := stdin.(*os.File)
	out, _ := stdout.(*os.File)
	live := *n == 0 && tty != nil && out != nil && isTerminal(tty) && isTerminal(out)
	if !live && *n == 0 {
		*n = 1
	}
	prev, err := takeSample(ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "fwdctl top: %v\n", err)
		return 1
	}
	if !live {
		for i := 0; i < *n; i++ {
			select {
			case <-ctx.Done():
				return 0
			case <-time.After(*interval):
			}
			cur, err := takeSample(ctx, c)
			if err != nil {
				fmt.Fprintf(stderr, "fwdctl top: %v\n", err)
				return 1
			}
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			renderTop(stdout, prev, cur, *key)
			prev = cur
		}
		return 0
	}
	fd := int(tty.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		fmt.Fprintf(stderr, "fwdctl top: cannot set up the terminal: %v\n", err)
		return 1
	}
	defer term.Restore(fd, old)
	keys := make(chan byte, 8)
	go func() {
		var b [1]byte
		for {
			if k, err := tty.Read(b[:]); err != nil || k == 0 {
				close(keys)
				return
			}
			keys <- b[0]
		}
	}()
	fmt.Fprint(stdout, "\x1b[?25l") // hide the cursor
	defer fmt.Fprint(stdout, "\x1b[?25h\r\n")
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	var cur *topSample
	draw := func() {
		if cur == nil {
			fmt.Fprint(stdout, "\x1b[H\x1b[2Jfwdd top: measuring...\r\n")
			return
		}
		var b strings.Builder
		renderTop(&b, prev, cur, *key)
		// Raw mode: lines need CR too.
		fmt.Fprint(stdout, "\x1b[H\x1b[2J"+strings.ReplaceAll(b.String(), "\n", "\r\n"))
	}
	draw()
	for {
		select {
		case <-ctx.Done():
			return 0
		case k, ok := <-keys:
			if !ok {
				return 0
			}
			switch k {
			case 'q', 'Q', 3, 4: // q, Ctrl-C, Ctrl-D (raw mode: no signal)
				return 0
			case 'r':
				*key = "rx"
			case 't':
				*key = "tx"
			case 'd':
				*key = "drops"
			case 'n':
				*key = "name"
			}
			draw()
		case <-tick.C:
			s, err := takeSample(ctx, c)
			if err != nil {
				term.Restore(fd, old)
				fmt.Fprintf(stderr, "\r\nfwdctl top: %v\n", err)
				return 1
			}
			if cur != nil {
				prev = cur
			}
			cur = s
			draw()
		}
	}
}
