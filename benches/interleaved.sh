#!/usr/bin/env bash
# benches/interleaved.sh — two or more TAP forwarders measured in
# alternation (A B C A B C ...), so that a slow spell of a shared machine
# hits every one of them alike: 64-byte frames received per second, or
# (--ping N) the ping round-trip time. Reports each round, the medians, and
# each median's ratio to the first forwarder's.
#
#   sudo benches/interleaved.sh [--rounds N] [--duration S] [--ping N] NAME=COMMAND ...
#
# COMMAND is run (pinned to CPU 1) with @P0 and @P1 replaced by the names of
# the two TAPs and @D by a scratch directory; its stdin is a pipe that stays
# open (VDE's switch quits at EOF). The script creates the TAPs unless
# COMMAND is vswitchd (which creates its own). Each measurement: namespaces
# vsiNa/vsiNb, 198.18.254.0/24, then
# - by default: trafgen -P 1 (CPU 0) flooding 60-byte UDP frames, the
#   receiver dropping them at an nft ingress hook, received = the receiving
#   interface's rx_packets over S seconds;
# - with --ping N: N pings 10 ms apart (the CPUs go idle between them, as
#   on a lightly used host); the figure is their median RTT in µs.
# Everything is removed after each measurement, also on failure or Ctrl-C.
#
# Example (what benches/compare.sh runs at the end):
#   sudo benches/interleaved.sh \
#     bare="target/release/examples/bare_forwarder @P0 @P1" \
#     vswitchd="target/release/vswitchd --ports @P0,@P1 --metrics-addr off --control-socket off --log-level warn"
#   sudo benches/interleaved.sh --ping 400 vde="vde_switch -s @D/ctl -t @P0 -t @P1" vswitchd="..."
set -euo pipefail
ROUNDS=5 DUR=4 PINGS=0
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --ping) PINGS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *=*) break ;;
    *) echo "interleaved.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ $# -ge 1 ] || { echo "interleaved.sh: give at least one NAME=COMMAND" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "interleaved.sh: needs root (namespaces, TAPs)" >&2; exit 1; }
for t in trafgen nft ip taskset; do
  command -v $t >/dev/null || { echo "interleaved.sh: $t is missing" >&2; exit 1; }
done
# shellcheck source=benches/tap_pair.sh
. "$(dirname "$0")/tap_pair.sh"
NAMES=() CMDS=()
for spec in "$@"; do NAMES+=("${spec%%=*}"); CMDS+=("${spec#*=}"); done

A= B= P0= P1= TG= D= PAIR_PIDS=()
cleanup() {
  [ -n "${PAIR_FD:-}" ] && { exec {PAIR_FD}>&-; } 2>/dev/null
  PAIR_FD=
  [ -n "$TG" ] && kill "$TG" 2>/dev/null && wait "$TG" 2>/dev/null
  for p in "${PAIR_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  [ -n "$A" ] && ip netns del "$A" 2>/dev/null
  [ -n "$B" ] && ip netns del "$B" 2>/dev/null
  [ -n "$P0" ] && ip link del "$P0" 2>/dev/null
  [ -n "$P1" ] && ip link del "$P1" 2>/dev/null
  [ -n "$D" ] && rm -rf "$D"
  A= B= P0= P1= TG= D= PAIR_PIDS=()
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

st() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }

