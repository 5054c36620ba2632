package ctlsock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
)

// Defaults for Config.
const (
	DefaultMaxRequest     = 4 << 20 // bytes in one request line
	DefaultMaxClients     = 64
	DefaultRequestTimeout = 10 * time.Second // first byte to newline of one request
	DefaultWriteTimeout   = 30 * time.Second // one answer to a client that does not read
	maxPathLen            = 107              // sizeof(sun_path) - 1
	// closeWriteGrace is how long Close lets a handler write an answer:
	// the daemon exits within 2 s of SIGTERM whatever its clients do.
	closeWriteGrace = 300 * time.Millisecond
	closeWait       = 600 * time.Millisecond
	// evictWait is how long a new client waits for an evicted one's slot.
	evictWait = 2 * time.Second
)

// Config configures a Server.
type Config struct {
	// Path of the socket; DefaultPath if "".
	Path string
	// Exec applies the parsed batches. Required.
	Exec cmdlang.Executor
	// MaxRequest bounds one request line in bytes (DefaultMaxRequest if 0).
	MaxRequest int
	// MaxClients bounds concurrent connections (DefaultMaxClients if 0).
	// When they are all taken, a new client is still served: the
	// connection idle for longest is closed for it (its client, if it
	// sends again, gets Response.Evicted and reconnects). Only when no
	// connection is idle is the new one refused.
	MaxClients int
	// RequestTimeout bounds the time from a request's first byte to its
	// newline (DefaultRequestTimeout if 0): a request that arrives half-way
	// stalls only its own connection, which is then closed.
	RequestTimeout time.Duration
	// WriteTimeout bounds writing one answer (DefaultWriteTimeout if 0).
	WriteTimeout time.Duration
	// Authorize decides whether a peer may talk to the daemon; a non-nil
	// error is sent to the peer and the connection closed. nil means
	// RootOrSelf.
	Authorize func(Cred) error
	// Logger receives connection-level events; slog.Default() if nil.
	Logger *slog.Logger
}

// ErrNotRoot is wrapped by RootOrSelf's refusals.
var ErrNotRoot = errors.New("permission denied")

// RootOrSelf admits root and the daemon's own effective uid.
func RootOrSelf(c Cred) error {
	if c.UID == 0 || int(c.UID) == os.Geteuid() {
		return nil
	}
	return fmt.Errorf("fwdd: %w: uid %d (pid %d) may not control fwdd; run fwdctl as root (e.g. with sudo)", ErrNotRoot, c.UID, c.PID)
}

// Server is a running control socket.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ln     *net.UnixListener
	info   os.FileInfo // the socket file as created, to remove only our own
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}

	mu     sync.Mutex
	conns  map[*net.UnixConn]*connState
	closed bool
	wg     sync.WaitGroup // connection handlers
	done   chan struct{}  // closed when Serve returns
	served bool
}

// Listen creates the socket at cfg.Path (mode 0600, owned by root when
// running as root). A stale socket file is replaced; a socket on which a
// daemon answers, or a file that is not a socket, is an error. Call Serve
// to accept connections and Close to stop.
func Listen(cfg Config) (*Server, error) {
	if cfg.Exec == nil {
		return nil, errors.New("ctlsock: Config.Exec is nil")
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if cfg.MaxRequest <= 0 {
		cfg.MaxRequest = DefaultMaxRequest
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Authorize == nil {
		cfg.Authorize = RootOrSelf
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	path := cfg.Path
	if len(path) > maxPathLen {
		return nil, fmt.Errorf("control socket %s: path is %d bytes, at most %d fit in a Unix socket address; choose a shorter one with -s", path, len(path), maxPathLen)
	}
	if err := clearStale(path, log); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("control socket %s: the directory does not exist (create it, or choose another path with -s): %w", path, err)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// We remove the file ourselves in Close, and only if it is still ours.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Server, error) {
		ln.Close()
		os.Remove(path)
		return nil, err
	}
	// Between bind and chmod the file has the umask's mode; SO_PEERCRED
	// guards that window, since every connection is checked anyway.
	if err := os.Chmod(path, 0o600); err != nil {
		return fail(fmt.Errorf("control socket %s: %w", path, err))
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(path, 0, 0); err != nil {
			return fail(fmt.Errorf("control socket %s: %w", path, err))
		}
	}
	info, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("control socket %s: %w", path, err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, log: log, ln: ln, info: info, ctx: ctx, cancel: cancel,
		sem:   make(chan struct{}, cfg.MaxClients),
		conns: map[*net.UnixConn]*connState{},
		done:  make(chan struct{}),
	}, nil
}

// clearStale removes a socket file nobody listens on, and refuses a live
// one or a file that is not a socket.
func clearStale(path string, log *slog.Logger) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket %s: the file exists and is not a socket; remove it or choose another path with -s", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another fwdd is already running there (stop it first, or give this one another socket with -s)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket %s: cannot tell whether another fwdd uses it: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket %s: removing the stale socket: %w", path, err)
	}
	log.Info("removed stale control socket", "path", path)
	return nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.cfg.Path }

