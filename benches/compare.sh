#!/usr/bin/env bash
# benches/compare.sh — vswitchd side by side with the Linux bridge, bare
# TAP-to-TAP forwarders (the ceiling), Open vSwitch's userspace datapath and
# VDE, in one run on this machine with the same generators.
#
#   sudo benches/compare.sh                  # full run (~14 min), results in bench-results/
#   sudo benches/compare.sh --quick          # 1 s tests, for checking the script
#   sudo benches/compare.sh --only bridge,vswitchd --duration 3
#   sudo benches/compare.sh --only bare,bare-drain,vswitchd --tests udp64 --rounds 3
#
# Options:
#   --quick            1 s tests, 50 pings, 2 s idle, 20 000 MACs, 1 repetition
#   --duration S       seconds per throughput test (default 5)
#   --repeat N         throughput tests per switch, median reported (default 3)
#   --only LIST        comma-separated subset of: bridge bare bare-drain
#                      bare-uring vswitchd vswitchd-64p vswitchd-100k
#                      vswitchd-busy ovs vde
#                      (bare: epoll, 64 frames per turn; bare-drain: poll(2),
#                      each TAP read until EAGAIN, TCP and 64-byte tests
#                      only; vswitchd-busy: --busy-poll 20000, idle CPU and
#                      ping RTT only — throughput is the same as vswitchd's)
#   --tests LIST       comma-separated subset of: tcp udp64 ping idle (default
#                      all); without ping the interleaved and paired RTT tests
#                      are left out too
#   --no-build         use the binaries already in $CARGO_TARGET_DIR (or target/)
#   --no-install       do not apt-get missing peers (they are reported skipped)
#   --out DIR          results directory (default bench-results/)
#   --rounds N         rounds of the interleaved tests at the end (default
#                      5, --quick 1, 0 skips them): 64-byte frames (bare
#                      forwarder, bare drain forwarder, io_uring forwarder,
#                      vswitchd and vswitchd --no-io-uring in alternation)
#                      and ping RTT (VDE, bare forwarder, vswitchd,
#                      vswitchd --busy-poll 20000)
#   --paired N         rounds of the paired RTT test at the end (default 2000,
#                      --quick 200, 0 skips it): VDE, bare forwarder and
#                      vswitchd all running, one echo to each in turn
#                      (benches/paired_rtt.sh)
#   --nice N           nice value (process and autogroup) for the switches and
#                      generators (default -10, so that other work on a shared
#                      machine disturbs less; 0 leaves priorities alone)
#
# Topology, the same for every switch: namespaces vsb-a and vsb-b, one
# interface each (vsbp0, vsbp1), addresses 198.18.2XX.1/24 and .2/24 (2XX =
# 210 + the switch's place in the list of --only). Switch processes run on
# CPU 1 (taskset), trafgen on CPU 0.
# Measured: iperf3 TCP 1 and 4 streams, 64-byte UDP frames offered/received
# (trafgen; the receiver drops them at an nft netdev ingress hook), ping RTT
# median/p99, switch CPU from /proc/PID/stat, idle CPU. See
# docs/performance-compare.md ("Side-by-side benchmark") for the method.
#
# Everything the script creates (namespaces, links, processes — by pid) is
# removed on exit, also on failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$ROOT/bench-results
PY=/usr/bin/python3
REPORT=$ROOT/benches/compare_report.py
DUR=5 PINGS=200 IDLE=10 MACS=100000 IDLE_PORTS=62 ROUNDS=5 PAIRED=2000
BUILD=1 INSTALL=1 NICE=-10 REPEAT=3
ALL="bridge bare bare-drain bare-uring vswitchd vswitchd-64p vswitchd-100k vswitchd-busy ovs vde"
ONLY=$ALL
ALL_TESTS="tcp udp64 ping idle"
TESTS=$ALL_TESTS

while [ $# -gt 0 ]; do
  case $1 in
    --quick) DUR=1 PINGS=50 IDLE=2 MACS=20000 REPEAT=1 ROUNDS=1 PAIRED=200 ;;
    --rounds) ROUNDS=$2; shift ;;
    --paired) PAIRED=$2; shift ;;
    --repeat) REPEAT=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --only) ONLY=${2//,/ }; shift ;;
    --tests) TESTS=${2//,/ }; shift ;;
    --no-build) BUILD=0 ;;
    --no-install) INSTALL=0 ;;
    --out) OUT=$2; shift ;;
    --nice) NICE=$2; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for p in $ONLY; do
  case " $ALL " in *" $p "*) ;; *) echo "compare.sh: unknown peer $p (one of: $ALL)" >&2; exit 2 ;; esac
