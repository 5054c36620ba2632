package vnet

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/internal/testnet"
)

// TestStreamEndsWithVnet: a monitor running in a vnet (fwdctl -V blue
// monitor) ends, saying why, when the vnet is deleted.
func TestStreamEndsWithVnet(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "fwdd.sock")
	h, err := Start(Config{Socket: sock, Engine: engineCfg, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Shutdown)
	mustText(t, h, "vnet add blue")
	mustText(t, h, "vnet blue port add p0 driver null")
	mustText(t, h, "vnet blue addr add p0 198.18.1.1/24")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ctlsock.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var frames atomic.Int32
	type result struct {
		resp *ctlsock.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		r, err := c.Stream(ctx, &ctlsock.Request{Lines: []string{"vnet blue monitor routes"}}, func(*ctlsock.Response) error {
			frames.Add(1)
			return nil
		})
		done <- result{r, err}
	}()
	// Changes in blue reach the stream; then blue goes.
	i := 0
	testnet.Eventually(t, 10*time.Second, "a monitor frame", func() bool {
		i++
		mustText(t, h, "vnet blue route add 198.19."+strconv.Itoa(i%250)+".0/24 blackhole")
		return frames.Load() > 0
	})
	mustText(t, h, "vnet del blue")
	select {
	case r := <-done:
		if r.err != nil || r.resp == nil || r.resp.OK || !strings.Contains(r.resp.Error, "vnet blue was deleted") {
			t.Fatalf("stream end: %+v, %v", r.resp, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the monitor did not end with its vnet")
	}
}
