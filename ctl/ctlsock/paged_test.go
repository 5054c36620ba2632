package ctlsock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fwdd/fwdd/ctl/cmdlang"
)

// pagedExec answers every command with pages of rows "r0".."rN-1" (failing
// at page failAt if > 0), after the plain result of its first command.
type pagedExec struct {
	pages, per, failAt int
}

func (e *pagedExec) Exec(ctx context.Context, cmds []cmdlang.Command) ([]cmdlang.Result, error) {
	out := []cmdlang.Result{{Text: "first\n", Data: map[string]int{"x": 1}}}
	for range cmds[1:] {
		out = append(out, cmdlang.Result{Pages: func(ctx context.Context, page func(string, any) error) error {
			for p := 0; p < e.pages; p++ {
				if p+1 == e.failAt {
					return errors.New("the vnet went away")
				}
				var rows []string
				var text strings.Builder
				for i := range e.per {
					r := fmt.Sprintf("r%d \"q\"", p*e.per+i)
					rows = append(rows, r)
					text.WriteString(r + "\n")
				}
				if err := page(text.String(), rows); err != nil {
					return err
				}
			}
			return nil
		}})
	}
	return out, nil
}

// A paged result is written as one ordinary response line, text or JSON
// data (all pages' rows in one array, beside the other results), and an
// error in the middle turns it into a failed response; in-process Handle
// gathers the same answer.
func TestPagedAnswer(t *testing.T) {
	ex := &pagedExec{pages: 50, per: 100}
	s := start(t, Config{Exec: ex})
	c := dial(t, s.Path())
	lines := []string{"show ports", "show routes"}
	r := do(t, c, &Request{Lines: lines})
	if !r.OK || !strings.HasPrefix(r.Text, "first\nr0 \"q\"\n") || strings.Count(r.Text, "\n") != 5001 || !strings.HasSuffix(r.Text, "r4999 \"q\"\n") {
		t.Fatalf("text answer: ok %v, %d lines, %.60q...", r.OK, strings.Count(r.Text, "\n"), r.Text)
	}
	r = do(t, c, &Request{Lines: lines, JSON: true})
	var rows []string
	if !r.OK || len(r.Data) != 2 || string(r.Data[0]) != `{"x":1}` || json.Unmarshal(r.Data[1], &rows) != nil || len(rows) != 5000 || rows[4999] != `r4999 "q"` {
		t.Fatalf("JSON answer: %+v, %d rows", r.OK, len(rows))
	}
	if h := Handle(context.Background(), ex, &Request{Lines: lines, JSON: true}); !h.OK || len(h.Data) != 2 || string(h.Data[1]) != string(r.Data[1]) {
		t.Fatalf("Handle: %+v", h.OK)
	}
	ex.failAt = 7
	for _, asJSON := range []bool{false, true} {
		r = do(t, c, &Request{Lines: lines, JSON: asJSON})
		if r.OK || !strings.Contains(r.Error, "answer cut short: the vnet went away") {
			t.Fatalf("failed listing (json %v): ok %v error %q", asJSON, r.OK, r.Error)
		}
	}
	// The connection is still usable.
	ex.failAt = 0
	if r = do(t, c, &Request{Lines: lines}); !r.OK {
		t.Fatalf("after a failed listing: %+v", r)
	}
}
