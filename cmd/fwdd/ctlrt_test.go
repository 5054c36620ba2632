package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/pmd"
	"golang.org/x/sys/unix"
)

// TestMain doubles as the fwdd binary when FWDD_TEST_MAIN is set, so that
// process-level tests run the real main (flags, exit status, the threads
// of a whole process) without building it; under -race the daemon is
// race-instrumented too.
func TestMain(m *testing.M) {
	if os.Getenv("FWDD_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// fwddArgs returns the command line that runs this test binary as fwdd.
func fwddArgs(t *testing.T, args ...string) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{self}, args...)
}

// TestCtlRTBadValue: a -ctl-rt outside 0-99, or not a number, stops fwdd
// before anything starts, with exit status 2 and a message saying what is
// accepted. (0 is valid: ordinary scheduling, the default.)
func TestCtlRTBadValue(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "fwdd.conf")
	if err := os.WriteFile(conf, []byte("port add p0 driver null\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "fwdd.sock")
	for _, tc := range []struct{ val, want string }{
		{"200", "fwdd: -ctl-rt 200: want a SCHED_FIFO priority from 1 to 99, or 0 for ordinary scheduling"},
		{"100", "fwdd: -ctl-rt 100: want a SCHED_FIFO priority from 1 to 99, or 0 for ordinary scheduling"},
		{"-1", "fwdd: -ctl-rt -1: want a SCHED_FIFO priority from 1 to 99, or 0 for ordinary scheduling"},
		{"fifo", `invalid value "fifo" for flag -ctl-rt`},
	} {
		t.Run(tc.val, func(t *testing.T) {
			args := fwddArgs(t, "-c", conf, "-s", sock, "-ctl-rt", tc.val)
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = append(os.Environ(), "FWDD_TEST_MAIN=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			cmd.WaitDelay = 10 * time.Second
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("fwdd -ctl-rt %s: %v, want exit status 2\n%s", tc.val, err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("fwdd -ctl-rt %s: stderr lacks %q:\n%s", tc.val, tc.want, stderr.String())
			}
			if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("fwdd -ctl-rt %s started (control socket: %v)", tc.val, err)
			}
		})
	}
}

// TestCtlRTForwarding runs fwdd -ctl-rt 1 between two Linux hosts in their
// own namespaces:
//
//	h1 198.18.1.2/24 -- r0 [fwdd p0 | p1] r1 -- h2 198.19.2.2/24
//
// While it forwards (ping both ways, a TCP transfer), every thread of fwdd
// is SCHED_FIFO 1 but the worker's, which is at ordinary scheduling, pinned
// to its CPU (-cpus) when there are two CPUs or more. With -rt 2 as well
// the worker is SCHED_FIFO 2. SIGTERM stops it cleanly. Nothing here
// measures time: every wait polls a condition until a deadline.
func TestCtlRTForwarding(t *testing.T) {
	n := testnet.New(t)
	testenv.Tool(t, "ethtool", "ethtool")
	testenv.Tool(t, "ping", "iputils-ping")
	requireRT(t)
	h1, h2, rt := n.NS("h1"), n.NS("h2"), n.NS("rt")
	n.Veth(h1, "h1", rt, "r0")
	n.Veth(h2, "h2", rt, "r1")
	for _, h := range []struct{ ns, dev, addr, gw string }{
		{h1, "h1", "198.18.1.2/24", "198.18.1.1"},
		{h2, "h2", "198.19.2.2/24", "198.19.2.1"},
	} {
		// Hosts compute their own checksums: a veth would otherwise hand
		// over packets whose checksum is left to a NIC.
		n.TryIn(h.ns, "ethtool", "-K", h.dev, "tx", "off")
		n.In(h.ns, "ip", "addr", "add", h.addr, "dev", h.dev)
		n.In(h.ns, "ip", "route", "add", "default", "via", h.gw)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "fwdd.conf")
	text := "port add p0 driver afpacket dev r0\nport add p1 driver afpacket dev r1\n" +
		"addr add p0 198.18.1.1/24\naddr add p1 198.19.2.1/24\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// With two CPUs or more the worker gets one of its own (-cpus, as
	// docs/tuning.md asks for -ctl-rt): it is then the thread pinned to it.
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil {
		t.Fatal(err)
	}
	workerCPU := -1
	if cpus.Count() >= 2 {
		for c := 0; c < len(cpus)*64; c++ {
			if cpus.IsSet(c) {
				workerCPU = c
			}
		}
	}
	for _, tc := range []struct {
		name   string
		rtPrio int // -rt: the worker's SCHED_FIFO priority, 0 for ordinary
	}{{"ctl-rt", 0}, {"ctl-rt+rt", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-c", conf, "-s", filepath.Join(dir, tc.name+".sock"), "-workers", "1", "-mbufs", "4096", "-ctl-rt", "1"}
			if workerCPU >= 0 {
				args = append(args, "-cpus", strconv.Itoa(workerCPU))
			}
			if tc.rtPrio > 0 {
				args = append(args, "-rt", strconv.Itoa(tc.rtPrio))
			}
			d := startFwdd(t, n, rt, filepath.Join(dir, tc.name+".log"), args...)
			d.waitThreads(t, tc.rtPrio, workerCPU)
			eventuallyPing(t, n, h1, "198.19.2.2")
			eventuallyPing(t, n, h2, "198.18.1.2")
			tcpTransfer(t, h1, h2, "198.19.2.2", 1<<20)
			// Still so after forwarding: no thread went back to ordinary
			// scheduling or appeared at it.
			if err := d.checkThreads(tc.rtPrio, workerCPU); err != nil {
				t.Fatalf("after forwarding: %v", err)
			}
			if log := d.log(); !strings.Contains(log, "control threads SCHED_FIFO") {
				t.Errorf("fwdd did not log that its control threads are SCHED_FIFO:\n%s", log)
			}
			d.stop(t)
		})
	}
}

