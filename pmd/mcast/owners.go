package mcast

import (
	"net"
	"sort"
)

// Owners records the groups each owner asked of a port that only passes
// them on to the ports below it (a lagg to its members, a VLAN to its
// parent): the names to release when the port closes, and the union to
// show. It is not safe for concurrent use: the port guards it with its
// own lock. The zero value (nil) is empty and ready to use.
type Owners map[string][]net.HardwareAddr

// Set records macs as what owner wants (empty: owner wants nothing and is
// forgotten).
func (o *Owners) Set(owner string, macs []net.HardwareAddr) {
	if len(macs) == 0 {
		delete(*o, owner)
		return
	}
	if *o == nil {
		*o = Owners{}
	}
	(*o)[owner] = macs
}

// Groups returns the groups some owner wants, each once, sorted; never
// nil (an empty list, not null, in JSON).
func (o Owners) Groups() []string {
	seen := map[string]bool{}
	out := []string{}
	for _, l := range o {
		for _, m := range l {
			if s := m.String(); !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}
