package ctl

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/fwd"
	_ "github.com/fwdd/fwdd/pmd/drivers" // every driver, selectable by name
	"github.com/fwdd/fwdd/pmd/ringpmd"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSocket is the control socket's default path.
const DefaultSocket = "/run/fwdd.sock"

// Options configure a daemon.
type Options struct {
	// ConfigFile is the startup file (command language). Empty: start
	// with nothing configured.
	ConfigFile string
	// Socket is the control socket path; empty means no socket.
	Socket string
	// Engine sizes the dataplane.
	Engine fwd.Config
	// NetNS, if set, is the namespace path where ports find their devices.
	NetNS string
	Log   *slog.Logger
}

// Daemon is a running fwdd: the dataplane engine, the control goroutine
// that owns every change, and the control socket.
type Daemon struct {
	opts Options
	log  *slog.Logger
	st   *stack
	srv  *ctlsock.Server
	reg  *prometheus.Registry
	coll prometheus.Collector

	reqs chan request
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type request struct {
	// fn, if set, runs on the control goroutine instead of a batch.
	fn     func(*stack)
	ctx    context.Context
	cmds   []cmdlang.Command
	reload bool
	// check validates the batch and reports the devices the stack would
	// use after it, changing nothing (vnet hosts check every vnet's part
	// of a batch before applying any).
	check bool
	// open, if set, opens route load files (a tenant's restricted view).
	open  func(string) (io.ReadCloser, error)
	reply chan response
}

type response struct {
	results []cmdlang.Result
	err     error
	devices []string
}

// stack is the control goroutine's state: the model and the live objects.
// Only the control goroutine touches it after Start.
type stack struct {
	opts  Options
	log   *slog.Logger
	eng   *fwd.Engine
	model *model
	live  map[string]*livePort
	fibs  *fib.FIBs
	rules *fwd.Rules

	nhs       map[nhKey]uint32
	installed map[routeKey]uint32
	connected map[connKey]uint32

	pendingInstalled map[routeKey]uint32
	pendingGone      []routeKey
	pendingConnected map[connKey]uint32

	nb *neighbours

	// hub pairs "ring" ports given peer=NAME.
	hub *ringpmd.Hub

	// ruleBases holds each rule slot's counter value when its rule was
	// made: slots are reused after a rule is deleted, counters are not
	// reset (workers own them).
	ruleBases map[uint16]uint64
}

// CheckFile parses and validates a configuration file without touching
// any device: fwdd -check.
func CheckFile(path string) error {
	cmds, err := cmdlang.ParseFile(path)
	if err != nil {
		return err
	}
	b := newModel().begin()
	dir := filepath.Dir(path)
	for _, c := range cmds {
		if err := b.apply(c, func(f string) ([]netip.Prefix, error) { return readPrefixes(dir, f) }); err != nil {
			return &cmdlang.ExecError{Cmd: c, Err: err}
		}
	}
	return b.finish()
}

// Start builds the dataplane, applies the configuration file (validated
// completely first: a bad file starts nothing), starts the workers, the
// control goroutine and the control socket. A failed start undoes what it
// did.
func Start(opts Options) (*Daemon, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	var cmds []cmdlang.Command
	if opts.ConfigFile != "" {
		if err := CheckFile(opts.ConfigFile); err != nil {
			return nil, err
		}
		var err error
		if cmds, err = cmdlang.ParseFile(opts.ConfigFile); err != nil {
			return nil, err
		}
	}
	eng, err := fwd.New(opts.Engine, opts.Log)
	if err != nil {
		return nil, err
	}
	st := &stack{opts: opts, log: opts.Log, eng: eng, model: newModel(), live: map[string]*livePort{}, ruleBases: map[uint16]uint64{}, hub: ringpmd.NewHub()}
	st.nb = newNeighbours(st)
	// An empty reconcile sets up the FIBs and the first snapshot.
	b := st.model.begin()
	if err := st.reconcile(st.model, b, false); err != nil {
		eng.Close()
		return nil, err
	}
	st.model = b.commit()
	d := &Daemon{opts: opts, log: opts.Log, st: st, reqs: make(chan request), stop: make(chan struct{}), done: make(chan struct{})}
	eng.Start()
	go d.loop()
	if len(cmds) > 0 {
		if _, err := d.exec(context.Background(), cmds, false); err != nil {
			d.Shutdown()
			return nil, err
		}
		opts.Log.Info("configuration applied", "file", opts.ConfigFile, "commands", len(cmds))
	}
	d.reg = newMetrics(d)
	if opts.Socket != "" {
		srv, err := ctlsock.Listen(ctlsock.Config{Path: opts.Socket, Exec: d, Logger: opts.Log})
		if err != nil {
			d.Shutdown()
			return nil, err
		}
		d.srv = srv
		go func() {
			if err := srv.Serve(); err != nil {
				opts.Log.Error("control socket", "err", err)
			}
		}()
		opts.Log.Info("control socket ready", "path", opts.Socket)
	}
	return d, nil
}

// Exec applies a batch of commands all or nothing (cmdlang.Executor). It is
// safe for concurrent use: batches are serialised through the control
// goroutine.
func (d *Daemon) Exec(ctx context.Context, cmds []cmdlang.Command) ([]cmdlang.Result, error) {
	return d.exec(ctx, cmds, false)
}

func (d *Daemon) exec(ctx context.Context, cmds []cmdlang.Command, reload bool) ([]cmdlang.Result, error) {
	r := request{ctx: ctx, cmds: cmds, reload: reload, reply: make(chan response, 1)}
	select {
	case d.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-d.stop:
		return nil, errStopped
	}
	// Once taken, a batch completes (or is undone) whatever ctx does.
	resp := <-r.reply
	return resp.results, resp.err
}

// do runs fn on the control goroutine and waits for it.
func (d *Daemon) do(fn func(*stack)) error {
	r := request{fn: fn, reply: make(chan response, 1)}
	select {
	case d.reqs <- r:
	case <-d.stop:
		return errStopped
	}
	<-r.reply
	return nil
}

// stateSnapshot is what the metrics collector reads, taken on the control
// goroutine.
type stateSnapshot struct {
	ports []show.Port
	rules []show.Rule
	neigh map[[2]string]int
	fibs  []show.FIB
}

func (d *Daemon) snapshot() (*stateSnapshot, error) {
	var snap stateSnapshot
	err := d.do(func(s *stack) {
		snap.ports = s.ports()
		snap.rules = s.ruleRows()
		snap.neigh = s.nb.countByState()
		snap.fibs = s.fibRows()
	})
	return &snap, err
}

// Reload re-reads the configuration file and applies the difference
// atomically: on any error the running configuration stays as it was.
func (d *Daemon) Reload() error {
	if d.opts.ConfigFile == "" {
		return errors.New("no configuration file to reload (start fwdd with -c FILE)")
	}
	if err := CheckFile(d.opts.ConfigFile); err != nil {
		return err
	}
	cmds, err := cmdlang.ParseFile(d.opts.ConfigFile)
	if err != nil {
		return err
	}
	_, err = d.exec(context.Background(), cmds, true)
	return err
}

// Metrics returns the Prometheus registry with fwdd's collectors.
func (d *Daemon) Metrics() *prometheus.Registry { return d.reg }

// Engine returns the dataplane (for tests and benchmarks).
func (d *Daemon) Engine() *fwd.Engine { return d.st.eng }

// Shutdown stops the socket (removing its file), the control goroutine and
// the workers, flushes the queues, closes the ports (detaching their XDP
// programs) and releases the pools. It is idempotent.
func (d *Daemon) Shutdown() {
	d.once.Do(func() {
		if d.srv != nil {
			_ = d.srv.Close()
		}
		close(d.stop)
		<-d.done
		if err := d.st.eng.Close(); err != nil {
			d.log.Warn("closing ports", "err", err)
		}
	})
}

// loop is the control goroutine.
func (d *Daemon) loop() {
	defer close(d.done)
	wake := d.st.eng.Woken()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-d.reqs:
			if r.fn != nil {
				r.fn(d.st)
				r.reply <- response{}
				continue
			}
			if r.check {
				devs, err := d.st.check(r)
				r.reply <- response{err: err, devices: devs}
				continue
			}
			res, err := d.st.run(r)
			r.reply <- response{results: res, err: err}
		case <-wake:
			d.st.nb.input()
		case now := <-tick.C:
			d.st.nb.input()
			d.st.nb.tick(now)
			d.st.linkCheck()
		case <-d.stop:
			d.st.nb.close()
			return
		}
	}
}

