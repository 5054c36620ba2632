package testnet

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testenv"
)

func TestTopology(t *testing.T) {
	n := New(t)
	// Registered first, so it runs after the namespaces' own cleanups.
	t.Cleanup(func() {
		out, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(out), n.Tag()) {
			t.Errorf("namespaces left behind: %s", out)
		}
	})
	testenv.Tool(t, "ping", "iputils-ping")
	a, b := n.NS("a"), n.NS("b")
	n.Veth(a, "va", b, "vb")
	n.In(a, "ip", "addr", "add", "198.18.0.1/24", "dev", "va")
	n.In(b, "ip", "addr", "add", "198.18.0.2/24", "dev", "vb")
	Eventually(t, 5*time.Second, "ping over the veth", func() bool {
		_, err := n.TryIn(a, "ping", "-c1", "-W1", "198.18.0.2")
		return err == nil
	})
	if mac := n.MAC(a, "va"); len(mac) != 17 {
		t.Fatalf("MAC %q", mac)
	}
}
