package ctl

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
)

// Route files (route load FILE) are read before a batch reaches the
// control goroutine, by the goroutine that submitted it (a control
// connection, the signal handler's reload, Start), never by the control
// goroutine itself: a file can be slow (a network file system) or never end
// (a FIFO, a device), and nothing a file does may stop the control
// goroutine from answering ARP/ND, other clients or SIGTERM.
//
// Reading is bounded three ways: only regular files are read (a FIFO, a
// device, a directory or a socket is refused at once: it is opened with
// O_NONBLOCK, so even opening a FIFO with no writer cannot block); one file
// must be read within fileLoader.timeout; and the read stops when the
// caller gives up (its context, or the daemon stopping).

// DefaultRouteFileTimeout bounds reading one route file. A full Internet
// table (a million prefixes) reads in about a second from a local disk.
const DefaultRouteFileTimeout = 30 * time.Second

// errNotRegular is wrapped by the refusal of a route file that is not a
// regular file.
var errNotRegular = errors.New("not a regular file")

// fileLoader reads route files. open is replaceable by tests (a reader
// that is slow or never ends).
type fileLoader struct {
	timeout time.Duration
	open    func(name string) (io.ReadCloser, error)
}

func defaultLoader() fileLoader {
	return fileLoader{timeout: DefaultRouteFileTimeout, open: openRouteFile}
}

// openRouteFile opens name for reading if it is a regular file.
func openRouteFile(name string) (io.ReadCloser, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w (%s); give a file of prefixes, one per line", errNotRegular, fileKind(fi.Mode()))
	}
	return f, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a plain file"
}

// loadedFiles are the route files of one batch, read in advance; the
// control goroutine only looks them up.
type loadedFiles map[string]loadedFile

type loadedFile struct {
	prefixes []netip.Prefix
	err      error
}

// read returns the prefixes of file (as the command names it), or its
// reading error.
func (lf loadedFiles) read(name string) ([]netip.Prefix, error) {
	f, ok := lf[name]
	if !ok {
		return nil, fmt.Errorf("route load %s: internal error: the file was not read before the batch (please report it)", name)
	}
	return f.prefixes, f.err
}

// loadAll reads the route files cmds name, each at most once. Errors are
// kept per file and reported when the batch is validated, so they name the
// command; only ctx ending (the caller gone, the daemon stopping) fails the
// whole call.
func (l fileLoader) loadAll(ctx context.Context, dir string, cmds []cmdlang.Command) (loadedFiles, error) {
	var out loadedFiles
	for _, c := range cmds {
		rl, ok := c.(*cmdlang.RouteLoad)
		if !ok {
			continue
		}
		if _, done := out[rl.File]; done {
			continue
		}
		if out == nil {
			out = loadedFiles{}
		}
		ps, err := l.read(ctx, dir, rl.File)
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		out[rl.File] = loadedFile{ps, err}
	}
	return out, nil
}

// read reads one route file (relative names against dir) within l.timeout.
func (l fileLoader) read(ctx context.Context, dir, name string) ([]netip.Prefix, error) {
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	type result struct {
		ps  []netip.Prefix
		err error
	}
	ch := make(chan result, 1)
	// The reading goroutine ends by itself: a read blocked in the kernel
	// returns eventually (regular files only), and between reads it sees
	// ctx end and stops.
	go func() {
		f, err := l.open(name)
		if err != nil {
			ch <- result{nil, fmt.Errorf("route load %s: %w", name, err)}
			return
		}
		defer f.Close()
		ps, err := parsePrefixes(ctx, name, f)
		ch <- result{ps, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil && errors.Is(r.err, context.DeadlineExceeded) {
			return nil, l.tooSlow(name)
		}
		return r.ps, r.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, l.tooSlow(name)
		}
		return nil, ctx.Err()
	}
}

func (l fileLoader) tooSlow(name string) error {
	return fmt.Errorf("route load %s: not read within %v (a slow or never-ending file); copy it to a local disk and load that", name, l.timeout)
}

// ctxReader stops a read loop once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// parsePrefixes parses a route file: one prefix per line, '#' comments,
// blank lines ignored; CRLF tolerated; a bare address is a host route.
// Errors quote at most the offending word, truncated (the file may be
// anything: route load /etc/shadow must not copy it into an error or a
// log line).
func parsePrefixes(ctx context.Context, name string, rd io.Reader) ([]netip.Prefix, error) {
	r := io.Reader(ctxReader{ctx, rd})
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("route load %s: %w", name, err)
		}
		defer zr.Close()
		r = ctxReader{ctx, zr}
	}
	var out []netip.Prefix
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(t, '#'); i >= 0 {
			t = strings.TrimSpace(t[:i])
		}
		if t == "" {
			continue
		}
		if f := strings.Fields(t); len(f) > 0 {
			t = f[0]
		}
		p, err := netip.ParsePrefix(t)
		if err != nil {
			if a, err2 := netip.ParseAddr(t); err2 == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				return nil, fmt.Errorf("route load %s:%d: %q is not a prefix", name, line, cmdlang.Truncate(t))
			}
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("route load %s:%d: %s has host bits set (did you mean %s?)", name, line, p, p.Masked())
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("route load %s:%d: line longer than %d bytes: not a file of prefixes", name, line+1, bufio.MaxScanTokenSize)
		}
		return nil, fmt.Errorf("route load %s: %w", name, err)
	}
	return out, nil
}
