package testenv

import (
	"errors"
	"testing"
)

// fakeTB records what the helpers did instead of doing it.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skip(args ...any)      { f.skipped = true; f.msg = args[0].(string) }
func (f *fakeTB) Fatal(args ...any)     { f.failed = true; f.msg = args[0].(string) }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestToolMissing(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		t.Setenv("FWDD_TEST_STRICT", "")
		f := &fakeTB{}
		Tool(f, "no-such-tool-fwdd", "nothing")
		if ci == "true" && (!f.failed || f.skipped) || ci == "" && (!f.skipped || f.failed) {
			t.Errorf("CI=%q: skipped %v failed %v (%s)", ci, f.skipped, f.failed, f.msg)
		}
	}
	f := &fakeTB{}
	if p := Tool(f, "sh", "dash"); p == "" || f.skipped || f.failed {
		t.Errorf("sh: %q %+v", p, f)
	}
}

func TestFeatureFails(t *testing.T) {
	f := &fakeTB{}
	Feature(f, errors.New("EPERM"), "AF_PACKET socket")
	if !f.failed || f.skipped {
		t.Fatal("a missing kernel feature must fail")
	}
	f = &fakeTB{}
	Feature(f, nil, "x")
	if f.failed {
		t.Fatal("nil error failed")
	}
}

func TestRootStrict(t *testing.T) {
	if IsRoot() {
		f := &fakeTB{}
		Root(f, "test")
		if f.failed || f.skipped {
			t.Fatal("root refused")
		}
		return
	}
	t.Setenv("CI", "true")
	f := &fakeTB{}
	Root(f, "test")
	if !f.failed {
		t.Fatal("not root in CI must fail")
	}
}
