package ctlsock

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"testing"
)

// Baseline: one line there and back on a bare Unix socket with an echo
// goroutine, the floor under any request/response protocol.
func BenchmarkUnixEchoBaseline(b *testing.B) {
	path := filepath.Join(b.TempDir(), "echo.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			l, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			c.Write(l)
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	msg := []byte(`{"lines":["get net.fibs"]}` + "\n")
	for b.Loop() {
		c.Write(msg)
		if _, err := br.ReadBytes('\n'); err != nil {
			b.Fatal(err)
		}
	}
}

// One command through the whole server path: JSON, credentials already
// checked, parse, fake executor, JSON back.
func BenchmarkRoundTrip(b *testing.B) {
	s, err := Listen(Config{Path: filepath.Join(b.TempDir(), "fwdd.sock"), Exec: newBenchExec(), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve()
	defer s.Close()
	c, err := Dial(context.Background(), s.Path())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := &Request{Lines: []string{"get net.fibs"}, JSON: true}
	b.ReportAllocs()
	for b.Loop() {
		r, err := c.Do(context.Background(), req)
		if err != nil || !r.OK {
			b.Fatal(r, err)
		}
	}
}
