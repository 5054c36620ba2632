#!/usr/bin/env bash
# make demo: fwdd routing between two Linux hosts, in five minutes or less.
#
#   host1 (ns fwdd-demo-h1)          router (ns fwdd-demo-r)           host2 (ns fwdd-demo-h2)
#   h1: 198.18.1.2/24      <-veth->  r0  [ fwdd: p0   p1 ]  r1  <-veth->  h2: 198.19.2.2/24
#       2001:2:0:1::2/64                                                      2001:2:0:2::2/64
#
# Everything is created here and removed again on exit, Ctrl-C included.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh

[ "$(id -u)" = 0 ] || die "make demo needs root (namespaces, veth, XDP): run sudo make demo"
for c in ip ping; do command -v $c >/dev/null || die "missing $c: apt-get install iproute2 iputils-ping"; done

H1=fwdd-demo-h1 H2=fwdd-demo-h2 RT=fwdd-demo-r
WORK=$(mktemp -d /tmp/fwdd-demo.XXXXXX)
SOCK=$WORK/fwdd.sock
FWDD_PID=

cleanup() {
	set +e
	if [ -n "$FWDD_PID" ] && kill -0 "$FWDD_PID" 2>/dev/null; then
		kill -TERM "$FWDD_PID"; wait "$FWDD_PID" 2>/dev/null
	fi
	for ns in $H1 $H2 $RT; do ip netns del $ns 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; warn "interrupted: cleaning up"; exit 130' INT TERM
cleanup; WORK=$(mktemp -d /tmp/fwdd-demo.XXXXXX); SOCK=$WORK/fwdd.sock

say "Building fwdd"
make -s build
ok "bin/fwdd, bin/fwdctl$( [ -x bin/fwdgen ] && echo ', bin/fwdgen')"

say "Creating two hosts and a router (network namespaces joined by veth pairs)"
for ns in $H1 $H2 $RT; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add h1 netns $H1 type veth peer name r0 netns $RT
ip link add h2 netns $H2 type veth peer name r1 netns $RT
for l in "$H1 h1" "$H2 h2" "$RT r0" "$RT r1"; do set -- $l; ip -n $1 link set $2 up; done
# Hosts compute checksums themselves: fwdd forwards what it gets, and a
# veth would otherwise hand over packets whose checksum is left to a NIC.
if command -v ethtool >/dev/null; then
	ip netns exec $H1 ethtool -K h1 tx off >/dev/null 2>&1 || true
	ip netns exec $H2 ethtool -K h2 tx off >/dev/null 2>&1 || true
fi
ip -n $H1 addr add 198.18.1.2/24 dev h1
ip -n $H1 addr add 2001:2:0:1::2/64 dev h1 nodad
ip -n $H1 route add default via 198.18.1.1
ip -n $H1 -6 route add default via 2001:2:0:1::1
ip -n $H2 addr add 198.19.2.2/24 dev h2
ip -n $H2 addr add 2001:2:0:2::2/64 dev h2 nodad
ip -n $H2 route add default via 198.19.2.1
ip -n $H2 -6 route add default via 2001:2:0:2::1
ok "h1 198.18.1.2 <-> [r0 fwdd r1] <-> h2 198.19.2.2"

DRIVER=${FWDD_DRIVER:-afxdp}
fwdd_config() {
	cat <<EOF
# fwdd demo configuration: the same language as fwdctl.
port add p0 driver $DRIVER dev r0
port add p1 driver $DRIVER dev r1
addr add p0 198.18.1.1/24
addr add p0 2001:2:0:1::1/64
addr add p1 198.19.2.1/24
addr add p1 2001:2:0:2::1/64
EOF
}
say "Starting fwdd in the router namespace ($DRIVER on r0 and r1)"
start_fwdd_or_afpacket
sed 's/^/    /' $WORK/fwdd.conf
ok "fwdd is up (pid $FWDD_PID, driver $DRIVER); control socket $SOCK"
grep -E 'port up' $WORK/fwdd.log | sed 's/.*msg=/    log: /' | head -4
ctl() { ./bin/fwdctl -s $SOCK "$@"; }
ctl show ports | sed 's/^/    /'

say "Pinging through the router, both families"
ip netns exec $H1 ping -c 3 -i 0.2 -W 2 198.19.2.2 | sed 's/^/    /' && ok "IPv4: h1 -> h2" || warn "IPv4 ping failed"
ip netns exec $H1 ping -6 -c 3 -i 0.2 -W 2 2001:2:0:2::2 | sed 's/^/    /' && ok "IPv6: h1 -> h2" || warn "IPv6 ping failed"
ip netns exec $H2 ping -c 1 -W 2 198.18.1.1 >/dev/null && ok "h2 pings the router's far address 198.18.1.1" || warn "router address did not answer"

say "A short traffic burst with the project's generator"
if [ -x bin/fwdgen ]; then
	R0MAC=$(ip netns exec $RT cat /sys/class/net/r0/address)
	ip netns exec $H2 ./bin/fwdgen -i h2 -rx -d 5s -q -j >$WORK/sink.json 2>$WORK/sink.err &
	SINK=$!
	sleep 0.5
	echo "    fwdgen: 64-byte UDP, 64 flows, 100k packets/s for 3 s, h1 -> h2 through fwdd"
	ip netns exec $H1 ./bin/fwdgen -i h1 -dst-mac "$R0MAC" -src 198.18.1.2 -dst 198.19.2.2 \
		-flows 64 -size 64 -rate 100000 -d 3s 2>&1 | tail -n 3 | sed 's/^/    /' || warn "generator failed"
	wait $SINK || true
	if [ -s $WORK/sink.json ]; then
		python3 - $WORK/sink.json <<'PY' 2>/dev/null || sed 's/^/    /' $WORK/sink.json
import json, sys
s = json.load(open(sys.argv[1]))
lat = s.get("latency") or {}
print("    sink on h2: received %d packets, lost %d (%.2f %%), reordered %d, duplicates %d" % (
    s.get("packets", 0), s.get("lost", 0), s.get("loss_pct", 0.0), s.get("reorder", 0), s.get("dups", 0)))
if lat:
    print("    latency through fwdd: p50 %.0f us, p99 %.0f us, max %.0f us" % (lat.get("p50_us", 0), lat.get("p99_us", 0), lat.get("max_us", 0)))
PY
	fi
	ok "generator done"
else
	warn "bin/fwdgen is not built: sending a ping flood instead"
	ip netns exec $H1 ping -f -c 20000 -s 18 198.19.2.2 | tail -n 2 | sed 's/^/    /' || true
fi

say "What fwdd saw"
ctl show stats | sed 's/^/    /'
say "Routes (fib 0)"
ctl show routes | sed 's/^/    /'
say "Neighbours"
ctl show neigh | sed 's/^/    /'

say "Stopping fwdd (SIGTERM: flush queues, detach XDP, remove the socket)"
kill -TERM $FWDD_PID; wait $FWDD_PID && ok "fwdd exited cleanly" || warn "fwdd exit status $?"
FWDD_PID=
ip -n $RT link show r0 | grep -q xdp && warn "an XDP program is still attached to r0" || ok "no XDP program left on r0/r1"
printf '\n%sDone.%s Try it yourself: the config above, fwdd -c FILE, fwdctl show routes. See README.md.\n' "$B" "$N"
