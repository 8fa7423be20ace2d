#!/usr/bin/env bash
# benches/paired_rtt.sh — the round trip through several switches at once,
# one echo at a time to each in turn (A B C A B C ..., 10 ms apart), so
# that whatever the machine does at any moment hits every switch alike.
# Sequential tests (benches/interleaved.sh --ping) swing by ±15 % from one
# round to the next for every switch, VDE included; here a switch's
# difference to the first moves by 2–4 µs from one run to the next.
#
#   sudo benches/paired_rtt.sh [--rounds N] NAME=COMMAND ...
#
# COMMAND is run pinned to CPU 1 with @P0/@P1 replaced by its two TAPs and
# @D by a scratch directory; its stdin is a pipe that stays open (VDE's
# switch quits at EOF). The TAPs are created here unless COMMAND is
# vswitchd (which creates its own). Switch i joins namespaces vspIa/vspIb,
# 198.18.(240+i).0/24; the echoes come from benches/paired_rtt.py on CPU 0.
# All switches run during the whole test, so one that polls (--busy-poll)
# would take CPU 1 from the others: leave such out. Everything is removed
# at the end, also on failure or Ctrl-C. Prints one line per switch: median
# RTT and its ratio to the first switch's, p10, p99, and the median of the
# per-round differences to the first.
set -euo pipefail
ROUNDS=2000
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *=*) break ;;
    *) echo "paired_rtt.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ $# -ge 1 ] && [ $# -le 10 ] || { echo "paired_rtt.sh: give 1 to 10 NAME=COMMAND" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "paired_rtt.sh: needs root (namespaces, TAPs, raw sockets)" >&2; exit 1; }
for t in ip taskset python3 ping; do
  command -v $t >/dev/null || { echo "paired_rtt.sh: $t is missing" >&2; exit 1; }
done
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=benches/tap_pair.sh
. "$HERE/tap_pair.sh"
NAMES=() CMDS=()
for spec in "$@"; do NAMES+=("${spec%%=*}"); CMDS+=("${spec#*=}"); done

PAIR_PIDS=() DIRS=()
cleanup() {
  local p i d
  for p in "${PAIR_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PAIR_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for i in "${!NAMES[@]}"; do
    ip netns del "vsp${i}a" 2>/dev/null || true
    ip netns del "vsp${i}b" 2>/dev/null || true
    ip link del "vsp${i}p0" 2>/dev/null || true
    ip link del "vsp${i}p1" 2>/dev/null || true
  done
  for d in "${DIRS[@]}"; do rm -rf "$d"; done
  PAIR_PIDS=() DIRS=()
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TARGETS=()
for i in "${!NAMES[@]}"; do
  A=vsp${i}a B=vsp${i}b P0=vsp${i}p0 P1=vsp${i}p1 NET=198.18.$((240 + i)) D=$(mktemp -d)
  DIRS+=("$D")
  start_pair "$A" "$B" "$P0" "$P1" "$NET" "$D" "${CMDS[$i]}"
  ok=0
  for _ in $(seq 30); do ip netns exec "$A" ping -c1 -W 0.3 "$NET.2" >/dev/null 2>&1 && { ok=1; break; }; done
  [ $ok = 1 ] || { echo "paired_rtt.sh: ${NAMES[$i]}: no ping; its log:" >&2; cat "$D/log" >&2; exit 1; }
  ip netns exec "$A" ping -n -q -c 3 -i 0.05 "$NET.2" >/dev/null 2>&1 || true # both MACs learned
  TARGETS+=("$A:$NET.2:${NAMES[$i]}")
done
taskset -c 0 python3 "$HERE/paired_rtt.py" "$ROUNDS" 0.01 "${TARGETS[@]}"