// Serve accepts connections until Close. It returns nil after Close, or
// the error that stopped accepting.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.served {
		s.mu.Unlock()
		return errors.New("ctlsock: Serve called twice")
	}
	s.served = true
	s.mu.Unlock()
	defer close(s.done)
	var delay time.Duration
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors: back off rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("control socket accept", "err", err, "retry_in", delay)
				select {
				case <-time.After(delay):
				case <-s.ctx.Done():
					return nil
				}
				continue
			}
			return fmt.Errorf("control socket %s: accept: %w", s.cfg.Path, err)
		}
		delay = 0
		if !s.track(c) {
			c.Close()
			return nil
		}
		go s.handle(c)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// connState is what the server knows of one connection, under Server.mu.
type connState struct {
	// admitted: the connection holds a slot of Config.MaxClients.
	admitted bool
	// idle: no request under way (admitted, or waiting for the first
	// byte of a request); idleSince is when it became so. Only idle
	// connections are evicted, the one idle longest first.
	idle      bool
	idleSince time.Time
	// evicted: closed for a new client; the handler stops.
	evicted bool
}

// track registers c, or reports false once the server is closing.
func (s *Server) track(c *net.UnixConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = &connState{}
	s.wg.Add(1)
	return true
}

// evictedResponse tells an idle client its connection was closed for
// another one; its request (if it sent one since) was not executed.
var evictedResponse = &Response{Evicted: true, Error: "fwdd: this idle control connection was closed to serve another client; reconnect (the request was not executed)"}

// admit takes a client slot for c. When every slot is taken it evicts the
// connection idle for longest and takes its slot; if none is idle, it
// waits for one to become idle or free, up to evictWait. It reports false
// when none did (every connection stayed busy) or the server is closing.
func (s *Server) admit(c *net.UnixConn) bool {
	deadline := time.NewTimer(evictWait)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case s.sem <- struct{}{}:
			s.setAdmitted(c)
			return true
		default:
		}
		if s.evictIdle(c) {
			select {
			case s.sem <- struct{}{}:
				s.setAdmitted(c)
				return true
			case <-deadline.C:
				return false
			case <-s.ctx.Done():
				return false
			}
		}
		select {
		case s.sem <- struct{}{}:
			s.setAdmitted(c)
			return true
		case <-poll.C:
		case <-deadline.C:
			return false
		case <-s.ctx.Done():
			return false
		}
	}
}

// evictIdle closes the admitted connection idle for longest (not c) for a
// new client, telling it so; false if none is idle.
func (s *Server) evictIdle(c *net.UnixConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var victim *net.UnixConn
	var oldest time.Time
	for vc, st := range s.conns {
		if vc != c && st.admitted && st.idle && !st.evicted && (victim == nil || st.idleSince.Before(oldest)) {
			victim, oldest = vc, st.idleSince
		}
	}
	if victim == nil {
		return false
	}
	s.conns[victim].evicted = true
	// The victim is idle: its socket buffer is empty, so this write does
	// not block; then its handler's read ends.
	victim.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	writeResponse(victim, evictedResponse)
	victim.CloseRead()
	s.log.Info("control connection evicted for a new client", "idle", time.Since(oldest).Round(time.Millisecond), "max", s.cfg.MaxClients)
	return true
}

// setAdmitted gives c its slot. c is idle from then on (it has no request
// under way), so that idle times follow admission order even when its
// handler is scheduled late: a client admitted earlier is evicted first.
func (s *Server) setAdmitted(c *net.UnixConn) {
	s.mu.Lock()
	st := s.conns[c]
	st.admitted, st.idle, st.idleSince = true, true, time.Now()
	s.mu.Unlock()
}

