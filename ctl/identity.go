package ctl

import (
	"bytes"
)

// identityCheck re-reads every port's identity (MAC, MTU, ifindex) from its
// driver, which re-reads it from the kernel at every attach: an interface
// deleted and re-created, or given a new MAC or MTU, changes it. A change
// is propagated to everything that uses it: the neighbour table (ARP and
// NDP answers, requests and the rewrite of held packets carry the new MAC,
// and the new MAC is announced), the workers' port state (the MAC they
// accept and rewrite with, the MTU) and the port's kernel interface if it
// has one (syncLCP, from the publish), for which it returns true (the
// caller republishes).
//
// It runs on every control tick (100 ms) and at once when a driver reports
// a link change (pmd.Config.LinkChanged, netlink-driven in afxdp and
// afpacket).
//
// The dynamic neighbours of a port whose device vanished (Link().Present
// went false) or was replaced (a new ifindex), whose link went down (seen
// down here, or Link().Downs moved: a flap shorter than this 100 ms poll),
// or whose MAC changed are flushed: they were learned on a link that went
// away, and a peer that comes back may have a new MAC (Linux flushes on
// carrier loss too). Without it, traffic would go on to the old MAC until
// the entry's probes failed (seconds). Static entries are configuration
// and stay. Control goroutine only.
func (s *stack) identityCheck() (republish bool) {
	for _, lp := range s.live {
		link := lp.port.Link()
		info := lp.port.Info()
		replaced := info.IfIndex != lp.info.IfIndex && lp.info.IfIndex != 0
		wentDown := (!link.Up && !lp.down) || link.Downs != lp.downs
		macChanged := !bytes.Equal(info.MAC, lp.info.MAC) && len(lp.info.MAC) > 0
		if (!link.Present && !lp.gone) || replaced || wentDown || macChanged {
			n := s.nb.t.FlushDynamic(lp.id)
			s.log.Info("port link down, device gone or replaced, or MAC changed: neighbours flushed", "port", lp.model.Name,
				"present", link.Present, "up", link.Up, "downs", link.Downs, "ifindex", info.IfIndex,
				"mac", info.MAC.String(), "flushed", n)
		}
		lp.gone = !link.Present
		lp.down, lp.downs = !link.Up, link.Downs
		if bytes.Equal(info.MAC, lp.info.MAC) && info.MTU == lp.info.MTU && info.IfIndex == lp.info.IfIndex {
			continue
		}
		s.log.Info("port identity changed", "port", lp.model.Name, "mac", info.MAC.String(), "mtu", info.MTU,
			"ifindex", info.IfIndex, "old_mac", lp.info.MAC.String(), "old_mtu", lp.info.MTU, "old_ifindex", lp.info.IfIndex)
		lp.info = info
		if lp.model.MTU == 0 {
			lp.mtu = info.MTU
		}
		s.setNeighPort(lp)
		republish = true
	}
	if republish {
		s.nb.t.Publish()
	}
	return republish
}
