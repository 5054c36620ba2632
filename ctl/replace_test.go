package ctl

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fwdd/fwdd/pmd"
	"github.com/fwdd/fwdd/pmd/null"
)

// TestAFXDPReplaceInPlace: changing an afxdp port's arguments (mode,
// queues) by a batch or a reload replaces it in place: closed, then opened
// with the new arguments. It used to be refused always ("another fwdd on
// this interface?"), the new port being opened beside the old one. A
// change the device refuses (zerocopy on a veth) leaves the old port
// running. Real veth pair, traffic checked after each step.
func TestAFXDPReplaceInPlace(t *testing.T) {
	x := newE2E(t)
	// Room for a fill ring of each port and the replacement's while the
	// old one's buffers come back.
	x.poolSize = 16384
	x.start("afxdp")
	x.eventuallyPing(x.h1, "198.19.2.2")
	for _, line := range []string{"port set p0 mode copy", "port set p0 queues 1", "port set p0 xdpmode generic mode auto"} {
		if _, err := x.exec(line); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		x.eventuallyPing(x.h1, "198.19.2.2")
	}
	before := x.show("show ports")
	_, err := x.exec("port set p0 mode zerocopy xdpmode native")
	if err == nil {
		t.Log("the veth accepted zerocopy: nothing to restore (kernel with veth zerocopy)")
	} else {
		if strings.Contains(err.Error(), "restoring") {
			t.Fatalf("restore failed: %v", err)
		}
		if got := x.show("show ports"); !strings.Contains(got, "p0") || strings.Count(got, "RUNNING") != strings.Count(before, "RUNNING") {
			t.Fatalf("after a refused change:\n%s\nbefore:\n%s", got, before)
		}
	}
	x.eventuallyPing(x.h1, "198.19.2.2")
	// By reload: the file changes p1's mode.
	conf := fmt.Sprintf(e2eConfig, "afxdp")
	conf = strings.Replace(conf, "port add p1 driver afxdp dev r1", "port add p1 driver afxdp dev r1 mode copy", 1)
	if err := os.WriteFile(x.d.opts.ConfigFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := x.d.Reload(); err != nil {
		t.Fatalf("reload changing p1's mode: %v", err)
	}
	if !strings.Contains(x.show("show ports"), "mode copy") {
		t.Fatalf("after the reload:\n%s", x.show("show ports"))
	}
	x.eventuallyPing(x.h1, "198.19.2.2")
	if x.d.Err() != nil || x.d.Panics() != 0 {
		t.Fatal(x.d.Err(), x.d.Panics())
	}
}

// flaky is a test driver whose Open fails while failOpen is set; its
// ports are null ports. dev is its ArgDev, so that a change of its other
// arguments is replaced in place.
var failOpen atomic.Bool

func init() {
	pmd.Register(pmd.Driver{Name: "flakytest", Help: "test driver",
		Args: []pmd.Arg{{Name: "dev", Type: pmd.ArgDev, Required: true}, {Name: "v", Type: pmd.ArgString}},
		Open: func(cfg pmd.Config) (pmd.Port, error) {
			if failOpen.Load() {
				return nil, errors.New("flakytest: open refused (as the test wants)")
			}
			cfg.Args = pmd.Args{}
			return null.Open(cfg)
		}})
}

// TestReplaceInPlaceRestore: a port replaced in place whose new open fails
// is reopened as it was; when that fails too, the error says so and the
// port is down, and a later batch can still remove or fix it.
func TestReplaceInPlaceRestore(t *testing.T) {
	d, _ := nullDaemon(t, nullConfig+"port add f0 driver flakytest dev lo v=1\naddr add f0 198.18.7.1/24\n")
	if _, err := run(t, d, "port set f0 v 2"); err != nil {
		t.Fatalf("replace in place: %v", err)
	}
	ports := text(t, d, "show ports")
	if !strings.Contains(ports, "v 2") {
		t.Fatalf("after the change:\n%s", ports)
	}
	// The new open fails, the old one reopens: but it fails too here
	// (same driver): the error says both, the port is down.
	failOpen.Store(true)
	t.Cleanup(func() { failOpen.Store(false) })
	_, err := run(t, d, "port set f0 v 3")
	if err == nil || !strings.Contains(err.Error(), "open refused") || !strings.Contains(err.Error(), "restoring port f0 as it was failed too") {
		t.Fatalf("change with both opens failing: %v", err)
	}
	if got := text(t, d, "show ports"); !strings.Contains(got, "v 2") {
		t.Fatalf("the model should still be the old one:\n%s", got)
	}
	// Fixed: a later change opens it again; deleting works too.
	failOpen.Store(false)
	if _, err := run(t, d, "port set f0 v 4"); err != nil {
		t.Fatalf("fixing the port: %v", err)
	}
	if _, err := run(t, d, "port del f0"); err != nil {
		t.Fatalf("port del: %v", err)
	}
	if d.Err() != nil || d.Panics() != 0 {
		t.Fatal(d.Err(), d.Panics())
	}
}