// setIdle marks c idle (waiting for a request) or busy. Going busy fails
// when c was evicted meanwhile: the request must not be executed.
func (s *Server) setIdle(c *net.UnixConn, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.conns[c]
	if st.evicted {
		return false
	}
	if idle && !st.idle {
		st.idleSince = time.Now() // still idle since admission: keep that time
	}
	st.idle = idle
	return true
}

func (s *Server) untrack(c *net.UnixConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
	s.wg.Done()
}

// Close stops the server: no new connections; requests being executed
// finish and are answered; idle connections are closed; the socket file is
// removed if it is still the one Listen created. It waits for the
// connection handlers, at most about 0.6 s (then it closes their
// connections and leaves them to end alone), and is safe to call more than
// once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		// Unblock readers; a handler busy executing still writes its
		// answer, but a client that does not read it cannot hold us up.
		c.CloseRead()
		c.SetWriteDeadline(time.Now().Add(closeWriteGrace))
	}
	served := s.served
	s.mu.Unlock()
	s.cancel()
	if served {
		<-s.done
	}
	// Handlers still busy after closeWait (a long batch, an answer being
	// encoded) lose their connections; they end on their own, and the
	// daemon stops without them (its control goroutine finishes the batch
	// it has taken).
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(closeWait):
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.log.Warn("control socket closed with requests still running", "connections", n)
	}
	if fi, serr := os.Lstat(s.cfg.Path); serr == nil && os.SameFile(fi, s.info) {
		if rerr := os.Remove(s.cfg.Path); rerr != nil && err == nil {
			err = rerr
		}
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

var errTooLarge = errors.New("request too large")

// readRequest reads one newline-terminated line of at most max bytes.
// A line cut short by EOF is io.ErrUnexpectedEOF (discarded by the caller).
func readRequest(br *bufio.Reader, max int) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > max+1 { // +1: the newline
			return nil, errTooLarge
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

func (s *Server) handle(c *net.UnixConn) {
	defer s.untrack(c)
	log := s.log
	cred, err := peerCred(c)
	if err != nil {
		log.Warn("control connection refused: cannot read peer credentials", "err", err)
		writeResponse(c, &Response{Error: "fwdd: cannot read your credentials; connection refused"})
		return
	}
	log = log.With("pid", cred.PID, "uid", cred.UID)
	if err := s.cfg.Authorize(cred); err != nil {
		log.Warn("control connection refused", "err", err)
		writeResponse(c, &Response{Error: err.Error()})
		return
	}
	if !s.admit(c) {
		log.Warn("control connection refused: too many clients, none idle", "max", s.cfg.MaxClients)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		writeResponse(c, &Response{Error: fmt.Sprintf("fwdd: too many control connections (%d), all busy; try again later", s.cfg.MaxClients)})
		return
	}
	defer func() { <-s.sem }()
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		// Idle until a request's first byte: no deadline (idle
		// connections are evicted when a new client needs the slot).
		if !s.setIdle(c, true) {
			return
		}
		_, err := br.Peek(1)
		if !s.setIdle(c, false) {
			return
		}
		var line []byte
		if err == nil {
			// From the first byte on, the request has RequestTimeout to
			// arrive whole.
			c.SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout))
			line, err = readRequest(br, s.cfg.MaxRequest)
			c.SetReadDeadline(time.Time{})
		}
		if err != nil {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				log.Warn("control request not completed in time; connection closed", "timeout", s.cfg.RequestTimeout)
				writeResponse(c, &Response{Error: fmt.Sprintf("fwdd: request not completed within %v (a request is one line ending in a newline); connection closed", s.cfg.RequestTimeout)})
			case errors.Is(err, errTooLarge):
				log.Warn("control request too large", "max", s.cfg.MaxRequest)
				writeResponse(c, &Response{Error: fmt.Sprintf("fwdd: request too large (at most %d bytes); split the batch or use route load FILE for many routes", s.cfg.MaxRequest)})
			case errors.Is(err, io.ErrUnexpectedEOF):
				log.Debug("control client left mid-request; request discarded")
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			default:
				log.Debug("control connection read", "err", err)
			}
			return
		}
		var req Request
		if err := json.Unmarshal(line, &req); err != nil {
			writeResponse(c, &Response{Error: fmt.Sprintf("fwdd: malformed request (%v); use fwdctl", err)})
			return
		}
		if s.stream(c, br, &req, log) {
			return // a stream owns the rest of the connection
		}
		resp := handle(s.ctx, s.cfg.Exec, &req, log, true)
		if !resp.OK {
			log.Info("control request failed", "err", resp.Error)
		}
		deadline := func() {
			s.mu.Lock() // Close shortens the deadline under mu: not undone here
			if s.closed {
				c.SetWriteDeadline(time.Now().Add(closeWriteGrace))
			} else {
				c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			}
			s.mu.Unlock()
		}
		deadline()
		if resp.paged != nil {
			// A paged answer is written as it is made, each page with a
			// fresh write deadline.
			if err := writePaged(s.ctx, c, resp.paged, deadline); err != nil {
				log.Debug("control client left during a paged answer", "err", err)
				return
			}
			continue
		}
		if err := writeResponse(c, resp); err != nil {
			log.Debug("control client left before its answer", "err", err)
			return
		}
	}
}