// requireRT skips the test when this process may not use SCHED_FIFO (no
// CAP_SYS_NICE, or no real-time budget in its cgroup): fwdd would then
// only warn and keep ordinary scheduling. A thread of its own tries it and
// exits with its goroutine, so no thread of the test stays SCHED_FIFO.
func requireRT(t *testing.T) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}
		errc <- unix.SchedSetAttr(0, &attr, 0)
	}()
	if err := <-errc; err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("SCHED_FIFO not permitted (needs CAP_SYS_NICE and a real-time budget): %v", err)
		}
		t.Fatalf("sched_setattr SCHED_FIFO: %v", err)
	}
}

type fwddProc struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan error
}

// startFwdd runs this test binary as fwdd in namespace ns, in a process
// group of its own killed at cleanup (and with the test binary, by
// Pdeathsig), and waits for its control socket. Its log goes to logPath
// and is shown when the test fails.
func startFwdd(t *testing.T, n *testnet.Net, ns, logPath string, args ...string) *fwddProc {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, fwddArgs(t, args...)...)...)
	cmd.Env = append(os.Environ(), "FWDD_TEST_MAIN=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start fwdd in %s: %v", ns, err)
	}
	d := &fwddProc{cmd: cmd, logPath: logPath, exited: make(chan error, 1)}
	gone := make(chan struct{})
	go func() { d.exited <- cmd.Wait(); close(gone) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-gone
		if t.Failed() {
			t.Logf("fwdd %s log:\n%s", strings.Join(args, " "), d.log())
		}
	})
	sock := ""
	for i, a := range args {
		if a == "-s" && i+1 < len(args) {
			sock = args[i+1]
		}
	}
	deadline := testnet.Deadline(15 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case err := <-d.exited:
			d.exited <- err
			t.Fatalf("fwdd exited before serving its control socket: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("fwdd did not serve its control socket")
		}
	}
	// ip netns exec replaces itself with the command: the process is fwdd.
	self, _ := os.Executable()
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)); err != nil || exe != self {
		t.Fatalf("process %d is %q (%v), not this test binary run as fwdd", cmd.Process.Pid, exe, err)
	}
	return d
}

func (d *fwddProc) log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// stop sends SIGTERM and waits for a clean exit.
func (d *fwddProc) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("fwdd exit after SIGTERM: %v", err)
		}
	case <-time.After(testnet.Deadline(20 * time.Second).Sub(time.Now())):
		t.Fatal("fwdd did not stop on SIGTERM")
	}
}

type threadSched struct {
	tid, policy, prio int
	cpus              unix.CPUSet
}

func (s threadSched) String() string {
	pol := map[int]string{unix.SCHED_NORMAL: "SCHED_OTHER", unix.SCHED_FIFO: "SCHED_FIFO", unix.SCHED_RR: "SCHED_RR", unix.SCHED_BATCH: "SCHED_BATCH", unix.SCHED_IDLE: "SCHED_IDLE"}[s.policy]
	return fmt.Sprintf("thread %d %s %d (%d CPUs)", s.tid, pol, s.prio, s.cpus.Count())
}

