package ctlsock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
)

// Streams. A request whose only command streams (cmdlang.IsStream:
// monitor, capture) is answered by any number of frames, Responses with
// More set, then one last Response without More (OK and a summary in Text,
// or an error). The stream owns the rest of the connection: the server
// reads nothing more from it except to notice the end of the client's
// side, which stops the stream (fwdctl half-closes its side on Ctrl-C and
// then reads the summary; a client that dies closes both). The connection
// is closed after the last frame.

// StreamExecutor runs the commands that stream. An Executor that also
// implements it gets them; other executors answer them with an error.
type StreamExecutor interface {
	// Stream runs c, sending frames on out until ctx is done (the client
	// stopped or left, or the server is closing) or c is complete, and
	// returns the final answer's text and data, or an error.
	Stream(ctx context.Context, c cmdlang.Command, out *Stream) (cmdlang.Result, error)
}

// StreamWriteTimeout bounds one frame's write: a client that reads
// nothing for this long is dropped (what piles up meanwhile is the
// streamer's to drop and count).
const StreamWriteTimeout = 30 * time.Second

// Stream is the sending side of a streaming command.
type Stream struct {
	conn net.Conn
	JSON bool // the client asked for JSON data
	mu   sync.Mutex
	err  error
}

// Send writes one frame: text, data (marshalled when the client asked for
// JSON) and binary bytes, any of them empty. It blocks while the client
// does not read, at most StreamWriteTimeout; after an error every Send
// fails.
func (s *Stream) Send(text string, data any, bin []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	r := &Response{OK: true, More: true, Text: text, Bin: bin}
	if s.JSON && data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		r.Data = []json.RawMessage{b}
	}
	s.conn.SetWriteDeadline(time.Now().Add(StreamWriteTimeout))
	if err := writeResponse(s.conn, r); err != nil {
		s.err = fmt.Errorf("client stopped reading: %w", err)
	}
	return s.err
}

// stream runs req as a stream if it is one; it reports whether it did (the
// connection is then finished).
func (s *Server) stream(c *net.UnixConn, br *bufio.Reader, req *Request, log *slog.Logger) bool {
	if !req.Stream {
		return false
	}
	if len(req.Lines) != 1 {
		writeResponse(c, &Response{Error: "fwdd: a streaming request has exactly one line (monitor or capture)"})
		return true
	}
	cmds, err := cmdlang.ParseLines(req.Lines, cmdlang.Options{File: req.Source, Dir: req.Dir, Unnumbered: req.Source == ""})
	if err != nil {
		writeResponse(c, &Response{Error: err.Error()})
		return true
	}
	if len(cmds) != 1 || !cmdlang.IsStream(cmds[0]) {
		writeResponse(c, &Response{Error: "fwdd: only monitor and capture stream"})
		return true
	}
	se, ok := s.cfg.Exec.(StreamExecutor)
	if !ok {
		writeResponse(c, &Response{Error: fmt.Sprintf("fwdd: %s is not available here", cmds[0].Verb())})
		return true
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() {
		// Anything the client sends now is ignored; the end of its side
		// stops the stream.
		for {
			if _, err := br.ReadByte(); err != nil {
				cancel()
				return
			}
		}
	}()
	out := &Stream{conn: c, JSON: req.JSON}
	res, err := func() (res cmdlang.Result, err error) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("stream panic", "panic", p, "stack", string(debug.Stack()))
				err = fmt.Errorf("fwdd: internal error in %s: %v (please report it)", cmds[0].Verb(), p)
			}
		}()
		return se.Stream(ctx, cmds[0], out)
	}()
	final := &Response{OK: err == nil, Text: res.Text}
	if err != nil {
		final.Error = err.Error()
	} else if req.JSON && res.Data != nil {
		if b, jerr := json.Marshal(res.Data); jerr == nil {
			final.Data = []json.RawMessage{b}
		}
	}
	out.mu.Lock()
	c.SetWriteDeadline(time.Now().Add(closeWriteGrace))
	werr := writeResponse(c, final)
	out.mu.Unlock()
	if werr != nil {
		log.Debug("stream client left before the summary", "err", werr)
	}
	return true
}

// Stream sends a streaming request and calls frame for every frame until
// the last, which it returns (a refused stream is a Response with OK
// false). When ctx is done it half-closes the connection, which asks the
// daemon to stop, and still waits (a few seconds at most) for the last
// frame and its summary. An error from frame stops the stream the same
// way and is returned.
func (c *Client) Stream(ctx context.Context, req *Request, frame func(*Response) error) (*Response, error) {
	r := *req
	r.Stream = true
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, err
	}
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("%w: %w", c.transport(context.Background(), err), ErrNotSent)
	}
	var once sync.Once
	var frameErr error
	stop := func() {
		once.Do(func() {
			if hc, ok := c.conn.(interface{ CloseWrite() error }); ok {
				hc.CloseWrite()
			}
			c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		})
	}
	defer context.AfterFunc(ctx, stop)()
	for {
		line, err := readRequest(c.br, MaxResponse)
		if err != nil {
			if frameErr != nil {
				return nil, frameErr
			}
			var ne net.Error
			if ctx.Err() != nil && (errors.As(err, &ne) && ne.Timeout()) {
				return nil, fmt.Errorf("fwdd at %s sent no summary after the stop", c.path)
			}
			return nil, c.transport(context.Background(), err)
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("fwdd at %s sent a malformed frame: %w", c.path, err)
		}
		if !resp.More {
			return &resp, frameErr
		}
		if frameErr == nil {
			if frameErr = frame(&resp); frameErr != nil {
				stop()
			}
		}
	}
}
