# Helpers for guest tests that run vswitchd; source after lib.sh:
#   . tests/qemu/lib.sh
#   . tests/qemu/lib-vswitchd.sh
#
#   vsd_find_bins REPO            sets VSD_BIN, VSCTL_BIN: $VSWITCHD_BIN and
#                                 $VSWITCHCTL_BIN if set, else
#                                 ${CARGO_TARGET_DIR:-REPO/target}/release/*,
#                                 built with `cargo build --release --bins`
#                                 when missing
#   vsd_start LOG CTLSOCK SECS ARGS...
#                                 runs vswitchd ARGS (plus --metrics-addr off
#                                 --control-socket CTLSOCK) in the background,
#                                 bounded by `timeout SECS`; VSD_PID is the
#                                 timeout pid (SIGTERM reaches vswitchd);
#                                 waits until the control socket answers
#   vsd_ctl ARGS...               vswitchctl --socket CTLSOCK ARGS...
#   vsd_alive                     vswitchd still running?
#   vsd_port_field NAME FIELD     one field of a port in `vswitchctl --json
#                                 show` (state, kind, counters.rx_frames, ...)
#   vsd_wait_port NAME REGEX SECS wait until the port's state matches
#   vsd_stats_report PORT...      prints counters of PORTs (from
#                                 `vswitchctl --json stats`); fails unless each
#                                 has rx and tx frames
#   vsd_avg_frame PORT rx|tx      average bytes per frame of one direction
#   vsd_tcp_summary NAME LOG      the guest's TCP results with throughput
#   vsd_wait_guests SECS NAME...  waits for guests' QEMUs; stops them early
#                                 when vswitchd dies
#
# Only the vswitchd started here is ever killed, by pid.

VSD_BIN= VSCTL_BIN= VSD_PID= VSD_CTL= VSD_LOG=

vsd_find_bins() {
	local repo=$1 tdir=${CARGO_TARGET_DIR:-$1/target}
	VSD_BIN=${VSWITCHD_BIN:-$tdir/release/vswitchd}
	VSCTL_BIN=${VSWITCHCTL_BIN:-$tdir/release/vswitchctl}
	if [ -x "$VSD_BIN" ] && [ -x "$VSCTL_BIN" ]; then
		return 0
	fi
	if [ -n "${VSWITCHD_BIN:-}${VSWITCHCTL_BIN:-}" ]; then
		vsq_log "VSWITCHD_BIN=$VSD_BIN / VSWITCHCTL_BIN=$VSCTL_BIN: not executable"
		return 1
	fi
	command -v cargo >/dev/null || PATH=$PATH:$HOME/.cargo/bin
	vsq_log "building vswitchd (cargo build --release --bins, target dir $tdir)"
	(cd "$repo" && cargo build --release --bins >&2) || return 1
	[ -x "$VSD_BIN" ] && [ -x "$VSCTL_BIN" ]
}

vsd_ctl() { "$VSCTL_BIN" --socket "$VSD_CTL" "$@"; }

vsd_alive() { [ -n "$VSD_PID" ] && kill -0 "$VSD_PID" 2>/dev/null; }

vsd_start() {
	local log=$1 ctl=$2 secs=$3 i
	shift 3
	VSD_LOG=$log VSD_CTL=$ctl
	vsq_log "vswitchd $*"
	NO_COLOR=1 timeout --kill-after=5 "$secs" "$VSD_BIN" --metrics-addr off --control-socket "$ctl" \
		--log-level "${VSD_LOG_LEVEL:-info}" "$@" </dev/null >"$log" 2>&1 &
	VSD_PID=$!
	vsq_at_exit vsq_kill "$VSD_PID"
	# The control socket is bound first but answers only once every port
	# of the command line is open.
	for ((i = 0; i < 100; i++)); do
		vsd_ctl show >/dev/null 2>&1 && return 0
		vsd_alive || break
		sleep 0.1
	done
	vsq_log "vswitchd did not come up; its log:"
	cat "$log" >&2
	return 1
}