// run applies one batch: validate every command on a copy of the model,
// reconcile the stack with it, commit; then answer the show commands.
func (s *stack) run(r request) ([]cmdlang.Result, error) {
	b, changes, err := s.validate(r)
	if err != nil {
		return nil, err
	}
	if changes || r.reload {
		if err := s.reconcile(s.model, b, !r.reload); err != nil {
			return nil, err
		}
		s.model = b.commit()
	}
	results := make([]cmdlang.Result, len(r.cmds))
	for i, c := range r.cmds {
		if isQuery(c) {
			res, err := s.query(c)
			if err != nil {
				return nil, &cmdlang.ExecError{Cmd: c, Err: err}
			}
			results[i] = res
		}
	}
	return results, nil
}

// validate applies the batch's changes to a copy of the model (nothing
// live changes) and reports whether it has any.
func (s *stack) validate(r request) (*batch, bool, error) {
	base := s.model
	if r.reload {
		base = newModel()
		// A reload starts from nothing but keeps the routes map separate
		// from the running model's.
	}
	b := base.begin()
	dir := "."
	if s.opts.ConfigFile != "" {
		dir = filepath.Dir(s.opts.ConfigFile)
	}
	readFile := func(f string) ([]netip.Prefix, error) { return readPrefixes(dir, f) }
	if r.open != nil {
		readFile = func(f string) ([]netip.Prefix, error) { return readPrefixesWith(r.open, f) }
	}
	changes := false
	for _, c := range r.cmds {
		if isQuery(c) {
			continue
		}
		changes = true
		if err := b.apply(c, readFile); err != nil {
			return nil, false, &cmdlang.ExecError{Cmd: c, Err: err}
		}
	}
	if err := b.finish(); err != nil {
		return nil, false, err
	}
	return b, changes, nil
}

