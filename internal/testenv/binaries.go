package testenv

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// Binaries builds the project's commands cmd/NAME (fwdd, fwdctl, ...) into
// a directory of the test's and returns it. Building takes seconds, so
// -short skips the test.
func Binaries(tb testing.TB, names ...string) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds the binaries (-short)")
	}
	dir := tb.TempDir()
	for _, c := range names {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, c), "github.com/fwdd/fwdd/cmd/"+c).CombinedOutput()
		if err != nil {
			tb.Fatalf("build %s: %v\n%s", c, err, out)
		}
	}
	return dir
}
