#!/bin/bash
# Guests that come and go on a running vswitchd: QEMU restarts on every
# port kind, and hot-add through dist/qemu-ifup and dist/qemu-ifdown.
#
#   netns vq2<pid>: 198.18.201.1 on TAP vq2h<pid> ── vq2h<pid> (tap port)
#   guest A .11  -netdev tap,ifname=vq2q<pid>  ── vq2q<pid>, QEMU creates the tap
#                (vswitchd finds it busy: attached as raw)
#   guest B .12  -netdev stream                 ── unix:TMP/g2.sock
#   guest C .13  -netdev dgram                  ── unixgram:TMP/g3.sock
#   guest D .14  -netdev tap,ifname=vq2d<pid>,script=dist/qemu-ifup,
#                downscript=dist/qemu-ifdown    ── raw:vq2d<pid>, added at run time
#
# Round 1: A starts first (QEMU creates its tap), then vswitchd with the
#   tap's name among its ports, then B and C. All ping each other and the
#   host; B runs TCP with A, A and C with the host.
# Round 2: after all three powered off (A's tap is deleted with its QEMU,
#   the port must read `gone`), the same three boot again: the tap port is
#   re-attached, the stream guest reconnects, the dgram guest sends from a
#   new socket. Same pings and TCP.
# Round 3: guest D on a tap QEMU creates and hands to qemu-ifup, which adds
#   raw:vq2d<pid> to the running vswitchd; D pings the host and runs TCP;
#   after its poweroff qemu-ifdown has removed the port.
#
# Usage (root): tests/qemu/restart-guest.sh [GUEST_DIR]
# Environment: VSWITCHD_BIN, VSWITCHCTL_BIN (default: target/release, built if
#   missing), VSQ_ACCEL (tcg), VSQ_TCPBYTES (4194304), VSQ_KEEP_LOGS=1,
#   VSD_LOG_LEVEL (info).
# Exit: 0 pass, 1 fail, 77 skipped (not root, a tool missing, or this QEMU
# has no -netdev stream/dgram).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TCPBYTES=${VSQ_TCPBYTES:-4194304}
GUEST_TIMEOUT=120   # per guest; a passing round takes 20-30 s
T_START=$(date +%s.%N)

. "$HERE/lib.sh"
. "$HERE/lib-vswitchd.sh"
vsq_begin restart-guest "${1:-}" --root "netns, taps" \
	ip qemu-system-x86_64 busybox timeout /usr/bin/python3
backends=$(qemu-system-x86_64 -netdev help 2>/dev/null || true)
for b in tap stream dgram; do
	grep -qx "$b" <<<"$backends" || { echo "restart-guest: this QEMU has no -netdev $b (QEMU >= 7.2 needed)" >&2; exit 77; }
done
vsd_find_bins "$VSQ_REPO" || { echo "restart-guest: FAIL (no vswitchd binary)"; exit 1; }

ID=$$
NS=vq2$ID
HTAP=vq2h$ID
QTAP=vq2q$ID    # created by QEMU (A), deleted when it exits
DTAP=vq2d$ID    # created by QEMU (D), handed to qemu-ifup
SSOCK=$LOGS/g2.sock
DSOCK=$LOGS/g3.sock
NET=198.18.201
IP_NS=$NET.1 IP_A=$NET.11 IP_B=$NET.12 IP_C=$NET.13 IP_D=$NET.14
P_HOST=$HTAP P_A=$QTAP P_B=unix:$SSOCK P_C=unixgram:$DSOCK P_D=raw:$DTAP
MAC_A=52:54:00:c9:00:11 MAC_B=52:54:00:c9:00:12 MAC_C=52:54:00:c9:00:13 MAC_D=52:54:00:c9:00:14

fail=0
failed() { echo "  FAIL $*"; fail=1; }
passed() { echo "  ok   $*"; }

ip netns add "$NS"
vsq_at_exit ip netns del "$NS"
ip -n "$NS" link set lo up
# If something goes wrong, QEMU's taps go with QEMU; these only catch leftovers.
vsq_at_exit ip link del "$QTAP"
vsq_at_exit ip link del "$DTAP"

common="vs.count=5 vs.wait=60 vs.tcpbytes=$TCPBYTES vs.tcptime=60 vs.hold=60"

