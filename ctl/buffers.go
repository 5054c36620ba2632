package ctl

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fwdd/fwdd/ctl/cmdlang"
	"github.com/fwdd/fwdd/fwd"
	"github.com/fwdd/fwdd/pmd"
)

// PoolMargin is the mbufs every worker pool must keep beyond what the
// ports hold in the kernel for as long as they run (pmd.Driver.Buffers,
// e.g. AF_XDP fill rings): room for packets in flight (receive bursts,
// transmit queues and rings), packets held for neighbour resolution, and
// the requests and answers the stack builds. A pool that cannot cover
// both starves silently (no buffer for an ARP answer, the fill rings run
// dry), so a port that would leave less is refused.
const PoolMargin = 1024

// portBuffers is one port's buffer need.
type portBuffers struct {
	name string
	need pmd.BufferNeed
}

// checkBuffers reports whether pools of poolSize mbufs each (one per
// worker, queue q of a port taking from pool poolOf(q)) cover what ports
// keep, plus PoolMargin. The error names the pool, the ports and what to
// raise, by how much.
func checkBuffers(ports []portBuffers, workers, poolSize int, poolOf func(q int) int) error {
	need := make([]int, workers)
	users := make([][]string, workers)
	for _, p := range ports {
		if p.need.PerQueue <= 0 || p.need.Queues <= 0 {
			continue
		}
		per := make([]int, workers)
		for q := range p.need.Queues {
			per[poolOf(q)%workers] += p.need.PerQueue
		}
		for i, n := range per {
			if n == 0 {
				continue
			}
			need[i] += n
			what := fmt.Sprintf("%s %d", p.name, n)
			if p.need.Arg != "" {
				what += fmt.Sprintf(" (%s %d x %d queues)", p.need.Arg, p.need.PerQueue, n/p.need.PerQueue)
			}
			users[i] = append(users[i], what)
		}
	}
	for i, n := range need {
		if n == 0 || n+PoolMargin <= poolSize {
			continue
		}
		return fmt.Errorf("mbuf pool of worker %d has %d mbufs, but the ports keep %d of them in the kernel while they run (%s) "+
			"and the stack needs %d more to work: raise the mbufs per worker (fwdd -mbufs) to at least %d (+%d), "+
			"or give the ports fewer queues or smaller rings",
			i, poolSize, n, strings.Join(users[i], ", "), PoolMargin, n+PoolMargin, n+PoolMargin-poolSize)
	}
	return nil
}

// checkPoolBuffers checks the buffer needs of every port of m against the
// running engine's pools, before a batch opens a port. Driver.Buffers may
// look the device up (its queue count): a quick netlink/ethtool query.
func (s *stack) checkPoolBuffers(m *model) error {
	pools := s.eng.Pools()
	if len(pools) == 0 {
		return nil
	}
	var ps []portBuffers
	for _, p := range m.sortedPorts() {
		// A port whose need cannot be told (its device is missing) is left
		// out: opening it fails with the driver's own error.
		if need, err := pmd.Buffers(p.Driver, pmd.Args(p.Args), s.opts.NetNS); err == nil {
			ps = append(ps, portBuffers{p.Name, need})
		}
	}
	return checkBuffers(ps, len(pools), pools[0].Count(), s.eng.QueuePool)
}

// CheckBuffers reports, as an *cmdlang.ExecError naming the port add that
// tips a pool over, whether the engine's pools (eng: workers and mbufs
// per worker, defaults filled in as the engine does) cover what the ports
// added by cmds keep in the kernel plus PoolMargin, their devices looked
// up in namespace netns. It opens nothing: fwdd -check calls it (per vnet).
func CheckBuffers(cmds []cmdlang.Command, netns string, eng fwd.Config) error {
	eng = eng.WithDefaults()
	var ps []portBuffers
	for _, c := range cmds {
		switch c := c.(type) {
		case *cmdlang.PortAdd:
			need, err := pmd.Buffers(c.Driver, pmd.Args(c.Args), netns)
			if err != nil {
				return &cmdlang.ExecError{Cmd: c, Err: err}
			}
			ps = append(ps, portBuffers{c.Name, need})
			if err := checkBuffers(ps, eng.Workers, eng.PoolSize, func(q int) int { return q % eng.Workers }); err != nil {
				return &cmdlang.ExecError{Cmd: c, Err: err}
			}
		case *cmdlang.PortDel:
			ps = slices.DeleteFunc(ps, func(p portBuffers) bool { return p.name == c.Name })
		}
	}
	return nil
}
