package ctlsock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// ErrNotRunning is wrapped by Dial when nobody listens on the socket.
var ErrNotRunning = errors.New("fwdd is not running")

// ErrNotSent is wrapped by Do when the request could not be sent at all:
// the daemon cannot have executed it, so it is safe to retry on a new
// connection. Other transport errors leave that unknown.
var ErrNotSent = errors.New("request not sent")

// MaxResponse bounds one response the client accepts (show routes of a
// full table is large, but not this large).
const MaxResponse = 1 << 30

// Client is one connection to the daemon. It is not safe for concurrent use.
type Client struct {
	path string
	conn net.Conn
	br   *bufio.Reader
}

// Dial connects to the daemon at path (DefaultPath if ""). Its errors say
// what to do: the daemon is not running (wraps ErrNotRunning), or the
// socket is root's (wraps os.ErrPermission).
func Dial(ctx context.Context, path string) (*Client, error) {
	if path == "" {
		path = DefaultPath
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
			return nil, &hintError{fmt.Sprintf("cannot reach fwdd at %s: is fwdd running? (start it with: fwdd -c FILE)", path), ErrNotRunning}
		case errors.Is(err, os.ErrPermission):
			return nil, &hintError{fmt.Sprintf("cannot connect to fwdd at %s: permission denied; the control socket is root's: run as root (e.g. with sudo)", path), os.ErrPermission}
		}
		return nil, fmt.Errorf("cannot reach fwdd at %s: %w", path, err)
	}
	return &Client{path: path, conn: c, br: bufio.NewReaderSize(c, 64<<10)}, nil
}

// Do sends one request and waits for its response. A refused or failed
// batch is a Response with OK false, not an error; the error is for the
// transport. ctx cancels the wait by closing the connection.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, werr := c.conn.Write(append(b, '\n')); werr != nil {
		// The daemon may have refused us and hung up before reading: its
		// answer is still there to read.
		if line, err := readRequest(c.br, MaxResponse); err == nil {
			var resp Response
			if json.Unmarshal(line, &resp) == nil {
				return c.evicted(&resp)
			}
		}
		return nil, fmt.Errorf("%w: %w", c.transport(ctx, werr), ErrNotSent)
	}
	line, err := readRequest(c.br, MaxResponse)
	if err != nil {
		return nil, c.transport(ctx, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("fwdd at %s sent a malformed response: %w", c.path, err)
	}
	return c.evicted(&resp)
}

// ErrEvicted is wrapped (with ErrNotSent) by Do when the daemon had closed
// this idle connection for another client: reconnect and send again.
var ErrEvicted = errors.New("idle connection closed by fwdd for another client")

func (c *Client) evicted(resp *Response) (*Response, error) {
	if resp.Evicted {
		return nil, fmt.Errorf("fwdd at %s: %w: %w", c.path, ErrEvicted, ErrNotSent)
	}
	return resp, nil
}

func (c *Client) transport(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("fwdd at %s closed the connection (did it stop?)", c.path)
	}
	return fmt.Errorf("talking to fwdd at %s: %w", c.path, err)
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// NewClient wraps an established connection (for tests and for callers
// that connect by other means); path is only used in messages.
func NewClient(conn net.Conn, path string) *Client {
	return &Client{path: path, conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
}

// hintError is a complete operator message that still matches a sentinel
// with errors.Is.
type hintError struct {
	msg string
	err error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.err }
