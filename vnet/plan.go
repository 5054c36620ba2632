package vnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/fwdd/fwdd/ctl"
	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/ctl/ctlsock"
)

// plan is a batch split by vnet.
type plan struct {
	cmds  []cmdlang.Command
	parts []*part // in order of first appearance
	adds  []*cmdlang.VnetAdd
	dels  []*cmdlang.VnetDel
	shows []int // indexes of show vnets
}

// part is the commands of a batch that run in one vnet.
type part struct {
	name string
	idx  []int // positions in plan.cmds
	cmds []cmdlang.Command
}

// rewrite makes an error about one of the part's commands name the
// command as written (with its vnet prefix).
func (pt *part) rewrite(err error, orig []cmdlang.Command) error {
	var ee *cmdlang.ExecError
	if !errors.As(err, &ee) {
		if pt.name == Default {
			return err
		}
		return fmt.Errorf("vnet %s: %w", pt.name, err)
	}
	for j, c := range pt.cmds {
		if c == ee.Cmd {
			return &cmdlang.ExecError{Cmd: orig[pt.idx[j]], Err: ee.Err}
		}
	}
	return err
}

// split sorts a batch's commands by vnet and checks what needs no state.
func split(cmds []cmdlang.Command) (*plan, error) {
	p := &plan{cmds: cmds}
	byName := map[string]*part{}
	for i, c := range cmds {
		switch c := c.(type) {
		case *cmdlang.VnetAdd:
			for _, a := range p.adds {
				if a.Name == c.Name {
					return nil, &cmdlang.ExecError{Cmd: c, Err: fmt.Errorf("vnet %s is added twice in this batch", c.Name)}
				}
				if c.Socket != "" && a.Socket == c.Socket {
					return nil, &cmdlang.ExecError{Cmd: c, Err: fmt.Errorf("socket %s is already vnet %s's", c.Socket, a.Name)}
				}
			}
			if c.Name == Default {
				return nil, &cmdlang.ExecError{Cmd: c, Err: errors.New("the default vnet always exists (configure it without a vnet prefix)")}
			}
			p.adds = append(p.adds, c)
			continue
		case *cmdlang.VnetDel:
			p.dels = append(p.dels, c)
			continue
		case *cmdlang.ShowVnets:
			p.shows = append(p.shows, i)
			continue
		}
		name, in := cmdlang.Unwrap(c)
		pt := byName[name]
		if pt == nil {
			pt = &part{name: name}
			byName[name] = pt
			p.parts = append(p.parts, pt)
		}
		pt.idx = append(pt.idx, i)
		pt.cmds = append(pt.cmds, in)
	}
	for _, d := range p.dels {
		if slices.ContainsFunc(p.adds, func(a *cmdlang.VnetAdd) bool { return a.Name == d.Name }) {
			return nil, &cmdlang.ExecError{Cmd: d, Err: fmt.Errorf("vnet %s is added and deleted in the same batch", d.Name)}
		}
		if pt := byName[d.Name]; pt != nil {
			return nil, &cmdlang.ExecError{Cmd: cmds[pt.idx[0]], Err: fmt.Errorf("vnet %s is deleted in the same batch", d.Name)}
		}
	}
	return p, nil
}

// outcome is what validate found: each touched vnet's devices afterwards.
type outcome struct {
	devices map[string][]string
	// reloads are the existing vnets a reload resets (with or without a part).
	reloads []string
	// drops are the existing vnets a reload deletes (the file no longer
	// names them).
	drops []string
	// updates are existing vnets whose spec a reload changes.
	updates []*cmdlang.VnetAdd
}

