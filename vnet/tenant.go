package vnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/fwdd/fwdd/ctl"
	"github.com/fwdd/fwdd/ctl/cmdlang"
)

// tenant is the Executor of a vnet's own control socket (a jail's view):
// only its vnet, and only the commands on the allow-list below.
type tenant struct {
	h *Host
	v *Vnet
}

// ErrTenant is wrapped by every refusal of a tenant socket.
var ErrTenant = errors.New("not allowed on a tenant socket")

func refuse(c cmdlang.Command, why string) error {
	return &cmdlang.ExecError{Cmd: c, Err: fmt.Errorf("%w: %s", ErrTenant, why)}
}

// tenantDrivers are the drivers a tenant may open: the ones whose
// arguments name nothing outside the stack but a device, which is checked.
var tenantDrivers = [...]string{"afxdp", "afpacket", "null", "ring"}

// allow checks one command of a tenant's batch. The list is closed: a
// command added to the language later is refused here until it is
// reviewed for what it can name (files, sockets, devices).
func (t *tenant) allow(c cmdlang.Command) error {
	switch c := c.(type) {
	case *cmdlang.InVnet:
		return refuse(c, "vnet prefixes are for the main socket (this socket controls its own vnet only; drop the prefix)")
	case *cmdlang.VnetAdd, *cmdlang.VnetDel:
		return refuse(c, "only root creates and deletes vnets, on the main socket")
	case *cmdlang.PortAdd:
		if c.LCP != "" {
			return refuse(c, "lcp makes a kernel interface; only root may (ask root to add it)")
		}
		for _, d := range tenantDrivers {
			if c.Driver == d {
				return nil // the device is checked when it is claimed
			}
		}
		return refuse(c, fmt.Sprintf("driver %s is not available to tenants (use afxdp or afpacket on a device root gave this vnet, null or ring)", c.Driver))
	case *cmdlang.PortSet:
		if c.LCP != "" && c.LCP != cmdlang.LCPOff {
			return refuse(c, "lcp makes a kernel interface; only root may (ask root to add it)")
		}
		return nil
	case *cmdlang.RouteLoad:
		if t.v.spec.Routes == "" {
			return refuse(c, fmt.Sprintf("root gave vnet %s no routes directory (vnet add %s routes DIR); add the routes with route add", t.v.name, t.v.name))
		}
		if _, err := within(t.v.spec.Routes, c.File); err != nil {
			return &cmdlang.ExecError{Cmd: c, Err: err}
		}
		return nil
	case *cmdlang.Set, *cmdlang.Get, *cmdlang.PortDel, *cmdlang.AddrAdd, *cmdlang.AddrDel,
		*cmdlang.RouteAdd, *cmdlang.RouteDel, *cmdlang.RouteGet, *cmdlang.RuleAdd, *cmdlang.RuleDel,
		*cmdlang.NeighAdd, *cmdlang.NeighDel, *cmdlang.ShowPorts, *cmdlang.ShowRoutes, *cmdlang.ShowNeigh,
		*cmdlang.ShowRules, *cmdlang.ShowFIBs, *cmdlang.ShowStats, *cmdlang.ShowSysctl, *cmdlang.ShowVnets:
		return nil
	}
	return refuse(c, c.Verb()+" is for root, on the main socket")
}

// Exec runs a tenant's batch in its vnet: every command allowed first,
// then the batch all or nothing. show vnets shows this vnet only.
func (t *tenant) Exec(ctx context.Context, cmds []cmdlang.Command) ([]cmdlang.Result, error) {
	return t.exec(ctx, cmds, false)
}

// ExecPaged is Exec leaving large answers in pages for the control socket
// (cmdlang.PagedExecutor).
func (t *tenant) ExecPaged(ctx context.Context, cmds []cmdlang.Command) ([]cmdlang.Result, error) {
	return t.exec(ctx, cmds, true)
}

func (t *tenant) exec(ctx context.Context, cmds []cmdlang.Command, paged bool) ([]cmdlang.Result, error) {
	h := t.h
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.vnets[t.v.name] != t.v {
		return nil, fmt.Errorf("fwdd: vnet %s was deleted", t.v.name)
	}
	for _, c := range cmds {
		if err := t.allow(c); err != nil {
			return nil, err
		}
	}
	var stack []cmdlang.Command
	var idx []int
	for i, c := range cmds {
		if _, ok := c.(*cmdlang.ShowVnets); !ok {
			stack = append(stack, c)
			idx = append(idx, i)
		}
	}
	results := make([]cmdlang.Result, len(cmds))
	if len(stack) > 0 {
		res, err := h.execIn(ctx, t.v, stack, true, ctl.ExecOptions{Open: t.open, Paged: paged})
		if err != nil {
			return nil, err
		}
		for j, r := range res {
			results[idx[j]] = r
		}
	}
	for i, c := range cmds {
		if _, ok := c.(*cmdlang.ShowVnets); ok {
			results[i] = h.showVnets(t.v)
		}
	}
	return results, nil
}

// within returns name relative to dir, refusing names outside it.
func within(dir, name string) (string, error) {
	rel := name
	if filepath.IsAbs(name) {
		var err error
		if rel, err = filepath.Rel(dir, name); err != nil {
			rel = ".."
		}
	}
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%w: %s is outside %s, the only directory this vnet may load routes from (put the file there)", ErrTenant, name, dir)
	}
	return rel, nil
}

// open opens a route file for the tenant: inside the vnet's routes
// directory (os.Root: no "..", no symlink out of it), a regular file
// (opened non-blocking, so a FIFO cannot hold up the control goroutine).
func (t *tenant) open(name string) (io.ReadCloser, error) {
	dir := t.v.spec.Routes
	rel, err := within(dir, name)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", name)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
