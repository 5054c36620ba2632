# Sourced by the demo scripts: output helpers and starting fwdd.
# The script sets RT (the router namespace), WORK (its temporary
# directory), SOCK (fwdd's control socket), DRIVER, and defines
# fwdd_config, which prints the demo's configuration for $DRIVER.

B=$'\e[1m'; G=$'\e[32m'; Y=$'\e[33m'; R=$'\e[31m'; N=$'\e[0m'
[ -t 1 ] || { B=; G=; Y=; R=; N=; }
say()  { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
ok()   { printf '%s    ok:%s %s\n' "$G" "$N" "$*"; }
warn() { printf '%s    note:%s %s\n' "$Y" "$N" "$*"; }
die()  { printf '%s    error:%s %s\n' "$R" "$N" "$*" >&2; exit 1; }
indent() { sed 's/^/    /'; }

# start_fwdd writes $WORK/fwdd.conf, starts fwdd in $RT and waits up to
# 10 s for its control socket. It sets FWDD_PID, or fails with it empty.
start_fwdd() {
	fwdd_config > $WORK/fwdd.conf
	rm -f $SOCK
	ip netns exec $RT ./bin/fwdd -c $WORK/fwdd.conf -s $SOCK -log-level info >$WORK/fwdd.log 2>&1 &
	FWDD_PID=$!
	for _ in $(seq 100); do [ -S $SOCK ] && return 0; kill -0 $FWDD_PID 2>/dev/null || break; sleep 0.1; done
	wait $FWDD_PID 2>/dev/null; FWDD_PID=
	return 1
}

# start_fwdd_or_afpacket is start_fwdd; where AF_XDP cannot start it says
# why and starts fwdd again with the afpacket driver (DRIVER changes).
start_fwdd_or_afpacket() {
	start_fwdd && return 0
	indent < $WORK/fwdd.log >&2
	[ "$DRIVER" = afxdp ] || die "fwdd did not start (log above)"
	warn "AF_XDP did not start here (log above): falling back to the afpacket driver"
	DRIVER=afpacket
	start_fwdd || { indent < $WORK/fwdd.log >&2; die "fwdd did not start (log above)"; }
}