// validate checks p against the host (caller holds h.mu exclusively, or
// owns h alone): every vnet named exists or is added, names and sockets are
// free, every part validates on its stack, and no device ends up claimed
// by two vnets. Nothing changes.
func (h *Host) validate(ctx context.Context, p *plan, reload bool) (*outcome, error) {
	out := &outcome{devices: map[string][]string{}}
	specs := map[string]cmdlang.VnetAdd{}
	for n, v := range h.vnets {
		specs[n] = v.spec
	}
	gone := map[string]bool{}
	added := map[string]bool{}
	for _, a := range p.adds {
		if _, ok := h.vnets[a.Name]; ok && !reload {
			return nil, &cmdlang.ExecError{Cmd: a, Err: fmt.Errorf("vnet %s already exists (vnet del %s first, or choose another name)", a.Name, a.Name)}
		} else if ok {
			if old := h.vnets[a.Name].spec; h.nsOf(old) != h.nsOf(*a) {
				return nil, &cmdlang.ExecError{Cmd: a, Err: fmt.Errorf("vnet %s: its netns cannot change while it runs (vnet del %s, then add it again)", a.Name, a.Name)}
			}
			out.updates = append(out.updates, a)
		} else {
			added[a.Name] = true
		}
		specs[a.Name] = *a
	}
	for _, d := range p.dels {
		if _, ok := h.vnets[d.Name]; !ok {
			return nil, &cmdlang.ExecError{Cmd: d, Err: fmt.Errorf("no vnet %s (see show vnets)", d.Name)}
		}
		gone[d.Name] = true
		delete(specs, d.Name)
	}
	if reload {
		for n := range h.vnets {
			if n != Default && !slices.ContainsFunc(p.adds, func(a *cmdlang.VnetAdd) bool { return a.Name == n }) {
				gone[n] = true
				out.drops = append(out.drops, n)
				delete(specs, n)
			}
		}
		slices.Sort(out.drops)
	}
	// Sockets: one per vnet, none the main one.
	socks := map[string]string{}
	for n, s := range specs {
		if s.Socket == "" {
			continue
		}
		if s.Socket == h.cfg.Socket {
			return nil, fmt.Errorf("vnet %s: socket %s is the main control socket; give the vnet its own", n, s.Socket)
		}
		if o, ok := socks[s.Socket]; ok {
			a, b := min(n, o), max(n, o)
			return nil, fmt.Errorf("vnets %s and %s both use socket %s; give each its own", a, b, s.Socket)
		}
		socks[s.Socket] = n
	}
	// Each part on its stack (a dry run), or on an empty one.
	parts := map[string]*part{}
	for _, pt := range p.parts {
		parts[pt.name] = pt
		if _, ok := specs[pt.name]; !ok {
			return nil, noVnet(pt.name, p.cmds[pt.idx[0]])
		}
	}
	for n := range specs {
		pt := parts[n]
		v := h.vnets[n]
		var devs []string
		var err error
		switch {
		case v == nil || added[n] || v.d == nil:
			if pt != nil {
				devs, err = ctl.CheckCommands(ctx, pt.cmds, ".")
			}
		case pt != nil || reload:
			var cmds []cmdlang.Command
			if pt != nil {
				cmds = pt.cmds
			}
			devs, err = v.d.Check(ctx, cmds, ctl.ExecOptions{Reload: reload})
			if reload {
				out.reloads = append(out.reloads, n)
			}
		default:
			h.claimMu.Lock()
			devs = slices.Clone(v.inUse)
			for d := range v.reserved {
				devs = append(devs, d)
			}
			h.claimMu.Unlock()
		}
		if err != nil {
			if pt != nil {
				err = pt.rewrite(err, p.cmds)
			}
			return nil, err
		}
		out.devices[n] = devs
	}
	slices.Sort(out.reloads)
	// Devices: each claimed by one vnet (granted or used), dying ones too;
	// devices are named within their namespace.
	owner := map[string]string{}
	h.claimMu.Lock()
	for n, keys := range h.dying {
		for _, k := range keys {
			owner[k] = n + " (being deleted)"
		}
	}
	h.claimMu.Unlock()
	for _, n := range sortedKeys(specs) {
		ns := h.nsOf(specs[n])
		for _, d := range append(slices.Clone(specs[n].Devices), out.devices[n]...) {
			k := devKey(ns, d)
			if o, ok := owner[k]; ok && o != n {
				if d == ctl.KernelTables {
					return nil, fmt.Errorf("vnets %s and %s both have kernel interfaces (lcp) in one network namespace and would mirror the same kernel tables; give each its own (vnet add NAME netns NS)", o, n)
				}
				return nil, fmt.Errorf("device %s is claimed by vnets %s and %s; a device serves one vnet at a time", d, o, n)
			}
			owner[k] = n
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// execPlan validates and applies a batch that creates, deletes or spans
// vnets, holding h.mu exclusively.
func (h *Host) execPlan(ctx context.Context, p *plan, reload bool) ([]cmdlang.Result, error) {
	var stop []*Vnet             // stopped once h.mu is released
	var oldSrv []*ctlsock.Server // replaced tenant sockets, closed then too
	defer func() {
		for _, s := range oldSrv {
			_ = s.Close()
		}
		for _, v := range stop {
			h.stopVnet(v)
		}
	}()
	h.mu.Lock()
	defer h.mu.Unlock()
	out, err := h.validate(ctx, p, reload)
	if err != nil {
		return nil, err
	}
	// 1. Create the new vnets.
	var created []*Vnet
	undo := func() {
		for _, v := range created {
			delete(h.vnets, v.name)
			stop = append(stop, v)
		}
	}
	for _, a := range p.adds {
		if _, ok := h.vnets[a.Name]; ok {
			continue // a reload's update, below
		}
		v, err := h.startVnet(*a)
		if err != nil {
			undo()
			return nil, &cmdlang.ExecError{Cmd: a, Err: err}
		}
		created = append(created, v)
		h.vnets[a.Name] = v
	}
	// 2. A reload updates the specs of vnets that stay.
	for _, a := range out.updates {
		v := h.vnets[a.Name]
		if v.spec.Socket == a.Socket && a.Socket != "" && (v.spec.UID != a.UID || v.spec.GID != a.GID) {
			gid := a.GID // NoID (-1) leaves the group as it is
			if err := os.Lchown(a.Socket, a.UID, gid); err != nil {
				h.log.Error("vnet socket owner", "vnet", v.name, "err", err)
			}
		}
		if v.spec.Socket != a.Socket {
			old := v.srv
			v.srv = nil
			if old != nil {
				// Closed after h.mu is released (its handlers may wait for it).
				oldSrv = append(oldSrv, old)
			}
			v.spec = *a
			if a.Socket != "" {
				srv, err := h.listenTenant(v, a.Socket)
				if err != nil {
					h.log.Error("vnet socket", "vnet", v.name, "err", err)
				}
				v.srv = srv
			}
		}
		v.spec = *a
	}
	// 3. Each part on its stack.
	results := make([]cmdlang.Result, len(p.cmds))
	var changed []string
	run := func(v *Vnet, pt *part) error {
		var cmds []cmdlang.Command
		if pt != nil {
			cmds = pt.cmds
		}
		h.claimMu.Lock()
		before := v.inUse
		h.claimMu.Unlock()
		res, err := v.d.ExecWith(ctx, cmds, ctl.ExecOptions{Reload: reload})
		after := v.d.Devices()
		h.claimMu.Lock()
		v.settle(before, after, true)
		h.claimMu.Unlock()
		if err != nil {
			if pt != nil {
				err = pt.rewrite(err, p.cmds)
			}
			if len(changed) > 0 {
				err = fmt.Errorf("%w (vnets already changed by this batch: %s)", err, strings.Join(changed, ", "))
			}
			return err
		}
		if pt != nil {
			for j, r := range res {
				results[pt.idx[j]] = r
			}
		}
		if !slices.Contains(changed, v.name) && !slices.ContainsFunc(created, func(c *Vnet) bool { return c == v }) {
			changed = append(changed, v.name)
		}
		return nil
	}
	done := map[string]bool{}
	for _, pt := range p.parts {
		done[pt.name] = true
		if err := run(h.vnets[pt.name], pt); err != nil {
			undo()
			return nil, err
		}
	}
	for _, n := range out.reloads {
		if !done[n] {
			if err := run(h.vnets[n], nil); err != nil {
				undo()
				return nil, err
			}
		}
	}
	// 4. Delete.
	var dels []string
	for _, d := range p.dels {
		dels = append(dels, d.Name)
	}
	for _, n := range append(dels, out.drops...) {
		v := h.vnets[n]
		delete(h.vnets, n)
		h.claimMu.Lock()
		var keys []string
		for _, d := range slices.Concat(v.spec.Devices, v.granted, v.inUse) {
			keys = append(keys, devKey(h.nsOf(v.spec), d))
		}
		h.dying[n] = keys
		h.claimMu.Unlock()
		stop = append(stop, v)
	}
	for _, i := range p.shows {
		results[i] = h.showVnets(nil)
	}
	return results, nil
}

// VnetRow is one row of show vnets.
type VnetRow struct {
	Name    string   `json:"name"`
	UID     int      `json:"uid,omitempty"`
	GID     int      `json:"gid,omitempty"`
	Socket  string   `json:"socket,omitempty"`
	Devices []string `json:"devices,omitempty"` // granted by root
	InUse   []string `json:"in_use,omitempty"`  // used by its ports
	Routes  string   `json:"routes,omitempty"`
	NetNS   string   `json:"netns,omitempty"`
}

// showVnets renders show vnets for every vnet, or only for only (a
// tenant's view). Caller holds h.mu.
func (h *Host) showVnets(only *Vnet) cmdlang.Result {
	rows := []VnetRow{}
	h.claimMu.Lock()
	for _, n := range h.sortedNames() {
		v := h.vnets[n]
		if only != nil && v != only {
			continue
		}
		r := VnetRow{Name: n, UID: -1, GID: -1, Socket: v.spec.Socket, Routes: v.spec.Routes, NetNS: h.nsOf(v.spec),
			Devices: slices.Concat(v.spec.Devices, v.granted), InUse: slices.Clone(v.inUse)}
		if n != Default {
			r.UID, r.GID = v.spec.UID, v.spec.GID
		}
		slices.Sort(r.Devices)
		r.Devices = slices.Compact(r.Devices)
		rows = append(rows, r)
	}
	h.claimMu.Unlock()
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "VNET\tOWNER\tSOCKET\tDEVICES\tIN USE\tROUTES DIR\tNETNS")
	for _, r := range rows {
		owner := "-"
		if r.UID >= 0 {
			owner = strconv.Itoa(r.UID)
			if r.GID >= 0 {
				owner += ":" + strconv.Itoa(r.GID)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, owner, dash(r.Socket), dash(strings.Join(r.Devices, ",")), dash(strings.Join(r.InUse, ",")), dash(r.Routes), dash(r.NetNS))
	}
	tw.Flush()
	return cmdlang.Result{Text: b.String(), Data: rows}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
