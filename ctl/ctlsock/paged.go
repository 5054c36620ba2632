package ctlsock

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/fwdd/fwdd/ctl/cmdlang"
)

// Paged answers. A batch one of whose results comes in pages
// (cmdlang.Result.Pages: show routes of a full table) is answered with the
// same one JSON line as any other, written as the pages are made, so that
// neither the daemon nor the control goroutine ever holds the whole
// answer: {"text":"..."} or, when the client asked for JSON, {"data":[...]}
// (a paged answer carries only the form asked for), then "ok" last: true,
// or false with "error" when the listing was cut short (the partial text
// or data is then to be ignored).

// pagedAnswer is a batch's results, one of them at least in pages.
type pagedAnswer struct {
	results []cmdlang.Result
	cmds    []cmdlang.Command
	json    bool
}

// write writes the answer to w; flush is called after every page (to
// write it out and renew the write deadline). It returns the error that
// cut the answer short, if any, having written it into the answer.
func (pa *pagedAnswer) write(ctx context.Context, w *bufio.Writer, flush func() error) error {
	fail := func(err error) error {
		fmt.Fprintf(w, `,"ok":false,"error":%s}`+"\n", quote("fwdd: answer cut short: "+err.Error()))
		return err
	}
	if !pa.json {
		w.WriteString(`{"text":"`)
		for _, r := range pa.results {
			if r.Pages == nil {
				writeEscaped(w, r.Text)
				continue
			}
			err := r.Pages(ctx, func(text string, _ any) error {
				writeEscaped(w, text)
				return flush()
			})
			if err != nil {
				w.WriteString(`"`)
				return fail(err)
			}
		}
		w.WriteString(`"`)
	} else {
		w.WriteString(`{"data":[`)
		for i, r := range pa.results {
			if i > 0 {
				w.WriteByte(',')
			}
			if r.Pages == nil {
				b := []byte("null")
				if r.Data != nil {
					var err error
					if b, err = json.Marshal(r.Data); err != nil {
						w.WriteString("]")
						return fail(fmt.Errorf("the result of %s cannot be encoded as JSON: %v", pa.cmds[i].Verb(), err))
					}
				}
				w.Write(b)
				continue
			}
			w.WriteByte('[')
			first := true
			err := r.Pages(ctx, func(_ string, rows any) error {
				b, err := json.Marshal(rows)
				if err != nil {
					return err
				}
				if in := bytes.TrimSpace(b); len(in) > 2 && in[0] == '[' {
					if !first {
						w.WriteByte(',')
					}
					w.Write(in[1 : len(in)-1])
					first = false
				}
				return flush()
			})
			w.WriteByte(']')
			if err != nil {
				w.WriteString("]")
				return fail(err)
			}
		}
		w.WriteString("]")
	}
	w.WriteString(`,"ok":true}` + "\n")
	return nil
}

// writePaged writes pa to conn, renewing the write deadline (deadline) for
// every page. It returns an error only when the connection failed.
func writePaged(ctx context.Context, conn io.Writer, pa *pagedAnswer, deadline func()) error {
	w := bufio.NewWriterSize(conn, 64<<10)
	var werr error
	err := pa.write(ctx, w, func() error {
		if werr = w.Flush(); werr != nil {
			return werr
		}
		deadline()
		return nil
	})
	if werr != nil {
		return werr
	}
	_ = err // written into the answer
	return w.Flush()
}

// gather builds the whole Response of pa (in-process callers of Handle and
// Server.Do, which have no connection to write pages to).
func (pa *pagedAnswer) gather(ctx context.Context) *Response {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	pa.write(ctx, w, func() error { return nil })
	w.Flush()
	var r Response
	if err := json.Unmarshal(b.Bytes(), &r); err != nil {
		return &Response{Error: "fwdd: internal error: paged answer: " + err.Error()}
	}
	return &r
}

// writeEscaped writes s as the inside of a JSON string.
func writeEscaped(w *bufio.Writer, s string) {
	q := quote(s)
	w.WriteString(q[1 : len(q)-1])
}

func quote(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}
