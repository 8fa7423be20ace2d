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
TCPBYTES=${VSQ_TCPBYTES:-20971520}
GUEST_TIMEOUT=300

. "$HERE/lib.sh"
vsq_begin selftest-stream "${1:-}" qemu-system-x86_64 /usr/bin/python3 timeout

IP_A=198.18.97.11 IP_B=198.18.97.12

# The listener must exist before QEMU starts: stream,server=off connects once.
timeout $((GUEST_TIMEOUT + 30)) /usr/bin/python3 "$HERE/stream-hub.py" \
	--seconds $((GUEST_TIMEOUT + 20)) "$LOGS/a.sock" "$LOGS/b.sock" \
	>"$LOGS/hub.out" 2>"$LOGS/hub.err" &
HUB=$!
vsq_at_exit vsq_kill $HUB
vsq_wait_line "$LOGS/hub.out" '^READY' 10 >/dev/null || { echo "stream-hub did not start" >&2; exit 1; }

common="vs.count=5 vs.wait=90 vs.tcpbytes=$TCPBYTES vs.hold=150"
vsq_boot A 52:54:00:97:00:11 \
	"stream,id=n0,server=off,addr.type=unix,addr.path=$LOGS/a.sock" \
	"vs.ip=$IP_A/24 vs.peers=$IP_B vs.sync=$IP_B $common"
vsq_boot B 52:54:00:97:00:12 \
	"stream,id=n0,server=off,addr.type=unix,addr.path=$LOGS/b.sock" \
	"vs.ip=$IP_B/24 vs.peers=$IP_A vs.tcp=$IP_A:5201 vs.sync=$IP_A $common"

fail=0
vsq_reap $GUEST_TIMEOUT A B || fail=1
vsq_kill $HUB
cat "$LOGS/hub.err" >&2

echo "results:"
vsq_expect A "$LOGS/A.log" "PING $IP_B OK" "SYNC OK" "DONE .* fail=0" || fail=1
vsq_expect B "$LOGS/B.log" "PING $IP_A OK" \
	"TCPTX $IP_A:5201 OK" "TCPRX $IP_A:5201 OK" "SYNC OK" "DONE .* fail=0" || fail=1

vsq_end selftest-stream $fail 60
