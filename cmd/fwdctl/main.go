// Command fwdctl controls a running fwdd through its control socket.
//
//	fwdctl [-s SOCKET] [-j] COMMAND...     run one command
//	fwdctl [-s SOCKET] [-j] -f FILE        run FILE as one batch (all or nothing; - is stdin)
//	fwdctl [-s SOCKET] [-j]                interactive prompt on a terminal;
//	                                       otherwise stdin is read as a batch
//	fwdctl help                            the command language
//
// -V NAME runs every command in vnet NAME (each line gets the prefix
// "vnet NAME"); without it commands run in the default vnet.
//
// The exit status is 0 on success, 1 when the daemon refused or failed the
// command (its message goes to stderr) or cannot be reached, 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
	_ "github.com/fwdd/fwdd/pmd/drivers" // help lists the drivers; arguments are checked before sending
	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: fwdctl [-s SOCKET] [-V VNET] [-j] COMMAND...   run one command
       fwdctl [-s SOCKET] [-j] -f FILE      run FILE as one batch (- for stdin)
       fwdctl [-s SOCKET] [-j]              interactive prompt (batch from stdin if not a terminal)
       fwdctl help                          the command language
       fwdctl [-s SOCKET] [-j] monitor [routes|neigh|ports|rules|lcp|config|all]...
       fwdctl [-s SOCKET] capture PORT [rx|tx|both] [count N] [snaplen N] [duration D] [pcapng] -w FILE|-
       fwdctl [-s SOCKET] top [-n N] [-i INTERVAL] [-o rx|tx|drops|name]
`

// run is fwdctl without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fwdctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage, "\nflags:\n")
		fs.PrintDefaults()
	}
	sock := fs.String("s", ctlsock.DefaultPath, "control socket of fwdd")
	jsonOut := fs.Bool("j", false, "print JSON instead of tables")
	file := fs.String("f", "", "run the commands of `FILE` as one batch (- for stdin)")
	vnet := fs.String("V", "", "run every command in `vnet` NAME (prefix vnet NAME)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	words := fs.Args()
	if len(words) == 1 && (words[0] == "help" || words[0] == "?") {
		fmt.Fprint(stdout, cmdlang.HelpText())
		return 0
	}
	if len(words) > 0 && *file == "" {
		switch words[0] {
		case "monitor", "capture":
			return runStream(ctx, *sock, *jsonOut, *vnet, words, stdout, stderr)
		case "top":
			return runTop(ctx, *sock, words[1:], stdin, stdout, stderr)
		}
	}
	if *file != "" && len(words) > 0 {
		fmt.Fprintf(stderr, "fwdctl: give either -f FILE or a command, not both\n%s", usage)
		return 2
	}
	cwd, _ := os.Getwd()

	var req *ctlsock.Request
	switch {
	case *file != "":
		var lines []string
		var err error
		req = &ctlsock.Request{Source: *file, JSON: *jsonOut}
		if *file == "-" {
			lines, err = readLines(stdin)
			req.Source, req.Dir = "stdin", cwd
		} else {
			var f *os.File
			if f, err = os.Open(*file); err == nil {
				lines, err = readLines(f)
				f.Close()
			}
			// Relative names in a file are relative to the file, as in fwdd -c.
			if abs, aerr := filepath.Abs(*file); aerr == nil {
				req.Dir = filepath.Dir(abs)
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "fwdctl: %v\n", err)
			return 1
		}
		req.Lines = lines
	case len(words) > 0:
		for i, w := range words {
			words[i] = cmdlang.Quote(w)
		}
		req = &ctlsock.Request{Lines: []string{strings.Join(words, " ")}, JSON: *jsonOut, Dir: cwd}
	default:
		if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return interactive(ctx, *sock, f, stdout, stderr, *jsonOut, *vnet)
		}
		lines, err := readLines(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "fwdctl: reading stdin: %v\n", err)
			return 1
		}
		req = &ctlsock.Request{Lines: lines, Source: "stdin", JSON: *jsonOut, Dir: cwd}
	}

	req.Lines = prefixVnet(req.Lines, *vnet)
	resp, err := doOnce(ctx, *sock, req)
	if err != nil {
		fmt.Fprintf(stderr, "fwdctl: %v\n", err)
		return 1
	}
	if !resp.OK {
		fmt.Fprintf(stderr, "fwdctl: %s\n", resp.Error)
		return 1
	}
	if err := printResponse(stdout, resp, *jsonOut, len(words) > 0); err != nil {
		fmt.Fprintf(stderr, "fwdctl: %v\n", err)
		return 1
	}
	return 0
}

// evictedRetries is how many times a command is sent again on a new
// connection when fwdd closed the previous one for another client before
// reading the request (every slot was taken; the request was not executed).
const evictedRetries = 3

// doOnce sends req on a new connection and returns fwdd's response. The
// request is executed at most once: it is only resent when fwdd says it
// did not execute it (ctlsock.ErrEvicted).
func doOnce(ctx context.Context, sock string, req *ctlsock.Request) (*ctlsock.Response, error) {
	for try := 0; ; try++ {
		c, err := ctlsock.Dial(ctx, sock)
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(ctx, req)
		c.Close()
		if err == nil || try == evictedRetries || ctx.Err() != nil || !errors.Is(err, ctlsock.ErrEvicted) {
			return resp, err
		}
	}
}

// prefixVnet puts "vnet NAME " before every line holding a command (blank
// and comment lines stay as they are, so line numbers are kept).
func prefixVnet(lines []string, vnet string) []string {
	if vnet == "" {
		return lines
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			out[i] = l
			continue
		}
		out[i] = "vnet " + cmdlang.Quote(vnet) + " " + l
	}
	return out
}

// readLines reads everything; the server bounds line length and request size.
func readLines(r io.Reader) ([]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, ctlsock.DefaultMaxRequest+1))
	if err != nil {
		return nil, err
	}
	if len(b) > ctlsock.DefaultMaxRequest {
		return nil, fmt.Errorf("batch larger than %d bytes; split it, or put routes in a file for route load", ctlsock.DefaultMaxRequest)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}

// printResponse writes the text, or with -j the data: a single command's
// value alone, a batch's as an array; commands without data print nothing.
func printResponse(w io.Writer, resp *ctlsock.Response, jsonOut, single bool) error {
	if !jsonOut {
		_, err := io.WriteString(w, resp.Text)
		return err
	}
	var v any = resp.Data
	if single {
		if len(resp.Data) == 0 || string(resp.Data[0]) == "null" {
			return nil
		}
		v = resp.Data[0]
	} else if resp.Data == nil {
		v = []json.RawMessage{}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
