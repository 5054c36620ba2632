package cmdlang

import "github.com/fwdd/fwdd/pmd"

// Help is the grammar summary printed by "fwdctl help" and the interactive
// prompt. One command per line; '#' starts a comment; keyword arguments
// come in any order after the verb and its positional arguments.
const Help = `set KEY VALUE                               set a sysctl-like key (net.fibs 4); keys:
    net.fibs N                 FIBs 0..N-1 (default 1)
    net.icmp.ratelimit N       ICMP errors per second per worker (0: unlimited)
    net.icmp.burst N           ICMP errors sent back to back per worker
    net.neigh.max_entries N    neighbour (ARP+NDP) entries in all, static included;
                               at the limit an unused STALE or FAILED entry is evicted
    net.neigh.max_per_port N   neighbour entries of one port (max_entries bounds the sum)
    net.neigh.max_incomplete N entries being resolved, all ports; beyond it a miss evicts one
                               a single packet wanted and got no answer, or is refused
    net.neigh.hold N           packets held per unresolved neighbour (oldest dropped)
    net.neigh.max_held N       packets held over all unresolved neighbours
    net.neigh.max_requests N   ARP requests and NS sent per second, all ports
get KEY
port add NAME driver DRIVER [fib N] [mtu N] [lcp IFNAME] [KEY VALUE|KEY=VALUE]...
                                            e.g. driver afxdp dev r0 queues 2 mode zerocopy
                                            lcp IFNAME: a kernel interface for the host's traffic
port set NAME [fib N] [mtu N] [up|down] [lcp IFNAME|off] [join|leave MAC]... [KEY VALUE|-KEY VALUE]...
                                            driver arguments, e.g. laggport m2 -laggport m1
port del NAME
addr add|del PORT ADDR/LEN                  IPv4 or IPv6; adds the connected route
route add PREFIX via ADDR [via ADDR]... [dev PORT] [fib N]     (several via: ECMP)
route add PREFIX dev PORT [fib N]
route add PREFIX blackhole|reject [fib N]
route del PREFIX [fib N]
route get ADDR [fib N]
route load FILE [fib N] [via ADDR]... [dev PORT] [blackhole|reject]
rule add [ID] [in PORT] [fib N] [from PFX|any] [to PFX|any]
         [proto udp|tcp|sctp|icmp|icmp6|NUM] [sport N[-M]] [dport N[-M]]
         setfib N | count | drop
rule del ID
neigh add PORT ADDR lladdr MAC
neigh del PORT ADDR
lcp fib N table T|off                       kernel table T feeds FIB N (default: fib 0 table main)
show lcp                                    kernel interfaces, table->FIB map, mirror counters
show ports | routes [fib N] [inet|inet6] | neigh [PORT] | rules | fibs | stats | sysctl [PREFIX] | vnets
show trace | workers
trace add N [port P] [from PFX] [to PFX]    record every decision for the next N matching packets
trace clear
capture PORT [rx|tx|both] [count N] [snaplen N] [duration D] [pcapng]
                                            (fwdctl capture ... -w FILE|-)
monitor [routes|neigh|ports|rules|lcp|config|all]...   stream changes (fwdctl monitor)
vnet add NAME [owner UID[:GID]] [socket PATH] [devices DEV,...] [routes DIR] [netns NS]
                                            an isolated stack; socket: its tenant's control socket
vnet del NAME
vnet NAME COMMAND                           run COMMAND in vnet NAME (no prefix: vnet default)
`

// HelpText is Help followed by the drivers linked into this program and
// their arguments, from their own descriptions (pmd.Driver.Args).
func HelpText() string {
	return Help + "\nDrivers (port add NAME driver DRIVER [KEY VALUE]...):\n" + pmd.Usage()
}
