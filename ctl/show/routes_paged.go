package show

import (
	"fmt"
	"io"
)

// RoutesPages writes show routes in pages (a table too large to list at
// once): the same blocks and rows as Routes, each page aligned on its own,
// with the Use column always shown. The zero value is ready; rows must
// come sorted by FIB, family, destination across pages.
type RoutesPages struct {
	started bool
	fib     int
	is4     bool
}

// Write writes one page of rows.
func (p *RoutesPages) Write(w io.Writer, rows []Route) error {
	tw := newTable(w, 2)
	for _, r := range rows {
		is4 := r.Destination.Addr().Is4()
		if !p.started || r.FIB != p.fib {
			if p.started {
				fmt.Fprintln(tw)
			}
			fmt.Fprintf(tw, "Routing tables (fib: %d)\n", r.FIB)
			p.started, p.fib = true, r.FIB
			p.is4 = !is4 // a family header follows
		}
		if is4 != p.is4 {
			name := "Internet6"
			if is4 {
				name = "Internet"
			}
			fmt.Fprintf(tw, "\n%s:\nDestination\tGateway\tFlags\tNetif\tUse\n", name)
			p.is4 = is4
		}
		writeRouteRows(tw, r, true)
	}
	return tw.Flush()
}
