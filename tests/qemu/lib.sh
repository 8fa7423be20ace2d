# Helpers for tests that boot test guests; source it from bash:
#   . tests/qemu/lib.sh
#   trap vsq_cleanup EXIT; trap 'exit 130' INT TERM HUP
#
#   vsq_at_exit CMD...            run CMD at cleanup (last registered runs first)
#   vsq_cleanup                   run them all (idempotent; use as EXIT trap)
#   vsq_kill PID                  SIGTERM, up to 10 s, then SIGKILL (that pid only)
#   vsq_start_guest NAME ARGS...  run-guest.sh ARGS in the background; its pid
#                                 goes to VSQ_PID[NAME], its start time to
#                                 VSQ_T0[NAME], cleanup registered
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
VSQ_CLEANUP=()
declare -A VSQ_PID VSQ_T0

vsq_log() { echo "[$(date +%T)] $*" >&2; }

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
