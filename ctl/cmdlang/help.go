package cmdlang

// Help is the grammar summary printed by "fwdctl help" and the interactive
// prompt. One command per line; '#' starts a comment; keyword arguments
// come in any order after the verb and its positional arguments.
const Help = `set KEY VALUE                               set a sysctl-like key (net.fibs 4)
get KEY
port add NAME driver DRIVER [fib N] [mtu N] [KEY VALUE|KEY=VALUE]...
                                            e.g. driver afxdp dev r0 queues 2 mode zerocopy
port set NAME [fib N] [mtu N] [up|down]
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
show ports | routes [fib N] [inet|inet6] | neigh [PORT] | rules | fibs | stats | sysctl [PREFIX] | vnets
vnet add NAME [owner UID[:GID]] [socket PATH] [devices DEV,...] [routes DIR]
                                            an isolated stack; socket: its tenant's control socket
vnet del NAME
vnet NAME COMMAND                           run COMMAND in vnet NAME (no prefix: vnet default)
`