// threads returns the scheduling of every thread of process pid (threads
// that exit meanwhile are left out).
func threads(pid int) ([]threadSched, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	var out []threadSched
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		a, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // exited
		}
		s := threadSched{tid: tid, policy: int(a.Policy), prio: int(a.Priority)}
		if err := unix.SchedGetaffinity(tid, &s.cpus); err != nil {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// checkThreads says what is wrong with fwdd's threads, if anything: exactly
// one (the worker) is at ordinary scheduling, or SCHED_FIFO rtPrio with -rt,
// and pinned to workerCPU if that is not -1; every other is SCHED_FIFO 1.
func (d *fwddProc) checkThreads(rtPrio, workerCPU int) error {
	ts, err := threads(d.cmd.Process.Pid)
	if err != nil {
		return err
	}
	isWorker := func(s threadSched) bool {
		if rtPrio > 0 {
			return s.policy == unix.SCHED_FIFO && s.prio == rtPrio
		}
		return s.policy == unix.SCHED_NORMAL
	}
	var workers, control, other []threadSched
	for _, s := range ts {
		switch {
		case isWorker(s):
			workers = append(workers, s)
		case s.policy == unix.SCHED_FIFO && s.prio == 1:
			control = append(control, s)
		default:
			other = append(other, s)
		}
	}
	switch {
	case len(workers) != 1 || len(control) == 0 || len(other) != 0:
		return fmt.Errorf("want one worker thread (%s) and the rest SCHED_FIFO 1; workers %v, SCHED_FIFO 1 %d threads, others %v",
			map[bool]string{true: "SCHED_FIFO " + strconv.Itoa(rtPrio), false: "SCHED_OTHER"}[rtPrio > 0], workers, len(control), other)
	case workerCPU >= 0 && (workers[0].cpus.Count() != 1 || !workers[0].cpus.IsSet(workerCPU)):
		return fmt.Errorf("the worker's thread is not pinned to CPU %d: %v", workerCPU, workers[0])
	}
	return nil
}

// waitThreads waits until checkThreads is satisfied (the worker's thread
// changes its own scheduling when it starts).
func (d *fwddProc) waitThreads(t *testing.T, rtPrio, workerCPU int) {
	t.Helper()
	deadline := testnet.Deadline(10 * time.Second)
	for {
		err := d.checkThreads(rtPrio, workerCPU)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fwdd's threads: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventuallyPing waits until a ping from ns to dst gets through (the first
// packets may wait for ARP on both sides).
func eventuallyPing(t *testing.T, n *testnet.Net, ns, dst string) {
	t.Helper()
	var out string
	deadline := testnet.Deadline(15 * time.Second)
	for time.Now().Before(deadline) {
		o, err := n.TryIn(ns, "ping", "-c", "1", "-W", "1", dst)
		if err == nil {
			return
		}
		out = o
	}
	t.Fatalf("ping %s from %s never got through fwdd:\n%s", dst, ns, out)
}

// tcpTransfer sends size bytes from namespace from to a listener on dst in
// namespace to, through fwdd, and compares digests.
func tcpTransfer(t *testing.T, from, to, dst string, size int) {
	t.Helper()
	var ln net.Listener
	err := pmd.InNetNS(testnet.Path(to), func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(dst, "0"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- [32]byte{}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(testnet.Deadline(30 * time.Second))
		h := sha256.New()
		_, _ = io.Copy(h, c)
		got <- [32]byte(h.Sum(nil))
	}()
	var c net.Conn
	err = pmd.InNetNS(testnet.Path(from), func() (err error) {
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("connect to %s through fwdd: %v", ln.Addr(), err)
	}
	data := bytes.Repeat([]byte("fwdd moves bytes "), size/17+1)[:size]
	_ = c.SetDeadline(testnet.Deadline(30 * time.Second))
	if _, err := c.Write(data); err != nil {
		c.Close()
		t.Fatalf("write: %v", err)
	}
	c.Close()
	select {
	case sum := <-got:
		if sum != sha256.Sum256(data) {
			t.Fatal("the bytes that arrived differ from the bytes sent")
		}
	case <-time.After(testnet.Deadline(40 * time.Second).Sub(time.Now())):
		t.Fatal("transfer did not finish")
	}
}
