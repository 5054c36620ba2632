package ctl

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/pmd"
)

// statuses returns the status of every live port that has one
// (pmd.Statuser), in configuration order; driver "" means all drivers.
func (s *stack) statuses(driver string) []pmd.Status {
	var out []pmd.Status
	for _, pm := range s.model.sortedPorts() {
		lp, ok := s.live[pm.Name]
		if !ok || (driver != "" && pm.Driver != driver) {
			continue
		}
		if st, ok := lp.port.(pmd.Statuser); ok {
			out = append(out, st.Status())
		}
	}
	return out
}

// showDriver renders "show DRIVER": the status tables of that driver's
// ports, one after the other under one header.
func (s *stack) showDriver(driver string) (cmdlang.Result, error) {
	sts := s.statuses(driver)
	var rows []map[string]string
	var b strings.Builder
	if len(sts) == 0 {
		fmt.Fprintf(&b, "no %s ports\n", driver)
		return cmdlang.Result{Text: b.String(), Data: []map[string]string{}}, nil
	}
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(sts[0].Columns, "\t"))
	for _, st := range sts {
		for _, r := range st.Rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
			m := map[string]string{}
			for i, c := range st.Columns {
				if i < len(r) {
					m[c] = r[i]
				}
			}
			rows = append(rows, m)
		}
	}
	tw.Flush()
	return cmdlang.Result{Text: b.String(), Data: rows}, nil
}
