package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/fwd"
)

// show routes of a large table (30,000 routes) is answered in pages: each
// made on the control goroutine (at most routePage rows per step, counted),
// written to the client as it is made, as one ordinary answer (text, or
// JSON data of every route once, in order); the control goroutine serves
// other batches between pages.
func TestShowRoutesPaged(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "fwdd.conf")
	if err := os.WriteFile(conf, []byte(nullConfig+"addr add p1 2001:2:0:2::1/64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "fwdd.sock")
	d, err := Start(Options{
		ConfigFile: conf, Socket: sock, Engine: fwd.Config{Workers: 1, PoolSize: 2048, CheckedPools: true},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Shutdown)
	const n4, n6 = 24000, 6000
	var lines []string
	for i := 0; i < n4; i++ {
		lines = append(lines, fmt.Sprintf("198.18.%d.%d/32", 100+i/256, i%256))
	}
	for i := 0; i < n6; i++ {
		lines = append(lines, fmt.Sprintf("2001:2:0:%x::/64", 0x100+i))
	}
	f := filepath.Join(dir, "routes.txt")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, d, "route load "+f+" blackhole"); err != nil {
		t.Fatal(err)
	}
	var total, total6 int
	d.do(func(s *stack) {
		v4, v6, _ := s.fibs.RouteCount(0)
		total, total6 = v4+v6, v6
	})
	if total < n4+n6 {
		t.Fatalf("%d routes in fib 0", total)
	}
	c, err := ctlsock.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func(line string, asJSON bool) *ctlsock.Response {
		t.Helper()
		resp, err := c.Do(context.Background(), &ctlsock.Request{Lines: []string{line}, JSON: asJSON})
		if err != nil || !resp.OK {
			t.Fatalf("%s: %v %+v", line, err, resp)
		}
		return resp
	}
	steps := func() (st, most int) {
		d.do(func(s *stack) { st, most = s.routePages.steps, s.routePages.maxRows })
		return
	}

	// JSON: every route once, in order.
	resp := ask("show routes", true)
	var rows []show.Route
	if err := json.Unmarshal(resp.Data[0], &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != total {
		t.Fatalf("%d routes in the JSON answer, fib 0 has %d", len(rows), total)
	}
	for i := 1; i < len(rows); i++ {
		a, b := rows[i-1].Destination, rows[i].Destination
		if a.Addr().Is4() == b.Addr().Is4() && (a.Addr().Compare(b.Addr()) > 0 || a.Addr() == b.Addr() && a.Bits() >= b.Bits()) ||
			!a.Addr().Is4() && b.Addr().Is4() {
			t.Fatalf("rows %d and %d out of order: %v %v", i-1, i, a, b)
		}
	}
	st, most := steps()
	if st < (total+routePage-1)/routePage || most > routePage {
		t.Fatalf("%d steps of at most %d rows for %d routes (page %d)", st, most, total, routePage)
	}

	// Text: one line per route, the blocks of show routes.
	txt := ask("show routes", false).Text
	if got := strings.Count(txt, "blackhole"); got != n4+n6 {
		t.Fatalf("%d blackhole lines in the text, want %d", got, n4+n6)
	}
	if strings.Count(txt, "Routing tables (fib: 0)") != 1 || strings.Count(txt, "\nInternet:\n") != 1 || strings.Count(txt, "\nInternet6:\n") != 1 {
		t.Fatalf("text blocks:\n%.600s", txt)
	}
	// One family.
	resp = ask("show routes inet6", true)
	rows = nil
	json.Unmarshal(resp.Data[0], &rows)
	if len(rows) != total6 || !rows[0].Destination.Addr().Is6() {
		t.Fatalf("inet6: %d rows, want %d", len(rows), total6)
	}
	resp = ask("show routes inet", true)
	rows = nil
	json.Unmarshal(resp.Data[0], &rows)
	if len(rows) != total-total6 || !rows[len(rows)-1].Destination.Addr().Is4() {
		t.Fatalf("inet: %d rows, want %d", len(rows), total-total6)
	}
	// A batch mixing a paged answer and others keeps their order.
	resp, err = c.Do(context.Background(), &ctlsock.Request{Lines: []string{"get net.fibs", "show routes", "show sysctl net.fibs"}, JSON: true})
	if err != nil || !resp.OK || len(resp.Data) != 3 || !strings.Contains(string(resp.Data[0]), "net.fibs") ||
		!strings.Contains(string(resp.Data[2]), "net.fibs") {
		t.Fatalf("mixed batch: %v %+v", err, resp)
	}

	// In-process Exec gathers the pages.
	res, err := run(t, d, "show routes")
	if err != nil || res[0].Pages != nil || len(res[0].Data.([]show.Route)) != total || strings.Count(res[0].Text, "blackhole") != n4+n6 {
		t.Fatalf("Exec did not gather the pages: %v", err)
	}
	// ExecPaged leaves them: the control goroutine runs another batch
	// between pages.
	cmds, _ := cmdlang.ParseLines([]string{"show routes"}, cmdlang.Options{})
	res, err = d.ExecPaged(context.Background(), cmds)
	if err != nil || res[0].Pages == nil {
		t.Fatalf("no pages: %v", err)
	}
	added, listed := false, 0
	err = res[0].Pages(context.Background(), func(_ string, page any) error {
		listed += len(page.([]show.Route))
		if !added {
			added = true
			if _, err := run(t, d, "route add 198.19.200.0/24 blackhole"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || listed != total+1 {
		t.Fatalf("listed %d (want %d, with the route added after the first page): %v", listed, total+1, err)
	}
}
