package afxdp

import (
	"net"
	"testing"
	"time"

	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/internal/xsk"
	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
)

// TestAttachRetriedWhileBusy: when the interface comes up while an fwdd
// program is still attached through someone else's bpf_link (here the
// test's; in CI a forked child still holding the port's old link for a
// moment), the port does not wait for another link change: it retries and
// comes up once the link is gone, then forwards.
func TestAttachRetriedWhileBusy(t *testing.T) {
	tp, a, b, pool, stop := forwardingPair(t)
	pools := []*mbuf.Pool{pool}

	tp.n.In(tp.r, "ip", "link", "set", tp.rb, "down")
	testnet.Eventually(t, 5*time.Second, "B down", func() bool { l := b.Link(); return !l.Up && l.Present })
	// Hold an fwdd program on rb through a bpf_link of our own.
	var held *xsk.Program
	if err := pmd.InNetNS(testnet.Path(tp.r), func() error {
		ifi, err := net.InterfaceByName(tp.rb)
		if err != nil {
			return err
		}
		held, err = xsk.AttachProgram(xsk.ProgramConfig{Ifindex: ifi.Index, Queues: 1})
		return err
	}); err != nil {
		t.Fatalf("attach the test's program: %v", err)
	}
	t.Cleanup(func() { held.Close() })
	tp.n.In(tp.r, "ip", "link", "set", tp.rb, "up")
	bp, ok := b.(*Port)
	if !ok {
		t.Fatalf("port is a %T", b)
	}
	testnet.Eventually(t, 10*time.Second, "B's attach refused and retried", func() bool {
		bp.mu.Lock()
		defer bp.mu.Unlock()
		return bp.busyRetries > 1
	})
	if b.Link().Up {
		t.Fatal("B attached while another bpf_link held an fwdd program on its interface")
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	testnet.Eventually(t, 5*time.Second, "B up once the program is released, without a link change", func() bool { return b.Link().Up })
	echo(t, tp, 1, 10, 1)
	closeAndCheck(t, tp, stop, []pmd.Port{a, b}, pools)
}