start_A() { # ROUND
	vsq_boot "A$1" $MAC_A \
		"tap,id=n0,ifname=$QTAP,script=no,downscript=no" \
		"vs.ip=$IP_A/24 vs.peers=$IP_B,$IP_C,$IP_NS vs.tcp=$IP_NS:5201 vs.sync=$IP_B,$IP_C $common"
}
start_B() {
	vsq_boot "B$1" $MAC_B \
		"stream,id=n0,server=off,addr.type=unix,addr.path=$SSOCK" \
		"vs.ip=$IP_B/24 vs.peers=$IP_A,$IP_C,$IP_NS vs.tcp=$IP_A:5201 vs.sync=$IP_A,$IP_C $common"
}
start_C() {
	# QEMU binds its own end of the datagram pair: a fresh path per boot.
	rm -f "$LOGS/c$1-qemu.sock"
	vsq_boot "C$1" $MAC_C \
		"dgram,id=n0,local.type=unix,local.path=$LOGS/c$1-qemu.sock,remote.type=unix,remote.path=$DSOCK" \
		"vs.ip=$IP_C/24 vs.peers=$IP_A,$IP_B,$IP_NS vs.tcp=$IP_NS:5201 vs.sync=$IP_A,$IP_B $common"
}

# Waits for the guests of a round and checks their results.
finish_round() { # ROUND GUEST...
	local r=$1 g
	shift
	vsq_wait_net 90 "$@"
	vsd_wait_guests $GUEST_TIMEOUT "$@" || failed "guests of round $r stopped (time limit, or vswitchd died)"
	vsq_reap 5 "$@" || failed "round $r: a guest's QEMU did not exit with 0 (see its \"QEMU exited with\" line)"
	echo "round $r results:"
	for g in "$@"; do
		case $g in
		A*) vsq_expect "$g" "$LOGS/$g.log" "NET eth0 $MAC_A $IP_A/24 UP" \
			"PING $IP_B OK" "PING $IP_C OK" "PING $IP_NS OK" \
			"TCPTX $IP_NS:5201 OK" "TCPRX $IP_NS:5201 OK" "SYNC OK" "DONE .* fail=0" || fail=1 ;;
		B*) vsq_expect "$g" "$LOGS/$g.log" "NET eth0 $MAC_B $IP_B/24 UP" \
			"PING $IP_A OK" "PING $IP_C OK" "PING $IP_NS OK" \
			"TCPTX $IP_A:5201 OK" "TCPRX $IP_A:5201 OK" "SYNC OK" "DONE .* fail=0" || fail=1 ;;
		C*) vsq_expect "$g" "$LOGS/$g.log" "NET eth0 $MAC_C $IP_C/24 UP" \
			"PING $IP_A OK" "PING $IP_B OK" "PING $IP_NS OK" \
			"TCPTX $IP_NS:5201 OK" "TCPRX $IP_NS:5201 OK" "SYNC OK" "DONE .* fail=0" || fail=1 ;;
		D*) vsq_expect "$g" "$LOGS/$g.log" "NET eth0 $MAC_D $IP_D/24 UP" \
			"PING $IP_NS OK" "TCPTX $IP_NS:5201 OK" "TCPRX $IP_NS:5201 OK" "DONE .* fail=0" || fail=1 ;;
		esac
		vsd_tcp_summary "$g" "$LOGS/$g.log"
	done
}

dump_and_exit() {
	echo "restart-guest: total $(vsq_since "$T_START") s"
	vsq_end restart-guest $fail 30
}

# ---- round 1 ----------------------------------------------------------------
vsq_log "round 1: guest A creates tap $QTAP, then vswitchd starts (logs in $LOGS)"
start_A 1
for ((i = 0; i < 100; i++)); do
	[ -e "/sys/class/net/$QTAP" ] && break
	kill -0 "${VSQ_PID[A1]}" 2>/dev/null || break
	sleep 0.1
done
[ -e "/sys/class/net/$QTAP" ] || { failed "QEMU did not create tap $QTAP"; dump_and_exit; }

vsd_start "$LOGS/vswitchd.log" "$LOGS/ctl.sock" 400 \
	--ports "$P_HOST,$P_A,$P_B,$P_C" || { failed "vswitchd did not start"; dump_and_exit; }
