#!/usr/bin/env bash
# benches/vxlan.sh — TCP across a VXLAN tunnel: vswitchd's vxlan: port
# (its own encapsulation, and encap = "kernel") against the kernel's vxlan
# device, side by side in one run, each talking to the same kernel VTEP.
#
#   sudo benches/vxlan.sh                    # 3 x 5 s per direction and VTEP
#   sudo benches/vxlan.sh --duration 3 --repeat 1
#
# Options:
#   --duration S   seconds per iperf3 test (default 5)
#   --repeat N     tests per VTEP and direction, median reported (default 3)
#   --streams N    parallel TCP streams (iperf3 -P, default 1)
#   --no-build     use target/release/vswitchd as it is
#
# Topology (namespaces vvxb-*): an underlay bridge (vvxb-u, 198.19.9.0/24)
# joins five VTEPs, all VNI 100, dstport 4789, underlay MTU 1500:
#   vvxb-ak  kernel VTEP  198.19.9.1  (bridge + vxlan) -- workload vvxb-wk 198.18.79.1
#   vvxb-av  vswitchd     198.19.9.2  (vxlan: port + TAP) -- workload vvxb-wv 198.18.79.2
#   vvxb-b   kernel VTEP  198.19.9.3  (bridge + vxlan) -- workload vvxb-wb 198.18.79.3
#   vvxb-bv  vswitchd     198.19.9.4  (vxlan: port + TAP) -- workload vvxb-wc 198.18.79.4
#   vvxb-kv  vswitchd     198.19.9.5  (vxlan: port, encap = "kernel", + TAP) -- workload vvxb-wd 198.18.79.5
# Every VTEP floods to the other four (head-end replication). Measured:
# iperf3 TCP from a workload behind a kernel VTEP or vswitchd to one
# behind the far kernel VTEP (vvxb-wb) and back (-R): the ratio
# vswitchd / kernel is the figure of merit. Then the same between the two
# vswitchd hosts (vvxb-wv -> vvxb-wc), as a ratio to kernel <-> kernel.
# Workload MTU 1450 (underlay 1500 - 50). Each vswitchd runs inside its
# VTEP namespace.
#
# Everything the script creates (namespaces, processes — by pid) is
# removed on exit, also on failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DUR=5 REPEAT=3 STREAMS=1 BUILD=1
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DUR=$2; shift ;;
    --repeat) REPEAT=$2; shift ;;
    --streams) STREAMS=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

[ "$(id -u)" = 0 ] || { echo "run as root (namespaces)" >&2; exit 1; }
for t in iperf3 ip bridge; do
  command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }
done
if [ $BUILD = 1 ]; then
  (cd "$ROOT" && cargo build --release --bin vswitchd >&2)
fi
VSWITCHD=$TARGET/release/vswitchd
NS="u ak av b bv kv wk wv wb wc wd"
TMP=$(mktemp -d /tmp/vvxb.XXXXXX)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for n in $NS; do ip netns del vvxb-$n 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

x() { local n=$1; shift; ip netns exec vvxb-$n "$@"; }

for n in $NS; do
  ip netns del vvxb-$n 2>/dev/null || true
  ip netns add vvxb-$n
  x $n ip link set lo up
  x $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
x u ip link add ub type bridge
x u ip link set ub up
# uplink NS ADDR: a veth from the underlay bridge into NS as eth0.
uplink() {
  x u ip link add u-$1 type veth peer name eth0 netns vvxb-$1
  x u ip link set u-$1 master ub up
  x $1 ip addr add $2/24 dev eth0
  x $1 ip link set eth0 up
}
uplink ak 198.19.9.1
uplink av 198.19.9.2
uplink b 198.19.9.3
uplink bv 198.19.9.4
uplink kv 198.19.9.5

# kernel_vtep NS LOCAL WORKLOAD-NS WORKLOAD-ADDR PEERS...
kernel_vtep() {
  local n=$1 local=$2 w=$3 wip=$4; shift 4
  x $n ip link add br0 type bridge
  x $n ip link add vx0 type vxlan id 100 local $local dstport 4789
  x $n ip link set vx0 master br0 up
  x $n ip link add kw type veth peer name wl netns vvxb-$w
  x $n ip link set kw master br0 up
  x $n ip link set br0 up
  for p in "$@"; do x $n bridge fdb append 00:00:00:00:00:00 dev vx0 dst $p; done
  x $w ip link set wl mtu 1450
  x $w ip addr add $wip/24 dev wl
  x $w ip link set wl up
}
kernel_vtep ak 198.19.9.1 wk 198.18.79.1 198.19.9.2 198.19.9.3 198.19.9.4 198.19.9.5
kernel_vtep b 198.19.9.3 wb 198.18.79.3 198.19.9.1 198.19.9.2 198.19.9.4 198.19.9.5

