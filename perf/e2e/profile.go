package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/google/pprof/profile"

	"github.com/fwdd/fwdd/perf/xdpprog"
)

// attachForwarder loads the XDP-native forwarder and attaches it to r0 in
// the router namespace. The returned func detaches it.
func (h *harness) attachForwarder() (func(), error) {
	t := h.topo
	var src, dst [6]byte
	m1, err := net.ParseMAC(t.MAC[t.R1])
	if err != nil {
		return nil, err
	}
	m2, err := net.ParseMAC(t.MAC[t.S0])
	if err != nil {
		return nil, err
	}
	copy(src[:], m1)
	copy(dst[:], m2)
	prog, err := xdpprog.Forwarder(t.Index[t.R1], src, dst)
	if err != nil {
		return nil, err
	}
	var l link.Link
	err = inNS(t.R, func() error {
		var err error
		l, err = xdpprog.Attach(prog, t.Index[t.R0])
		return err
	})
	prog.Close()
	if err != nil {
		return nil, err
	}
	return func() { l.Close() }, nil
}

type fnStat struct {
	Name      string
	Flat, Cum float64 // fraction of samples
}

type profileResult struct {
	Label string
	File  string
	Total time.Duration
	Top   []fnStat
	Err   string
}

// profileDuring starts fetching a CPU profile of fwdd (its -pprof endpoint
// in the router namespace) for about dur; the returned func waits for it
// and records the top functions.
func (h *harness) profileDuring(label string, dur time.Duration) func() func() {
	return func() func() {
		secs := int(dur.Seconds())
		if secs < 1 {
			secs = 1
		}
		out := filepath.Join(os.TempDir(), fmt.Sprintf("fwb-%s-%s.pprof", h.topo.ID, label))
		url := fmt.Sprintf("http://127.0.0.1:6060/debug/pprof/profile?seconds=%d", secs)
		cmd := exec.Command("ip", "netns", "exec", h.topo.R, h.self, "-fetch", url, "-o", out)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			h.prof = append(h.prof, &profileResult{Label: label, Err: err.Error()})
			return nil
		}
		return func() {
			pr := &profileResult{Label: label, File: out}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					pr.Err = fmt.Sprintf("%v: %s", err, strings.TrimSpace(stderr.String()))
				}
			case <-time.After(time.Duration(secs+10) * time.Second):
				_ = cmd.Process.Kill()
				pr.Err = "profile fetch timed out"
			}
			if pr.Err == "" {
				pr.Total, pr.Top, pr.Err = topFunctions(out, 15)
			}
			h.prof = append(h.prof, pr)
		}
	}
}

// perfDuring records the router and generator CPUs with perf (cpu-clock
// every 250 µs, call graphs) into -perf's directory, a file per flat-out
// trial of the first size (perf script -F cpu,... separates the CPUs).
// perf starts with its events disabled and is switched on through its
// control FIFO once it is ready, so that the recording covers the trial
// and nothing else (perf's own start-up can take longer than a trial on a
// loaded machine); the returned func switches it off and waits for it.
// Every leg gets the same recording, whoever forwards.
func (h *harness) perfDuring(label string, dur time.Duration) func() func() {
	return func() func() {
		out := filepath.Join(h.cfg.perfDir, label+".data")
		dir, err := os.MkdirTemp("", "fwb-perf-")
		if err != nil {
			h.logf("   perf: %v", err)
			return nil
		}
		ctl, ack := filepath.Join(dir, "ctl"), filepath.Join(dir, "ack")
		for _, f := range []string{ctl, ack} {
			if err := syscall.Mkfifo(f, 0o600); err != nil {
				h.logf("   perf: %v", err)
				os.RemoveAll(dir)
				return nil
			}
		}
		cpus := fmt.Sprintf("%d,%d", h.cfg.rtrCPU, h.cfg.genCPU)
		// Not pinned: on the generator CPU (taken by the generator,
		// SCHED_RR with -gen-rt) it would be late. Large buffers keep its
		// wake-ups rare wherever it runs.
		cmd := exec.Command("perf", "record", "-q", "-m", "1024", "-e", "cpu-clock", "-c", "250000", "-C", cpus, "-g",
			"-D", "-1", "--control", "fifo:"+ctl+","+ack, "-o", out)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			h.logf("   perf: %v", err)
			os.RemoveAll(dir)
			return nil
		}
		fail := func(err error) func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			os.RemoveAll(dir)
			h.logf("   perf %s: %v: %s", label, err, strings.TrimSpace(stderr.String()))
			return nil
		}
		// Opening the FIFOs waits for perf to open its ends: a deadline
		// keeps a perf that died (or lacks --control) from hanging us.
		command := func(what string) error {
			done := make(chan error, 1)
			go func() {
				c, err := os.OpenFile(ctl, os.O_WRONLY, 0)
				if err != nil {
					done <- err
					return
				}
				_, err = c.WriteString(what + "\n")
				c.Close()
				if err != nil {
					done <- err
					return
				}
				a, err := os.Open(ack)
				if err != nil {
					done <- err
					return
				}
				buf := make([]byte, 16)
				_, err = a.Read(buf)
				a.Close()
				done <- err
			}()
			select {
			case err := <-done:
				return err
			case <-time.After(10 * time.Second):
				return fmt.Errorf("perf did not answer %q within 10 s", what)
			}
		}
		if err := command("enable"); err != nil {
			return fail(err)
		}
		return func() {
			if err := command("disable"); err != nil {
				fail(err)
				return
			}
			_ = cmd.Process.Signal(syscall.SIGINT)
			err := cmd.Wait()
			os.RemoveAll(dir)
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT {
				err = nil // how perf record without a command ends
			}
			if err != nil {
				h.logf("   perf %s: %v: %s", label, err, strings.TrimSpace(stderr.String()))
				return
			}
			h.logf("   perf profile of CPUs %s: %s", cpus, out)
		}
	}
}

// both runs two during-hooks (either may be nil) around one trial.
func both(a, b func() func()) func() func() {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return func() func() {
		fa, fb := a(), b()
		return func() {
			if fb != nil {
				fb()
			}
			if fa != nil {
				fa()
			}
		}
	}
}

// fetch is the -fetch helper, run inside the router namespace.
func fetch(ctx context.Context, url, out string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("fetch %s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// topFunctions reads a CPU profile and returns its n hottest functions by
// flat time (the leaf frame of each sample), with cumulative time.
func topFunctions(file string, n int) (time.Duration, []fnStat, string) {
	f, err := os.Open(file)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return 0, nil, fmt.Sprintf("parse %s: %v", file, err)
	}
	vi := len(p.SampleType) - 1 // cpu nanoseconds
	flat, cum := map[string]int64{}, map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		v := s.Value[vi]
		total += v
		seen := map[string]bool{}
		for li, loc := range s.Location {
			for lj, ln := range loc.Line {
				if ln.Function == nil {
					continue
				}
				name := ln.Function.Name
				if li == 0 && lj == 0 {
					flat[name] += v
				}
				if !seen[name] {
					seen[name] = true
					cum[name] += v
				}
			}
		}
	}
	if total == 0 {
		return 0, nil, "profile has no samples (was fwdd idle?)"
	}
	var out []fnStat
	for name, v := range flat {
		out = append(out, fnStat{Name: name, Flat: float64(v) / float64(total), Cum: float64(cum[name]) / float64(total)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Flat > out[j].Flat })
	if len(out) > n {
		out = out[:n]
	}
	return time.Duration(total), out, ""
}
