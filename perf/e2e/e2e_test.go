package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testenv"
)

// TestLinuxLegQuick runs the harness's Linux-forwarding leg in quick mode
// (2 × 1 s at 64 bytes, a 4-trial throughput search) end to end: topology,
// generator, sink, report, cleanup.
func TestLinuxLegQuick(t *testing.T) {
	testenv.Root(t, "namespaces, veth, BPF")
	if testing.Short() {
		t.Skip("end-to-end harness; skipped with -short")
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/fwdgen").CombinedOutput(); err != nil {
		t.Fatalf("build fwdgen: %v\n%s", err, out)
	}
	cfg := config{bin: bin, dur: time.Second, reps: 2, sizes: []int{64}, flows: 16, genCPU: 0, rtrCPU: 1, napi: true,
		search: true, searchDur: time.Second, searchMax: 4, searchSz: []int{64}, legs: []string{"linux"},
		budget: 25 * time.Second, sink: "auto", napiRT: 50}
	log, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	rep, code := runHarness(cfg, log)
	if rep == nil || code != 0 {
		b, _ := os.ReadFile(log.Name())
		t.Fatalf("harness failed (code %d):\n%s", code, b)
	}
	txt := rep.text()
	t.Log(txt)
	r := rep.h.find("linux", genAFP, 64)
	if r == nil || len(r.Trials) != 2 {
		t.Fatalf("no linux result: %+v", rep.h.res)
	}
	for _, tr := range r.Trials {
		if tr.Sent == 0 || tr.Recv == 0 || tr.Recv > tr.Sent+10 {
			t.Errorf("implausible trial %+v", tr)
		}
	}
	if len(rep.h.srch) != 1 || rep.h.srch[0].PPS <= 0 {
		t.Errorf("no throughput result: %+v", rep.h.srch)
	}
	// The topology is gone.
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), rep.h.topo.R) {
		t.Errorf("namespace %s left behind", rep.h.topo.R)
	}
	// The markdown section replaces only its own section.
	md := filepath.Join(t.TempDir(), "B.md")
	if err := os.WriteFile(md, []byte("# B\n\n## ring\n\nkeep\n\n## end to end\n\nold\n\n## mbuf\n\nkeep too\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rewriteSection(md, "end to end", rep.markdown("")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(md)
	s := string(b)
	if strings.Contains(s, "\nold\n") || !strings.Contains(s, "keep\n") || !strings.Contains(s, "keep too") || !strings.Contains(s, "| linux | afpacket | 64 |") {
		t.Errorf("rewritten BENCHMARKS.md:\n%s", s)
	}
}

func TestRewriteSectionAppends(t *testing.T) {
	md := filepath.Join(t.TempDir(), "B.md")
	if err := os.WriteFile(md, []byte("# B\n\n## ring\n\nx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rewriteSection(md, "end to end", "body\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(md)
	if string(b) != "# B\n\n## ring\n\nx\n\n## end to end\n\nbody\n" {
		t.Errorf("got %q", b)
	}
}

func TestMedianMinMax(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median %v", m)
	}
	if lo, hi := minmax([]float64{3, 1, 2}); lo != 1 || hi != 3 {
		t.Errorf("minmax %v %v", lo, hi)
	}
}

// TestCReferenceLegQuick builds the C AF_XDP reference forwarder and runs
// its leg once: it must forward (CI installs gcc, libxdp-dev, libbpf-dev;
// a machine without them fails here rather than skipping the comparison).
func TestCReferenceLegQuick(t *testing.T) {
	testenv.Root(t, "namespaces, veth, AF_XDP")
	if testing.Short() {
		t.Skip("end-to-end harness; skipped with -short")
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/fwdgen").CombinedOutput(); err != nil {
		t.Fatalf("build fwdgen: %v\n%s", err, out)
	}
	// The diagnostic rig (-sink-rps) and its notes ride along: they must
	// not stop a leg from forwarding.
	cfg := config{bin: bin, dur: time.Second, reps: 1, sizes: []int{64}, flows: 16, genCPU: 0, rtrCPU: 1,
		legs: []string{"c-afxdp"}, budget: 20 * time.Second, sink: "auto", xskfwdSrc: "../xskfwd/xskfwd.c", sinkRPS: "0"}
	_, noPerf := exec.LookPath("perf")
	if noPerf == nil {
		cfg.perfDir = t.TempDir()
	}
	log, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	rep, code := runHarness(cfg, log)
	b, _ := os.ReadFile(log.Name())
	if rep == nil || code != 0 {
		t.Fatalf("harness failed (code %d):\n%s", code, b)
	}
	if len(rep.h.skips) > 0 {
		t.Fatalf("leg skipped: %v\n%s", rep.h.skips, b)
	}
	for _, g := range []string{genAFP, genLive} {
		r := rep.h.find("c-afxdp", g, 64)
		if r == nil || len(r.Trials) != 1 || r.Trials[0].Recv == 0 {
			t.Errorf("c-afxdp with the %s generator delivered nothing:\n%s", g, b)
		}
	}
	notes := strings.Join(rep.h.notes, "\n")
	if !strings.Contains(notes, "DIAGNOSTIC RIG (-sink-rps 0)") || !strings.Contains(notes, `"xsk_rx_ring_full":`) {
		t.Errorf("notes lack the diagnostic rig or the C forwarder's socket counters:\n%s", notes)
	}
	if !strings.Contains(string(b), "c-afxdp: r0 during the leg: xdp_packets ") {
		t.Errorf("no r0 counters in the log:\n%s", b)
	}
	if cfg.perfDir != "" {
		for _, g := range []string{genAFP, genLive} {
			f := filepath.Join(cfg.perfDir, "c-afxdp-"+g+"-rep1.data")
			if st, err := os.Stat(f); err != nil || st.Size() == 0 {
				t.Errorf("no perf recording %s (%v):\n%s", f, err, b)
			}
		}
	}
}

func TestBothHooks(t *testing.T) {
	var got []string
	hook := func(name string) func() func() {
		return func() func() {
			got = append(got, "start "+name)
			return func() { got = append(got, "stop "+name) }
		}
	}
	if both(nil, nil) != nil {
		t.Error("both(nil, nil) != nil")
	}
	both(nil, hook("a"))()()
	both(hook("a"), hook("b"))()()
	want := "start a,stop a,start a,start b,stop b,stop a"
	if s := strings.Join(got, ","); s != want {
		t.Errorf("got %s, want %s", s, want)
	}
}