done
for t in $TESTS; do
  case " $ALL_TESTS " in *" $t "*) ;; *) echo "compare.sh: unknown test $t (one of: $ALL_TESTS)" >&2; exit 2 ;; esac
done
want() { case " $TESTS " in *" $1 "*) return 0 ;; esac; return 1; }
[ "$(id -u)" = 0 ] || { echo "compare.sh: run as root (namespaces, TAPs)" >&2; exit 2; }

NS_A=vsb-a NS_B=vsb-b NS_I=vsb-i NS_S=vsb-s
IF_A=vsbp0 IF_B=vsbp1
HZ=$(getconf CLK_TCK)

log() { printf '%s compare: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------ cleanup

TMP=$(mktemp -d /tmp/vswitch-compare.XXXXXX)
PIDFILE=$TMP/pids   # "pid starttime" of every process this script started

start_time() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

track() { # PID: remember a process we started, to stop it by pid later
  local st; st=$(start_time "$1") || return 0
  [ -n "$st" ] && echo "$1 $st" >>"$PIDFILE"
  return 0
}

descendants() { # PID: its children, grandchildren... (deepest first)
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do descendants "$c"; echo "$c"; done
}

stop_pid() { # PID [STARTTIME]: TERM it and its descendants, wait up to 3 s, then KILL — only if still ours
  local pid=$1 st=${2:-} i p tree
  [ -d "/proc/$pid" ] || return 0
  if [ -n "$st" ] && [ "$(start_time "$pid")" != "$st" ]; then return 0; fi
  tree="$(descendants "$pid") $pid"
  for p in $tree; do kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 30); do
    for p in $tree; do [ -d "/proc/$p" ] && break; p=; done
    [ -z "$p" ] && return 0
    sleep 0.1
  done
  for p in $tree; do kill -KILL "$p" 2>/dev/null || true; done
}

stop_tracked() {
  [ -s "$PIDFILE" ] || return 0
  local pid st
  # Last started first (e.g. ovs-vswitchd before ovsdb-server).
  while read -r pid st; do stop_pid "$pid" "$st"; done < <(tac "$PIDFILE")
  : >"$PIDFILE"
}

our_links() { # links this script names, in the root namespace
  ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
    grep -E '^vsb(p[01]|ovs|i[0-9]+)$' || true
}

teardown_net() {
  local ns l
  for ns in $NS_A $NS_B $NS_I $NS_S; do
    if ip netns list | awk '{print $1}' | grep -qx "$ns"; then ip netns del "$ns" 2>/dev/null || true; fi
  done
  for l in $(our_links); do ip link del "$l" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  stop_tracked
  teardown_net
  rm -rf "$TMP"
  if [ -n "${AUTOGROUP_OLD:-}" ]; then echo "$AUTOGROUP_OLD" >/proc/$$/autogroup 2>/dev/null; fi
  exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# One run at a time: the names above are fixed.
exec 9>/run/lock/vswitch-compare.lock
flock -n 9 || die "another benches/compare.sh is running"
if ip netns list | awk '{print $1}' | grep -qxE "vsb-[absi]" || [ -n "$(our_links)" ]; then
  log "removing leftovers of an earlier run"
  teardown_net
fi

# ------------------------------------------------------------ tools

declare -A SKIP=()
need_pkgs=()
for t in ip:iproute2 iperf3:iperf3 trafgen:netsniff-ng nft:nftables ping:iputils-ping taskset:util-linux; do
  command -v "${t%%:*}" >/dev/null || need_pkgs+=("${t#*:}")
done
case " $ONLY " in *" ovs "*) command -v ovs-vswitchd >/dev/null || need_pkgs+=(openvswitch-switch) ;; esac
case " $ONLY " in *" vde "*) command -v vde_switch >/dev/null || need_pkgs+=(vde2) ;; esac
if [ ${#need_pkgs[@]} -gt 0 ] && [ $INSTALL = 1 ]; then
  log "installing ${need_pkgs[*]}"
  ovs_before=" $(pgrep -x 'ovs-vswitchd|ovsdb-server' | tr '\n' ' ') "
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null || log "apt-get install failed"
  # The package starts its own OVS service: stop only the OVS daemons that
  # appeared during the install (by pid).
  for pid in $(pgrep -x 'ovs-vswitchd|ovsdb-server'); do
    case "$ovs_before" in *" $pid "*) ;; *) log "stopping OVS service process $pid started by the package"; stop_pid "$pid" ;; esac
  done
