package testnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// OVS is an Open vSwitch instance of one test: ovsdb-server and
// ovs-vswitchd with their own database, run, log and pid files in a
// temporary directory, in the host namespace, with the userspace datapath
// only (bridges get datapath_type=netdev). It is stopped at cleanup, and
// its bridges deleted, whether the test passed or not.
//
// One instance runs on a host at a time (any test binary): the userspace
// datapath's internal TAP device "ovs-netdev" lives in the host namespace,
// and a second ovs-vswitchd cannot create its bridges ("creating tap device
// failed: Device or resource busy"). StartOVS waits for OVSLock.
type OVS struct {
	t   testing.TB
	n   *Net
	dir string
	env []string
	db  string
}

// SkipNoOVS skips the test when Open vSwitch is not installed.
func SkipNoOVS(t testing.TB) {
	t.Helper()
	for _, c := range []string{"ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovsdb-tool", "ovs-appctl"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("needs Open vSwitch (%s; apt-get install openvswitch-switch)", c)
		}
	}
}

// StartOVS starts the daemons.
func (n *Net) StartOVS() *OVS {
	t := n.t
	t.Helper()
	SkipNoOVS(t)
	schema := "/usr/share/openvswitch/vswitch.ovsschema"
	if _, err := os.Stat(schema); err != nil {
		t.Skipf("needs the OVS schema %s", schema)
	}
	lockOVS(t)
	dir, err := os.MkdirTemp("", "fwdd-ovs-"+n.tag)
	if err != nil {
		t.Fatal(err)
	}
	o := &OVS{t: t, n: n, dir: dir, db: "unix:" + filepath.Join(dir, "db.sock")}
	o.env = append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir, "OVS_PKGDATADIR=/usr/share/openvswitch",
		"OVS_SYSCONFDIR="+dir)
	t.Cleanup(func() {
		for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
			if b, err := os.ReadFile(filepath.Join(dir, d+".pid")); err == nil {
				pid := strings.TrimSpace(string(b))
				_ = exec.Command("kill", pid).Run()
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) {
					if _, err := os.Stat("/proc/" + pid); err != nil {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "ovs-vswitchd.log")); err == nil {
				t.Logf("ovs-vswitchd.log (tail):\n%s", tail(string(b), 4000))
			}
		}
		_ = os.RemoveAll(dir)
	})
	o.run("ovsdb-tool", "create", filepath.Join(dir, "conf.db"), schema)
	o.run("ovsdb-server", filepath.Join(dir, "conf.db"), "--remote=punix:"+filepath.Join(dir, "db.sock"),
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"), "--log-file="+filepath.Join(dir, "ovsdb-server.log"),
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"), "--detach", "--no-chdir")
	o.Vsctl("--no-wait", "init")
	o.run("ovs-vswitchd", o.db, "--pidfile="+filepath.Join(dir, "ovs-vswitchd.pid"),
		"--log-file="+filepath.Join(dir, "ovs-vswitchd.log"), "--unixctl="+filepath.Join(dir, "ovs-vswitchd.ctl"),
		"--detach", "--no-chdir", "--disable-system")
	return o
}

// OVSLock is the file whose flock(2) serialises OVS instances on a host.
const OVSLock = "/run/lock/fwdd-testnet-ovs.lock"

// lockOVS takes OVSLock (waiting 10 minutes at most) until the test's
// cleanups have run; the kernel drops it if the test binary dies.
func lockOVS(t testing.TB) {
	t.Helper()
	_ = os.MkdirAll(filepath.Dir(OVSLock), 0o755)
	f, err := os.OpenFile(OVSLock, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("testnet: OVS lock: %v", err)
	}
	start := time.Now()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			t.Fatalf("testnet: OVS lock %s: %v", OVSLock, err)
		}
		if time.Since(start) > 10*time.Minute {
			f.Close()
			t.Fatalf("testnet: another Open vSwitch test held %s for 10 minutes", OVSLock)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w := time.Since(start); w > time.Second {
		t.Logf("testnet: waited %v for another test's Open vSwitch to stop", w.Round(time.Millisecond))
	}
	// Registered before the daemons' cleanup: released after it.
	t.Cleanup(func() { f.Close() })
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (o *OVS) run(cmd string, args ...string) string {
	o.t.Helper()
	out, err := o.try(cmd, args...)
	if err != nil {
		o.t.Fatalf("%s %s: %v\n%s", cmd, strings.Join(args, " "), err, out)
	}
	return out
}

func (o *OVS) try(cmd string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, cmd, args...)
	c.Env = o.env
	c.Dir = o.dir
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.String(), err
}

// Vsctl runs ovs-vsctl against this instance's database.
func (o *OVS) Vsctl(args ...string) string {
	o.t.Helper()
	return o.run("ovs-vsctl", append([]string{"--db=" + o.db, "--timeout=20"}, args...)...)
}

// Appctl runs ovs-appctl against this instance's ovs-vswitchd.
func (o *OVS) Appctl(args ...string) (string, error) {
	return o.try("ovs-appctl", append([]string{"--target=" + filepath.Join(o.dir, "ovs-vswitchd.ctl")}, args...)...)
}

// Bridge adds a userspace bridge, deleted at cleanup.
func (o *OVS) Bridge(name string) {
	o.t.Helper()
	o.Vsctl("add-br", name, "--", "set", "bridge", name, "datapath_type=netdev")
	o.t.Cleanup(func() { _, _ = o.try("ovs-vsctl", "--db="+o.db, "--timeout=5", "--if-exists", "del-br", name) })
}

// HostVeth creates a veth pair a (in the host namespace, for OVS) <-> b
// (in ns), both up, a's offloads off (OVS's userspace datapath computes
// nothing a NIC would); a is deleted at cleanup.
func (o *OVS) HostVeth(a, ns, b string) {
	o.t.Helper()
	o.run("ip", "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns)
	o.t.Cleanup(func() { _ = exec.Command("ip", "link", "del", a).Run() })
	o.run("ip", "link", "set", a, "up")
	_, _ = o.try("ethtool", "-K", a, "tx", "off", "rxvlan", "off", "txvlan", "off")
	o.n.In(ns, "ip", "link", "set", b, "up")
	_, _ = o.n.TryIn(ns, "ethtool", "-K", b, "tx", "off", "rxvlan", "off", "txvlan", "off")
}

// String names the instance's directory.
func (o *OVS) String() string { return fmt.Sprintf("ovs(%s)", o.dir) }