// writeResponse writes r as one JSON line, encoded straight into a
// buffered writer (no second copy of a large answer).
func writeResponse(w io.Writer, r *Response) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := json.NewEncoder(bw).Encode(r); err != nil {
		var ue *json.UnsupportedValueError
		var ut *json.UnsupportedTypeError
		var me *json.MarshalerError
		if !errors.As(err, &ue) && !errors.As(err, &ut) && !errors.As(err, &me) {
			return err
		}
		// Nothing was written yet: Encode marshals fully first.
		bw.Reset(w)
		b, _ := json.Marshal(&Response{Error: "fwdd: internal error: cannot encode the response: " + err.Error()})
		bw.Write(append(b, '\n'))
	}
	return bw.Flush()
}

// Do parses and executes one request, exactly as a connection would. The
// daemon may use it for its own batches (the startup file goes through
// the same path).
func (s *Server) Do(ctx context.Context, req *Request) *Response {
	return handle(ctx, s.cfg.Exec, req, s.log, false)
}

// Handle parses req.Lines as one batch and runs it on ex: parse errors
// and execution errors become Response.Error; nothing is executed when a
// line is rejected.
func Handle(ctx context.Context, ex cmdlang.Executor, req *Request) *Response {
	return handle(ctx, ex, req, slog.Default(), false)
}

// handle runs req. With lazy, results given in pages (Result.Pages) are
// left for writePaged (Response.paged); without, they are gathered here.
func handle(ctx context.Context, ex cmdlang.Executor, req *Request, log *slog.Logger, lazy bool) (resp *Response) {
	// One command with no source is a live command: its errors need no
	// line number.
	live := len(req.Lines) == 1 && req.Source == ""
	cmds, err := cmdlang.ParseLines(req.Lines, cmdlang.Options{File: req.Source, Dir: req.Dir, Unnumbered: live})
	if err != nil {
		return &Response{Error: err.Error()}
	}
	if len(cmds) == 0 {
		return &Response{OK: true}
	}
	defer func() {
		// The executor is the daemon's; a bug there must not take the
		// control socket down with it.
		if p := recover(); p != nil {
			log.Error("executor panic", "panic", p, "stack", string(debug.Stack()))
			resp = &Response{Error: fmt.Sprintf("fwdd: internal error executing the batch: %v (please report it)", p)}
		}
	}()
	var results []cmdlang.Result
	if pe, ok := ex.(cmdlang.PagedExecutor); ok && lazy {
		results, err = pe.ExecPaged(ctx, cmds)
	} else {
		results, err = ex.Exec(ctx, cmds)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return &Response{Error: "fwdd: shutting down; the batch was not applied"}
		}
		return &Response{Error: err.Error()}
	}
	if slices.ContainsFunc(results, func(r cmdlang.Result) bool { return r.Pages != nil }) {
		pa := &pagedAnswer{results: results, cmds: cmds, json: req.JSON}
		if lazy {
			return &Response{OK: true, paged: pa}
		}
		return pa.gather(ctx)
	}
	resp = &Response{OK: true}
	var text strings.Builder
	for i, r := range results {
		text.WriteString(r.Text)
		if req.JSON {
			var raw json.RawMessage = []byte("null")
			if r.Data != nil {
				b, err := json.Marshal(r.Data)
				if err != nil {
					return &Response{Error: fmt.Sprintf("fwdd: internal error: the result of %s cannot be encoded as JSON: %v", cmds[i].Verb(), err)}
				}
				raw = b
			}
			resp.Data = append(resp.Data, raw)
		}
	}
	resp.Text = text.String()
	return resp
}