fi
for t in ip iperf3 trafgen nft ping taskset; do
  command -v $t >/dev/null || die "$t is missing (apt-get install iproute2 iperf3 netsniff-ng nftables iputils-ping util-linux)"
done
command -v ovs-vswitchd >/dev/null && command -v ovsdb-server >/dev/null && command -v ovs-vsctl >/dev/null ||
  SKIP[ovs]="skipped: openvswitch-switch not installed"
command -v vde_switch >/dev/null || SKIP[vde]="skipped: vde2 not installed"
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 CPUs; pinning switch to CPU 1 will fail"

if [ $BUILD = 1 ]; then
  log "building vswitchd, vswitchctl and the bare forwarders (release)"
  (cd "$ROOT" && cargo build --release --quiet --bin vswitchd --bin vswitchctl --example bare_forwarder \
    --example bare_drain --example bare_uring) ||
    die "cargo build failed"
fi
VSWITCHD=$TARGET/release/vswitchd
VSWITCHCTL=$TARGET/release/vswitchctl
BARE=$TARGET/release/examples/bare_forwarder
BARE_DRAIN=$TARGET/release/examples/bare_drain
BARE_URING=$TARGET/release/examples/bare_uring
for b in "$VSWITCHD" "$VSWITCHCTL" "$BARE" "$BARE_DRAIN" "$BARE_URING"; do
  [ -x "$b" ] || die "$b not built (cargo build --release --bin vswitchd --bin vswitchctl --example bare_forwarder --example bare_drain --example bare_uring)"
done

AUTOGROUP_OLD=
if [ "$NICE" != 0 ]; then
  # After the build: only the measured processes (all started from here)
  # inherit it. With autogroup scheduling a nice value only counts inside
  # its session, so the session's autogroup gets it too (restored on exit).
  renice -n "$NICE" -p $$ >/dev/null || log "warning: cannot renice to $NICE"
  if [ -w /proc/$$/autogroup ]; then
    AUTOGROUP_OLD=$(sed -n 's/.* nice //p' /proc/$$/autogroup)
    echo "$NICE" >/proc/$$/autogroup || AUTOGROUP_OLD=
  fi
fi
NICE=$(ps -o ni= -p $$ | tr -d ' ')
prio_daemon() { # PID: a daemon that made its own session gets the same autogroup nice
  if [ -n "$AUTOGROUP_OLD" ]; then echo "$NICE" >"/proc/$1/autogroup" 2>/dev/null || true; fi
}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN=$OUT/compare-$STAMP
mkdir -p "$RUN/raw"
RAW=$RUN/raw/results.tsv
: >"$RAW"
rec() { printf '%s\t%s\t%s\n' "$PEER" "$1" "$2" >>"$RAW"; }

# ------------------------------------------------------------ helpers

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
now() { date +%s.%N; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }
cpu_ticks() { # utime+stime of the whole process (all threads)
  [ -n "${SW_PID:-}" ] && [ -r "/proc/$SW_PID/stat" ] || { echo ""; return; }
  sed 's/.*) //' "/proc/$SW_PID/stat" | awk '{print $12 + $13}'
}
cpu_frac() { # T0 T1 C0 C1 -> fraction of one CPU
  [ -n "$3" ] && [ -n "$4" ] || { echo nan; return; }
  awk -v t0="$1" -v t1="$2" -v c0="$3" -v c1="$4" -v hz="$HZ" 'BEGIN { printf "%.5f", (c1 - c0) / hz / (t1 - t0) }'
}
stat_of() { nsx "$1" cat "/sys/class/net/$2/statistics/$3"; }
mac_of() { nsx "$1" cat "/sys/class/net/$2/address"; }
load1() { cut -d' ' -f1-3 /proc/loadavg; }

wait_links() { # NAME...: wait (≤ 10 s) until these links exist in the root namespace
  local i l missing
  for i in $(seq 100); do
    missing=
    for l in "$@"; do [ -e "/sys/class/net/$l" ] || { missing=$l; break; }; done
    [ -z "$missing" ] && return 0
    sleep 0.1
  done
  die "link $missing did not appear"
}

