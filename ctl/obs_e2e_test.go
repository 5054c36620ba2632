package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/internal/testenv"
	"github.com/fwdd/fwdd/internal/testnet"
	"github.com/fwdd/fwdd/trace"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// obsDriver is the driver the observability end-to-end tests run on.
func obsDriver(t *testing.T) string {
	ds := e2eDrivers()
	if len(ds) == 0 {
		t.Skip("no kernel-backed driver")
	}
	return ds[0]
}

// streamClient runs a streaming command over the daemon's control socket,
// as fwdctl does, calling frame for each frame.
func (x *e2e) stream(ctx context.Context, line string, jsonOut bool, frame func(*ctlsock.Response) error) (*ctlsock.Response, error) {
	c, err := ctlsock.Dial(context.Background(), x.d.srv.Path())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Stream(ctx, &ctlsock.Request{Lines: []string{line}, JSON: jsonOut}, frame)
}

// sendUDP sends n UDP datagrams of size bytes from ns to dst port 9,
// pausing 1 ms every 32 (about 30 kpps: a rate a loaded test machine's
// veth and fwdd take without loss).
func (x *e2e) sendUDP(ns, dst string, n, size int) {
	x.t.Helper()
	py := fmt.Sprintf("import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(%d):\n    s.sendto(bytes([i%%256])*%d,(%q,9))\n    if i%%32==31: time.sleep(0.001)\n", n, size, dst)
	x.n.In(ns, "python3", "-c", py)
}

// ipFrames reads a pcap or pcapng file and returns the IPv4 frames between
// the two hosts (ARP, ND and the like left out), as strings.
func ipFrames(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var frames []string
	add := func(d []byte) {
		if len(d) < 34 || d[12] != 0x08 || d[13] != 0x00 {
			return
		}
		src := netip.AddrFrom4([4]byte(d[26:30]))
		dst := netip.AddrFrom4([4]byte(d[30:34]))
		hosts := []netip.Addr{netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("198.19.2.2")}
		if slices.Contains(hosts, src) && slices.Contains(hosts, dst) {
			frames = append(frames, string(d))
		}
	}
	if r, err := pcapgo.NewReader(bytes.NewReader(b)); err == nil {
		if r.LinkType() != layers.LinkTypeEthernet {
			t.Fatalf("%s: link type %v", path, r.LinkType())
		}
		for {
			d, _, err := r.ReadPacketData()
			if err != nil {
				break
			}
			add(d)
		}
		return frames
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("%s is neither pcap nor pcapng: %v", path, err)
	}
	for {
		d, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		add(d)
	}
	return frames
}

