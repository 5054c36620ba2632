package lagg

import (
	"fmt"
	"time"

	"github.com/fwdd/fwdd/mbuf"
	"github.com/fwdd/fwdd/pmd"
)

// LACP timers (IEEE 802.1AX-2014 6.4.4).
const (
	fastPeriodic = 1 * time.Second
	slowPeriodic = 30 * time.Second
	shortTimeout = 3 * time.Second
	longTimeout  = 90 * time.Second
	// maxTxPerPeriod: at most 3 LACPDUs per fast periodic time (6.4.16).
	maxTxPerPeriod = 3
	// churnTime: a member out of sync this long is churning (6.4.17).
	churnTime = 60 * time.Second
)

// Receive machine states (6.4.12), simplified: INITIALIZE and
// LACP_DISABLED do not occur (LACP is always enabled on a lacp lagg's
// members).
type rxState uint8

const (
	rxDisabled  rxState = iota // PORT_DISABLED: link down
	rxExpired                  // EXPIRED: no LACPDU for a timeout
	rxDefaulted                // DEFAULTED: partner information is the default (none)
	rxCurrent                  // CURRENT: partner information is current
)

var rxNames = [...]string{"disabled", "expired", "defaulted", "current"}

// Mux machine states (6.4.15, coupled control: collecting and distributing
// together).
type muxState uint8

const (
	muxDetached muxState = iota
	muxAttached
	muxCollDist
)

var muxNames = [...]string{"detached", "attached", "collecting_distributing"}

// lacpPort is one member's LACP state; control goroutine only (Status
// reads it under Port.mu, which Service holds).
type lacpPort struct {
	actor        lacpInfo
	partner      lacpInfo
	rx           rxState
	mux          muxState
	selected     bool
	currentWhile time.Time
	lastTx       time.Time
	ntt          bool
	txWindow     time.Time
	txInWindow   int
	// Churn detection (6.4.17): since when the actor / the partner has
	// been out of sync (zero: in sync, or the link down); churning once
	// that lasts churnTime.
	actorOut, partnerOut     time.Time
	actorChurn, partnerChurn bool

	rxPDUs, txPDUs, rxMarkers, txMarkers, rxErrors, rxIgnored uint64
}

func (l *lacpPort) init(p *Port, port uint16) {
	st := uint8(stActivity | stAggregation | stDefaulted)
	if p.fast {
		st |= stTimeout
	}
	l.actor = lacpInfo{SysPrio: p.sysPrio, Sys: p.sys, Key: p.key, PortPrio: 0x8000, Port: port, State: st}
	l.partner = defaultPartner()
	l.rx = rxDisabled
}

// defaultPartner is the administrative partner information: none, its
// timeout short (so that a defaulted port keeps sending fast), not in sync.
func defaultPartner() lacpInfo { return lacpInfo{State: stTimeout} }

// Service runs the lagg on the control goroutine: link states, received
// LACP and marker frames, the LACP timers, selection and mux, periodic
// and needed transmissions, then publishes which members collect and
// distribute.
func (p *Port) Service(io pmd.ControlIO) { p.serviceAt(time.Now(), io) }

func (p *Port) serviceAt(now time.Time, io pmd.ControlIO) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	var one [1]*mbuf.Mbuf
	for p.ctl.DequeueBurst(one[:]) == 1 {
		m := one[0]
		if io != nil {
			p.input(m, now, io)
		}
		p.pools[m.PoolID()].Free(one[:])
	}
	p.refresh(now)
	if p.proto == ProtoLACP && io != nil {
		p.transmit(now, io)
	}
}

// input handles one slow-protocol frame received on a member.
func (p *Port) input(m *mbuf.Mbuf, now time.Time, io pmd.ControlIO) {
	mem := p.member(m.Port)
	d := m.Data()
	if mem == nil || len(d) < 14 {
		p.rxBad++
		return
	}
	kind, pdu, mk, err := parseSlow(d[14:])
	l := &mem.lacp
	if err != nil {
		l.rxErrors++
		return
	}
	if p.proto != ProtoLACP || !mem.up {
		l.rxIgnored++
		return
	}
	switch kind {
	case subtypeLACP:
		l.rxPDUs++
		p.recordPDU(mem, &pdu, now)
	case subtypeMarker:
		l.rxMarkers++
		if mk.Response {
			return
		}
		// Marker responder (6.5.4): answer on the same member.
		var f [1]*mbuf.Mbuf
		if io.Alloc(f[:]) == 1 {
			buildMarkerResponse(f[0].Append(frameLen), mem.mac, mk)
			io.Send(mem.id, f[:])
			l.txMarkers++
		}
	}
}