alive() { [ -n "${SW_PID:-}" ] && [ -d "/proc/$SW_PID" ] || die "$PEER: the switch process exited (see $RUN/raw/$PEER.log)"; }

make_namespaces() {
  local ns
  for ns in $NS_A $NS_B "$@"; do
    ip netns add "$ns"
    # No IPv6: no router solicitations or MLD reports disturb idle and rate tests.
    nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
}

place() { # IF NS ADDR: move a root-namespace link into NS, address it, bring it up
  ip link set "$1" netns "$2"
  ip -n "$2" addr add "$3/24" dev "$1"
  ip -n "$2" link set "$1" up
}

place_taps() {
  wait_links $IF_A $IF_B
  place $IF_A $NS_A "$A_IP"
  place $IF_B $NS_B "$B_IP"
}

# ------------------------------------------------------------ switches

start_bridge() {
  make_namespaces $NS_S
  ip -n $NS_S link add vsbbr type bridge
  ip -n $NS_S link add vsbh0 type veth peer name $IF_A netns $NS_A
  ip -n $NS_S link add vsbh1 type veth peer name $IF_B netns $NS_B
  ip -n $NS_S link set vsbh0 master vsbbr up
  ip -n $NS_S link set vsbh1 master vsbbr up
  ip -n $NS_S link set vsbbr up
  ip -n $NS_A addr add "$A_IP/24" dev $IF_A; ip -n $NS_A link set $IF_A up
  ip -n $NS_B addr add "$B_IP/24" dev $IF_B; ip -n $NS_B link set $IF_B up
  SW_PID=""
}

