package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
)

// runStream runs a streaming command (monitor, capture): frames are
// printed (monitor) or written to -w's file (capture) as they come; Ctrl-C
// (ctx) stops the daemon's side and the summary is still printed.
func runStream(ctx context.Context, sock string, jsonOut bool, vnet string, words []string, stdout, stderr io.Writer) int {
	var out io.Writer = stdout
	var file *os.File
	capture := words[0] == "capture"
	if capture {
		var dest string
		var rest []string
		for i := 0; i < len(words); i++ {
			if words[i] == "-w" {
				if i+1 >= len(words) {
					fmt.Fprintln(stderr, "fwdctl: capture: -w needs a file name, or - for standard output")
					return 2
				}
				dest = words[i+1]
				i++
				continue
			}
			rest = append(rest, words[i])
		}
		if dest == "" {
			fmt.Fprintln(stderr, "fwdctl: capture: say where the packets go: -w FILE, or -w - to pipe them (fwdctl capture p0 -w - | tcpdump -n -r -)")
			return 2
		}
		words = rest
		if dest != "-" {
			f, err := os.Create(dest)
			if err != nil {
				fmt.Fprintf(stderr, "fwdctl: capture: %v\n", err)
				return 1
			}
			file, out = f, f
			defer f.Close()
		} else if f, ok := stdout.(*os.File); ok && isTerminal(f) {
			fmt.Fprintln(stderr, "fwdctl: capture: not writing binary pcap to a terminal; pipe it (| tcpdump -n -r -) or use -w FILE")
			return 2
		}
	}
	for i, w := range words {
		words[i] = cmdlang.Quote(w)
	}
	line := prefixVnet([]string{strings.Join(words, " ")}, vnet)[0]
	// Check locally first: a typo is reported without a connection.
	if _, err := cmdlang.ParseLines([]string{line}, cmdlang.Options{Unnumbered: true}); err != nil {
		fmt.Fprintf(stderr, "fwdctl: %v\n", err)
		return 2
	}
	c, err := ctlsock.Dial(ctx, sock)
	if err != nil {
		fmt.Fprintf(stderr, "fwdctl: %v\n", err)
		return 1
	}
	defer c.Close()
	cwd, _ := os.Getwd()
	req := &ctlsock.Request{Lines: []string{line}, JSON: jsonOut, Dir: cwd}
	final, err := c.Stream(ctx, req, func(r *ctlsock.Response) error {
		if capture {
			if len(r.Bin) > 0 {
				_, err := out.Write(r.Bin)
				return err
			}
			return nil
		}
		if jsonOut {
			for _, d := range r.Data {
				if _, err := fmt.Fprintf(out, "%s\n", d); err != nil {
					return err
				}
			}
			return nil
		}
		_, err := io.WriteString(out, r.Text)
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "fwdctl: %v\n", err)
		return 1
	}
	if file != nil {
		if err := file.Close(); err != nil {
			fmt.Fprintf(stderr, "fwdctl: capture: %v\n", err)
			return 1
		}
	}
	if !final.OK {
		fmt.Fprintf(stderr, "fwdctl: %s\n", final.Error)
		return 1
	}
	// The summary goes to stderr: stdout may be the pcap stream.
	if final.Text != "" {
		if capture || !jsonOut {
			fmt.Fprint(stderr, final.Text)
		}
	}
	return 0
}
