package cmdlang

import (
	"context"
	"fmt"
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