func isQuery(c cmdlang.Command) bool {
	switch c.(type) {
	case *cmdlang.Get, *cmdlang.RouteGet, *cmdlang.ShowPorts, *cmdlang.ShowRoutes, *cmdlang.ShowNeigh,
		*cmdlang.ShowRules, *cmdlang.ShowFIBs, *cmdlang.ShowStats, *cmdlang.ShowSysctl:
		return true
	}
	return false
}

// linkCheck republishes the workers' view when a port's link changed.
func (s *stack) linkCheck() {
	st := s.eng.State()
	for _, lp := range s.live {
		l := lp.port.Link()
		up := lp.model.Up && l.Up && l.Present
		if int(lp.id) < len(st.Ports) && st.Ports[lp.id].Up != up {
			s.log.Info("link changed", "port", lp.model.Name, "up", l.Up, "present", l.Present)
			s.publish()
			return
		}
	}
}

// readPrefixes reads a route file: one prefix per line, '#' comments,
// blank lines ignored; CRLF tolerated.
func readPrefixes(dir, name string) ([]netip.Prefix, error) {
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	return readPrefixesWith(func(n string) (io.ReadCloser, error) { return os.Open(n) }, name)
}

// readPrefixesWith is readPrefixes with the file opened by open.
func readPrefixesWith(open func(string) (io.ReadCloser, error), name string) ([]netip.Prefix, error) {
	f, err := open(name)
	if err != nil {
		return nil, fmt.Errorf("route load: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("route load %s: %w", name, err)
		}
		defer zr.Close()
		r = zr
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
				return nil, fmt.Errorf("route load %s:%d: %q is not a prefix", name, line, t)
			}
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("route load %s:%d: %s has host bits set (did you mean %s?)", name, line, p, p.Masked())
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("route load %s: %w", name, err)
	}
	return out, nil
}
