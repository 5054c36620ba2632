package lagg

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/fwdd/fwdd/pmd"
)

var _ pmd.Reconfigurer = (*Port)(nil)

// departed is a member removed live, owed a last LACPDU: its actor state
// out of sync, not collecting nor distributing, so that the partner stops
// sending on that link at once instead of after its timeout.
type departed struct {
	id    uint16
	mac   [6]byte
	actor lacpInfo
	part  lacpInfo
}

// Reconfigure takes a change of members live (pmd.Reconfigurer): port set
// lagg0 laggport m2 / -laggport m1. A member added starts its own LACP
// machine (the others keep theirs, their partner and their traffic); a
// member removed stops collecting and distributing at once, leaves the
// transmit set (the stack then waits for its workers: no TxBurst reaches
// it through the lagg any more), gives back the multicast groups the lagg
// asked of it (the slow-protocols group included) and its claim, and is
// sent one last LACPDU out of sync. Any other change (proto, hash, lacp),
// a member with fewer transmit queues or a smaller MTU than the lagg, or a
// member that is not the same port any more, needs a reopen (ErrReopen).
func (p *Port) Reconfigure(cfg pmd.Config) (func(), error) {
	a := cfg.Args
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("lagg: closed: %w", pmd.ErrReopen)
	}
	for _, k := range []struct{ name, was string }{
		{"proto", p.proto}, {"hash", p.hashArg}, {"lacp", p.lacpArg},
	} {
		def := Args[slices.IndexFunc(Args, func(x pmd.Arg) bool { return x.Name == k.name })].Default
		if a.Str(k.name, def) != k.was {
			return nil, fmt.Errorf("lagg: %s changed: %w", k.name, pmd.ErrReopen)
		}
	}
	if rxAll, err := a.Bool("failover_rx_all", false); err != nil {
		return nil, fmt.Errorf("lagg: %w", err)
	} else if rxAll != p.rxAll {
		return nil, fmt.Errorf("lagg: failover_rx_all changed: %w", pmd.ErrReopen)
	}
	names := a.List("laggport")
	if len(names) == 0 {
		return nil, fmt.Errorf("lagg: no members: name them with laggport PORT (a lagg without members is an error)")
	}
	if len(names) > MaxMembers {
		return nil, fmt.Errorf("lagg: %d members, at most %d (name fewer laggport members)", len(names), MaxMembers)
	}
	if cfg.Lookup == nil {
		return nil, fmt.Errorf("lagg: this stack gives drivers no other ports (pmd.Config.Lookup)")
	}
	old := map[string]*member{}
	for _, m := range p.members {
		old[m.name] = m
	}
	var next []*member
	var added []*member
	for _, n := range names {
		mp, id, ok := cfg.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("lagg: laggport %s: no such port (port add %s first)", n, n)
		}
		if m, ok := old[n]; ok {
			if m.port != mp || m.id != id {
				return nil, fmt.Errorf("lagg: laggport %s is another port now: %w", n, pmd.ErrReopen)
			}
			next = append(next, m)
			continue
		}
		if _, stacked := mp.(pmd.Stacked); stacked {
			return nil, fmt.Errorf("lagg: laggport %s: a %s port cannot be a member (members are ports on devices)", n, mp.Info().Driver)
		}
		info := mp.Info()
		if info.TxQueues < len(p.qs) {
			return nil, fmt.Errorf("lagg: laggport %s has %d transmit queues, the lagg %d: %w", n, info.TxQueues, len(p.qs), pmd.ErrReopen)
		}
		if info.MTU < p.info.MTU {
			return nil, fmt.Errorf("lagg: laggport %s has MTU %d, the lagg %d: %w", n, info.MTU, p.info.MTU, pmd.ErrReopen)
		}
		m := &member{port: mp, id: id, name: n}
		copy(m.mac[:], info.MAC)
		next = append(next, m)
		added = append(added, m)
	}
	if p.shared != nil {
		var clash string
		p.shared.Do(func(sh map[any]any) {
			for _, m := range added {
				if o, ok := sh[memberKey{m.id}].(string); ok && o != p.info.Name {
					clash = fmt.Sprintf("lagg: laggport %s is a member of %s already (a port belongs to at most one lagg)", m.name, o)
					return
				}
			}
		})
		if clash != "" {
			return nil, fmt.Errorf("%s", clash)
		}
	}
	var gone []*member
	for _, m := range p.members {
		if !slices.Contains(next, m) {
			gone = append(gone, m)
		}
	}
	return func() { p.applyMembers(next, added, gone, cfg.Logger()) }, nil
}

// applyMembers makes the member change Reconfigure checked.
func (p *Port) applyMembers(next, added, gone []*member, log *slog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	used := map[uint16]bool{}
	for _, m := range next {
		if !slices.Contains(added, m) {
			used[m.lacp.actor.Port] = true
		}
	}
	for _, m := range added {
		num := uint16(1)
		for used[num] {
			num++
		}
		used[num] = true
		m.lacp.init(p, num)
	}
	for _, m := range added {
		m.atJoin = m.since()
	}
	for _, m := range gone {
		p.base.Add(m.since())
		m.collecting.Store(false)
		if p.proto == ProtoLACP && m.up {
			d := departed{id: m.id, mac: m.mac, actor: m.lacp.actor, part: m.lacp.partner}
			d.actor.State &^= stSync | stCollecting | stDistributing
			p.departed = append(p.departed, d)
		}
	}
	p.members = next
	if p.shared != nil {
		p.shared.Do(func(sh map[any]any) {
			for _, m := range gone {
				if sh[memberKey{m.id}] == p.info.Name {
					delete(sh, memberKey{m.id})
				}
			}
			for _, m := range added {
				sh[memberKey{m.id}] = p.info.Name
			}
		})
	}
	// Multicast: the departed give back what the lagg asked of them, the
	// new ones get it.
	for o, groups := range p.owners {
		for _, m := range gone {
			if mc, ok := m.port.(pmd.Multicaster); ok {
				if err := mc.SetMulticast(p.info.Name+"/"+o, nil); err != nil {
					log.Warn("lagg: leaving multicast groups on a removed member", "port", p.info.Name, "member", m.name, "err", err)
				}
			}
		}
		for _, m := range added {
			if mc, ok := m.port.(pmd.Multicaster); ok {
				if err := mc.SetMulticast(p.info.Name+"/"+o, groups); err != nil {
					log.Warn("lagg: joining multicast groups on a new member", "port", p.info.Name, "member", m.name, "err", err)
				}
			}
		}
	}
	p.refresh(time.Now())
}
