#!/usr/bin/env bash
# Port mirroring and 64-byte throughput (issue 22): a guest on port a sends
# 64-byte frames to a known host on port b as fast as trafgen goes, on one
# vswitchd, in alternating rounds:
#   none     no mirror;
#   other    a mirror of port c (both directions) to port d: configured,
#            but on ports the flow does not cross;
#   flow     a mirror of port a (frames received) to port d, for scale:
#            what copying every frame of the flow costs.
# Reports frames received on b per second for each, the median over the
# rounds, and other/none and flow/none as ratios. Mirroring must not slow
# traffic it does not copy: other/none should be 1.0 within the noise.
#
#   sudo benches/mirror.sh [ROUNDS] [SECONDS]     # default 5 rounds of 5 s
#
# Addresses 198.18.136.0/24 only; everything it makes is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
DUR=${2:-5}
BIN=${CARGO_TARGET_DIR:-target}/release
P=mir$$
SOCK=/tmp/$P.sock
LOG=/tmp/$P.log
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  for i in a b c d; do ip netns del "$P$i" 2>/dev/null || true; done
  rm -f "$SOCK" /tmp/$P.cfg /tmp/$P.tg
}
trap cleanup EXIT
[ -x "$BIN/vswitchd" ] || cargo build --release --bins
command -v trafgen >/dev/null || { echo "trafgen missing: scripts/install-deps.sh" >&2; exit 1; }

# As benches/compare.sh: the switch on CPU 1, trafgen on CPU 0 (-P 1 pins
# it there), both at nice -10 so other work on a shared machine disturbs
# less.
nice -n -10 taskset -c 1 "$BIN/vswitchd" --ports "${P}a0,${P}b0,${P}c0,${P}d0" --metrics-addr off --control-socket "$SOCK" >"$LOG" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
n=1
for i in a b c d; do
  ip netns add "$P$i"
  ip link set "$P${i}0" netns "$P$i"
  ip -n "$P$i" link set lo up
  ip netns exec "$P$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip -n "$P$i" addr add "198.18.136.$n/24" dev "$P${i}0"
  ip -n "$P$i" link set "$P${i}0" up
  n=$((n + 1))
done
ctl() { "$BIN/vswitchctl" --socket "$SOCK" "$@"; }
# a and b learned (known unicast from a to b), c learned too.
ip netns exec "${P}a" ping -c 3 -i 0.2 -q 198.18.136.2 >/dev/null
ip netns exec "${P}c" ping -c 2 -i 0.2 -q 198.18.136.2 >/dev/null
mac_of() { ip -n "$P$1" -j link show "$P${1}0" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])'; }
MAC_A=$(mac_of a); MAC_B=$(mac_of b)
hexmac() { echo "$1" | sed 's/^/0x/; s/:/, 0x/g'; }
# 60-byte frames (64 with the FCS) of a local EtherType: no stack answers.
cat > /tmp/$P.cfg <<EOF
{ $(hexmac "$MAC_B"), $(hexmac "$MAC_A"), c16(0x88b5), fill(0x00, 46) }
EOF
rx_b() { ip netns exec "${P}b" cat /sys/class/net/"$P"b0/statistics/rx_packets; }

# One measurement: frames b received per second while trafgen runs.
measure() {
  local r0 r1
  r0=$(rx_b)
  ip netns exec "${P}a" nice -n -10 timeout -s INT "$DUR" trafgen --dev "$P"a0 --conf /tmp/$P.cfg -q -P 1 >/tmp/$P.tg 2>&1 || true
  sleep 0.5
  r1=$(rx_b)
  echo $(((r1 - r0) / DUR))
}

declare -A got
for mode in none other flow; do got[$mode]=""; done
for r in $(seq "$ROUNDS"); do
  for mode in none other flow; do
    case $mode in
      none) ;;
      other) ctl mirror add bench --ports "${P}c0" --output "${P}d0" >/dev/null ;;
      flow) ctl mirror add bench --ports "${P}a0" --direction in --output "${P}d0" >/dev/null ;;
    esac
    pps=$(measure)
    [ "$mode" != none ] && ctl mirror del bench >/dev/null
    got[$mode]="${got[$mode]} $pps"
    echo "round $r $mode: $pps frames/s received"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
none=$(echo "${got[none]}" | median)
other=$(echo "${got[other]}" | median)
flow=$(echo "${got[flow]}" | median)
echo
echo "median frames/s received: none $none, mirror on other ports $other, mirror of the flow $flow"
python3 -c "print('ratios: other/none %.3f  flow/none %.3f' % ($other / $none, $flow / $none))"
