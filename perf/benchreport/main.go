// Command benchreport turns `go test -bench` output into the summary at the
// top of BENCHMARKS.md: every benchmark that has a baseline, the medians of
// both from the same run, the ratio and the target, plus an SVG of
// the FIB lookup rate against bart. make bench runs it.
//
//	go test -run '^$' -bench . -count 3 ./... | tee bench.txt
//	go run ./perf/benchreport -in bench.txt -md BENCHMARKS.md -svg docs/img/fib-vs-bart.svg
//
// It rewrites only the block between its own markers in the Markdown file.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// pair is a benchmark measured against a baseline of the same run.
type pair struct {
	pkg, name, base string
	// target is the required speed-up (baseline ns / ours ns); 0: none.
	target float64
	note   string
}

var pairs = []pair{
	{"ring", "RingSPSCBurst32", "ChanSPSC", 30, "elements per second, SPSC, 32 per burst vs buffered channel"},
	{"ring", "RingMPSCBurst32", "ChanMPSC", 10, "2 producers"},
	{"mbuf", "PoolBurst32", "SyncPool", 5, "get+put per mbuf vs sync.Pool Get+Put"},
	{"fib", "Lookup4Batch", "BartLookup4", 10, "full table, 1M probes"},
	{"fib", "Lookup4", "BartLookup4", 3, "one address at a time"},
	{"fib", "Lookup6Batch", "BartLookup6", 5, "full table IPv6"},
	{"fwd/pkt", "ParseHashTTL4", "GopacketDecode4", 0, "parse+validate+hash+TTL vs gopacket DecodingLayerParser"},
	{"fwd/pkt", "ParseHashTTL6", "GopacketDecode6", 0, ""},
	{"fwd/pkt", "Checksum1500", "Checksum1500Naive", 0, "RFC 1071 over 1500 bytes"},
	{"pmd/null", "NullRxTx/driver", "NullRxTx/baseline-cache-copy", 0, "null driver RX+TX vs the same alloc/copy/free by hand"},
	{"txq", "TransmitOwnQueue/txq", "TransmitOwnQueue/baseline", 0, "if_transmit on the worker's own queue vs TxBurst directly"},
	{"txq", "TransmitViaRing/txq-1queue", "TransmitViaRing/baseline-1queue", 0, "through the MPSC ring to another worker's queue"},
	{"lltable", "Lookup/v4/snapshot/n=1024", "Lookup/v4/gomap/n=1024", 0, "neighbour lookup vs a Go map"},
	{"lltable", "Lookup/v6/snapshot/n=1024", "Lookup/v6/gomap/n=1024", 0, ""},
}

// single is a benchmark with an absolute target (ns/op at most).
type single struct {
	pkg, name string
	maxNs     float64
	note      string
}

var singles = []single{
	{"fwd", "Pipeline4", 33, "whole pipeline per packet, full table, 64 B, one worker (30 Mpps)"},
	{"fwd", "Pipeline6", 0, "IPv6"},
}

type result struct {
	ns      []float64
	metrics map[string][]float64
}

func main() {
	in := flag.String("in", "-", "go test -bench output (- for stdin)")
	md := flag.String("md", "BENCHMARKS.md", "Markdown file whose generated block is rewritten")
	svg := flag.String("svg", "", "write an SVG of FIB lookups/s vs bart here")
	flag.Parse()
	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		r = f
	}
	res, err := parse(r)
	if err != nil {
		fatal(err)
	}
	block := render(res)
	if err := rewrite(*md, block); err != nil {
		fatal(err)
	}
	if *svg != "" {
		if err := os.WriteFile(*svg, []byte(fibSVG(res)), 0o644); err != nil {
			fatal(err)
		}
	}
	fmt.Print(block)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchreport:", err)
	os.Exit(1)
}