start_vswitchd() { # NPORTS [extra vswitchd args...]
  local nports=$1; shift
  local ports="$IF_A,$IF_B" i idle=()
  for ((i = 2; i < nports; i++)); do idle+=("vsbi$i"); ports+=",vsbi$i"; done
  if [ ${#idle[@]} -gt 0 ]; then make_namespaces $NS_I; else make_namespaces; fi
  taskset -c 1 "$VSWITCHD" --ports "$ports" --metrics-addr off --log-level warn "$@" \
    >"$RUN/raw/$PEER.log" 2>&1 &
  SW_PID=$!; track $SW_PID
  place_taps
  if [ ${#idle[@]} -gt 0 ]; then
    wait_links "${idle[@]}"
    # Idle ports are up, in their own quiet namespace (no IPv6, no addresses).
    for i in "${idle[@]}"; do echo "link set $i netns $NS_I"; done | ip -batch -
    for i in "${idle[@]}"; do echo "link set $i up"; done | ip -n $NS_I -batch -
  fi
}

start_bare() { # [BINARY]
  make_namespaces
  taskset -c 1 "${1:-$BARE}" $IF_A $IF_B >"$RUN/raw/$PEER.log" 2>&1 &
  SW_PID=$!; track $SW_PID
  place_taps
}

OVS_DIR=
ovs_vsctl() { ovs-vsctl --db="unix:$OVS_DIR/db.sock" --timeout=10 "$@"; }
start_ovs() {
  make_namespaces
  OVS_DIR=$TMP/ovs; mkdir -p "$OVS_DIR"
  export OVS_RUNDIR=$OVS_DIR OVS_DBDIR=$OVS_DIR OVS_LOGDIR=$OVS_DIR OVS_PKGDATADIR=/usr/share/openvswitch
  ovsdb-tool create "$OVS_DIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ovsdb-server "$OVS_DIR/conf.db" --remote="punix:$OVS_DIR/db.sock" --pidfile="$OVS_DIR/ovsdb-server.pid" \
    --log-file="$RUN/raw/ovsdb-server.log" -vconsole:off --detach --no-chdir 2>>"$RUN/raw/ovsdb-server.log"
  track "$(cat "$OVS_DIR/ovsdb-server.pid")"
  prio_daemon "$(cat "$OVS_DIR/ovsdb-server.pid")"
  ovs_vsctl --no-wait init
  # Its best configuration for TAPs: userspace TSO (read at start).
  ovs_vsctl --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true
  taskset -c 1 ovs-vswitchd "unix:$OVS_DIR/db.sock" --pidfile="$OVS_DIR/ovs-vswitchd.pid" \
    --log-file="$RUN/raw/$PEER.log" -vconsole:off --detach --no-chdir --disable-system 2>>"$RUN/raw/$PEER.log"
  SW_PID=$(cat "$OVS_DIR/ovs-vswitchd.pid"); track "$SW_PID"; prio_daemon "$SW_PID"
  ovs_vsctl add-br vsbovs -- set bridge vsbovs datapath_type=netdev \
    -- add-port vsbovs $IF_A -- set interface $IF_A type=tap \
    -- add-port vsbovs $IF_B -- set interface $IF_B type=tap
  place_taps
}

start_vde() {
  make_namespaces
  taskset -c 1 vde_switch -s "$TMP/vde.ctl" -M "$TMP/vde.mgmt" -t $IF_A -t $IF_B -d -p "$TMP/vde.pid" \
    >"$RUN/raw/$PEER.log" 2>&1 </dev/null
  local i; for i in $(seq 50); do [ -s "$TMP/vde.pid" ] && break; sleep 0.1; done
  SW_PID=$(cat "$TMP/vde.pid"); track "$SW_PID"; prio_daemon "$SW_PID"
  place_taps
}

stop_switch() {
  if [ "$PEER" = ovs ] && [ -n "$OVS_DIR" ]; then
    # OVS makes its taps persistent; deleting the bridge releases them.
    ovs_vsctl del-br vsbovs 2>/dev/null || true
    unset OVS_RUNDIR OVS_DBDIR OVS_LOGDIR OVS_PKGDATADIR
  fi
  stop_tracked
  teardown_net
  SW_PID=""
}

# ------------------------------------------------------------ tests

wait_ping() {
  local i
  for i in $(seq 40); do
    nsx $NS_A ping -n -q -c 1 -W 0.5 "$B_IP" >/dev/null 2>&1 && return 0
    alive
  done
  die "$PEER: no ping from $A_IP to $B_IP"
}

drop_udp_at_receiver() {
  # Discard the 64-byte UDP frames at B's ingress: otherwise every one is
  # answered with ICMP port unreachable, which would dominate the cost.
  nsx $NS_B nft -f - <<EOF
table netdev vsbench {
  chain in {
    type filter hook ingress device "$IF_B" priority 0; policy accept;
    udp dport 9 counter drop
  }
}
EOF
}

t_idle() {
  [ -n "${SW_PID:-}" ] || return 0
  local t0 c0 t1 c1
  t0=$(now); c0=$(cpu_ticks)
  sleep "$IDLE"
  t1=$(now); c1=$(cpu_ticks)
  rec idle_cpu "$(cpu_frac "$t0" "$t1" "$c0" "$c1")"
}

t_ping() {
  nsx $NS_A ping -n -c "$PINGS" -i 0.01 -W 1 -w $((PINGS / 50 + 10)) "$B_IP" >"$RUN/raw/$PEER-ping.txt" 2>&1 || true
  local m p r s
  read -r m p r s < <($PY "$REPORT" ping "$RUN/raw/$PEER-ping.txt")
  rec rtt_median_us "$m"; rec rtt_p99_us "$p"; rec rtt_received "$r"; rec rtt_sent "$s"
  log "$PEER: ping RTT median $m µs, p99 $p µs ($r/$s)"
  # 1 ms apart the CPUs do not go idle between pings: what is left is the
  # forwarding path itself, without the wake-up latency of idle CPUs.
  nsx $NS_A ping -n -c $((PINGS * 5)) -i 0.001 -W 1 -w $((PINGS / 50 + 10)) "$B_IP" >"$RUN/raw/$PEER-ping-1ms.txt" 2>&1 || true
  read -r m p r s < <($PY "$REPORT" ping "$RUN/raw/$PEER-ping-1ms.txt")
  rec rtt1ms_median_us "$m"; rec rtt1ms_p99_us "$p"
  log "$PEER: ping RTT at 1 ms intervals: median $m µs, p99 $p µs ($r/$s)"
}

t_tcp() { # STREAMS
  local n=$1 t0 c0 t1 c1 srv i g
  # Not through a shell function: $! must be the process itself.
  ip netns exec $NS_B iperf3 -s -1 -B "$B_IP" -p 5201 >"$RUN/raw/$PEER-iperf-s$n.txt" 2>&1 &
  srv=$!; track $srv
  for i in $(seq 50); do
    nsx $NS_B ss -Hltn 'sport = :5201' 2>/dev/null | grep -q . && break
    sleep 0.1
  done
  t0=$(now); c0=$(cpu_ticks)
  if ! nsx $NS_A timeout $((DUR + 20)) iperf3 -c "$B_IP" -p 5201 -t "$DUR" -P "$n" -J \
    >"$RUN/raw/$PEER-iperf-$n.json" 2>&1; then
    log "$PEER: iperf3 -P $n failed"
  fi
  t1=$(now); c1=$(cpu_ticks)
  for i in $(seq 30); do [ -d "/proc/$srv" ] || break; sleep 0.1; done
  stop_pid "$srv"
  g=$($PY "$REPORT" iperf "$RUN/raw/$PEER-iperf-$n.json" 2>/dev/null || echo nan)
  rec "tcp${n}_gbps" "$g"
  rec "tcp${n}_cpu" "$(cpu_frac "$t0" "$t1" "$c0" "$c1")"
  log "$PEER: TCP $n stream(s) $g Gbit/s"
}

t_udp64() {
  local cfg=$RUN/raw/$PEER-udp64.trafgen t0 t1 c0 c1 tx0 tx1 rx0 rx1 nf nf0 nf1 tg i
  cat >"$cfg" <<EOF
/* 60-byte Ethernet frames (64 on the wire with the FCS): UDP to port 9 */
{
  eth(da=$(mac_of $NS_B $IF_B), sa=$(mac_of $NS_A $IF_A)),
  ipv4(saddr=$A_IP, daddr=$B_IP, ttl=64),
  udp(sp=9, dp=9),
  fill(0x00, 18)
}
EOF
  offered() { echo $(($(stat_of $NS_A $IF_A tx_packets) + $(stat_of $NS_A $IF_A tx_dropped))); }
  nfc() { nsx $NS_B nft list chain netdev vsbench in | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'; }
  # -P 1: one trafgen process, pinned by trafgen itself to CPU 0. It runs
  # longer than the window measured, which starts once frames flow.
  ip netns exec $NS_A timeout -s INT -k 5 $((DUR + 15)) trafgen -o $IF_A -i "$cfg" -P 1 --no-sock-mem -Q \
    >"$RUN/raw/$PEER-trafgen.txt" 2>&1 &
  tg=$!; track $tg
  tx0=$(offered)
  for i in $(seq 100); do sleep 0.1; [ "$(offered)" -gt "$tx0" ] && break; done
  sleep 0.2
  tx0=$(offered); rx0=$(stat_of $NS_B $IF_B rx_packets); nf0=$(nfc)
  t0=$(now); c0=$(cpu_ticks)
  sleep "$DUR"
  tx1=$(offered); rx1=$(stat_of $NS_B $IF_B rx_packets); nf1=$(nfc)
  t1=$(now); c1=$(cpu_ticks)
  kill -INT $tg 2>/dev/null || true # timeout passes SIGINT on: trafgen prints its totals
  for i in $(seq 50); do [ -d "/proc/$tg" ] || break; sleep 0.1; done
  stop_pid $tg
  nf=$((nf1 - nf0))
  rec udp_seconds "$(fsub "$t1" "$t0")"
  rec udp_offered $((tx1 - tx0))
  rec udp_rx $((rx1 - rx0))
  rec udp_nft "${nf:-nan}"
  rec udp_trafgen "$($PY "$REPORT" trafgen "$RUN/raw/$PEER-trafgen.txt")"
  rec udp_cpu "$(cpu_frac "$t0" "$t1" "$c0" "$c1")"
  log "$PEER: 64B offered $((tx1 - tx0)), received $((rx1 - rx0)) in $(fsub "$t1" "$t0") s"
}

fdb_entries() {
  "$VSWITCHCTL" --socket "$TMP/vswitchd.sock" --json show >"$TMP/show.json" 2>/dev/null &&
    $PY "$REPORT" fdb "$TMP/show.json" || echo nan
}

preload_macs() { # send frames with $MACS distinct source MACs from A (to B's MAC)
  local pass n
  for pass in 1 2 3 4 5; do
    nsx $NS_A timeout 120 $PY - "$IF_A" "$(mac_of $NS_B $IF_B)" "$MACS" <<'EOF'
import socket, sys, time
ifname, dst, n = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
pad = b"\x88\xb5" + bytes(46)  # local experimental EtherType: B's stack ignores it
for i in range(n):
    # Locally administered unicast, all distinct.
    src = bytes((0x02, 0x42, 0x00, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF))
    for _ in range(100):
        try:
            s.send(dst + src + pad)
            break
        except OSError:
            time.sleep(0.001)
    if i % 64 == 63:
        time.sleep(0.0005)  # stay below what the switch reads: the TAP queue holds 1000
EOF
    n=$(fdb_entries)
    log "$PEER: FDB holds $n entries after pass $pass"
    [ "$n" != nan ] && [ "$n" -ge "$MACS" ] && break
  done
  rec fdb_before "$n"
}

run_peer() { # PEER INDEX
  PEER=$1
  local idx=$2
  A_IP=198.18.$((210 + idx)).1 B_IP=198.18.$((210 + idx)).2
  rec load1 "$(cut -d' ' -f1 /proc/loadavg)"
  log "$PEER: setting up ($A_IP <-> $B_IP), load $(load1)"
  case $PEER in
    bridge) start_bridge ;;
    bare) start_bare ;;
    bare-drain) start_bare "$BARE_DRAIN" ;;
    bare-uring) start_bare "$BARE_URING" ;;
    vswitchd) start_vswitchd 2 --control-socket off ;;
    vswitchd-64p) start_vswitchd $((IDLE_PORTS + 2)) --control-socket off ;;
    vswitchd-100k) start_vswitchd 2 --control-socket "$TMP/vswitchd.sock" --fdb-size 200000 --ageing-time 3600 ;;
    vswitchd-busy) start_vswitchd 2 --control-socket off --busy-poll 20000 ;;
    ovs) start_ovs ;;
    vde) start_vde ;;
  esac
  wait_ping
  nsx $NS_A ping -n -q -c 3 -i 0.05 "$B_IP" >/dev/null 2>&1 || true # both MACs learned
  drop_udp_at_receiver
  [ "$PEER" = vswitchd-100k ] && preload_macs
  # bare-drain is the reference for 64-byte frames (and TCP); its idle CPU
  # and RTT are the bare forwarder's question.
  case $PEER in bridge | bare-drain | vswitchd-64p | vswitchd-100k) ;; *) want idle && t_idle ;; esac
  [ "$PEER" != bare-drain ] && want ping && t_ping
  local r n=$REPEAT
  [ "$PEER" = vswitchd-busy ] && n=0 # latency only: throughput is vswitchd's
  for r in $(seq "$n"); do # the report takes the median of the repetitions
    if want tcp; then
      t_tcp 1
      t_tcp 4
    fi
    if want udp64; then t_udp64; fi
  done
  alive_ok=1
  [ -z "${SW_PID:-}" ] || [ -d "/proc/$SW_PID" ] || alive_ok=0
  [ "$PEER" = vswitchd-100k ] && rec fdb_after "$(fdb_entries)"
  [ $alive_ok = 1 ] || die "$PEER: the switch process exited during the tests"
  stop_switch
}