if grep -q "attached to it as raw:$QTAP" "$LOGS/vswitchd.log"; then
	passed "TAP $QTAP held by QEMU: attached as raw (logged)"
else
	failed "no 'attached to it as raw:$QTAP' in vswitchd's log"
fi
[ "$(vsd_port_field "$P_A" kind)" = raw ] && passed "port $P_A has kind raw" ||
	failed "port $P_A kind is '$(vsd_port_field "$P_A" kind)', want raw"
[ -S "$SSOCK" ] && [ -S "$DSOCK" ] || { failed "socket files $SSOCK $DSOCK missing"; dump_and_exit; }
mode=$(stat -c %a "$SSOCK")
[ "$mode" = 600 ] && passed "$SSOCK mode 0600" || failed "$SSOCK mode $mode, want 600"

ip link set "$HTAP" netns "$NS"
ip -n "$NS" addr add "$IP_NS/24" dev "$HTAP"
ip -n "$NS" link set "$HTAP" up
vsq_serve_tcp "$NS" 5201 380

start_B 1
start_C 1
finish_round 1 A1 B1 C1

# ---- round 2: the same guests restart --------------------------------------
echo "between rounds:"
if vsd_wait_port "$P_A" '^gone$' 10; then
	passed "port $P_A is gone after its QEMU exited (tap $QTAP deleted)"
else
	failed "port $P_A state '$(vsd_port_field "$P_A" state)' after its tap vanished, want gone"
fi
for p in "$P_B" "$P_C"; do
	echo "  info port $p state after its QEMU exited: $(vsd_port_field "$p" state)"
done
vsd_alive || { failed "vswitchd died"; dump_and_exit; }

vsq_log "round 2: the same three guests boot again"
start_A 2
start_B 2
start_C 2
if vsd_wait_port "$P_A" '^up$' 30; then
	passed "port $P_A re-attached, up"
else
	failed "port $P_A not re-attached: state '$(vsd_port_field "$P_A" state)'"
fi
finish_round 2 A2 B2 C2
n=$(grep -c "port re-attached" "$LOGS/vswitchd.log" || true)
[ "$n" -ge 1 ] && passed "vswitchd logged 'port re-attached' ($n)" || failed "no 'port re-attached' in vswitchd's log"
n=$(grep -c "peer connected\|new peer replaces" "$LOGS/vswitchd.log" || true)
[ "$n" -ge 2 ] && passed "unix: port accepted $n connections" || failed "unix: port accepted $n connections, want 2"

# ---- round 3: hot-add through dist/qemu-ifup and dist/qemu-ifdown ----------
vsq_log "round 3: guest D, tap $DTAP created by QEMU and added by dist/qemu-ifup"
[ -z "$(vsd_port_field "$P_D" state)" ] || failed "port $P_D exists before qemu-ifup ran"
# QEMU passes its environment on to the scripts.
export VSWITCHD_SOCKET=$VSD_CTL VSWITCHCTL=$VSCTL_BIN
vsq_boot D3 $MAC_D \
	"tap,id=n0,ifname=$DTAP,script=$VSQ_REPO/dist/qemu-ifup,downscript=$VSQ_REPO/dist/qemu-ifdown" \
	"vs.ip=$IP_D/24 vs.peers=$IP_NS vs.tcp=$IP_NS:5201 $common"
unset VSWITCHD_SOCKET VSWITCHCTL
if vsd_wait_port "$P_D" '^up$' 30; then
	passed "qemu-ifup added port $P_D ($(vsd_port_field "$P_D" kind), up)"
else
	failed "port $P_D not added by qemu-ifup: state '$(vsd_port_field "$P_D" state)'"
fi
finish_round 3 D3
st=$(vsd_port_field "$P_D" state)
[ -z "$st" ] && passed "qemu-ifdown removed port $P_D" || failed "port $P_D still there (state '$st') after QEMU exited"

echo "vswitchd counters:"
vsd_stats_report "$P_HOST" "$P_A" "$P_B" "$P_C" || fail=1
vsd_alive || failed "vswitchd is not running any more (crashed?)"
if grep -Eq 'panick|ERROR' "$LOGS/vswitchd.log"; then
	failed "vswitchd logged errors:"
	grep -E 'panick|ERROR' "$LOGS/vswitchd.log" | head -n 20
fi
dump_and_exit
