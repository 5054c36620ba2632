package ctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/ctl/show"
	"github.com/fwdd/fwdd/fib"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/lltable"
	"github.com/fwdd/fwdd/nlmirror"
	"github.com/fwdd/fwdd/pmd"
	_ "github.com/fwdd/fwdd/pmd/drivers" // every driver, selectable by name
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

	// mirror, in tests, adjusts the netlink mirror's configuration.
	mirror func(*nlmirror.Config)
	// MaxAnswer bounds the text of one batch's answers (DefaultMaxAnswer
	// if 0): past it, further show/get commands of the batch are refused.
	// The first one is always answered.
	MaxAnswer int
}

// DefaultMaxAnswer is Options.MaxAnswer's default.
const DefaultMaxAnswer = 32 << 20

func (s *stack) maxAnswer() int {
	if s.opts.MaxAnswer > 0 {
		return s.opts.MaxAnswer
	}
	return DefaultMaxAnswer
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

	// files reads route files for the batches, off the control goroutine.
	files fileLoader

	reqs chan request
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// failed is closed when the control goroutine stopped on a panic that
	// may have left the running stack half-changed (see docs/ctl.md,
	// "Panics"); failErr says which.
	failed  chan struct{}
	failErr error
	// panics counts the panics recovered on the control goroutine.
	panics atomic.Uint64
}

type request struct {
	// fn, if set, runs on the control goroutine instead of a batch.
	fn     func(*stack)
	ctx    context.Context
	cmds   []cmdlang.Command
	files  loadedFiles // route files of cmds, read by the submitter
	reload bool
	// check validates the batch and reports the devices the stack would
	// use after it, changing nothing (a vnet host checks every vnet's part
	// of a batch before applying any).
	check bool
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
	// do runs a function on the control goroutine from another goroutine
	// (the Daemon's do): what paged answers call for each page.
	do func(func(*stack)) error
	// linkWake is signalled (never blocking) by drivers when a port's link
	// or identity changed (pmd.Config.LinkChanged): the control loop then
	// runs linkCheck and the ports' Servicers (a lagg following its
	// members' links) at once instead of at its next 100 ms tick.
	linkWake chan struct{}
	// linkWakes counts the link checks a driver's wake-up ran (tests).
	linkWakes int
	// routePages counts the steps of paged show routes listings and the
	// most rows one step built (tests).
	routePages struct{ steps, maxRows int }
	opts       Options
	log        *slog.Logger
	eng        *fwd.Engine
	model      *model
	live       map[string]*livePort
	fibs       *fib.FIBs
	rules      *fwd.Rules

	nhs       map[nhKey]uint32
	installed map[routeKey]uint32
	connected map[connKey]uint32

	pendingInstalled map[routeKey]uint32
	pendingGone      []routeKey
	pendingConnected map[connKey]uint32

	nb *neighbours

	// obs is the event bus and the trace and capture sessions (obs.go).
	obs *obs

	// phase is what the control goroutine is doing, for the panic policy.
	phase phase
	// panicHook, if set (tests), is called at each phase of a batch.
	panicHook func(phase)

	// lcpm is the netlink mirror's control side (lcpmirror.go); nil while
	// no port has a kernel interface.
	lcpm *lcpMirror

	// ruleBases holds each rule slot's counter value when its rule was
	// made: slots are reused after a rule is deleted, counters are not
	// reset (workers own them).
	ruleBases map[uint16]uint64
}

// CheckFile parses and validates a configuration file without opening any
// device: fwdd -check. Beyond what every batch is checked for (the
// commands, each port's driver and arguments through pmd.Check), it checks
// that the kernel interfaces the ports name exist (pmd.CheckDevices, in
// the current network namespace). Errors name the file and line.
func CheckFile(path string) error { return checkFile(path, "") }

// checkFile is CheckFile with the devices looked up in namespace netns.
func checkFile(path, netns string) error {
	cmds, err := cmdlang.ParseFile(path)
	if err != nil {
		return err
	}
	b := newModel().begin()
	files, err := defaultLoader().loadAll(context.Background(), filepath.Dir(path), cmds)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if err := b.apply(c, files.read); err != nil {
			return &cmdlang.ExecError{Cmd: c, Err: err}
		}
		if pa, ok := c.(*cmdlang.PortAdd); ok {
			if err := pmd.CheckDevices(pa.Driver, pmd.Args(pa.Args), netns); err != nil {
				return &cmdlang.ExecError{Cmd: c, Err: err}
			}
		}
	}
	return b.finish()
}

