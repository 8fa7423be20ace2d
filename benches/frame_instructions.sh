#!/usr/bin/env bash
# benches/frame_instructions.sh — instructions per forwarded frame, whole
# process, under callgrind (repeatable, unlike time on a shared machine).
#
#   sudo benches/frame_instructions.sh vswitchd|vswitchd-4p|vswitchd-mirror|bare [FRAMES] [GAP]
#
# Runs the switch (target/release/vswitchd; vswitchd-4p: with two more ports;
# vswitchd-mirror: and a mirror between them; or the bare_forwarder example)
# under `valgrind --tool=callgrind` between two namespaces (vsca/vscb,
# 198.18.251.0/24), sends FRAMES 64-byte UDP frames with trafgen (GAP
# between frames, default 3us; the receiver drops them at an nft ingress
# hook), and writes bench-results/callgrind-KIND.out. Subtract a run with
# FRAMES=0 for the start-up cost; `callgrind_annotate --inclusive=yes` on the
# file gives instructions per function (divide by the frames forwarded).
set -u
KIND=${1:?usage: frame_instructions.sh vswitchd|vswitchd-4p|vswitchd-mirror|bare [FRAMES] [GAP]}; N=${2:-300000}; GAP=${3:-3us}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=${CARGO_TARGET_DIR:-$ROOT/target}/release
mkdir -p "$ROOT/bench-results"
A=vsca B=vscb OUT=$ROOT/bench-results/callgrind-$KIND.out; TMPD=$(mktemp -d)
rm -f $OUT
cleanup() { [ -n "${PID:-}" ] && kill $PID 2>/dev/null; sleep 2; ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; ip link del vscp0 2>/dev/null; ip link del vscp1 2>/dev/null; ip link del vscp2 2>/dev/null; ip link del vscp3 2>/dev/null; rm -rf "$TMPD"; }
trap cleanup EXIT
ip netns add $A; ip netns add $B
VG="valgrind --tool=callgrind --callgrind-out-file=$OUT"
case $KIND in
 vswitchd) $VG $T/vswitchd --ports vscp0,vscp1 --metrics-addr off --log-level warn 2>$TMPD/log & PID=$!;;
 vswitchd-4p | vswitchd-mirror)
  # Two more ports, and (vswitchd-mirror) a mirror between them:
  # configured, but on ports the measured flow does not cross (issue 22:
  # it must cost nothing; compare with vswitchd-4p).
  printf '[[port]]\nname = "vscp%s"\n' 0 1 2 3 > $TMPD/cfg.toml
  [ $KIND = vswitchd-mirror ] && printf '[[mirror]]\nname = "other"\nports = ["vscp2"]\noutput = "vscp3"\n' >> $TMPD/cfg.toml
  $VG $T/vswitchd --config $TMPD/cfg.toml --control-socket $TMPD/ctl.sock --metrics-addr off --log-level warn 2>$TMPD/log & PID=$!;;
 bare) ip tuntap add vscp0 mode tap; ip tuntap add vscp1 mode tap; $VG $T/examples/bare_forwarder vscp0 vscp1 2>$TMPD/log & PID=$!;;
esac
for i in $(seq 100); do ip link show vscp1 >/dev/null 2>&1 && ip link show vscp0 >/dev/null 2>&1 && break; sleep 0.2; done
sleep 3
ip link set vscp0 netns $A; ip link set vscp1 netns $B
ip -n $A addr add 198.18.251.1/24 dev vscp0; ip -n $A link set vscp0 up
ip -n $B addr add 198.18.251.2/24 dev vscp1; ip -n $B link set vscp1 up
ip netns exec $B nft -f - <<NFT
table netdev vscb { chain in { type filter hook ingress device vscp1 priority 0; udp dport 9 counter drop; }; }
NFT
for i in $(seq 50); do ip netns exec $A ping -c1 -W 0.5 198.18.251.2 >/dev/null 2>&1 && break; done
ip netns exec $A ping -c3 -i 0.1 198.18.251.2 >/dev/null
MA=$(ip netns exec $A cat /sys/class/net/vscp0/address); MB=$(ip netns exec $B cat /sys/class/net/vscp1/address)
cat > $TMPD/tg <<TG
{ eth(da=$MB, sa=$MA), ipv4(saddr=198.18.251.1, daddr=198.18.251.2, ttl=64), udp(sp=9, dp=9), fill(0x00, 18) }
TG

R0=$(ip netns exec $B cat /sys/class/net/vscp1/statistics/rx_packets)
[ $N -gt 0 ] && ip netns exec $A trafgen -o vscp0 -i $TMPD/tg -n $N -t $GAP -P 1 -q >/dev/null 2>&1
sleep 2
R1=$(ip netns exec $B cat /sys/class/net/vscp1/statistics/rx_packets)


sleep 1
echo "forwarded $((R1-R0)) frames"
echo "profile: $OUT (callgrind_annotate --inclusive=yes $OUT)"
