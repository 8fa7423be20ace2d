# Helpers for tests that boot test guests; source it from bash:
#   . tests/qemu/lib.sh
#   vsq_begin NAME "${1:-}" [--root WHY] TOOL...
#
#   vsq_begin NAME DIR [--root WHY] TOOL...
#                                 the start of every guest test: exits 77
#                                 (skipped) unless root (with --root; WHY says
#                                 what for) and each TOOL is installed; sets
#                                 the cleanup traps (EXIT; INT TERM HUP exit
#                                 130); sets GUEST_DIR (DIR, else
#                                 $VSQ_GUEST_DIR, else target/qemu-guest in the
#                                 repository) and builds the guest there
#                                 (cached); sets ACCEL ($VSQ_ACCEL, default
#                                 tcg) and LOGS, a new directory removed at
#                                 exit unless VSQ_KEEP_LOGS=1
#   vsq_at_exit CMD...            run CMD at cleanup (last registered runs first)
#   vsq_cleanup                   run them all (idempotent; use as EXIT trap)
#   vsq_kill PID                  SIGTERM, up to 10 s, then SIGKILL (that pid only)
#   vsq_start_guest NAME ARGS...  run-guest.sh ARGS in the background; its pid
#                                 goes to VSQ_PID[NAME], its start time to
#                                 VSQ_T0[NAME], cleanup registered
#   vsq_boot NAME MAC NETDEV APPEND
#                                 vsq_start_guest NAME with the guest of
#                                 vsq_begin (GUEST_DIR, ACCEL), --timeout
#                                 $GUEST_TIMEOUT, --log $LOGS/NAME.log
#   vsq_wait_net SECS NAME...     waits (at most SECS each) for the guests'
#                                 "VSGUEST NET" line; logs when it came
#   vsq_reap SECS NAME...         vsq_wait_guest for each guest, logging how
#                                 its QEMU exited; fails unless all exited 0
#   vsq_end NAME FAIL LINES       the end of every guest test: with FAIL 0
#                                 prints "NAME: PASS" and exits 0; else prints
#                                 the last LINES lines of each guest log in
#                                 LOGS and of vswitchd.log there, if any,
#                                 then "NAME: FAIL", and exits 1
#   vsq_wait_line FILE REGEX SECS [PID]
#                                 wait until a line of FILE matches (CR ignored);
#                                 prints the seconds waited; fails on timeout or
#                                 when PID (e.g. ${VSQ_PID[A]}) has exited
#   vsq_wait_guest NAME SECS      wait for the guest's QEMU to exit
#   vsq_expect NAME LOG REGEX...  each REGEX must match a "VSGUEST " line of LOG
#                                 (the text after "VSGUEST "); prints verdicts
#   vsq_serve_tcp NETNS PORT SECS TCP test peer (vs-serve protocol) in NETNS
#                                 (or "" for the current one), bounded, cleaned up
#
# Every wait is bounded; only processes started here are killed, by pid.

VSQ_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VSQ_REPO=$(cd "$VSQ_DIR/../.." && pwd)
VSQ_CLEANUP=()
declare -A VSQ_PID VSQ_T0

vsq_log() { echo "[$(date +%T)] $*" >&2; }

vsq_begin() {
	local name=$1 c
	GUEST_DIR=${2:-${VSQ_GUEST_DIR:-$VSQ_REPO/target/qemu-guest}}
	shift 2
	if [ "${1:-}" = --root ]; then
		[ "$(id -u)" = 0 ] || { echo "$name: needs root ($2)" >&2; exit 77; }
		shift 2
	fi
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "$name: $c missing" >&2; exit 77; }
	done
	trap vsq_cleanup EXIT
	trap 'exit 130' INT TERM HUP
	"$VSQ_DIR/build-guest.sh" "$GUEST_DIR"
	ACCEL=${VSQ_ACCEL:-tcg}
	LOGS=$(mktemp -d "/tmp/vq-$name-$$.XXXXXX")
	[ "${VSQ_KEEP_LOGS:-0}" = 1 ] || vsq_at_exit rm -rf "$LOGS"
}

vsq_at_exit() { VSQ_CLEANUP+=("$*"); }