// CheckDevices reports, as an *cmdlang.ExecError naming the command, the
// first port add of cmds whose driver names a kernel interface that does
// not exist in namespace netns ("" for the current one). It opens nothing:
// fwdd -check calls it (per vnet, in the vnet's namespace).
func CheckDevices(cmds []cmdlang.Command, netns string) error {
	for _, c := range cmds {
		if pa, ok := c.(*cmdlang.PortAdd); ok {
			if err := pmd.CheckDevices(pa.Driver, pmd.Args(pa.Args), netns); err != nil {
				return &cmdlang.ExecError{Cmd: c, Err: err}
			}
		}
	}
	return nil
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
		if err := checkFile(opts.ConfigFile, opts.NetNS); err != nil {
			return nil, err
		}
		var err error
		if cmds, err = cmdlang.ParseFile(opts.ConfigFile); err != nil {
			return nil, err
		}
	}
	ob := newObs(&opts)
	eng, err := fwd.New(opts.Engine, opts.Log)
	if err != nil {
		return nil, err
	}
	st := &stack{opts: opts, log: opts.Log, eng: eng, model: newModel(), live: map[string]*livePort{}, ruleBases: map[uint16]uint64{}, obs: ob,
		linkWake: make(chan struct{}, 1)}
	ob.s = st
	st.nb = newNeighbours(st)
	// An empty reconcile sets up the FIBs and the first snapshot.
	b := st.model.begin()
	if err := st.reconcile(st.model, b, false); err != nil {
		eng.Close()
		return nil, err
	}
	st.model = b.commit()
	d := &Daemon{opts: opts, log: opts.Log, st: st, files: defaultLoader(), reqs: make(chan request), stop: make(chan struct{}), done: make(chan struct{}), failed: make(chan struct{})}
	st.do = d.do
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
	res, err := d.exec(ctx, cmds, false)
	if err != nil {
		return nil, err
	}
	return cmdlang.GatherAll(ctx, res)
}

// ExecPaged is Exec leaving large answers (show routes of a full table) in
// pages (cmdlang.PagedExecutor): the control socket writes them out page by
// page.
func (d *Daemon) ExecPaged(ctx context.Context, cmds []cmdlang.Command) ([]cmdlang.Result, error) {
	return d.exec(ctx, cmds, false)
}

func (d *Daemon) exec(ctx context.Context, cmds []cmdlang.Command, reload bool) ([]cmdlang.Result, error) {
	resp, err := d.submit(ctx, request{cmds: cmds, reload: reload}, d.files)
	return resp.results, err
}

// submit reads r's route files with files, then hands r to the control
// goroutine and waits for its answer.
func (d *Daemon) submit(ctx context.Context, r request, files fileLoader) (response, error) {
	cmds := r.cmds
	// Route files are read here, on the caller's goroutine, and given up
	// when the caller goes or the daemon stops.
	lctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-lctx.Done():
		}
	}()
	loaded, err := files.loadAll(lctx, d.configDir(), cmds)
	cancel()
	if err != nil {
		select {
		case <-d.stop:
			return response{}, errStopped
		default:
		}
		return response{}, err
	}
	r.ctx, r.files, r.reply = ctx, loaded, make(chan response, 1)
	select {
	case d.reqs <- r:
	case <-ctx.Done():
		return response{}, ctx.Err()
	case <-d.stop:
		return response{}, errStopped
	case <-d.failed:
		return response{}, d.failErr
	}
	// Once taken, a batch completes (or is undone) whatever ctx does.
	resp := <-r.reply
	return resp, resp.err
}

// configDir is the directory relative route file names are read from.
func (d *Daemon) configDir() string {
	if d.opts.ConfigFile != "" {
		return filepath.Dir(d.opts.ConfigFile)
	}
	return "."
}

