package vnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/fwdd/fwdd/ctl"
	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
	"github.com/fwdd/fwdd/fwd"
	"github.com/prometheus/client_golang/prometheus"
)

// Default is the vnet that always exists.
const Default = cmdlang.DefaultVnet

// Config configures a Host.
type Config struct {
	// ConfigFile is the startup file (command language, vnet prefixes
	// allowed). Empty: start with the default vnet only, unconfigured.
	ConfigFile string
	// Socket is the main (root) control socket; empty means none.
	Socket string
	// Engine sizes every vnet's dataplane (workers, CPUs, poll mode, pool).
	Engine fwd.Config
	// NetNS, if set, is the namespace where every vnet's ports find their
	// devices.
	NetNS string
	Log   *slog.Logger
}

// Host is a running fwdd with its vnets.
type Host struct {
	cfg Config
	log *slog.Logger
	reg *prometheus.Registry
	srv *ctlsock.Server

	// mu: read-locked by batches within one vnet, write-locked by batches
	// that create, delete or span vnets. It guards vnets and each Vnet's
	// spec and srv.
	mu    sync.RWMutex
	vnets map[string]*Vnet

	// claimMu guards every Vnet's inUse, granted and reserved, and dying.
	claimMu sync.Mutex
	// dying holds the devices (devKey) of deleted vnets whose stack is
	// still closing.
	dying map[string][]string

	// ctx ends at Shutdown: batches still reading route files give up.
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once

	// failed is closed when a vnet's control goroutine stopped on a panic
	// (ctl.Daemon.Failed); failErr says which and why.
	failed   chan struct{}
	failOnce sync.Once
	failErr  error
}

// Vnet is one stack of a Host.
type Vnet struct {
	name string
	spec cmdlang.VnetAdd
	d    *ctl.Daemon // nil while only checking a file
	srv  *ctlsock.Server

	inUse    []string       // devices its ports use (after the last batch)
	granted  []string       // devices root opened in it (beyond spec.Devices), still in use
	reserved map[string]int // devices batches in flight are about to open

	stopped chan struct{} // closed by stopVnet: ends its failure watcher
}

// Start creates the default vnet, applies the configuration file (checked
// whole first: a bad file starts nothing) and opens the control sockets.
// A failed start undoes what it did.
func Start(cfg Config) (*Host, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	h := newHost(cfg)
	var p *plan
	if cfg.ConfigFile != "" {
		cmds, err := cmdlang.ParseFile(cfg.ConfigFile)
		if err != nil {
			return nil, err
		}
		if p, err = split(cmds); err != nil {
			return nil, err
		}
		// Check against an empty host before building anything.
		chk := newHost(cfg)
		chk.vnets[Default] = &Vnet{name: Default, reserved: map[string]int{}}
		if _, err := chk.validate(context.Background(), p, false); err != nil {
			return nil, err
		}
	}
	def, err := h.startVnet(cmdlang.VnetAdd{Name: Default, UID: cmdlang.NoID, GID: cmdlang.NoID})
	if err != nil {
		return nil, err
	}
	h.vnets[Default] = def
	if p != nil {
		if _, err := h.execPlan(h.ctx, p, false); err != nil {
			h.Shutdown()
			return nil, err
		}
		h.log.Info("configuration applied", "file", cfg.ConfigFile, "commands", len(p.cmds))
	}
	if cfg.Socket != "" {
		srv, err := ctlsock.Listen(ctlsock.Config{Path: cfg.Socket, Exec: h, Logger: h.log})
		if err != nil {
			h.Shutdown()
			return nil, err
		}
		h.srv = srv
		go serve(srv, h.log)
		h.log.Info("control socket ready", "path", cfg.Socket)
	}
	return h, nil
}

func newHost(cfg Config) *Host {
	ctx, cancel := context.WithCancel(context.Background())
	return &Host{cfg: cfg, log: cfg.Log, reg: prometheus.NewRegistry(), vnets: map[string]*Vnet{}, dying: map[string][]string{},
		ctx: ctx, cancel: cancel, failed: make(chan struct{})}
}

