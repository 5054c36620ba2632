package fwd

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/pmd/null"
	"golang.org/x/sys/unix"
)

// TestEngineRuns runs real workers (two of them, in adaptive mode) over two
// 2-queue null ports: packets are forwarded from p0 to p1 on both workers'
// queues; stopping and closing returns every mbuf to its pool.
func TestEngineRuns(t *testing.T) {
	type run struct {
		mode    PollMode
		workers int
	}
	// One busy worker leaves a P to the rest of the process; two hold
	// every P on a 2-CPU machine: the garbage collector gets through both.
	for _, r := range []run{{PollAdaptive, 2}, {PollBusy, 2}, {PollBusy, 1}} {
		mode := r.mode
		t.Run(fmt.Sprintf("%v-%d", mode, r.workers), func(t *testing.T) {
			e, err := New(Config{Workers: r.workers, PoolSize: 4096, CheckedPools: true, PollMode: mode}, nil)
			if err != nil {
				t.Fatal(err)
			}
			mac0 := "02:00:00:00:00:10"
			ports := []pmd.Port{}
			for id, args := range []pmd.Args{
				{"queues": "2", "flows": "64", "smac": mac0, "dmac": mac0, "dst": "198.19.1.1"},
				{"queues": "2", "smac": "02:00:00:00:00:11", "dmac": "02:00:00:00:00:12"},
			} {
				p, err := null.Open(pmd.Config{Name: "p" + string(rune('0'+id)), ID: uint16(id), Args: args,
					Pools: e.Pools(), QueuePool: e.QueuePool, Shared: e.Shared()})
				if err != nil {
					t.Fatal(err)
				}
				ports = append(ports, p)
				if err := e.AttachPort(uint16(id), p); err != nil {
					t.Fatal(err)
				}
			}
			f, _ := fib.New(fib.Config{})
			gw := netip.MustParseAddr("198.18.2.9")
			nh, _ := f.AddNextHop(fib.NextHop{Kind: fib.KindGateway, Port: 1, Addr: gw})
			c1, _ := f.AddNextHop(fib.NextHop{Kind: fib.KindConnected, Port: 1})
			if err := f.Apply([]fib.Change{
				{Op: fib.OpAdd, Prefix: netip.MustParsePrefix("198.19.0.0/16"), NextHop: nh},
				{Op: fib.OpAdd, Prefix: netip.MustParsePrefix("198.18.2.0/24"), NextHop: c1, Connected: true},
			}); err != nil {
				t.Fatal(err)
			}
			e.SetFIB(f)
			var m1 [6]byte
			copy(m1[:], ports[1].Info().MAC)
			if err := e.Neigh().SetPort(1, m1, []netip.Prefix{netip.MustParsePrefix("198.18.2.1/24")}); err != nil {
				t.Fatal(err)
			}
			if err := e.Neigh().AddStatic(1, gw, [6]byte{2, 0, 0, 0, 0, 0x21}); err != nil {
				t.Fatal(err)
			}
			e.Neigh().Publish()
			e.PublishState(&State{Ports: []PortState{
				NewPortState(ports[0].Info().MAC, 1500, 0, true, nil),
				NewPortState(ports[1].Info().MAC, 1500, 0, true, []netip.Prefix{netip.MustParsePrefix("198.18.2.1/24")}),
			}})
			e.Start()
			defer func() {
				if t.Failed() {
					t.Logf("counters per worker: %v", e.CountersByWorker())
				}
			}()
			testnet.Eventually(t, 10*time.Second, "forwarding on every worker", func() bool {
				for _, c := range e.CountersByWorker()[:r.workers] {
					if c["forwarded"] <= 1000 {
						return false
					}
				}
				return true
			})
			// Stop-the-world pauses complete while the workers run.
			gcDone := make(chan struct{})
			go func() {
				var ms runtime.MemStats
				for range 5 {
					runtime.GC()
					runtime.ReadMemStats(&ms)
				}
				close(gcDone)
			}()
			select {
			case <-gcDone:
			case <-time.After(20 * time.Second):
				t.Fatal("runtime.GC and ReadMemStats did not return while the workers ran")
			}
			// A grace period completes while the workers run.
			done := make(chan struct{})
			go func() { e.Synchronize(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Synchronize did not return while the workers ran")
			}
			e.Stop()
			for _, w := range e.Workers() {
				t.Logf("worker %d: %+v", w.ID(), w.Load().Stalls)
			}
			c := e.Counters()
			if c["rx"] == 0 || c["forwarded"] == 0 {
				t.Fatalf("counters %v", c)
			}
			var tx uint64
			for _, q := range ports[1].Stats() {
				tx += q.TxPackets
			}
			if tx == 0 {
				t.Fatal("p1 transmitted nothing")
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEngineCPUs(t *testing.T) {
	if _, err := New(Config{CPUs: []int{4096}}, nil); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("CPU 4096: err %v", err)
	}
	e, err := New(Config{CPUs: []int{0}, PoolSize: 1024}, nil)
	if err != nil {
		t.Fatalf("CPU 0: %v", err)
	}
	e.Close()
}

// TestReserveCPUs runs ReserveCPUs in a child process (it changes the
// whole process's affinity) and checks that every thread but none left the
// reserved CPU, and that GOMAXPROCS did not change.
func TestReserveCPUs(t *testing.T) {
	if os.Getenv("FWDD_RESERVE_CHILD") == "1" {
		before := runtime.GOMAXPROCS(0)
		allowed, rest, err := ReserveCPUs([]int{1})
		if len(allowed) < 2 || allowed[0] != 0 || allowed[1] != 1 {
			fmt.Println("allowed:", allowed)
			os.Exit(1)
		}
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			tid, _ := strconv.Atoi(task.Name())
			var s unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &s); err == nil && s.IsSet(1) {
				fmt.Println("thread", tid, "still on CPU 1")
				os.Exit(1)
			}
		}
		if after := runtime.GOMAXPROCS(0); after != before {
			fmt.Println("GOMAXPROCS", before, "->", after)
			os.Exit(1)
		}
		fmt.Println("rest:", rest)
		os.Exit(0)
	}
	var s unix.CPUSet
	if err := unix.SchedGetaffinity(0, &s); err != nil || !s.IsSet(0) || !s.IsSet(1) {
		t.Skip("needs CPUs 0 and 1 in this process's affinity")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReserveCPUs$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FWDD_RESERVE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "rest: 0") {
		t.Fatalf("child output %q: want the other threads on CPU 0", out)
	}
	// Nothing to reserve, or nothing left: no change.
	if _, rest, err := ReserveCPUs(nil); rest != "" || err != nil {
		t.Fatalf("ReserveCPUs(nil) = %q, %v", rest, err)
	}
}

// TestWorkerNice checks that Config.Nice reaches the worker's thread (a
// higher value than the process's: no privilege needed) and no other
// thread of the process.
func TestWorkerNice(t *testing.T) {
	niceOf := func(stat string) string {
		b, err := os.ReadFile(stat)
		if err != nil {
			return ""
		}
		s := string(b)
		// Fields after the command name: state is field 3, nice field 19.
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 16 {
			return f[16]
		}
		return ""
	}
	base, err := strconv.Atoi(niceOf("/proc/self/stat"))
	if err != nil {
		t.Fatalf("nice of the process: %v", err)
	}
	if base > 14 {
		t.Skipf("the process runs at nice %d: no higher value to give the worker", base)
	}
	want := base + 5
	e, err := New(Config{Workers: 1, PoolSize: 1024, Nice: want}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.Start()
	defer e.Stop()
	niced := func() (n int) {
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			if niceOf("/proc/self/task/"+task.Name()+"/stat") == strconv.Itoa(want) {
				n++
			}
		}
		return n
	}
	testnet.Eventually(t, 10*time.Second, "the worker's thread at nice "+strconv.Itoa(want), func() bool { return niced() > 0 })
	if n := niced(); n != 1 {
		t.Fatalf("%d threads at nice %d, want the worker's only", n, want)
	}
}
