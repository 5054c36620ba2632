// Package testenv decides, in one place, whether a test that needs more
// than Go (root, a kernel feature, a tool) can run, and what happens when
// it cannot.
//
// The rule (after cilium/ebpf's internal/testutils): a test skips, with the
// reason, only where the environment legitimately lacks something; where
// the environment should support it, a missing piece is a failure, so that
// a broken CI image or kernel shows up red instead of as a quietly shorter
// test run.
//
//   - Root: not root skips on a developer's machine ("run make test as
//     root"), but fails in CI (CI=true), which runs as root (.ci/run).
//   - Kernel features this project relies on (AF_PACKET sockets, anonymous
//     mmap, BPF, AF_XDP): once a test may use them (root where needed),
//     failing to get one is a failure (Feature), never a skip.
//   - Tools (ip, ping, ethtool, tcpdump, bird, python3 with scapy, ...):
//     missing skips on a developer's machine, fails in CI, where .ci/run
//     installs every one of them.
//
// testing.Short and absent benchmark data (../shared/data, outside the
// repository) are the caller's own, explicit choices and stay skips.
//
// The package has no state; it reads the environment on every call.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Strict reports whether missing requirements fail rather than skip: in CI
// (CI=true), or when FWDD_TEST_STRICT=1 asks for it anywhere.
func Strict() bool {
	return os.Getenv("CI") == "true" || os.Getenv("FWDD_TEST_STRICT") == "1"
}

// IsRoot reports whether the test process runs as root.
func IsRoot() bool { return os.Geteuid() == 0 }

// Root skips the test unless it runs as root (fails instead in CI). why
// says what the test does with it, e.g. "creates network namespaces".
func Root(tb testing.TB, why string) {
	tb.Helper()
	if IsRoot() {
		return
	}
	missing(tb, "needs root ("+why+"): run the tests as root, e.g. sudo make test")
}

// Tool returns the path of command name, or skips the test (fails in CI)
// naming the package that provides it.
func Tool(tb testing.TB, name, pkg string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(tb, "needs "+name+" (apt-get install "+pkg+"; .ci/run installs it)")
	}
	return p
}

// Feature fails the test if err is not nil: a kernel feature the project
// relies on (AF_PACKET, anonymous mmap, BPF, AF_XDP) could not be used
// although the test may use it. what names it: "AF_PACKET socket".
func Feature(tb testing.TB, err error, what string) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v (the kernel and privileges here should support it: this is a failure, not a skip)", what, err)
	}
}

func missing(tb testing.TB, msg string) {
	tb.Helper()
	if Strict() {
		tb.Fatal(msg + " [CI=true: a missing requirement fails]")
		return
	}
	tb.Skip(msg)
}