func serve(srv *ctlsock.Server, log *slog.Logger) {
	if err := srv.Serve(); err != nil {
		log.Error("control socket", "path", srv.Path(), "err", err)
	}
}

// CheckFile parses and validates a configuration file with its vnets
// without touching any device: fwdd -check. It checks the ports' buffer
// needs against the default engine (see CheckFileEngine).
func CheckFile(path string) error { return checkFile(path, true, fwd.Config{}) }

// CheckFileEngine is CheckFile for vnets whose engines are sized by eng
// (fwdd's -workers, -cpus and -mbufs): beyond the devices, it checks that
// each vnet's worker pools cover what its ports keep in the kernel (AF_XDP
// fill rings) with a working margin (ctl.CheckBuffers).
func CheckFileEngine(path string, eng fwd.Config) error { return checkFile(path, true, eng) }

// checkFile is CheckFile; devices false leaves the kernel interfaces
// unchecked (tests of the validation with made-up devices).
func checkFile(path string, devices bool, eng fwd.Config) error {
	cmds, err := cmdlang.ParseFile(path)
	if err != nil {
		return err
	}
	p, err := split(cmds)
	if err != nil {
		return err
	}
	h := newHost(Config{Log: slog.Default()})
	h.vnets[Default] = &Vnet{name: Default, reserved: map[string]int{}}
	if _, err = h.validate(context.Background(), p, false); err != nil || !devices {
		return err
	}
	// -check also looks up the kernel interfaces the ports name, each in
	// its vnet's namespace, opening nothing.
	ns := map[string]string{Default: h.cfg.NetNS}
	for _, a := range p.adds {
		ns[a.Name] = h.nsOf(*a)
	}
	for _, pt := range p.parts {
		if err := ctl.CheckDevices(pt.cmds, ns[pt.name]); err != nil {
			return pt.rewrite(err, p.cmds)
		}
		if err := ctl.CheckBuffers(pt.cmds, ns[pt.name], eng); err != nil {
			return pt.rewrite(err, p.cmds)
		}
	}
	return nil
}

// Metrics returns the registry with every vnet's collectors, each metric
// labelled vnet="NAME".
func (h *Host) Metrics() *prometheus.Registry { return h.reg }

// Daemon returns the stack of vnet name, or nil (for tests and benchmarks).
func (h *Host) Daemon(name string) *ctl.Daemon {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if v := h.vnets[name]; v != nil {
		return v.d
	}
	return nil
}

// Names returns the vnets' names, sorted.
func (h *Host) Names() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.sortedNames()
}

