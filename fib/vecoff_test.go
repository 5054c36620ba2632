package fib

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestVecOff checks the operator's switch for the AVX-512 stages
// (docs/tuning.md): with GODEBUG=cpu.avx512f=off (read by x/sys/cpu at
// start-up) vec4OK and vec6OK are false, and the batch lookups, through the
// Go stages alone, agree with the reference. The test binary runs itself
// with that environment; on a CPU without the stages there is nothing to
// switch off.
func TestVecOff(t *testing.T) {
	if os.Getenv("FWDD_FIB_VECOFF_CHILD") == "1" {
		if vec4OK() || vec6OK() {
			t.Fatalf("GODEBUG=%q: vec4OK %v, vec6OK %v, want both false", os.Getenv("GODEBUG"), vec4OK(), vec6OK())
		}
		f := newWithNH(t, 1)
		r := newRef(1)
		rng := rand.New(rand.NewPCG(41, 42))
		var ps []netip.Prefix
		for i := range 2000 {
			ps = append(ps, randPrefix(rng, i%2 == 0))
		}
		applyBoth(t, f, r, adds(0, ps))
		check(t, f, r, 0, probesFor2(rng, ps, true))
		return
	}
	if !vec4OK() && !vec6OK() {
		t.Skip("this CPU runs no AVX-512 stages: nothing to switch off")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestVecOff$", "-test.count=1", "-test.v")
	godebug := "cpu.avx512f=off"
	if g := os.Getenv("GODEBUG"); g != "" {
		godebug = g + "," + godebug
	}
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug, "FWDD_FIB_VECOFF_CHILD=1") // the last GODEBUG wins
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestVecOff") {
		t.Fatalf("with GODEBUG=cpu.avx512f=off: %v\n%s", err, out)
	}
}