// parse reads benchmark lines, keyed "pkg/Name" (pkg relative to the
// module, GOMAXPROCS suffix removed).
func parse(r io.Reader) (map[string]*result, error) {
	out := map[string]*result{}
	pkg := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(p), "github.com/fwdd/fwdd/")
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		key := pkg + "/" + name
		res := out[key]
		if res == nil {
			res = &result{metrics: map[string][]float64{}}
			out[key] = res
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if f[i+1] == "ns/op" {
				res.ns = append(res.ns, v)
			} else {
				res.metrics[f[i+1]] = append(res.metrics[f[i+1]], v)
			}
		}
	}
	return out, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(v []float64) string {
	if len(v) < 2 {
		return ""
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return fmt.Sprintf(" (%s–%s)", num(s[0]), num(s[len(s)-1]))
}

func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

const (
	beginMark = "<!-- benchreport:begin (generated by make bench; edits inside are overwritten) -->"
	endMark   = "<!-- benchreport:end -->"
)

func render(res map[string]*result) string {
	var b strings.Builder
	b.WriteString(beginMark + "\n")
	fmt.Fprintf(&b, "## Summary: each benchmark against its baseline, same run\n\n")
	fmt.Fprintf(&b, "Generated %s on %s, %d CPUs, %s, kernel %s. Medians of the runs (range in brackets);\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), cpuModel(), runtime.NumCPU(), runtime.Version(), kernel())
	b.WriteString("ratio = baseline ns/op ÷ ours (higher is better). The machine is shared: compare within a row.\n\n")
	b.WriteString("| package | benchmark | ns/op | baseline | baseline ns/op | ratio | target | met | what |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range pairs {
		ours, base := res[p.pkg+"/"+p.name], res[p.pkg+"/"+p.base]
		if ours == nil || base == nil || len(ours.ns) == 0 || len(base.ns) == 0 {
			continue
		}
		ratio := median(base.ns) / median(ours.ns)
		target, met := "–", "–"
		if p.target > 0 {
			target = fmt.Sprintf("≥ %g×", p.target)
			met = yes(ratio >= p.target)
		}
		fmt.Fprintf(&b, "| %s | %s | %s%s | %s | %s | %.1f× | %s | %s | %s |\n", p.pkg, p.name, num(median(ours.ns)), spread(ours.ns),
			p.base, num(median(base.ns)), ratio, target, met, p.note)
	}
	b.WriteString("\n| package | benchmark | ns/op | other metrics | target | met |\n|---|---|---|---|---|---|\n")
	for _, s := range singles {
		r := res[s.pkg+"/"+s.name]
		if r == nil || len(r.ns) == 0 {
			continue
		}
		var ms []string
		keys := make([]string, 0, len(r.metrics))
		for k := range r.metrics {
			if k != "B/op" && k != "allocs/op" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			ms = append(ms, num(median(r.metrics[k]))+" "+k)
		}
		if a, ok := r.metrics["allocs/op"]; ok {
			ms = append(ms, num(median(a))+" allocs/op")
		}
		target, met := "–", "–"
		if s.maxNs > 0 {
			target = fmt.Sprintf("≤ %g ns", s.maxNs)
			met = yes(median(r.ns) <= s.maxNs)
		}
		fmt.Fprintf(&b, "| %s | %s | %s%s | %s | %s | %s |\n", s.pkg, s.name, num(median(r.ns)), spread(r.ns), strings.Join(ms, ", "), target, met)
	}
	if r := res["fib/Load"]; r != nil {
		for k, v := range r.metrics {
			if strings.Contains(k, "prefix") {
				fmt.Fprintf(&b, "\nFIB memory after loading the full table: %s %s.\n", num(median(v)), k)
			}
		}
	}
	b.WriteString("\nPlot: [FIB lookups per second vs bart](docs/img/fib-vs-bart.svg). Details and discussion per package below.\n")
	b.WriteString(endMark + "\n")
	return b.String()
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	out, err := exec.Command("uname", "-r").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// rewrite replaces the generated block of the file (or inserts it after
// the first paragraph).
func rewrite(path, block string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	if i := strings.Index(s, beginMark); i >= 0 {
		if j := strings.Index(s[i:], endMark); j >= 0 {
			s = s[:i] + block + s[i+j+len(endMark)+1:]
			return os.WriteFile(path, []byte(s), 0o644)
		}
	}
	i := strings.Index(s, "\n## ")
	if i < 0 {
		i = len(s)
	}
	s = s[:i+1] + block + "\n" + s[i+1:]
	return os.WriteFile(path, []byte(s), 0o644)
}

// fibSVG draws lookups per second (millions) of fwdd's FIB and bart.
func fibSVG(res map[string]*result) string {
	bars := []struct {
		label string
		key   string
	}{
		{"fwdd Lookup4Batch", "fib/Lookup4Batch"}, {"fwdd Lookup4", "fib/Lookup4"}, {"bart Lookup4", "fib/BartLookup4"},
		{"fwdd Lookup6Batch", "fib/Lookup6Batch"}, {"fwdd Lookup6", "fib/Lookup6"}, {"bart Lookup6", "fib/BartLookup6"},
	}
	type bar struct {
		label string
		mlps  float64
	}
	var bs []bar
	maxV := 0.0
	for _, x := range bars {
		r := res[x.key]
		if r == nil || len(r.ns) == 0 || median(r.ns) == 0 {
			continue
		}
		v := 1e3 / median(r.ns) // million lookups per second
		bs = append(bs, bar{x.label, v})
		maxV = max(maxV, v)
	}
	var b strings.Builder
	h := 40 + 30*len(bs)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="%d" font-family="sans-serif" font-size="12">`+"\n", h)
	b.WriteString(`<text x="10" y="20" font-size="14">FIB lookups per second, full Internet table (millions; higher is better)</text>` + "\n")
	for i, x := range bs {
		y := 35 + 30*i
		w := 0.0
		if maxV > 0 {
			w = 400 * x.mlps / maxV
		}
		color := "#4a7ebb"
		if strings.HasPrefix(x.label, "bart") {
			color = "#999999"
		}
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text><rect x="150" y="%d" width="%.0f" height="20" fill="%s"/><text x="%.0f" y="%d">%.1f</text>`+"\n",
			y+15, x.label, y, w, color, 155+w, y+15, x.mlps)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