func (h *Host) sortedNames() []string {
	names := make([]string, 0, len(h.vnets))
	for n := range h.vnets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Reload re-reads the configuration file and makes the host match it:
// vnets it creates are created (or their owner, socket, devices and routes
// directory updated), vnets it no longer names are deleted, and every
// vnet's configuration is replaced by the file's (what SIGHUP does for one
// stack). The file is validated whole first; on error nothing changes.
func (h *Host) Reload() error {
	if h.cfg.ConfigFile == "" {
		return errors.New("no configuration file to reload (start fwdd with -c FILE)")
	}
	cmds, err := cmdlang.ParseFile(h.cfg.ConfigFile)
	if err != nil {
		return err
	}
	p, err := split(cmds)
	if err != nil {
		return err
	}
	_, err = h.execPlan(h.ctx, p, true)
	return err
}

// Shutdown closes the control sockets and shuts every vnet's stack down.
// It is idempotent.
func (h *Host) Shutdown() {
	h.once.Do(func() {
		h.cancel()
		if h.srv != nil {
			_ = h.srv.Close()
		}
		h.mu.Lock()
		var all []*Vnet
		for _, n := range h.sortedNames() {
			all = append(all, h.vnets[n])
		}
		clear(h.vnets)
		h.mu.Unlock()
		for _, v := range all {
			h.stopVnet(v)
		}
	})
}

// startVnet builds a vnet's stack, its tenant socket and its metrics. The
// caller holds h.mu (or owns h alone) and adds it to h.vnets.
func (h *Host) startVnet(spec cmdlang.VnetAdd) (*Vnet, error) {
	log := h.log
	if spec.Name != Default {
		log = log.With("vnet", spec.Name)
	}
	d, err := ctl.Start(ctl.Options{Engine: h.cfg.Engine, NetNS: h.nsOf(spec), Log: log})
	if err != nil {
		return nil, fmt.Errorf("vnet %s: %w", spec.Name, err)
	}
	v := &Vnet{name: spec.Name, spec: spec, d: d, reserved: map[string]int{}, stopped: make(chan struct{})}
	if spec.Socket != "" {
		if v.srv, err = h.listenTenant(v, spec.Socket); err != nil {
			d.Shutdown()
			return nil, fmt.Errorf("vnet %s: %w", spec.Name, err)
		}
	}
	if err := h.wrapReg(v.name).Register(d.Collector()); err != nil {
		if v.srv != nil {
			_ = v.srv.Close()
		}
		d.Shutdown()
		return nil, fmt.Errorf("vnet %s: metrics: %w", spec.Name, err)
	}
	go h.watch(v)
	if spec.Name != Default {
		h.log.Info("vnet added", "vnet", spec.Name, "socket", spec.Socket, "devices", strings.Join(spec.Devices, ","))
	}
	return v, nil
}

// watch turns a vnet's failure into the host's: a panic in any stack's
// control goroutine may have left it half-changed, and the whole process
// is restarted from its file (one vnet cannot be rebuilt alone yet).
func (h *Host) watch(v *Vnet) {
	select {
	case <-v.d.Failed():
		h.failOnce.Do(func() {
			h.failErr = fmt.Errorf("vnet %s: %w", v.name, v.d.Err())
			close(h.failed)
		})
	case <-v.stopped:
	}
}

// Failed is closed when a vnet's control goroutine stopped on a panic; Err
// then says which vnet and why. The caller shuts the host down and exits
// non-zero (see ctl.Daemon.Failed).
func (h *Host) Failed() <-chan struct{} { return h.failed }

// Err is the reason the host failed (nil until Failed is closed).
func (h *Host) Err() error {
	select {
	case <-h.failed:
		return h.failErr
	default:
		return nil
	}
}

func (h *Host) wrapReg(name string) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{"vnet": name}, h.reg)
}

// stopVnet closes what startVnet made. The vnet is no longer in h.vnets;
// the caller does not hold h.mu (its tenant's handlers may be waiting for
// it).
func (h *Host) stopVnet(v *Vnet) {
	if v.stopped != nil {
		close(v.stopped)
	}
	if v.srv != nil {
		_ = v.srv.Close()
	}
	if v.d != nil {
		h.wrapReg(v.name).Unregister(v.d.Collector())
		v.d.Shutdown()
	}
	h.claimMu.Lock()
	delete(h.dying, v.name)
	h.claimMu.Unlock()
	if v.name != Default {
		h.log.Info("vnet deleted", "vnet", v.name)
	}
}

// listenTenant opens a tenant's control socket: mode 0660, owned by the
// vnet's owner, answering only root and the owner.
func (h *Host) listenTenant(v *Vnet, path string) (*ctlsock.Server, error) {
	if path == h.cfg.Socket {
		return nil, fmt.Errorf("socket %s is the main control socket; give the vnet its own", path)
	}
	srv, err := ctlsock.Listen(ctlsock.Config{
		Path:      path,
		Exec:      &tenant{h: h, v: v},
		Authorize: func(c ctlsock.Cred) error { return h.authorize(v, c) },
		Logger:    h.log.With("vnet", v.name),
	})
	if err != nil {
		return nil, err
	}
	gid := -1
	if v.spec.GID != cmdlang.NoID {
		gid = v.spec.GID
	}
	if err := os.Chmod(path, 0o660); err == nil && os.Geteuid() == 0 {
		err = os.Lchown(path, v.spec.UID, gid)
	}
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	go serve(srv, h.log)
	return srv, nil
}