vsq_cleanup() {
	local i
	for ((i = ${#VSQ_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${VSQ_CLEANUP[i]}" >/dev/null 2>&1 || true
	done
	VSQ_CLEANUP=()
}

vsq_kill() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}

vsq_now() { date +%s.%N; }
vsq_since() { awk -v a="$1" -v b="$(vsq_now)" 'BEGIN { printf "%.1f", b - a }'; }

vsq_start_guest() {
	local name=$1
	shift
	VSQ_T0[$name]=$(vsq_now)
	"$VSQ_DIR/run-guest.sh" "$@" &
	VSQ_PID[$name]=$!
	vsq_at_exit vsq_kill "${VSQ_PID[$name]}"
}

vsq_boot() {
	vsq_log "booting guest $1 (accel=$ACCEL), log $LOGS/$1.log"
	vsq_start_guest "$1" --guest-dir "$GUEST_DIR" --accel "$ACCEL" --timeout "$GUEST_TIMEOUT" \
		--mac "$2" --netdev "$3" --log "$LOGS/$1.log" --append "$4"
}

vsq_wait_net() {
	local secs=$1 g
	shift
	for g in "$@"; do
		if vsq_wait_line "$LOGS/$g.log" '^VSGUEST NET' "$secs" "${VSQ_PID[$g]}" >/dev/null; then
			vsq_log "guest $g: network up $(vsq_since "${VSQ_T0[$g]}")s after QEMU start"
		else
			vsq_log "guest $g: no VSGUEST NET line (QEMU gone or $secs s passed)"
		fi
	done
}

vsq_reap() {
	local secs=$1 g rc bad=0
	shift
	for g in "$@"; do
		rc=0
		vsq_wait_guest "$g" "$secs" || rc=$?
		vsq_log "guest $g: QEMU exited with $rc after $(vsq_since "${VSQ_T0[$g]}")s"
		[ $rc = 0 ] || bad=1
	done
	return $bad
}

vsq_end() {
	local name=$1 fail=$2 lines=$3 f
	if [ "$fail" = 0 ]; then
		echo "$name: PASS"
		exit 0
	fi
	for f in "$LOGS"/*.log; do
		[ -f "$f" ] && [ "${f##*/}" != vswitchd.log ] || continue
		echo "---- guest $(basename "$f" .log) log (tail) ----"
		tr -d '\r' <"$f" | tail -n "$lines"
	done
	if [ -f "$LOGS/vswitchd.log" ]; then
		echo "---- vswitchd log (tail) ----"
		tail -n 60 "$LOGS/vswitchd.log"
	fi
	echo "$name: FAIL"
	exit 1
}

vsq_wait_line() {
	local file=$1 re=$2 secs=$3 pid=${4:-} t0 gone=0
	t0=$(vsq_now)
	while ! tr -d '\r' 2>/dev/null <"$file" | grep -aEq -- "$re"; do
		[ $gone = 1 ] && return 1
		# one more look at the file after the process is gone
		[ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && gone=1 && continue
		if awk -v a="$t0" -v b="$(vsq_now)" -v s="$secs" 'BEGIN { exit !(b - a > s) }'; then
			return 1
		fi
		sleep 0.2
	done
	vsq_since "$t0"
}

vsq_wait_guest() {
	local name=$1 secs=$2 pid=${VSQ_PID[$1]} i rc=0
	for ((i = 0; i < secs * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		vsq_log "guest $name still running after ${secs}s, stopping it"
		vsq_kill "$pid"
		return 1
	fi
	wait "$pid" || rc=$?
	return $rc
}

vsq_expect() {
	local name=$1 log=$2 re bad=0 lines
	shift 2
	lines=$(tr -d '\r' 2>/dev/null <"$log" | sed -n 's/^.*VSGUEST //p')
	for re in "$@"; do
		if grep -Eq -- "^$re" <<<"$lines"; then
			echo "  ok   $name: $(grep -E -- "^$re" <<<"$lines" | head -n1)"
		else
			echo "  FAIL $name: no line matching '$re'"
			bad=1
		fi
	done
	return $bad
}

vsq_serve_tcp() {
	local ns=$1 port=$2 secs=$3 pid
	if [ -n "$ns" ]; then
		ip netns exec "$ns" timeout "$secs" busybox nc -ll -p "$port" -e "$VSQ_DIR/guest/vs-serve" </dev/null >/dev/null 2>&1 &
	else
		timeout "$secs" busybox nc -ll -p "$port" -e "$VSQ_DIR/guest/vs-serve" </dev/null >/dev/null 2>&1 &
	fi
	pid=$!
	vsq_at_exit vsq_kill "$pid"
}
