package cmdlang

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every *Error, so callers can tell a rejected
// command (the operator's mistake) from a failure to apply it.
var ErrSyntax = errors.New("invalid command")

// Error is one rejected line. Error() reads
//
//	line 3: route add: "via" needs an address, got "foo"
//
// or, when File is set, "fwdd.conf:3: route add: ...".
type Error struct {
	File string // the file the line came from, "" for a live command
	Line int    // 1-based line number, 0 if unknown
	Col  int    // 1-based byte column of Word, 0 if the error is about the whole line
	Verb string // "route add", "" if the verb itself was not understood
	Word string // the offending word, "" at the end of the line
	Msg  string // what was wrong and what was expected
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Verb != "" {
		b.WriteString(e.Verb)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrSyntax) true.
func (e *Error) Unwrap() error { return ErrSyntax }

// ErrorList is what Parse returns when one or more lines are rejected: the
// first MaxErrors errors, in line order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the individual errors (errors.As finds the first *Error).
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// got renders a word for "got ..." in messages.
func got(w *word) string {
	if w == nil {
		return "end of line"
	}
	return fmt.Sprintf("%q", Truncate(w.text))
}

// MaxQuoted is the most bytes of an offending word an error quotes: a
// file given where commands were expected (fwdd -c /etc/shadow) must not
// end up in an error message or a log line whole.
const MaxQuoted = 24

// Truncate shortens s to at most MaxQuoted bytes (at a rune boundary),
// marking the cut with "...". Errors quote words through it.
func Truncate(s string) string {
	if len(s) <= MaxQuoted {
		return s
	}
	n := MaxQuoted
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