// authorize admits root and the vnet's owner uid (or gid) on its socket.
func (h *Host) authorize(v *Vnet, c ctlsock.Cred) error {
	h.mu.RLock()
	spec := v.spec
	h.mu.RUnlock()
	if c.UID == 0 || int(c.UID) == spec.UID || spec.GID != cmdlang.NoID && int(c.GID) == spec.GID {
		return nil
	}
	return fmt.Errorf("fwdd: %w: uid %d (pid %d) does not own this socket (vnet %s)", ctlsock.ErrNotRoot, c.UID, c.PID, v.name)
}

// Exec applies a batch from the main socket (root): commands may carry
// vnet prefixes and create or delete vnets. All or nothing, as the doc
// says.
func (h *Host) Exec(ctx context.Context, cmds []cmdlang.Command) ([]cmdlang.Result, error) {
	return h.exec(ctx, cmds, false)
}

// ExecPaged is Exec leaving a large answer of a batch within one vnet in
// pages (cmdlang.PagedExecutor: the control socket writes them out).
func (h *Host) ExecPaged(ctx context.Context, cmds []cmdlang.Command) ([]cmdlang.Result, error) {
	return h.exec(ctx, cmds, true)
}

func (h *Host) exec(ctx context.Context, cmds []cmdlang.Command, paged bool) ([]cmdlang.Result, error) {
	p, err := split(cmds)
	if err != nil {
		return nil, err
	}
	if len(p.adds) == 0 && len(p.dels) == 0 && len(p.shows) == 0 && len(p.parts) == 1 {
		pt := p.parts[0]
		h.mu.RLock()
		defer h.mu.RUnlock()
		v := h.vnets[pt.name]
		if v == nil {
			return nil, noVnet(pt.name, cmds[pt.idx[0]])
		}
		res, err := h.execIn(ctx, v, pt.cmds, false, ctl.ExecOptions{Paged: paged})
		if err != nil {
			return nil, pt.rewrite(err, cmds)
		}
		return res, nil
	}
	return h.execPlan(ctx, p, false)
}

// Stream runs a streaming command (monitor, capture) from the main socket
// in its vnet (ctlsock.StreamExecutor). The vnet is looked up once; a vnet
// deleted meanwhile ends the stream with its stack.
func (h *Host) Stream(ctx context.Context, c cmdlang.Command, out *ctlsock.Stream) (cmdlang.Result, error) {
	name, in := cmdlang.Unwrap(c)
	h.mu.RLock()
	v := h.vnets[name]
	h.mu.RUnlock()
	if v == nil {
		return cmdlang.Result{}, noVnet(name, c)
	}
	// The stream ends with its vnet (vnet del), not only with its client.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-v.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	res, err := v.d.Stream(ctx, in, out)
	select {
	case <-v.stopped:
		return res, fmt.Errorf("vnet %s was deleted; %s ended", name, in.Verb())
	default:
	}
	return res, err
}

func noVnet(name string, c cmdlang.Command) error {
	return &cmdlang.ExecError{Cmd: c, Err: fmt.Errorf("no vnet %s (see show vnets; create it with vnet add %s)", name, name)}
}

// execIn runs a batch within vnet v (caller holds h.mu read-locked),
// claiming the devices its port add commands name first.
func (h *Host) execIn(ctx context.Context, v *Vnet, cmds []cmdlang.Command, tenant bool, opt ctl.ExecOptions) ([]cmdlang.Result, error) {
	devs, err := h.reserve(v, cmds, tenant)
	if err != nil {
		return nil, err
	}
	h.claimMu.Lock()
	before := v.inUse
	h.claimMu.Unlock()
	res, err := v.d.ExecWith(ctx, cmds, opt)
	after := v.d.Devices()
	h.claimMu.Lock()
	for _, d := range devs {
		if v.reserved[d]--; v.reserved[d] <= 0 {
			delete(v.reserved, d)
		}
	}
	v.settle(before, after, !tenant)
	h.claimMu.Unlock()
	return res, err
}

