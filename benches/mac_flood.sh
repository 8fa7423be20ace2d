#!/usr/bin/env bash
# MAC flood at the fastest rate trafgen reaches here (issue 23): a guest on
# one port sends frames from random source MACs (locally administered
# unicast) to an unknown destination for DURATION seconds, while two hosts
# ping each other every 10 ms and a third stays silent. Reports the offered
# and received rates, the known flow's loss and whether it was flooded, the
# FDB size, where the quiet host's MAC went, whether a new host is learned
# during the flood, and vswitchd's RSS.
#
#   sudo benches/mac_flood.sh [DURATION]      # default 10 s
#
# Addresses 198.18.135.0/24 only; everything it makes is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
BIN=target/release
P=mfl$$
SOCK=/tmp/$P.sock
LOG=/tmp/$P.log
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  for i in a b c d e; do ip netns del "$P$i" 2>/dev/null || true; done
  rm -f "$SOCK" /tmp/$P.cfg
}
trap cleanup EXIT
[ -x $BIN/vswitchd ] || cargo build --release --bins
command -v trafgen >/dev/null || { echo "trafgen missing: scripts/install-deps.sh" >&2; exit 1; }

ports=""
for i in a b c d e; do ports="$ports,$P${i}0"; done
taskset -c 1 $BIN/vswitchd --ports "${ports#,}" --metrics-addr off --control-socket "$SOCK" >"$LOG" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
n=1
for i in a b c d e; do
  ip netns add "$P$i"
  ip link set "$P${i}0" netns "$P$i"
  ip -n "$P$i" link set lo up
  ip netns exec "$P$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip -n "$P$i" addr add "198.18.135.$n/24" dev "$P${i}0"
  ip -n "$P$i" link set "$P${i}0" up
  n=$((n + 1))
done
ctl() { $BIN/vswitchctl --socket "$SOCK" "$@"; }
mac_of() { ip -n "$P$1" -j link show "$P${1}0" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])'; }
# Known flow b <-> c, and the quiet host d, learned before the flood.
ip netns exec "${P}b" ping -c 3 -i 0.2 -q 198.18.135.3 >/dev/null
ip netns exec "${P}d" ping -c 2 -i 0.2 -q 198.18.135.3 >/dev/null
MAC_B=$(mac_of b); MAC_D=$(mac_of d); MAC_E=$(mac_of e)

# Random locally administered unicast sources, to an unknown unicast MAC.
cat > /tmp/$P.cfg <<'EOF'
{ 0x02, 0x00, 0x00, 0x00, 0x00, 0x99,  0x02, drnd(5),  c16(0x88b5),  fill(0x00, 46) }
EOF
rss0=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
rx0=$(ctl --json show | python3 -c "import json,sys; print(next(p['counters']['rx_frames'] for p in json.load(sys.stdin)['ports'] if p['name']=='${P}a0'))")
flooded_c0=$(ip netns exec "${P}c" cat /sys/class/net/"$P"c0/statistics/rx_packets)
ip netns exec "${P}a" timeout -s INT "$DUR" trafgen --dev "$P"a0 --conf /tmp/$P.cfg --no-sock-mem -P 1 >/tmp/$P.tg 2>&1 &
tg=$!
sleep 1
# The known flow during the flood, and a new host speaking for the first time.
ip netns exec "${P}b" ping -c $(( (DUR - 2) * 100 )) -i 0.01 -W 1 -q 198.18.135.3 > /tmp/$P.ping 2>&1 || true
ip netns exec "${P}e" ping -c 2 -i 0.2 -q 198.18.135.3 >/dev/null 2>&1 || true
wait $tg 2>/dev/null || true
sleep 0.5
rss1=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
read -r rx1 fdb <<<"$(ctl --json show | python3 -c "
import json,sys
d=json.load(sys.stdin)
print(next(p['counters']['rx_frames'] for p in d['ports'] if p['name']=='${P}a0'), d['fdb_entries'])")"
where() { ctl --json fdb get "$1" 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[0]["port"] if r else "-")' || echo "-"; }
sent=$(grep -o '[0-9]* packets transmitted' /tmp/$P.ping | cut -d' ' -f1)
recv=$(grep -o '[0-9]* received' /tmp/$P.ping | cut -d' ' -f1)
echo "MAC flood, $DUR s, $(nproc) cores:"
echo "  offered by trafgen:      $(grep -o '[0-9]* packets outgoing' /tmp/$P.tg | cut -d' ' -f1 || echo '?') frames"
echo "  received by vswitchd:    $(( (rx1 - rx0) / DUR )) frames/s on the flooding port"
echo "  known flow b->c:         $recv/$sent pings answered"
echo "  FDB entries:             $fdb (capacity 8192)"
echo "  b's MAC on:              $(where "$MAC_B")   (quiet host d's: $(where "$MAC_D"), new host e's: $(where "$MAC_E"))"
echo "  vswitchd RSS:            $rss0 -> $rss1 KiB"