// TestE2ECapture: a capture on p1 of a ping and a UDP burst through fwdd,
// stopped like Ctrl-C, read back with pcapgo and with tcpdump -r, holds
// exactly the frames h2 received and sent (tcpdump on h2 is the
// reference); then the same as pcapng, stopped by count. Nothing stays
// armed.
func TestE2ECapture(t *testing.T) {
	testnet.Skip(t)
	testenv.Tool(t, "tcpdump", "tcpdump")
	x := newE2E(t)
	x.start(obsDriver(t))
	x.eventuallyPing(x.h1, "198.19.2.2")
	dir := t.TempDir()

	for _, ng := range []bool{false, true} {
		t.Run(fmt.Sprintf("pcapng=%v", ng), func(t *testing.T) {
			ref := filepath.Join(dir, fmt.Sprintf("h2-%v.pcap", ng))
			td := x.n.Start(x.h2, "tcpdump", "--immediate-mode", "-B", "16384", "-U", "-n", "-s", "0", "-i", "h2", "-w", ref)
			testnet.Eventually(t, 10*time.Second, "tcpdump on h2 to start", func() bool {
				fi, err := os.Stat(ref)
				return err == nil && fi.Size() >= 24
			})
			time.Sleep(200 * time.Millisecond) // tcpdump's socket is bound before the header is written
			ours := filepath.Join(dir, fmt.Sprintf("fwdd-%v.pcap", ng))
			f, err := os.Create(ours)
			if err != nil {
				t.Fatal(err)
			}
			line := "capture p1 both"
			if ng {
				line += " pcapng"
			}
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			type result struct {
				resp *ctlsock.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				r, err := x.stream(ctx, line, true, func(r *ctlsock.Response) error {
					_, err := f.Write(r.Bin)
					return err
				})
				done <- result{r, err}
			}()
			testnet.Eventually(t, 10*time.Second, "the capture to be armed", func() bool {
				o := x.d.Engine().Observers()
				return o != nil && len(o.Captures) == 1
			})
			x.n.In(x.h1, "ping", "-c", "3", "-i", "0.2", "198.19.2.2")
			x.sendUDP(x.h1, "198.19.2.2", 50, 200)
			// Let the last frames reach both captures, then stop both.
			time.Sleep(500 * time.Millisecond)
			stop()
			res := <-done
			if res.err != nil || !res.resp.OK {
				t.Fatalf("capture: %v %+v", res.err, res.resp)
			}
			f.Close()
			_ = td.Process.Signal(os.Interrupt)
			_, _ = td.Process.Wait()
			var sum CaptureSummary
			if err := json.Unmarshal(res.resp.Data[0], &sum); err != nil {
				t.Fatal(err)
			}
			if sum.Dropped != 0 || sum.Reason != "client" || !strings.Contains(res.resp.Text, "captured on p1") {
				t.Errorf("summary %+v %q", sum, res.resp.Text)
			}
			got, want := ipFrames(t, ours), ipFrames(t, ref)
			// 3 echo requests out of p1, 3 replies into it, 50 datagrams
			// out, and what ICMP the host answered them with.
			if len(want) < 56 {
				t.Fatalf("tcpdump on h2 saw only %d frames", len(want))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				var diff []string
				for _, g := range got {
					if !slices.Contains(want, g) {
						diff = append(diff, "only fwdd: "+trace.Summary([]byte(g)))
					}
				}
				for _, w := range want {
					if !slices.Contains(got, w) {
						diff = append(diff, "only h2: "+trace.Summary([]byte(w)))
					}
				}
				t.Fatalf("fwdd captured %d frames, h2 saw %d; they differ:\n%s\n%s\n%s", len(got), len(want), strings.Join(diff, "\n"), x.show("show ports"), x.n.In(x.h2, "ip", "-s", "link", "show", "h2"))
			}
			out := x.n.In(x.rt, "tcpdump", "-n", "-r", ours)
			if c := strings.Count(out, "198.18.1.2 > 198.19.2.2: ICMP echo request"); c != 3 {
				t.Errorf("tcpdump -r shows %d echo requests, want 3:\n%s", c, out)
			}
			if c := strings.Count(out, "> 198.19.2.2.9: UDP, length 200"); c != 50 {
				t.Errorf("tcpdump -r shows %d UDP datagrams, want 50:\n%s", c, out)
			}
			if ng {
				checkDirections(t, ours)
			}
			if o := x.d.Engine().Observers(); o != nil {
				t.Errorf("something is still armed after the capture: %+v", o)
			}
		})
	}

	t.Run("count", func(t *testing.T) {
		var buf bytes.Buffer
		done := make(chan *ctlsock.Response, 1)
		go func() {
			r, err := x.stream(context.Background(), "capture p0 rx count 4", true, func(r *ctlsock.Response) error {
				buf.Write(r.Bin)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			done <- r
		}()
		testnet.Eventually(t, 10*time.Second, "the capture to be armed", func() bool { return x.d.Engine().Observers() != nil })
		x.n.In(x.h1, "ping", "-c", "5", "-i", "0.2", "198.19.2.2")
		r := <-done
		if r == nil || !r.OK || !strings.Contains(r.Text, "4 packets captured on p0 (stopped by count)") {
			t.Fatalf("summary %+v", r)
		}
		pr, err := pcapgo.NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			if _, _, err := pr.ReadPacketData(); err != nil {
				break
			}
			n++
		}
		if n != 4 {
			t.Errorf("%d frames in the pcap, want 4", n)
		}
		testnet.Eventually(t, 5*time.Second, "the capture to be disarmed", func() bool { return x.d.Engine().Observers() == nil })
	})
}

// TestE2ECaptureSlowReader: a capture whose reader does not read while a
// UDP burst goes through loses frames and counts them; forwarding loses
// nothing.
func TestE2ECaptureSlowReader(t *testing.T) {
	testnet.Skip(t)
	x := newE2E(t)
	x.start(obsDriver(t))
	x.eventuallyPing(x.h1, "198.19.2.2")
	before := x.d.Engine().Counters()
	var mu sync.Mutex
	release := make(chan struct{})
	frames := 0
	done := make(chan *ctlsock.Response, 1)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		r, err := x.stream(ctx, "capture p1 tx count 1000000", true, func(r *ctlsock.Response) error {
			mu.Lock()
			frames++
			first := frames == 1
			mu.Unlock()
			if first {
				<-release // the reader stalls after the header
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	testnet.Eventually(t, 10*time.Second, "the capture to be armed", func() bool { return x.d.Engine().Observers() != nil })
	const sent = 20000
	x.sendUDP(x.h1, "198.19.2.2", sent, 400)
	after := x.d.Engine().Counters()
	close(release)
	// Stop it: the client goes away.
	testnet.Eventually(t, 10*time.Second, "frames to flow again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return frames > 1
	})
	sess := x.d.Engine().Observers().Captures[0]
	dropped := sess.Dropped()
	if dropped == 0 {
		t.Fatalf("the stalled reader lost no frames (%d sent)", sent)
	}
	rx := after["rx"] - before["rx"]
	fwdd := after["forwarded"] - before["forwarded"]
	// rx and forwarded also count the router's own ARP/ND and echo
	// traffic around the burst: at least the burst must be there, and
	// nothing may have been dropped (below).
	// On a loaded machine the veth may drop some of the burst before fwdd
	// sees it (counted by the port, capture or not); what fwdd received it
	// forwarded.
	if rx < sent*8/10 || fwdd+20 < rx {
		t.Fatalf("forwarding suffered: %d datagrams sent, %d received, %d forwarded", sent, rx, fwdd)
	}
	for k, v := range after {
		// The hosts' own multicast (MLD reports with hop-by-hop options)
		// is refused as always; anything else would be a loss.
		if strings.HasPrefix(k, "drop") && k != "drop_hop_by_hop" && k != "drop_not_our_mac" && v != before[k] {
			t.Errorf("%s moved by %d during the capture", k, v-before[k])
		}
	}
	stop()
	r := <-done
	var sum CaptureSummary
	if r == nil || !r.OK || json.Unmarshal(r.Data[0], &sum) != nil || sum.Dropped < dropped || !strings.Contains(r.Text, "dropped: the reader did not keep up") {
		t.Fatalf("summary %+v", r)
	}
	testnet.Eventually(t, 5*time.Second, "the capture to be disarmed", func() bool { return x.d.Engine().Observers() == nil })
	t.Logf("%d sent, %d forwarded, %d captured, %d capture frames dropped", sent, fwdd, sum.Captured, sum.Dropped)
}

// TestE2EMonitor: a monitor sees a route added and deleted by another
// control connection, and a neighbour becoming reachable.
func TestE2EMonitor(t *testing.T) {
	testnet.Skip(t)
	x := newE2E(t)
	x.start(obsDriver(t))
	var mu sync.Mutex
	var lines []string
	var jsonLines []string
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for _, j := range []bool{false, true} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := x.stream(ctx, "monitor routes neigh", j, func(r *ctlsock.Response) error {
				mu.Lock()
				defer mu.Unlock()
				if j {
					for _, d := range r.Data {
						jsonLines = append(jsonLines, string(d))
					}
				} else {
					lines = append(lines, strings.TrimSpace(r.Text))
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	testnet.Eventually(t, 10*time.Second, "two monitors", func() bool { return x.d.Events().Subscribers() == 2 })
	// Another connection, as another fwdctl would.
	for _, line := range []string{"route add 198.19.99.0/24 via 198.19.2.2", "route del 198.19.99.0/24"} {
		c, err := ctlsock.Dial(context.Background(), x.d.srv.Path())
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Do(context.Background(), &ctlsock.Request{Lines: []string{line}})
		c.Close()
		if err != nil || !r.OK {
			t.Fatalf("%s: %v %+v", line, err, r)
		}
	}
	x.eventuallyPing(x.h1, "198.19.2.2")
	want := []string{
		"198.19.99.0/24 via 198.19.2.2 dev p1 fib 0 proto static",
		"Deleted 198.19.99.0/24 fib 0 proto static",
		"198.19.2.2 dev p1 lladdr " + x.n.MAC(x.h2, "h2") + " REACHABLE",
	}
	testnet.Eventually(t, 10*time.Second, "the events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		all := strings.Join(lines, "\n")
		for _, w := range want {
			if !strings.Contains(all, w) {
				return false
			}
		}
		return len(jsonLines) >= len(want)
	})
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	var ev struct {
		Kind   string `json:"kind"`
		Action string `json:"action"`
		Prefix string `json:"prefix"`
	}
	if err := json.Unmarshal([]byte(jsonLines[0]), &ev); err != nil || ev.Kind != "routes" || ev.Action != "add" || ev.Prefix != "198.19.99.0/24" {
		t.Errorf("first JSON event %s (%v)", jsonLines[0], err)
	}
	if x.d.Events().Subscribers() != 0 {
		t.Errorf("%d monitors left subscribed", x.d.Events().Subscribers())
	}
}

// checkDirections: in a pcapng capture of p1, echo requests (to h2) are
// outbound and echo replies inbound, in each packet's epb_flags.
func checkDirections(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		d, _, opts, err := r.ReadPacketDataWithOptions()
		if err != nil {
			break
		}
		if len(d) < 35 || d[12] != 8 || d[13] != 0 || d[23] != 1 || d[34] != 0 && d[34] != 8 || opts.Flags == nil {
			continue
		}
		want := pcapgo.NgEpbFlagDirectionOutbound // echo request, to h2
		if d[34] == 0 {
			want = pcapgo.NgEpbFlagDirectionInbound // echo reply, from h2
		}
		if opts.Flags.Direction != want {
			t.Errorf("ICMP type %d: direction %v, want %v", d[34], opts.Flags.Direction, want)
		}
		n++
	}
	if n != 6 {
		t.Errorf("%d ICMP packets with a direction, want 6", n)
	}
}