// settle records the devices v uses after a batch; a root batch grants
// the devices it opened and revokes those it closed. Caller holds claimMu.
func (v *Vnet) settle(before, after []string, root bool) {
	v.inUse = after
	if !root {
		return
	}
	var g []string
	for _, d := range v.granted {
		if slices.Contains(after, d) || !slices.Contains(before, d) {
			g = append(g, d)
		}
	}
	for _, d := range after {
		if !slices.Contains(before, d) && !slices.Contains(g, d) {
			g = append(g, d)
		}
	}
	v.granted = g
}

// claims reports whether v claims dev. Caller holds claimMu and h.mu.
func (v *Vnet) claims(dev string) bool {
	return slices.Contains(v.spec.Devices, dev) || slices.Contains(v.granted, dev) ||
		slices.Contains(v.inUse, dev) || v.reserved[dev] > 0
}

// tenantMay reports whether v's tenant may open dev.
func (v *Vnet) tenantMay(dev string) bool {
	return slices.Contains(v.spec.Devices, dev) || slices.Contains(v.granted, dev) || slices.Contains(v.inUse, dev)
}

// nsOf is the network namespace a vnet's devices are in.
func (h *Host) nsOf(spec cmdlang.VnetAdd) string {
	if spec.NetNS != "" {
		return spec.NetNS
	}
	return h.cfg.NetNS
}

// devKey names a device across namespaces: devices of the same name in
// two namespaces are two devices.
func devKey(ns, dev string) string { return ns + "\x00" + dev }

// ownerOf returns the vnet other than v that claims dev in v's namespace
// ("" if none). Caller holds claimMu and h.mu.
func (h *Host) ownerOf(dev string, v *Vnet) string {
	ns := h.nsOf(v.spec)
	for n, o := range h.vnets {
		if o != v && h.nsOf(o.spec) == ns && o.claims(dev) {
			return n
		}
	}
	for n, keys := range h.dying {
		if slices.Contains(keys, devKey(ns, dev)) {
			return n + " (being deleted; try again)"
		}
	}
	return ""
}

// reserve claims for v the devices cmds' port add commands name.
func (h *Host) reserve(v *Vnet, cmds []cmdlang.Command, tenant bool) ([]string, error) {
	h.claimMu.Lock()
	defer h.claimMu.Unlock()
	var devs []string
	for _, c := range cmds {
		var names []string
		switch c := c.(type) {
		case *cmdlang.PortAdd:
			if c.Args["dev"] != "" {
				names = append(names, c.Args["dev"])
			}
			if c.LCP != "" {
				names = append(names, c.LCP, ctl.KernelTables)
			}
		case *cmdlang.PortSet:
			if c.LCP != "" && c.LCP != cmdlang.LCPOff {
				names = append(names, c.LCP, ctl.KernelTables)
			}
		}
		for _, dev := range names {
			if tenant && !v.tenantMay(dev) {
				return nil, &cmdlang.ExecError{Cmd: c, Err: fmt.Errorf("device %s was not given to this vnet (root gives devices with vnet add %s devices DEV,... or by adding the port)", dev, v.name)}
			}
			if o := h.ownerOf(dev, v); o != "" {
				if dev == ctl.KernelTables {
					return nil, &cmdlang.ExecError{Cmd: c, Err: fmt.Errorf("vnet %s has kernel interfaces (lcp) in the same network namespace, whose kernel tables it mirrors; give this vnet its own (vnet add NAME netns NS)", o)}
				}
				return nil, &cmdlang.ExecError{Cmd: c, Err: fmt.Errorf("device %s belongs to vnet %s (a device serves one vnet at a time; delete its port there first)", dev, o)}
			}
			devs = append(devs, dev)
		}
	}
	for _, d := range devs {
		v.reserved[d]++
	}
	return devs, nil
}