// recordPDU is the receive machine's CURRENT entry (6.4.12): update
// selection, record the partner, check matched, restart current_while.
func (p *Port) recordPDU(mem *member, pdu *lacpdu, now time.Time) {
	l := &mem.lacp
	if !pdu.Actor.sameAgg(l.partner) || pdu.Actor.State&stAggregation != l.partner.State&stAggregation {
		l.selected = false // update_Selected
	}
	// update_NTT: the partner's view of us is out of date.
	const cmp = stActivity | stTimeout | stSync | stAggregation
	if !pdu.Partner.sameAgg(l.actor) || pdu.Partner.State&cmp != l.actor.State&cmp {
		l.ntt = true
	}
	matched := pdu.Partner.sameAgg(l.actor) && pdu.Partner.State&stAggregation == l.actor.State&stAggregation
	l.partner = pdu.Actor
	if !(matched && pdu.Actor.State&stSync != 0) {
		l.partner.State &^= stSync
	}
	l.actor.State &^= stDefaulted | stExpired
	l.rx = rxCurrent
	l.currentWhile = now.Add(l.timeout())
}

func (l *lacpPort) timeout() time.Duration {
	if l.actor.State&stTimeout != 0 {
		return shortTimeout
	}
	return longTimeout
}

func (p *Port) member(id uint16) *member {
	for _, m := range p.members {
		if m.id == id {
			return m
		}
	}
	return nil
}

// refresh reads the members' links, runs the LACP timers, selection and
// mux, and publishes the collecting gates and the transmit set.
func (p *Port) refresh(now time.Time) {
	for _, m := range p.members {
		ln := m.port.Link()
		up := ln.Up && ln.Present
		l := &m.lacp
		switch {
		case !up && m.up, !up && l.rx != rxDisabled:
			l.rx, l.selected = rxDisabled, false
			l.partner.State &^= stSync
		case up && !m.up:
			// Port enabled: EXPIRED with a short timeout (6.4.12).
			l.rx = rxExpired
			l.partner.State &^= stSync
			l.partner.State |= stTimeout
			l.actor.State |= stExpired
			l.currentWhile = now.Add(shortTimeout)
			l.ntt = true
		}
		m.up = up
		if p.proto != ProtoLACP || !up {
			continue
		}
		if now.After(l.currentWhile) {
			switch l.rx {
			case rxCurrent:
				l.rx = rxExpired
				l.partner.State &^= stSync
				l.partner.State |= stTimeout
				l.actor.State |= stExpired
				l.currentWhile = now.Add(shortTimeout)
			case rxExpired:
				// DEFAULTED: the partner is gone.
				l.rx = rxDefaulted
				l.partner = defaultPartner()
				l.actor.State |= stDefaulted
				l.actor.State &^= stExpired
				l.selected = false
			}
		}
	}
	if p.proto == ProtoLACP {
		p.selectAggregator()
		p.runMux()
		for _, m := range p.members {
			m.lacp.churn(m.up, now)
		}
	}
	p.publish()
}

// churn runs the actor and partner churn detection machines (6.4.17): a
// member whose actor or partner stays out of sync for churnTime is
// flagged (show lagg, metrics) until it is in sync again; a disabled
// port starts over. An indication for the operator (a partner that never
// agrees: wrong key, another aggregator, a misconfigured peer), with no
// effect on the protocol.
func (l *lacpPort) churn(up bool, now time.Time) {
	run := func(inSync bool, since *time.Time, flag *bool) {
		switch {
		case !up:
			*since, *flag = time.Time{}, false
		case inSync:
			*since, *flag = time.Time{}, false
		case since.IsZero():
			*since = now
		case now.Sub(*since) >= churnTime:
			*flag = true
		}
	}
	run(l.actor.State&stSync != 0, &l.actorOut, &l.actorChurn)
	run(l.partner.State&stSync != 0, &l.partnerOut, &l.partnerChurn)
}