# Prints one field of a port from `vswitchctl --json show` ("" if no such
# port, or vswitchd does not answer); always succeeds.
vsd_port_field() {
	vsd_ctl --json show 2>/dev/null | /usr/bin/python3 -c '
import json, sys
name, field = sys.argv[1], sys.argv[2]
for p in json.load(sys.stdin)["ports"]:
    if p["name"] == name:
        v = p
        for k in field.split("."):
            v = v[k]
        print(v)
' "$1" "$2" 2>/dev/null || true
}

vsd_wait_port() {
	local name=$1 re=$2 secs=$3 i st
	for ((i = 0; i < secs * 5; i++)); do
		st=$(vsd_port_field "$name" state)
		[[ "$st" =~ $re ]] && return 0
		sleep 0.2
	done
	vsq_log "port $name: state '${st:-absent}' did not match '$re' within ${secs}s"
	return 1
}

vsd_stats_report() {
	vsd_ctl --json stats | /usr/bin/python3 -c '
import json, sys
want = sys.argv[1:]
ports = {p["name"]: p for p in json.load(sys.stdin)["ports"]}
bad = 0
for name in want:
    p = ports.get(name)
    if p is None:
        print(f"  FAIL port {name}: not in vswitchctl stats")
        bad = 1
        continue
    c = p["counters"]
    ok = c["rx_frames"] > 0 and c["tx_frames"] > 0
    avg_rx = c["rx_bytes"] / c["rx_frames"] if c["rx_frames"] else 0
    avg_tx = c["tx_bytes"] / c["tx_frames"] if c["tx_frames"] else 0
    drops = ", ".join("%s=%d" % kv for kv in c["drops"].items()) or "none"
    print("  %s port %s (%s, %s): rx %d frames %d B (avg %.0f), tx %d frames %d B (avg %.0f), drops: %s"
          % ("ok  " if ok else "FAIL", name, p["kind"], p["state"], c["rx_frames"], c["rx_bytes"],
             avg_rx, c["tx_frames"], c["tx_bytes"], avg_tx, drops))
    bad |= not ok
sys.exit(bad)
' "$@"
}

# Average bytes per frame of one direction (rx or tx) of a port.
vsd_avg_frame() {
	vsd_ctl --json stats | /usr/bin/python3 -c '
import json, sys
name, d = sys.argv[1], sys.argv[2]
for p in json.load(sys.stdin)["ports"]:
    if p["name"] == name:
        c = p["counters"]
        n = c[d + "_frames"]
        print(int(c[d + "_bytes"] / n) if n else 0)
' "$1" "$2"
}

# Prints the VSGUEST TCP lines of a log with their throughput.
vsd_tcp_summary() {
	local name=$1 log=$2
	tr -d '\r' <"$log" 2>/dev/null | sed -n 's/^.*VSGUEST \(TCP[RT]X .*\)$/\1/p' |
		awk -v g="$name" '{ split($4, b, "/"); s = $5 + 0;
			printf "  guest %s: %s %s %s %s B in %.2f s", g, $1, $2, $3, $4, s;
			if (s > 0 && $3 == "OK") printf " (%.1f Mbit/s)", b[1] * 8 / s / 1e6; printf "\n" }'
}

# Waits (bounded) for the QEMUs of guests NAME... (started by
# vsq_start_guest) to exit; stops them all early if vswitchd dies, since
# nothing can pass any more. Fails if a guest had to be stopped.
vsd_wait_guests() { # SECS NAME...
	local secs=$1 g i running
	shift
	for ((i = 0; i < secs * 5; i++)); do
		running=0
		for g in "$@"; do
			kill -0 "${VSQ_PID[$g]}" 2>/dev/null && running=1
		done
		[ $running = 0 ] && return 0
		if ! vsd_alive; then
			vsq_log "vswitchd exited while guests ran (see its log): stopping the guests"
			break
		fi
		sleep 0.2
	done
	for g in "$@"; do
		kill -0 "${VSQ_PID[$g]}" 2>/dev/null && vsq_kill "${VSQ_PID[$g]}"
	done
	return 1
}
