package ctl

import (
	"context"
	"net/netip"
	"strings"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/show"
)

// routePage is the most routes show routes lists in one step on the
// control goroutine. A listing of more routes than that is answered in
// pages (cmdlang.Result.Pages): each page made on the control goroutine
// (bounded work: fib.RoutesAfter), written out by the client's goroutine
// before the next is asked for, so that listing a full Internet table
// neither holds the control goroutine for the whole table nor builds it
// whole (it was a million rows and their text at once).
const routePage = 4096

// lastV4 sorts after every IPv4 route: the start of an IPv6-only listing.
var lastV4 = netip.MustParsePrefix("255.255.255.255/32")

// routeCursor is where a paged listing is: FIB fibs[i], after prefix
// after.
type routeCursor struct {
	fibs   []int
	i      int
	after  netip.Prefix
	family cmdlang.Family
	done   bool
}

// routePager returns the Pages function of a show routes listing of fibs.
// Routes changed while it is being listed may or may not be in it; every
// route present throughout is listed once, in order.
func (s *stack) routePager(c *cmdlang.ShowRoutes, fibs []int) func(context.Context, func(string, any) error) error {
	do := s.do
	return func(ctx context.Context, page func(text string, rows any) error) error {
		cur := &routeCursor{fibs: fibs, family: c.Family}
		var pw show.RoutesPages
		for !cur.done {
			if err := ctx.Err(); err != nil {
				return err
			}
			var rows []show.Route
			var err error
			if derr := do(func(s *stack) { rows, err = s.routesPage(cur) }); derr != nil {
				return derr
			}
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				continue
			}
			var b strings.Builder
			if err := pw.Write(&b, rows); err != nil {
				return err
			}
			if err := page(b.String(), rows); err != nil {
				return err
			}
		}
		return nil
	}
}

// routesPage builds the next page of cur (at most routePage rows).
// Control goroutine only.
func (s *stack) routesPage(cur *routeCursor) ([]show.Route, error) {
	snap := s.fibs.Load()
	conn := s.lcpConnected(s.connected)
	rows := make([]show.Route, 0, routePage)
	for len(rows) < routePage && cur.i < len(cur.fibs) {
		f := cur.fibs[cur.i]
		if f >= s.fibs.NumFIBs() {
			cur.i = len(cur.fibs) // net.fibs lowered meanwhile
			break
		}
		after := cur.after
		if cur.family == cmdlang.Inet6 && (!after.IsValid() || after.Addr().Is4()) {
			after = lastV4
		}
		want := routePage - len(rows)
		rs, err := s.fibs.RoutesAfter(uint32(f), after, want)
		if err != nil {
			return nil, err
		}
		next := len(rs) < want
		for _, r := range rs {
			if cur.family == cmdlang.Inet && !r.Prefix.Addr().Is4() {
				next = true
				break
			}
			row := s.route(snap, r)
			if s.lcpIsKernel(r, conn) {
				row.Origin = show.Kernel
			}
			rows = append(rows, row)
			cur.after = r.Prefix
		}
		if next {
			cur.i++
			cur.after = netip.Prefix{}
		}
	}
	cur.done = cur.i >= len(cur.fibs)
	s.routePages.steps++
	s.routePages.maxRows = max(s.routePages.maxRows, len(rows))
	return rows, nil
}
