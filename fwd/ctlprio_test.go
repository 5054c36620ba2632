package fwd

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testnet"
	"golang.org/x/sys/unix"
)

// TestControlRT: ControlRT gives every thread SCHED_FIFO, the worker's
// thread returns to ordinary scheduling (Config.ControlRT), and
// ControlRT(0) undoes it.
func TestControlRT(t *testing.T) {
	// policies counts the process's threads by policy.
	policies := func() (fifo, other int) {
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			tid, err := strconv.Atoi(task.Name())
			if err != nil {
				continue
			}
			a, err := unix.SchedGetAttr(tid, 0)
			if err != nil {
				continue // exited meanwhile
			}
			switch a.Policy {
			case unix.SCHED_FIFO:
				if a.Priority == 1 {
					fifo++
				}
			case unix.SCHED_NORMAL:
				other++
			}
		}
		return fifo, other
	}
	if _, other := policies(); other == 0 {
		t.Skip("no thread at ordinary scheduling to begin with")
	}
	if err := ControlRT(1); err != nil {
		// It may have changed some threads before failing: undo that,
		// so that no thread of the test binary stays SCHED_FIFO.
		_ = ControlRT(0)
		if errors.Is(err, unix.EPERM) {
			t.Skipf("needs CAP_SYS_NICE: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ControlRT(0); err != nil {
			t.Errorf("ControlRT(0): %v", err)
		}
		if fifo, _ := policies(); fifo != 0 {
			t.Errorf("%d threads still SCHED_FIFO after ControlRT(0)", fifo)
		}
	})
	if fifo, other := policies(); fifo == 0 || other != 0 {
		t.Fatalf("after ControlRT(1): %d threads SCHED_FIFO, %d at ordinary scheduling; want all SCHED_FIFO", fifo, other)
	}
	e, err := New(Config{Workers: 1, PoolSize: 1024, ControlRT: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.Start()
	defer e.Stop()
	// The worker's thread (locked to its goroutine; any thread the runtime
	// creates meanwhile inherits SCHED_FIFO) is the only one back at
	// ordinary scheduling.
	testnet.Eventually(t, 10*time.Second, "the worker's thread at ordinary scheduling", func() bool {
		_, other := policies()
		return other > 0
	})
	if fifo, other := policies(); other != 1 || fifo == 0 {
		t.Fatalf("%d threads at ordinary scheduling, %d SCHED_FIFO; want the worker's only at ordinary scheduling", other, fifo)
	}
	if err := ControlRT(100); err == nil {
		t.Error("ControlRT(100) accepted")
	}
}
