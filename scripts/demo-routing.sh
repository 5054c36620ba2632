#!/usr/bin/env bash
# make demo-routing: fwdd driven by a routing daemon. BIRD in a peer
# namespace announces prefixes over eBGP to BIRD running beside fwdd, over
# fwdd's kernel interface e0 (lcp); BIRD installs them in the kernel, the
# netlink mirror puts them in fwdd's FIB, and traffic from a host crosses
# fwdd to them. A withdrawal removes them again.
#
#   peer (ns fwdd-rdemo-peer)         router (ns fwdd-rdemo-r)               host (ns fwdd-rdemo-h)
#   BIRD AS 65002                      fwdd p0 [lcp e0]  p1 [lcp e1]
#   stub0 198.19.64.1/24, 198.19.65.1/24   BIRD AS 65001 on e0
#   2001:2:64::1/64
#   h1 198.18.1.2/24  <-veth->  r0                    r1  <-veth->  h2 198.19.2.2/24
#
# Everything is created here and removed again on exit, Ctrl-C included.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh

[ "$(id -u)" = 0 ] || die "make demo-routing needs root (namespaces, veth, TAP, XDP): run sudo make demo-routing"
for c in ip ping bird birdc; do command -v $c >/dev/null || die "missing $c: apt-get install iproute2 iputils-ping bird2"; done

PEER=fwdd-rdemo-peer RT=fwdd-rdemo-r H=fwdd-rdemo-h
WORK=
FWDD_PID=