# ------------------------------------------------------------ run

LOAD_BEFORE=$(load1)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
log "results in $RUN; load average $LOAD_BEFORE; $DUR s per test"
i=0
for p in $ALL; do
  idx=$i; i=$((i + 1))
  case " $ONLY " in *" $p "*) ;; *) continue ;; esac
  PEER=$p
  if [ -n "${SKIP[$p]:-}" ]; then
    rec status "${SKIP[$p]}"; log "$p: ${SKIP[$p]}"; continue
  fi
  # Each switch in a subshell: a failure is reported and the run goes on.
  # (Not inside `if`: errexit would be off in the subshell.)
  set +e
  (set -e; run_peer "$p" "$idx")
  rc=$?
  set -e
  if [ $rc = 0 ]; then
    rec status ok
  else
    rec status "failed (see $RUN/raw/$p.log)"
    log "$p: failed"
    stop_tracked; teardown_net
  fi
  sleep 1
done
PEER=interleaved
# Interleaved tests: the runs above measure one switch after the
# other, so a slow spell of a shared host can favour one; here the
# switches take turns, round after round.
# run_alternating SCRIPT ROUNDS WHAT FILE OPTION...: benches/SCRIPT
# (interleaved.sh or paired_rtt.sh) with --rounds ROUNDS and the switches in
# the array `specs` (two or more), output in raw/FILE; ROUNDS 0 skips it.
run_alternating() {
  local script=$1 rounds=$2 what=$3 file=$4; shift 4
  [ "$rounds" -gt 0 ] && [ ${#specs[@]} -ge 2 ] || return 0
  log "$what test: $rounds rounds of ${#specs[@]} switches"
  if nice -n "$NICE" "$ROOT/benches/$script" --rounds "$rounds" "$@" "${specs[@]}" \
    >"$RUN/raw/$file" 2>&1; then
    cat "$RUN/raw/$file"
  else
    log "$what test failed (see $RUN/raw/$file)"
  fi
}
VSW_ARGS="--ports @P0,@P1 --metrics-addr off --control-socket off --log-level warn"
has() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

specs=()
has bare && specs+=("bare=$BARE @P0 @P1")
has bare-drain && specs+=("bare-drain=$BARE_DRAIN @P0 @P1")
has bare-uring && specs+=("bare-uring=$BARE_URING @P0 @P1")
has vswitchd && specs+=("vswitchd=$VSWITCHD $VSW_ARGS" "vswitchd-no-io-uring=$VSWITCHD $VSW_ARGS --no-io-uring")
want udp64 && run_alternating interleaved.sh "$ROUNDS" "interleaved 64-byte" interleaved.txt --duration "$DUR"

# RTT: pings 10 ms apart are the figure most at the mercy of the host (idle
# vCPUs waking). Ratios are to the first (VDE).
rtt_specs=()
if [ -z "${SKIP[vde]:-}" ] && has vde; then rtt_specs+=("vde=vde_switch -s @D/ctl -t @P0 -t @P1"); fi
has bare && rtt_specs+=("bare=$BARE @P0 @P1")
has vswitchd && rtt_specs+=("vswitchd=$VSWITCHD $VSW_ARGS")
specs=("${rtt_specs[@]}")
has vswitchd-busy && specs+=("vswitchd-busy=$VSWITCHD $VSW_ARGS --busy-poll 20000")
want ping && run_alternating interleaved.sh "$ROUNDS" "interleaved RTT" interleaved-rtt.txt --ping "$PINGS"

# The same switches at once, one echo to each in turn: the machine's slow
# spells hit all alike, so what is left is each switch's own path. Busy
# polling is left out (it would take CPU 1 from the others).
specs=("${rtt_specs[@]}")
want ping && run_alternating paired_rtt.sh "$PAIRED" "paired RTT" paired-rtt.txt

PEER=meta
LOAD_AFTER=$(load1)

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
ovsv=$(ovs-vswitchd --version 2>/dev/null | head -1 || true)
vdev=$(vde_switch --version 2>/dev/null | head -1 || true)
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
$PY - "$RUN/raw/meta.json" <<EOF
import json, sys
json.dump({
  "date": "$STARTED", "finished": "$(date -u '+%Y-%m-%d %H:%M UTC')", "kernel": "$(uname -r)", "cpu": """$cpu""",
  "ncpu": $(nproc), "load_before": "$LOAD_BEFORE", "load_after": "$LOAD_AFTER",
  "duration": $DUR, "repeat": $REPEAT, "pings": $PINGS, "idle_seconds": $IDLE, "macs": $MACS,
  "idle_ports": $IDLE_PORTS, "paired_rounds": $PAIRED, "nice": $NICE, "vswitch_rev": "$rev", "ovs": """$ovsv""", "vde": """$vdev""",
  "peers": "$ONLY".split(), "tests": "$TESTS".split(),
}, open(sys.argv[1], "w"), indent=2)
EOF
$PY "$REPORT" report "$RAW" "$RUN/raw/meta.json" "$RUN"
# add_raw FILE TITLE: raw/FILE, if there is one, at the end of results.md.
add_raw() {
  [ -s "$RUN/raw/$1" ] || return 0
  { echo; echo "$2:"; echo; echo '```'; cat "$RUN/raw/$1"; echo '```'; } >>"$RUN/results.md"
}
add_raw interleaved.txt "Interleaved 64-byte test (\`benches/interleaved.sh\`, forwarders in alternation, $DUR s each)"
add_raw interleaved-rtt.txt "Interleaved RTT test (\`benches/interleaved.sh --ping $PINGS\`, switches in alternation, pings 10 ms apart)"
add_raw paired-rtt.txt "Paired RTT test (\`benches/paired_rtt.sh --rounds $PAIRED\`, all switches running, one echo to each in turn, 10 ms apart)"

ln -sfn "compare-$STAMP" "$OUT/latest"
log "wrote $RUN/results.md, results.json and plot.svg (also $OUT/latest/)"
