package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
	"golang.org/x/term"
)

const prompt = "fwdd> "

// interactive runs the prompt on a real terminal: raw mode for line
// editing, restored on the way out.
func interactive(ctx context.Context, sock string, tty *os.File, stdout, stderr io.Writer, jsonOut bool, vnet string) int {
	c, err := ctlsock.Dial(ctx, sock)
	if err != nil {
		fmt.Fprintf(stderr, "fwdctl: %v\n", err)
		return 1
	}
	defer c.Close()
	fd := int(tty.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		fmt.Fprintf(stderr, "fwdctl: cannot set up the terminal: %v\n", err)
		return 1
	}
	defer term.Restore(fd, old)
	rw := struct {
		io.Reader
		io.Writer
	}{tty, stdout}
	s := &session{sock: sock, c: c, jsonOut: jsonOut, vnet: vnet}
	return s.loop(ctx, term.NewTerminal(rw, prompt), fd)
}

// session is one interactive session; it reconnects if the daemon restarts.
type session struct {
	sock    string
	c       *ctlsock.Client
	jsonOut bool
	vnet    string // -V: every line runs in this vnet
}

// loop reads lines from t until quit, EOF (Ctrl-D) or Ctrl-C. fd < 0 means
// no real terminal (tests): no resizing.
func (s *session) loop(ctx context.Context, t *term.Terminal, fd int) int {
	cwd, _ := os.Getwd()
	fmt.Fprintf(t, "fwdctl: connected to fwdd at %s; type help for the commands, quit to leave\n", s.sock)
	status := 0
	for {
		if fd >= 0 {
			if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 {
				t.SetSize(w, h)
			}
		}
		line, err := t.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				fmt.Fprintln(t)
				return status
			}
			fmt.Fprintf(t, "fwdctl: %v\n", err)
			return 1
		}
		switch strings.TrimSpace(line) {
		case "":
			continue
		case "quit", "exit":
			return status
		case "help", "?":
			io.WriteString(t, cmdlang.HelpText())
			continue
		}
		// Check locally first: an error shows at once, with no round trip.
		if _, err := cmdlang.ParseLines([]string{line}, cmdlang.Options{Unnumbered: true}); err != nil {
			fmt.Fprintf(t, "%% %v\n", err)
			status = 1
			continue
		}
		resp, err := s.do(ctx, &ctlsock.Request{Lines: []string{line}, JSON: s.jsonOut, Dir: cwd})
		if err != nil {
			fmt.Fprintf(t, "fwdctl: %v\n", err)
			if ctx.Err() != nil {
				return 1
			}
			status = 1
			continue
		}
		if !resp.OK {
			fmt.Fprintf(t, "%% %s\n", resp.Error)
			status = 1
			continue
		}
		status = 0
		printResponse(t, resp, s.jsonOut, true)
	}
}

// do sends req. If the connection was lost (the daemon restarted since
// the last command), it reconnects, and resends only when the request was
// surely not sent: a batch must never be applied twice.
func (s *session) do(ctx context.Context, req *ctlsock.Request) (*ctlsock.Response, error) {
	req.Lines = prefixVnet(req.Lines, s.vnet)
	if s.c != nil {
		resp, err := s.c.Do(ctx, req)
		if err == nil {
			return resp, nil
		}
		s.c.Close()
		s.c = nil
		if ctx.Err() != nil || !errors.Is(err, ctlsock.ErrNotSent) {
			return nil, err
		}
	}
	c, err := ctlsock.Dial(ctx, s.sock)
	if err != nil {
		return nil, err
	}
	s.c = c
	return c.Do(ctx, req)
}
