#!/bin/bash
# Self-check of the test guests over QEMU `-netdev stream` (unix sockets),
# with stream-hub.py in the middle instead of vswitchd. Needs no root.
#
#   guest A 198.18.97.11 ── unix socket ─┐
#                                        ├─ stream-hub.py (copies frames)
#   guest B 198.18.97.12 ── unix socket ─┘
#
# A and B ping each other; B runs the TCP test against A.
#
# Usage: tests/qemu/selftest-stream.sh [GUEST_DIR]
#   GUEST_DIR defaults to $VSQ_GUEST_DIR or target/qemu-guest in the repository.
# Environment: VSQ_ACCEL (default tcg), VSQ_TCPBYTES (default 20971520),
#   VSQ_KEEP_LOGS=1 keeps the logs directory.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
GUEST_DIR=${1:-${VSQ_GUEST_DIR:-$REPO/target/qemu-guest}}
ACCEL=${VSQ_ACCEL:-tcg}
TCPBYTES=${VSQ_TCPBYTES:-20971520}
GUEST_TIMEOUT=300

for c in qemu-system-x86_64 /usr/bin/python3 timeout; do
	command -v "$c" >/dev/null || { echo "selftest-stream: $c missing" >&2; exit 77; }
done

. "$HERE/lib.sh"
trap vsq_cleanup EXIT
trap 'exit 130' INT TERM HUP

"$HERE/build-guest.sh" "$GUEST_DIR"

LOGS=$(mktemp -d "/tmp/vq-stream-$$.XXXXXX")
[ "${VSQ_KEEP_LOGS:-0}" = 1 ] || vsq_at_exit rm -rf "$LOGS"
IP_A=198.18.97.11 IP_B=198.18.97.12

# The listener must exist before QEMU starts: stream,server=off connects once.
timeout $((GUEST_TIMEOUT + 30)) /usr/bin/python3 "$HERE/stream-hub.py" \
	--seconds $((GUEST_TIMEOUT + 20)) "$LOGS/a.sock" "$LOGS/b.sock" \
	>"$LOGS/hub.out" 2>"$LOGS/hub.err" &
HUB=$!
vsq_at_exit vsq_kill $HUB
vsq_wait_line "$LOGS/hub.out" '^READY' 10 >/dev/null || { echo "stream-hub did not start" >&2; exit 1; }

common="vs.count=5 vs.wait=90 vs.tcpbytes=$TCPBYTES vs.hold=150"
vsq_log "booting guests (accel=$ACCEL), logs in $LOGS"
vsq_start_guest A --guest-dir "$GUEST_DIR" --accel "$ACCEL" --timeout $GUEST_TIMEOUT \
	--netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$LOGS/a.sock" \
	--mac 52:54:00:97:00:11 --log "$LOGS/A.log" \
	--append "vs.ip=$IP_A/24 vs.peers=$IP_B vs.sync=$IP_B $common"
vsq_start_guest B --guest-dir "$GUEST_DIR" --accel "$ACCEL" --timeout $GUEST_TIMEOUT \
	--netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$LOGS/b.sock" \
	--mac 52:54:00:97:00:12 --log "$LOGS/B.log" \
	--append "vs.ip=$IP_B/24 vs.peers=$IP_A vs.tcp=$IP_A:5201 vs.sync=$IP_A $common"

fail=0
for g in A B; do
	rc=0
	vsq_wait_guest "$g" $GUEST_TIMEOUT || rc=$?
	vsq_log "guest $g: QEMU exited with $rc after $(vsq_since "${VSQ_T0[$g]}")s"
	[ $rc = 0 ] || fail=1
done
vsq_kill $HUB
cat "$LOGS/hub.err" >&2

echo "results:"
vsq_expect A "$LOGS/A.log" "PING $IP_B OK" "SYNC OK" "DONE .* fail=0" || fail=1
vsq_expect B "$LOGS/B.log" "PING $IP_A OK" \
	"TCPTX $IP_A:5201 OK" "TCPRX $IP_A:5201 OK" "SYNC OK" "DONE .* fail=0" || fail=1

if [ $fail != 0 ]; then
	for g in A B; do
		echo "---- guest $g log (tail) ----"
		tr -d '\r' 2>/dev/null <"$LOGS/$g.log" | tail -n 60 || echo "(no log)"
	done
	echo "selftest-stream: FAIL"
	exit 1
fi
echo "selftest-stream: PASS"