cleanup() {
	set +e
	if [ -n "$WORK" ]; then
		for s in $WORK/rt.ctl $WORK/peer.ctl; do [ -S $s ] && birdc -s $s down >/dev/null 2>&1; done
		for p in $WORK/rt.pid $WORK/peer.pid; do [ -s $p ] && kill "$(cat $p)" 2>/dev/null; done
	fi
	if [ -n "$FWDD_PID" ] && kill -0 "$FWDD_PID" 2>/dev/null; then
		kill -TERM "$FWDD_PID"; wait "$FWDD_PID" 2>/dev/null
	fi
	for ns in $PEER $RT $H; do ip netns del $ns 2>/dev/null; done
	[ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; warn "interrupted: cleaning up"; exit 130' INT TERM
cleanup
WORK=$(mktemp -d /tmp/fwdd-rdemo.XXXXXX)
SOCK=$WORK/fwdd.sock

say "Building fwdd"
make -s build
ok "bin/fwdd, bin/fwdctl"

say "Creating a BGP peer, a router and a host (namespaces joined by veth pairs)"
for ns in $PEER $RT $H; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add h1 netns $PEER type veth peer name r0 netns $RT
ip link add h2 netns $H type veth peer name r1 netns $RT
# The peer's announced networks live on a stub veth pair inside it.
ip -n $PEER link add stub0 type veth peer name stub1
for l in "$PEER h1" "$PEER stub0" "$PEER stub1" "$H h2" "$RT r0" "$RT r1"; do set -- $l; ip -n $1 link set $2 up; done
if command -v ethtool >/dev/null; then
	ip netns exec $PEER ethtool -K h1 tx off >/dev/null 2>&1 || true
	ip netns exec $H ethtool -K h2 tx off >/dev/null 2>&1 || true
fi
ip -n $PEER addr add 198.18.1.2/24 dev h1
ip -n $PEER addr add 2001:2:0:1::2/64 dev h1 nodad
ip -n $PEER route add default via 198.18.1.1
ip -n $PEER -6 route add default via 2001:2:0:1::1
ip -n $PEER addr add 198.19.64.1/24 dev stub0
ip -n $PEER addr add 198.19.65.1/24 dev stub0
ip -n $PEER addr add 2001:2:64::1/64 dev stub0 nodad
ip -n $H addr add 198.19.2.2/24 dev h2
ip -n $H addr add 2001:2:0:2::2/64 dev h2 nodad
ip -n $H route add default via 198.19.2.1
ip -n $H -6 route add default via 2001:2:0:2::1
ok "peer 198.18.1.2 <-> [r0 fwdd r1] <-> host 198.19.2.2"

DRIVER=${FWDD_DRIVER:-afxdp}
fwdd_config() {
	cat <<EOF
# fwdd with kernel interfaces: e0 and e1 appear in the router namespace.
port add p0 driver $DRIVER dev r0 lcp e0
port add p1 driver $DRIVER dev r1 lcp e1
addr add p0 198.18.1.1/24
addr add p0 2001:2:0:1::1/64
addr add p1 198.19.2.1/24
addr add p1 2001:2:0:2::1/64
EOF
}
say "Starting fwdd in the router namespace ($DRIVER on r0 and r1, kernel interfaces e0 and e1)"
start_fwdd_or_afpacket
indent < $WORK/fwdd.conf
ctl() { ./bin/fwdctl -s $SOCK "$@"; }
ok "fwdd is up (pid $FWDD_PID); its kernel interfaces:"
ip -n $RT -br link show type tun 2>/dev/null | indent || ip -n $RT -br link | grep -E '^e[01] ' | indent
# fwdd's addresses appear on e0/e1 by themselves (the netlink mirror).
for _ in $(seq 200); do ip -n $RT addr show dev e0 | grep -q 198.18.1.1/24 && break; sleep 0.1; done
ip -n $RT -br addr show dev e0 | indent
ip -n $RT -br addr show dev e1 | indent
ip -n $RT addr show dev e0 | grep -q 198.18.1.1/24 && ok "fwdd's addresses are on its kernel interfaces" \
	|| die "fwdd's address 198.18.1.1 did not appear on e0"

TIMERS='connect delay time 1; connect retry time 2; error wait time 1, 5; hold time 9; keepalive time 3;'
cat > $WORK/rt.conf <<EOF
# BIRD beside fwdd: learns over e0, installs into the kernel's main table.
router id 198.18.1.1;
protocol device { scan time 1; }
protocol kernel k4 { ipv4 { import none; export all; }; }
protocol kernel k6 { ipv6 { import none; export all; }; }
protocol bgp peer4 { local 198.18.1.1 as 65001; neighbor 198.18.1.2 as 65002; $TIMERS ipv4 { import all; export none; }; }
protocol bgp peer6 { local 2001:2:0:1::1 as 65001; neighbor 2001:2:0:1::2 as 65002; $TIMERS ipv6 { import all; export none; }; }
EOF
cat > $WORK/peer.conf <<EOF
# The peer announces its stub networks.
router id 198.18.1.2;
protocol device { scan time 1; }
protocol direct announced { ipv4; ipv6; interface "stub0"; }
protocol bgp up4 { local 198.18.1.2 as 65002; neighbor 198.18.1.1 as 65001; $TIMERS ipv4 { import none; export where proto = "announced"; }; }
protocol bgp up6 { local 2001:2:0:1::2 as 65002; neighbor 2001:2:0:1::1 as 65001; $TIMERS ipv6 { import none; export where proto = "announced"; }; }
EOF
say "Starting BIRD beside fwdd (AS 65001, on e0) and in the peer (AS 65002)"
ip netns exec $RT bird -c $WORK/rt.conf -s $WORK/rt.ctl -P $WORK/rt.pid
ip netns exec $PEER bird -c $WORK/peer.conf -s $WORK/peer.ctl -P $WORK/peer.pid
for _ in $(seq 300); do
	birdc -s $WORK/rt.ctl show protocols peer4 2>/dev/null | grep -q Established && break; sleep 0.1
done
birdc -s $WORK/rt.ctl show protocols | indent
birdc -s $WORK/rt.ctl show protocols peer4 | grep -q Established && ok "eBGP is established over fwdd's kernel interface e0" \
	|| die "the BGP session did not come up"

say "BIRD put the routes in the kernel; fwdd mirrors them into its FIB"
for _ in $(seq 200); do ctl show routes | grep -q 198.19.64.0/24 && break; sleep 0.1; done
ip -n $RT route show proto bird | indent
ip -n $RT -6 route show proto bird | indent
echo "    fwdctl show routes:"
ctl show routes | indent
echo "    learned from the kernel (origin in fwdctl -j show routes):"
ctl -j show routes | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if r.get("origin") == "kernel":
        print("      %-16s via %s  %s  origin kernel" % (r["destination"], ",".join(r.get("gateways") or ["-"]), r.get("netif", "")))
' 2>/dev/null || true
if ctl show routes | grep -q 198.19.64.0/24; then
	ok "the learned routes are in fwdd's FIB"
else
	warn "fwdd's FIB does not have the BGP routes: this fwdd has no netlink mirror (nlmirror) yet"
fi

say "Traffic from the host to the announced networks crosses fwdd"
ip netns exec $H ping -c 3 -i 0.2 -W 2 198.19.64.1 | indent && ok "host -> 198.19.64.1 through fwdd" || warn "ping failed"
ip netns exec $H ping -6 -c 3 -i 0.2 -W 2 2001:2:64::1 | indent && ok "host -> 2001:2:64::1 through fwdd" || warn "ping6 failed"
ctl show stats | grep -E 'forwarded|punted_lcp|^lcp|punted|injected' | indent || true

say "The peer withdraws its routes"
birdc -s $WORK/peer.ctl disable announced | indent
for _ in $(seq 200); do ctl show routes | grep -q 198.19.64.0/24 || break; sleep 0.1; done
ctl show routes | indent
ctl show routes | grep -q 198.19.64.0/24 && warn "198.19.64.0/24 is still in fwdd's FIB" || ok "198.19.64.0/24 left fwdd's FIB"
ip netns exec $H ping -c 2 -W 1 198.19.64.1 2>&1 | indent || true
ok "the host now gets 'Destination Net Unreachable' from fwdd (198.19.2.1)"

say "Stopping BIRD and fwdd"
birdc -s $WORK/rt.ctl down >/dev/null; birdc -s $WORK/peer.ctl down >/dev/null
kill -TERM $FWDD_PID; wait $FWDD_PID && ok "fwdd exited cleanly" || warn "fwdd exit status $?"
FWDD_PID=
ip -n $RT link show e0 >/dev/null 2>&1 && warn "e0 is still there" || ok "its kernel interfaces are gone with it"
printf '\n%sDone.%s See docs/routing.md for BIRD and FRR configurations.\n' "$B" "$N"