// selectAggregator is the selection logic (6.4.14) for the lagg's one
// aggregator: members whose partner (system, key) is the aggregator's are
// selected; the aggregator binds to the partner most up members see (the
// current one while it keeps members); others stay standby.
func (p *Port) selectAggregator() {
	type pk struct {
		prio uint16
		sys  [6]byte
		key  uint16
	}
	count := map[pk]int{}
	var order []pk
	for _, m := range p.members {
		l := &m.lacp
		if !m.up || l.rx == rxDisabled || l.rx == rxDefaulted || l.partner.State&stAggregation == 0 {
			continue
		}
		k := pk{l.partner.SysPrio, l.partner.Sys, l.partner.Key}
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	cur := pk{p.aggPartner.SysPrio, p.aggPartner.Sys, p.aggPartner.Key}
	if !p.aggBound || count[cur] == 0 {
		p.aggBound = false
		best := 0
		for _, k := range order {
			if count[k] > best {
				best, cur = count[k], k
			}
		}
		if best > 0 {
			p.aggBound = true
			p.aggPartner = lacpInfo{SysPrio: cur.prio, Sys: cur.sys, Key: cur.key}
		}
	}
	for _, m := range p.members {
		l := &m.lacp
		sel := p.aggBound && m.up && (l.rx == rxCurrent || l.rx == rxExpired) && l.partner.State&stAggregation != 0 &&
			(pk{l.partner.SysPrio, l.partner.Sys, l.partner.Key}) == cur
		l.selected = sel
	}
}

// runMux moves each member's mux machine (coupled control) and sets its
// actor sync, collecting and distributing bits; a change is sent at once.
func (p *Port) runMux() {
	for _, m := range p.members {
		l := &m.lacp
		old := l.actor.State
		switch {
		case !l.selected:
			l.mux = muxDetached
			l.actor.State &^= stSync | stCollecting | stDistributing
		case l.partner.State&stSync != 0 && l.rx == rxCurrent:
			l.mux = muxCollDist
			l.actor.State |= stSync | stCollecting | stDistributing
		default:
			l.mux = muxAttached
			l.actor.State |= stSync
			l.actor.State &^= stCollecting | stDistributing
		}
		if l.actor.State != old {
			l.ntt = true
		}
	}
}

// publish sets the members' collecting gates and the transmit set.
func (p *Port) publish() {
	set := &txSet{}
	add := func(i int, m *member) {
		set.ports = append(set.ports, m.port)
		set.idx = append(set.idx, i)
	}
	for i, m := range p.members {
		switch p.proto {
		case ProtoLACP:
			m.collecting.Store(m.up && m.lacp.mux == muxCollDist)
			if m.up && m.lacp.mux == muxCollDist {
				add(i, m)
			}
		case ProtoFailover:
			// The active member is the first up one; only it receives
			// unless failover_rx_all (FreeBSD: frames on the others are
			// dropped, so a peer that disagrees on the active member
			// does not get its traffic half through).
			active := m.up && len(set.ports) == 0
			m.collecting.Store(active || (m.up && p.rxAll))
			if active {
				add(i, m)
			}
		default:
			m.collecting.Store(m.up)
			if m.up {
				add(i, m)
			}
		}
	}
	if old := p.active.Load(); old != nil && sameSet(old, set) {
		return
	}
	p.active.Store(set)
}

func sameSet(a, b *txSet) bool {
	if len(a.idx) != len(b.idx) {
		return false
	}
	for i := range a.idx {
		if a.idx[i] != b.idx[i] {
			return false
		}
	}
	return true
}

// transmit sends the LACPDUs due: periodic ones (fast while the partner
// asks for short timeouts) and those a state change needs, at most 3 per
// second per member.
func (p *Port) transmit(now time.Time, io pmd.ControlIO) {
	// Members removed live: one last LACPDU, out of sync (Reconfigure).
	for _, d := range p.departed {
		var f [1]*mbuf.Mbuf
		if io.Alloc(f[:]) != 1 {
			break
		}
		buildLACPDU(f[0].Append(frameLen), d.mac, d.actor, d.part)
		io.Send(d.id, f[:])
	}
	p.departed = p.departed[:0]
	for _, m := range p.members {
		l := &m.lacp
		if !m.up {
			continue
		}
		period := slowPeriodic
		if l.partner.State&stTimeout != 0 {
			period = fastPeriodic
		}
		if now.Sub(l.lastTx) >= period {
			l.ntt = true
		}
		if !l.ntt {
			continue
		}
		if now.Sub(l.txWindow) >= fastPeriodic {
			l.txWindow, l.txInWindow = now, 0
		}
		if l.txInWindow >= maxTxPerPeriod {
			continue
		}
		var f [1]*mbuf.Mbuf
		if io.Alloc(f[:]) != 1 {
			return
		}
		buildLACPDU(f[0].Append(frameLen), m.mac, l.actor, l.partner)
		io.Send(m.id, f[:])
		l.ntt = false
		l.lastTx = now
		l.txInWindow++
		l.txPDUs++
	}
}

// Status renders the members for "show lagg" and the metrics.
func (p *Port) Status() pmd.Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := pmd.Status{Columns: []string{"lagg", "proto", "member", "link", "state", "actor", "partner_system", "partner_key", "partner_port", "partner_state", "lacpdu_rx", "lacpdu_tx", "rx_errors"}}
	active := p.active.Load()
	for i, m := range p.members {
		state := "standby"
		for _, j := range active.idx {
			if j == i {
				state = "active"
			}
		}
		l := &m.lacp
		link := "down"
		if m.up {
			link = "up"
		}
		row := []string{p.info.Name, p.proto, m.name, link, state, "-", "-", "-", "-", "-",
			fmt.Sprint(l.rxPDUs), fmt.Sprint(l.txPDUs), fmt.Sprint(l.rxErrors)}
		if p.proto == ProtoLACP {
			row[4] = state + "," + rxNames[l.rx] + "," + muxNames[l.mux]
			if l.actorChurn {
				row[4] += ",actor_churn"
			}
			if l.partnerChurn {
				row[4] += ",partner_churn"
			}
			row[5] = stateString(l.actor.State)
			if l.rx == rxCurrent || l.rx == rxExpired {
				row[6] = fmt.Sprintf("%04x,%02x:%02x:%02x:%02x:%02x:%02x", l.partner.SysPrio,
					l.partner.Sys[0], l.partner.Sys[1], l.partner.Sys[2], l.partner.Sys[3], l.partner.Sys[4], l.partner.Sys[5])
				row[7] = fmt.Sprintf("%d", l.partner.Key)
				row[8] = fmt.Sprintf("%d", l.partner.Port)
				row[9] = stateString(l.partner.State)
			}
		}
		st.Rows = append(st.Rows, row)
		g := func(name, info string, v float64) pmd.Gauge {
			return pmd.Gauge{Port: p.info.Name, Member: m.name, Name: name, Info: info, Value: v}
		}
		partner := ""
		if l.rx == rxCurrent || l.rx == rxExpired {
			partner = row[6]
		}
		st.Gauges = append(st.Gauges,
			g("lagg_member_active", "", b2f(state == "active")),
			g("lagg_member_link_up", "", b2f(m.up)),
			g("lagg_lacp_actor_state", "", float64(l.actor.State)),
			g("lagg_lacp_partner_state", "", float64(l.partner.State)),
			g("lagg_lacp_partner_key", "", float64(l.partner.Key)),
			g("lagg_lacp_partner_system", partner, b2f(partner != "")),
			g("lagg_lacp_actor_churn", "", b2f(l.actorChurn)),
			g("lagg_lacp_partner_churn", "", b2f(l.partnerChurn)),
			g("lagg_lacpdu_rx", "", float64(l.rxPDUs)),
			g("lagg_lacpdu_tx", "", float64(l.txPDUs)),
		)
	}
	return st
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// stateString renders state bits as FreeBSD's ifconfig does:
// ACTIVITY,TIMEOUT,AGGREGATION,SYNC,COLLECTING,DISTRIBUTING,DEFAULTED,EXPIRED.
func stateString(s uint8) string {
	names := []string{"activity", "timeout", "aggregation", "sync", "collecting", "distributing", "defaulted", "expired"}
	out := ""
	for i, n := range names {
		if s&(1<<i) != 0 {
			if out != "" {
				out += ","
			}
			out += n
		}
	}
	if out == "" {
		return "-"
	}
	return out
}
