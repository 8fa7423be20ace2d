#!/bin/bash
# Self-check of the test guests using only the kernel bridge (no vswitch):
#
#   guest A 198.18.99.11 ── tap vqt<pid>a ─┐
#   guest B 198.18.99.12 ── tap vqt<pid>b ─┼─ bridge vqb<pid>
#   netns vq-ns-<pid> 198.18.99.1 ── veth ─┘  (runs the TCP test peer)
#
# A pings B and the namespace and runs the TCP test against the namespace;
# B pings A and the namespace and runs the TCP test against A (guest to guest,
# with virtio offloads on both ends). Both wait for each other before powering
# off. Everything is bounded in time and removed on exit, also on failure.
#
# Usage (root): tests/qemu/selftest-bridge.sh [GUEST_DIR]
#   GUEST_DIR defaults to $VSQ_GUEST_DIR or target/qemu-guest in the repository;
#   the guest is built there first (cached).
# Environment: VSQ_ACCEL (default tcg), VSQ_TCPBYTES (default 20971520),
#   VSQ_KEEP_LOGS=1 keeps the logs directory.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TCPBYTES=${VSQ_TCPBYTES:-20971520}
GUEST_TIMEOUT=300

. "$HERE/lib.sh"
vsq_begin selftest-bridge "${1:-}" --root "netns, taps, bridge" \
	ip qemu-system-x86_64 busybox timeout

ID=$$
NS=vq-ns-$ID
BR=vqb$ID
TAP_A=vqt${ID}a
TAP_B=vqt${ID}b
VETH=vqh$ID  # root side
VETH_NS=vqn$ID

NET=198.18.99
IP_NS=$NET.1 IP_A=$NET.11 IP_B=$NET.12

vsq_log "setting up bridge $BR, taps $TAP_A $TAP_B, namespace $NS"
ip netns add "$NS"
vsq_at_exit ip netns del "$NS"
ip link add "$BR" type bridge
vsq_at_exit ip link del "$BR"
ip link set "$BR" up
for t in "$TAP_A" "$TAP_B"; do
	ip tuntap add dev "$t" mode tap
	vsq_at_exit ip link del "$t"
	ip link set "$t" master "$BR" up
done
ip link add "$VETH" type veth peer name "$VETH_NS"
vsq_at_exit ip link del "$VETH"
ip link set "$VETH_NS" netns "$NS"
ip link set "$VETH" master "$BR" up
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$IP_NS/24" dev "$VETH_NS"
ip -n "$NS" link set "$VETH_NS" up

vsq_serve_tcp "$NS" 5201 $((GUEST_TIMEOUT + 30))

# Frame sizes on guest A's tap, to see whether TCP crossed as GSO frames
# (larger than the MTU): headers only, bounded, informational.
CAP=
if command -v tcpdump >/dev/null; then
	CAP=$LOGS/A.pcap
	timeout $((GUEST_TIMEOUT + 30)) tcpdump -i "$TAP_A" -s 96 -w "$CAP" -U tcp >/dev/null 2>&1 &
	vsq_at_exit vsq_kill $!
fi

common="vs.count=5 vs.wait=90 vs.tcpbytes=$TCPBYTES vs.hold=150"
vsq_boot A 52:54:00:99:00:11 \
	"tap,id=n0,ifname=$TAP_A,script=no,downscript=no" \
	"vs.ip=$IP_A/24 vs.peers=$IP_B,$IP_NS vs.tcp=$IP_NS:5201 vs.sync=$IP_B $common"
vsq_boot B 52:54:00:99:00:12 \
	"tap,id=n0,ifname=$TAP_B,script=no,downscript=no" \
	"vs.ip=$IP_B/24 vs.peers=$IP_A,$IP_NS vs.tcp=$IP_A:5201 vs.sync=$IP_A $common"

fail=0
for g in A B; do
	if vsq_wait_line "$LOGS/$g.log" '^VSGUEST BOOT' 120 "${VSQ_PID[$g]}" >/dev/null; then
		vsq_log "guest $g: init started $(vsq_since "${VSQ_T0[$g]}")s after QEMU start"
	else
		vsq_log "guest $g: no VSGUEST BOOT (QEMU gone or 120 s passed)"
		fail=1
	fi
done
vsq_wait_net 60 A B
vsq_reap $GUEST_TIMEOUT A B || fail=1

if [ -n "$CAP" ] && [ -s "$CAP" ]; then
	max=$(tcpdump -r "$CAP" -nn -e 2>/dev/null | sed -n 's/.*, length \([0-9]*\): .*/\1/p' | sort -n | tail -n1)
	[ -n "$max" ] && vsq_log "largest TCP frame on $TAP_A: $max bytes (> 1514: GSO/TSO frames crossed the bridge)"
fi
echo "results:"
vsq_expect A "$LOGS/A.log" \
	"NET eth0 52:54:00:99:00:11 $IP_A/24 UP" \
	"PING $IP_B OK" "PING $IP_NS OK" \
	"TCPTX $IP_NS:5201 OK" "TCPRX $IP_NS:5201 OK" \
	"SYNC OK" "DONE .* fail=0" || fail=1
vsq_expect B "$LOGS/B.log" \
	"NET eth0 52:54:00:99:00:12 $IP_B/24 UP" \
	"PING $IP_A OK" "PING $IP_NS OK" \
	"TCPTX $IP_A:5201 OK" "TCPRX $IP_A:5201 OK" \
	"SYNC OK" "DONE .* fail=0" || fail=1

vsq_end selftest-bridge $fail 60