# vswitchd_vtep NS ENCAP LOCAL TAP WORKLOAD-NS WORKLOAD-ADDR PEERS...
vswitchd_vtep() {
  local n=$1 encap=$2 local=$3 tap=$4 w=$5 wip=$6; shift 6
  local remotes; remotes=$(printf '"%s", ' "$@")
  cat >"$TMP/$n.toml" <<EOF
[switch]
metrics-addr = "off"
control-socket = "$TMP/$n.sock"

[[port]]
name = "$tap"
netns = "vvxb-$w"
addresses = ["$wip/24"]
mtu = 1450

[[port]]
name = "vxlan:vx100"
vni = 100
local = "$local"
remote = [${remotes%, }]
encap = "$encap"
EOF
  ip netns exec vvxb-$n "$VSWITCHD" --config "$TMP/$n.toml" >"$TMP/$n.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    x $w ip -br addr show $tap 2>/dev/null | grep -q "$wip" && break
    sleep 0.1
  done
  x $w ip link show $tap >/dev/null || { cat "$TMP/$n.log" >&2; exit 1; }
}
vswitchd_vtep av vswitchd 198.19.9.2 vvxbt0 wv 198.18.79.2 198.19.9.1 198.19.9.3 198.19.9.4 198.19.9.5
vswitchd_vtep bv vswitchd 198.19.9.4 vvxbt1 wc 198.18.79.4 198.19.9.1 198.19.9.2 198.19.9.3 198.19.9.5
vswitchd_vtep kv kernel 198.19.9.5 vvxbt2 wd 198.18.79.5 198.19.9.1 198.19.9.2 198.19.9.3 198.19.9.4

# Each sender must reach the far kernel VTEP's workload, and the first
# vswitchd the second's.
for pair in wk:3 wv:3 wv:4 wd:3; do
  w=${pair%:*} ok=0
  for _ in $(seq 50); do
    if x $w ping -c 1 -W 1 198.18.79.${pair#*:} >/dev/null 2>&1; then ok=1; break; fi
  done
  [ $ok = 1 ] || { echo "$w cannot reach 198.18.79.${pair#*:}" >&2; cat "$TMP"/*.log >&2; exit 1; }
done

for s in wb:3 wc:4; do
  ip netns exec vvxb-${s%:*} timeout $(( (DUR + 5) * REPEAT * 8 + 60 )) \
    iperf3 -s -B 198.18.79.${s#*:} -p 5201 >/dev/null 2>&1 &
  PIDS+=($!)
done
sleep 0.5

# run W HOST ARGS: one iperf3 test from W to 198.18.79.HOST, prints the
# Gbit/s received.
run() {
  local w=$1 h=$2; shift 2
  x $w timeout $((DUR + 20)) iperf3 -c 198.18.79.$h -p 5201 -J -t $DUR -P $STREAMS "$@" \
    | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.3f" % (r["end"]["sum_received"]["bits_per_second"]/1e9))'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Senders: kernel -> kernel, vswitchd -> kernel, vswitchd -> vswitchd,
# vswitchd (encap = "kernel") -> kernel.
CASES="wk:3 wv:3 wv:4 wd:3"
declare -A RES
for dir in forward reverse; do
  extra=(); [ $dir = reverse ] && extra=(-R)
  for c in $CASES; do : >"$TMP/$c-$dir"; done
  # Alternate the cases so drift on a shared machine hits each alike.
  for _ in $(seq $REPEAT); do
    for c in $CASES; do run ${c%:*} ${c#*:} "${extra[@]}" >>"$TMP/$c-$dir"; done
  done
  for c in $CASES; do RES[$c-$dir]=$(median <"$TMP/$c-$dir"); done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
row() { printf '%-40s %10s %10s\n' "$@"; }
printf '\nTCP across VXLAN (VNI 100, underlay veth MTU 1500, inner MTU 1450), %s s x %s, %s stream(s), median Gbit/s\n' "$DUR" "$REPEAT" "$STREAMS"
row "VTEPs (sender -> receiver)" forward reverse
row "kernel vxlan -> kernel vxlan" "${RES[wk:3-forward]}" "${RES[wk:3-reverse]}"
row "vswitchd vxlan: -> kernel vxlan" "${RES[wv:3-forward]}" "${RES[wv:3-reverse]}"
row "vswitchd vxlan: -> vswitchd vxlan:" "${RES[wv:4-forward]}" "${RES[wv:4-reverse]}"
row "vswitchd encap=kernel -> kernel vxlan" "${RES[wd:3-forward]}" "${RES[wd:3-reverse]}"
row "ratio vswitchd->kernel / kernel" "$(ratio "${RES[wv:3-forward]}" "${RES[wk:3-forward]}")" "$(ratio "${RES[wv:3-reverse]}" "${RES[wk:3-reverse]}")"
row "ratio vswitchd encap=kernel / kernel" "$(ratio "${RES[wd:3-forward]}" "${RES[wk:3-forward]}")" "$(ratio "${RES[wd:3-reverse]}" "${RES[wk:3-reverse]}")"
row "ratio vswitchd<->vswitchd / kernel" "$(ratio "${RES[wv:4-forward]}" "${RES[wk:3-forward]}")" "$(ratio "${RES[wv:4-reverse]}" "${RES[wk:3-reverse]}")"
echo "(forward: the sender's workload sends; reverse: iperf3 -R, the receiver's sends)"
