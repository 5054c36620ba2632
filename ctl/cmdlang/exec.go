package cmdlang

import (
	"context"
	"fmt"
	"reflect"
	"strings"
)

// Executor applies parsed commands to a stack. The control goroutine
// implements it; the control socket and the startup-file loader call it.
//
// Exec applies cmds as one batch, all or nothing: if any command fails,
// the state is left exactly as it was before the call and the error says
// which command failed (preferably an *ExecError). On success it returns
// one Result per command, in order (commands that only change state may
// return a zero Result).
//
// Exec is called from several goroutines at once (one per client); the
// implementation serializes batches itself (the control goroutine receives
// them on a channel). ctx carries the caller's deadline and cancellation:
// a batch not yet started may be abandoned with ctx.Err(); one already being
// applied either completes or is undone.
type Executor interface {
	Exec(ctx context.Context, cmds []Command) ([]Result, error)
}

// PagedExecutor is an Executor that can leave large answers in pages
// (Result.Pages) for a caller that writes them out as they come (the
// control socket); Exec gathers them (Gather) for every other caller.
type PagedExecutor interface {
	ExecPaged(ctx context.Context, cmds []Command) ([]Result, error)
}

// Gather turns a paged result into a whole one: the pages' text joined,
// their rows in one slice (of the pages' slice type). A result without
// pages is returned as it is.
func Gather(ctx context.Context, r Result) (Result, error) {
	if r.Pages == nil {
		return r, nil
	}
	var text strings.Builder
	var rows reflect.Value
	err := r.Pages(ctx, func(t string, page any) error {
		text.WriteString(t)
		v := reflect.ValueOf(page)
		if v.Kind() != reflect.Slice {
			return fmt.Errorf("cmdlang: page rows of type %T, not a slice", page)
		}
		if !rows.IsValid() {
			rows = reflect.MakeSlice(v.Type(), 0, v.Len())
		}
		rows = reflect.AppendSlice(rows, v)
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	out := Result{Text: text.String()}
	if rows.IsValid() {
		out.Data = rows.Interface()
	}
	return out, nil
}

// GatherAll is Gather for every result of a batch.
func GatherAll(ctx context.Context, rs []Result) ([]Result, error) {
	for i, r := range rs {
		if r.Pages != nil {
			g, err := Gather(ctx, r)
			if err != nil {
				return nil, err
			}
			rs[i] = g
		}
	}
	return rs, nil
}

// Result is what one command gave back.
type Result struct {
	// Text is for people: netstat -rn / arp -an / ifconfig-like tables,
	// ending in a newline when not empty.
	Text string `json:"text,omitempty"`
	// Data is the same information for programs; it must marshal with
	// encoding/json (nil for commands that only change state).
	Data any `json:"data,omitempty"`
	// Pages, when set, gives a large answer (show routes of a full table)
	// page by page instead of Text and Data, which are then empty. It
	// calls page for every page in order, on the caller's goroutine, with
	// the page's text and its rows (a slice: the JSON data is all pages'
	// rows in one array), until the answer is complete, page returns an
	// error, or ctx ends (either returned). Each page is made on the
	// control goroutine in bounded time, so a big listing neither holds
	// the control goroutine nor is ever built whole. The control socket
	// writes such an answer page by page; Pages may be called once.
	Pages func(ctx context.Context, page func(text string, rows any) error) error `json:"-"`
}

// ExecError says which command of a batch failed and why. Err should say
// what to do, e.g. "port p1: no such port (see show ports)".
type ExecError struct {
	Cmd Command
	Err error
}

func (e *ExecError) Error() string {
	w := e.Cmd.Location()
	switch {
	case w.File != "":
		return fmt.Sprintf("%s:%d: %s: %v", w.File, w.Line, e.Cmd, e.Err)
	case w.Line > 0:
		return fmt.Sprintf("line %d: %s: %v", w.Line, e.Cmd, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Cmd, e.Err)
}

func (e *ExecError) Unwrap() error { return e.Err }
