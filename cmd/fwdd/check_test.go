package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckValidatesOptions: fwdd -check validates the options a start
// would use as well as the file, so `fwdd -check` passing means `fwdd`
// with the same command line gets past its checks.
func TestCheckValidatesOptions(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "fwdd.conf")
	if err := os.WriteFile(conf, []byte("port add p0 driver null\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"valid", nil, 0, "is valid"},
		{"ctl-rt", []string{"-ctl-rt", "200"}, 2, "fwdd: -ctl-rt 200: want a SCHED_FIFO priority from 1 to 99"},
		{"rt", []string{"-rt", "-3"}, 2, "fwdd: -rt -3: want a SCHED_FIFO priority from 1 to 99"},
		{"poll", []string{"-poll", "sometimes"}, 2, "fwdd: -poll:"},
		{"cpus", []string{"-cpus", "3-1"}, 2, "fwdd: -cpus:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := fwddArgs(t, append([]string{"-check", "-c", conf}, tc.args...)...)
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = append(os.Environ(), "FWDD_TEST_MAIN=1")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.WaitDelay = 10 * time.Second
			err := cmd.Run()
			status := 0
			if err != nil {
				var exit *exec.ExitError
				if !errors.As(err, &exit) {
					t.Fatalf("fwdd -check %v: %v", tc.args, err)
				}
				status = exit.ExitCode()
			}
			if status != tc.status || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("fwdd -check %v: exit status %d, want %d with %q:\n%s", tc.args, status, tc.status, tc.want, out.String())
			}
		})
	}
}