measure() { # INDEX -> prints received Mpps (or the median RTT in µs)
  local i=$1 w ok
  A=vsi${i}a B=vsi${i}b P0=vsi${i}p0 P1=vsi${i}p1 D=$(mktemp -d)
  start_pair "$A" "$B" "$P0" "$P1" 198.18.254 "$D" "${CMDS[$i]}"
  if [ "$PINGS" -gt 0 ]; then
    ip netns exec "$A" ping -n -q -c 3 -i 0.05 198.18.254.2 >/dev/null 2>&1 || true # both MACs learned
    ip netns exec "$A" ping -n -c "$PINGS" -i 0.01 -W 1 -w $((PINGS / 50 + 10)) 198.18.254.2 >"$D/ping.txt" 2>&1 || true
    rtt=$(python3 - "$D/ping.txt" <<'PY'
import re, statistics, sys
v = [float(x) * 1000 for x in re.findall(r"time=([\d.]+) ms", open(sys.argv[1]).read())]
print(f"{statistics.median(v):.1f}" if v else "nan")
PY
)
    cleanup
    echo "$rtt"
    return
  fi
  ip netns exec "$B" nft -f - <<NFT
table netdev vsi { chain in { type filter hook ingress device $P1 priority 0; udp dport 9 counter drop; }; }
NFT
  ok=0
  for w in $(seq 30); do ip netns exec "$A" ping -c1 -W 0.3 198.18.254.2 >/dev/null 2>&1 && { ok=1; break; }; done
  [ $ok = 1 ] || { echo "interleaved.sh: ${NAMES[$i]}: no ping; its log:" >&2; cat "$D/log" >&2; exit 1; }
  echo "{ eth(da=$(ip netns exec "$B" cat "/sys/class/net/$P1/address"), sa=$(ip netns exec "$A" cat "/sys/class/net/$P0/address")), ipv4(saddr=198.18.254.1, daddr=198.18.254.2, ttl=64), udp(sp=9, dp=9), fill(0x00, 18) }" >"$D/tg"
  ip netns exec "$A" timeout -s INT $((DUR + 10)) trafgen -o "$P0" -i "$D/tg" -P 1 --no-sock-mem -q >"$D/trafgen.log" 2>&1 &
  TG=$!
  sleep 1
  local r0 r1 t0 t1 o0 o1
  o0=$(st "$A" "$P0" tx_packets); r0=$(st "$B" "$P1" rx_packets); t0=$(date +%s.%N)
  sleep "$DUR"
  o1=$(st "$A" "$P0" tx_packets); r1=$(st "$B" "$P1" rx_packets); t1=$(date +%s.%N)
  if [ $((r1 - r0)) -le $(((o1 - o0) / 100)) ]; then
    # (Almost) nothing arrived: say what was going on.
    { echo "interleaved.sh: ${NAMES[$i]}: sent $((o1 - o0)), received $((r1 - r0))"
      ip -n "$A" -s link show "$P0"; ip -n "$B" -s link show "$P1"
      echo "--- trafgen:"; cat "$D/trafgen.log"; echo "--- its log:"; cat "$D/log"; } >&2
  fi
  cleanup
  python3 -c "print(f'{($r1 - $r0) / ($t1 - $t0) / 1e6:.4f}')"
}

if [ "$PINGS" -gt 0 ]; then UNIT="µs RTT median"; WHAT="ping RTT medians (µs, $PINGS pings 10 ms apart)"; else UNIT=Mpps; WHAT="64-byte frames received (Mpps)"; fi
declare -A RES
for r in $(seq "$ROUNDS"); do
  line="round $r:"
  for i in "${!NAMES[@]}"; do
    v=$(measure "$i")
    RES[$i]="${RES[$i]:-} $v"
    line="$line ${NAMES[$i]} $v"
  done
  echo "$line $UNIT"
done
python3 - "$UNIT" "$WHAT" "${NAMES[@]}" <<PY
import statistics, sys
unit, what, names = sys.argv[1].split()[0], sys.argv[2], sys.argv[3:]
res = [[float(x) for x in s.split()] for s in """$(for i in "${!NAMES[@]}"; do echo "${RES[$i]}"; done)""".strip().splitlines()]
base = statistics.median(res[0])
print(f"medians of {len(res[0])} interleaved rounds of {what}, ratio to {names[0]}:")
for n, v in zip(names, res):
    m = statistics.median(v)
    rounds = [x / y for x, y in zip(v, res[0])]
    print(f"  {n}: {m:.3f} {unit} = {m / base:.2f}x (per-round ratios {min(rounds):.2f}-{max(rounds):.2f})")
PY
