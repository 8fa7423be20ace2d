#!/bin/bash
# Two QEMU guests and a namespace host on one vswitchd, through three port
# kinds:
#
#   netns vq2<pid>: 198.18.200.1 on TAP vq2h<pid> ── vq2h<pid>       (tap port, vswitchd's fd)
#   guest A 198.18.200.11, -netdev tap vq2t<pid> ── raw:vq2t<pid>   (AF_PACKET, GSO frames)
#   guest B 198.18.200.12, -netdev stream        ── unix:TMP/g2.sock (no offloads)
#
# Every guest pings the other guest and the namespace host. TCP (TX then RX
# of VSQ_TCPBYTES each way):
#   A <-> host   tap guest over raw: and the namespace TAP, offloads end to end
#   B <-> A      raw: -> unix: needs software segmentation: the tap guest
#                sends TSO frames up to 64 KiB, the stream guest takes 1514
#   B <-> host   unix: <-> tap port, segmentation of the host's GSO frames
# Then `vswitchctl --json stats` must show rx and tx on all three ports, the
# raw: port must have received GSO frames (average frame > 1514 bytes) and the
# unix: port must have sent none (average <= 1518).
#
# Usage (root): tests/qemu/two-guests.sh [GUEST_DIR]
#   GUEST_DIR defaults to $VSQ_GUEST_DIR or target/qemu-guest in the
#   repository; the guest is built there first (cached).
# Environment: VSWITCHD_BIN, VSWITCHCTL_BIN (default: target/release, built if
#   missing), VSQ_ACCEL (tcg), VSQ_TCPBYTES (20971520), VSQ_KEEP_LOGS=1 keeps
#   the logs directory, VSD_LOG_LEVEL (info).
# Exit: 0 pass, 1 fail, 77 skipped (not root, qemu-system-x86_64 or another
# tool missing).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TCPBYTES=${VSQ_TCPBYTES:-20971520}
GUEST_TIMEOUT=150   # hard limit per guest; a passing run takes about 40 s
T_START=$(date +%s.%N)

. "$HERE/lib.sh"
. "$HERE/lib-vswitchd.sh"
vsq_begin two-guests "${1:-}" --root "netns, taps" \
	ip qemu-system-x86_64 busybox timeout /usr/bin/python3
vsd_find_bins "$VSQ_REPO" || { echo "two-guests: FAIL (no vswitchd binary)"; exit 1; }

ID=$$
NS=vq2$ID
HTAP=vq2h$ID    # vswitchd's TAP, moved into the namespace
QTAP=vq2t$ID    # guest A's tap, created here, opened by QEMU, raw: in vswitchd
SOCK=$LOGS/g2.sock
NET=198.18.200
IP_NS=$NET.1 IP_A=$NET.11 IP_B=$NET.12
P_HOST=$HTAP P_RAW=raw:$QTAP P_UNIX=unix:$SOCK

ip netns add "$NS"
vsq_at_exit ip netns del "$NS"
ip -n "$NS" link set lo up
ip tuntap add dev "$QTAP" mode tap
vsq_at_exit ip link del "$QTAP"

vsd_start "$LOGS/vswitchd.log" "$LOGS/ctl.sock" $((GUEST_TIMEOUT + 60)) \
	--ports "$P_HOST,$P_RAW,$P_UNIX" || { echo "two-guests: FAIL (vswitchd)"; exit 1; }
# QEMU's stream backend connects once: the listener must be there first.
[ -S "$SOCK" ] || { echo "two-guests: FAIL: $SOCK is not a socket after vswitchd started"; exit 1; }

ip link set "$HTAP" netns "$NS"
ip -n "$NS" addr add "$IP_NS/24" dev "$HTAP"
ip -n "$NS" link set "$HTAP" up
vsq_serve_tcp "$NS" 5201 $((GUEST_TIMEOUT + 30))

common="vs.count=5 vs.wait=60 vs.tcpbytes=$TCPBYTES vs.tcptime=60 vs.hold=90"
vsq_boot A 52:54:00:c8:00:11 \
	"tap,id=n0,ifname=$QTAP,script=no,downscript=no" \
	"vs.ip=$IP_A/24 vs.peers=$IP_B,$IP_NS vs.tcp=$IP_NS:5201 vs.sync=$IP_B $common"
vsq_boot B 52:54:00:c8:00:12 \
	"stream,id=n0,server=off,addr.type=unix,addr.path=$SOCK" \
	"vs.ip=$IP_B/24 vs.peers=$IP_A,$IP_NS vs.tcp=$IP_A:5201,$IP_NS:5201 vs.sync=$IP_A $common"

fail=0
vsq_wait_net 90 A B
vsd_wait_guests $GUEST_TIMEOUT A B || fail=1
vsq_reap 5 A B || fail=1

echo "results:"
vsq_expect A "$LOGS/A.log" \
	"NET eth0 52:54:00:c8:00:11 $IP_A/24 UP" \
	"PING $IP_B OK" "PING $IP_NS OK" \
	"TCPTX $IP_NS:5201 OK" "TCPRX $IP_NS:5201 OK" \
	"SYNC OK" "DONE .* fail=0" || fail=1
vsq_expect B "$LOGS/B.log" \
	"NET eth0 52:54:00:c8:00:12 $IP_B/24 UP" \
	"PING $IP_A OK" "PING $IP_NS OK" \
	"TCPTX $IP_A:5201 OK" "TCPRX $IP_A:5201 OK" \
	"TCPTX $IP_NS:5201 OK" "TCPRX $IP_NS:5201 OK" \
	"SYNC OK" "DONE .* fail=0" || fail=1
vsd_tcp_summary A "$LOGS/A.log"
vsd_tcp_summary B "$LOGS/B.log"

if vsd_alive; then
	echo "vswitchd counters:"
	vsd_stats_report "$P_HOST" "$P_RAW" "$P_UNIX" || fail=1
	raw_rx=$(vsd_avg_frame "$P_RAW" rx)
	unix_tx=$(vsd_avg_frame "$P_UNIX" tx)
	if [ "${raw_rx:-0}" -gt 1514 ]; then
		echo "  ok   $P_RAW received GSO frames (average $raw_rx bytes)"
	else
		echo "  FAIL $P_RAW: average received frame ${raw_rx:-?} bytes: no GSO frames from the tap guest, the test did not exercise segmentation"
		fail=1
	fi
	if [ "${unix_tx:-99999}" -le 1518 ]; then
		echo "  ok   $P_UNIX sent only MTU-sized frames (average $unix_tx bytes)"
	else
		echo "  FAIL $P_UNIX: average sent frame ${unix_tx:-?} bytes > 1518: GSO frames reached a port without offloads"
		fail=1
	fi
else
	echo "  FAIL vswitchd is not running any more (crashed?)"
	fail=1
fi

if grep -Eq 'panick|ERROR' "$LOGS/vswitchd.log"; then
	echo "  FAIL vswitchd logged errors:"
	grep -E 'panick|ERROR' "$LOGS/vswitchd.log" | head -n 20
	fail=1
fi

echo "two-guests: total $(vsq_since "$T_START") s"
vsq_end two-guests $fail 40