// do runs fn on the control goroutine and waits for it.
func (d *Daemon) do(fn func(*stack)) error {
	r := request{fn: fn, reply: make(chan response, 1)}
	select {
	case d.reqs <- r:
	case <-d.stop:
		return errStopped
	case <-d.failed:
		return d.failErr
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
	// neighCtr are the neighbour table's counters.
	neighCtr []lltable.Counter
	fibs     []show.FIB
	lcp      []lcpRow
	// gauges are the ports' status gauges (pmd.Statuser).
	gauges []pmd.Gauge
}

func (d *Daemon) snapshot() (*stateSnapshot, error) {
	var snap stateSnapshot
	err := d.do(func(s *stack) {
		snap.ports = s.ports()
		snap.rules = s.ruleRows()
		snap.neigh = s.nb.countByState()
		snap.neighCtr = s.nb.counters()
		snap.fibs = s.fibRows()
		for _, st := range s.statuses("") {
			snap.gauges = append(snap.gauges, st.Gauges...)
		}
		snap.lcp = s.lcpRows()
	})
	return &snap, err
}

// Reload re-reads the configuration file and applies the difference
// atomically: on any error the running configuration stays as it was.
func (d *Daemon) Reload() error {
	if d.opts.ConfigFile == "" {
		return errors.New("no configuration file to reload (start fwdd with -c FILE)")
	}
	// The batch is validated completely before anything changes (run), so
	// CheckFile would only read the route files twice.
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

// Failed is closed when the control goroutine stopped on a panic that may
// have left the running stack half-changed; Err then says why. The daemon
// serves nothing more: the caller (cmd/fwdd) calls Shutdown, which closes
// the ports and detaches their XDP programs, and exits non-zero so a
// supervisor restarts it from the configuration file.
func (d *Daemon) Failed() <-chan struct{} { return d.failed }

// Err is the reason the daemon failed (nil until Failed is closed).
func (d *Daemon) Err() error {
	select {
	case <-d.failed:
		return d.failErr
	default:
		return nil
	}
}

// Panics returns how many panics the control goroutine recovered from.
func (d *Daemon) Panics() uint64 { return d.panics.Load() }

// phase is a step of the control goroutine, for the panic policy.
type phase uint8

const (
	phaseIdle      phase = iota
	phaseValidate        // a batch checked on a copy of the model: nothing changed yet
	phaseReconcile       // the running stack being changed
	phaseQuery           // show/get answered: read-only
	phaseRead            // a read for the metrics: read-only
	phaseNeigh           // neighbour input, timers, link checks
)

func (p phase) String() string {
	return [...]string{"idle", "validating a batch", "applying a batch", "answering a query", "reading state", "neighbour/link work"}[p]
}

// recoverable reports whether a panic in phase p left the running stack as
// it was (validation works on a copy, queries and reads change nothing).
func (p phase) recoverable() bool {
	return p == phaseValidate || p == phaseQuery || p == phaseRead
}

func (s *stack) enter(p phase) {
	s.phase = p
	if s.panicHook != nil {
		s.panicHook(p)
	}
}

// guard runs f on the control goroutine with the panic policy of
// docs/ctl.md: a panic while validating, answering or reading is logged
// with its stack, counted, and becomes the request's error (nothing was
// changed); a panic while the running stack changes, or in neighbour and
// link work, stops the daemon (fatal true), since its state may no longer
// be the model.
func (d *Daemon) guard(f func()) (perr error, fatal bool) {
	defer func() {
		p := recover()
		ph := d.st.phase
		d.st.phase = phaseIdle
		if p == nil {
			return
		}
		d.panics.Add(1)
		d.log.Error("control goroutine panic", "phase", ph.String(), "panic", p, "stack", string(debug.Stack()))
		if ph.recoverable() {
			perr = fmt.Errorf("fwdd: internal error while %s: %v (nothing was changed; please report it with the log)", ph, p)
			return
		}
		perr = fmt.Errorf("fwdd: internal error while %s: %v; fwdd stopped, since its running state may no longer match its configuration (restart it; please report it with the log)", ph, p)
		fatal = true
	}()
	f()
	return nil, false
}

// loop is the control goroutine.
func (d *Daemon) loop() {
	defer close(d.done)
	wake := d.st.eng.Woken()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	fail := func(err error) {
		d.failErr = err
		close(d.failed)
		d.log.Error("control goroutine stopped", "err", err)
	}
	for {
		select {
		case r := <-d.reqs:
			var resp response
			perr, fatal := d.guard(func() {
				if r.fn != nil {
					d.st.enter(phaseRead)
					r.fn(d.st)
					return
				}
				if r.check {
					resp.devices, resp.err = d.st.check(r)
					return
				}
				resp.results, resp.err = d.st.run(r)
			})
			if perr != nil {
				resp = response{err: perr}
			}
			r.reply <- resp
			if fatal {
				fail(perr)
				return
			}
		case b := <-d.st.lcpBatches():
			if perr, fatal := d.guard(func() { d.st.enter(phaseReconcile); d.st.lcpApply(b) }); fatal {
				fail(perr)
				return
			}
		case <-wake:
			if perr, fatal := d.guard(func() { d.st.enter(phaseNeigh); d.st.nb.input(); d.st.eng.Service() }); fatal {
				fail(perr)
				return
			}
		case <-d.st.linkWake:
			if perr, fatal := d.guard(func() { d.st.enter(phaseNeigh); d.st.linkWakes++; d.st.linkCheck(); d.st.eng.Service() }); fatal {
				fail(perr)
				return
			}
		case now := <-tick.C:
			if perr, fatal := d.guard(func() {
				d.st.enter(phaseNeigh)
				d.st.nb.input()
				d.st.eng.Service()
				d.st.nb.tick(now)
				d.st.linkCheck()
				d.st.traceTick()
			}); fatal {
				fail(perr)
				return
			}
		case <-d.stop:
			d.st.lcpClose()
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
		s.enter(phaseReconcile)
		om := s.model
		if err := s.reconcile(om, b, !r.reload); err != nil {
			return nil, err
		}
		s.model = b.commit()
		s.lcpReconciled(om)
		s.obs.config(om, s.model, r.reload, s.opts.ConfigFile)
	}
	s.enter(phaseQuery)
	results := make([]cmdlang.Result, len(r.cmds))
	size, queries, done := 0, 0, 0
	for _, c := range r.cmds {
		if isQuery(c) {
			queries++
		}
	}
	for i, c := range r.cmds {
		if !isQuery(c) {
			continue
		}
		// The answers of one batch are bounded: the first query is
		// always answered (a full table is large), later ones only
		// while the answer stays under maxAnswer, so a batch of many
		// big shows neither holds the control goroutine long nor
		// builds a huge answer while other clients wait.
		if done > 0 && size > s.maxAnswer() {
			applied := "nothing was changed"
			if changes {
				applied = "the batch's changes were applied"
			}
			return nil, &cmdlang.ExecError{Cmd: c, Err: fmt.Errorf("not answered: the batch's answer is over %d MiB after %d of its %d show/get commands; send the rest in other requests (%s)", s.maxAnswer()>>20, done, queries, applied)}
		}
		res, err := s.query(c)
		if err != nil {
			return nil, &cmdlang.ExecError{Cmd: c, Err: err}
		}
		results[i] = res
		size += len(res.Text)
		done++
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
	s.enter(phaseValidate)
	b := base.begin()
	changes := false
	for _, c := range r.cmds {
		if isQuery(c) {
			continue
		}
		changes = true
		if err := b.apply(c, r.files.read); err != nil {
			return nil, false, &cmdlang.ExecError{Cmd: c, Err: err}
		}
	}
	if err := b.finish(); err != nil {
		return nil, false, err
	}
	return b, changes, nil
}

func isQuery(c cmdlang.Command) bool {
	if cmdlang.IsObs(c) || cmdlang.IsStream(c) {
		return true // answered (trace add/clear included; streams refused) by obsQuery
	}
	switch c.(type) {
	case *cmdlang.Get, *cmdlang.RouteGet, *cmdlang.ShowPorts, *cmdlang.ShowRoutes, *cmdlang.ShowNeigh,
		*cmdlang.ShowRules, *cmdlang.ShowFIBs, *cmdlang.ShowStats, *cmdlang.ShowSysctl, *cmdlang.ShowLCP, *cmdlang.ShowDriver:
		return true
	}
	return false
}

// linkChanged wakes the control loop for linkCheck (pmd.Config.LinkChanged):
// called from drivers' goroutines, it never blocks; wake-ups coalesce.
func (s *stack) linkChanged() {
	select {
	case s.linkWake <- struct{}{}:
	default:
	}
}

// linkCheck follows the ports' drivers: it re-reads every port's identity
// (identityCheck) and link, and republishes the workers' view once when
// either changed.
func (s *stack) linkCheck() {
	republish := s.identityCheck()
	st := s.eng.State()
	for _, lp := range s.live {
		l := lp.port.Link()
		up := lp.model.Up && l.Up && l.Present
		if int(lp.id) < len(st.Ports) && st.Ports[lp.id].Up != up {
			s.log.Info("link changed", "port", lp.model.Name, "up", l.Up, "present", l.Present)
			s.obs.link(lp.model.Name, up)
			republish = true
		}
	}
	if republish {
		s.publish()
	}
}
