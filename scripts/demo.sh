#!/usr/bin/env bash
# vswitch demo: three network namespaces joined by vswitchd.
#
#   sudo ./scripts/demo.sh          build, start the switch, ping across, keep
#                                   running until Ctrl-C (then clean up)
#   sudo ./scripts/demo.sh --once   the same, but stop after the pings
#
# It creates namespaces vsdemo-ns0..2 and TAPs vsdemo0..2 (owned by vswitchd,
# each moved into one namespace), with addresses 198.18.0.1-3/24, and removes
# all of it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
[ "${1:-}" = "--once" ] && once=1
if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (creates namespaces and TAPs): sudo $0 $*" >&2
  exit 1
fi
for tool in ip ping; do
  if ! command -v "$tool" >/dev/null; then
    echo "== $tool missing: installing dependencies"
    ./scripts/install-deps.sh
    break
  fi
done
command -v cargo >/dev/null || { echo "demo: cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }

if [ ! -x target/release/vswitchd ] || [ -n "$(find src Cargo.toml -newer target/release/vswitchd 2>/dev/null | head -1)" ]; then
  echo "== building vswitchd (release)"
  cargo build --release --bins --quiet
fi

N=3
SOCK=/run/vswitchd/demo.sock
pid=""
cleanup() {
  set +e
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"; wait "$pid"
  fi
  for i in $(seq 0 $((N-1))); do ip netns del "vsdemo-ns$i" 2>/dev/null; done
}
trap cleanup EXIT INT TERM

for i in $(seq 0 $((N-1))); do
  ip netns del "vsdemo-ns$i" 2>/dev/null || true
  ip netns add "vsdemo-ns$i"
done

echo "== starting vswitchd --ports vsdemo0,vsdemo1,vsdemo2"
./target/release/vswitchd --ports vsdemo0,vsdemo1,vsdemo2 \
  --control-socket "$SOCK" --metrics-addr 127.0.0.1:9417 &
pid=$!
for _ in $(seq 50); do
  [ -e /sys/class/net/vsdemo2 ] && break
  kill -0 "$pid" || { echo "demo: vswitchd exited" >&2; exit 1; }
  sleep 0.1
done

for i in $(seq 0 $((N-1))); do
  ip link set "vsdemo$i" netns "vsdemo-ns$i"
  ip -n "vsdemo-ns$i" link set lo up
  ip -n "vsdemo-ns$i" addr add "198.18.0.$((i+1))/24" dev "vsdemo$i"
  ip -n "vsdemo-ns$i" link set "vsdemo$i" up
done

echo "== pinging every pair"
fail=0
for i in $(seq 0 $((N-1))); do
  for j in $(seq 0 $((N-1))); do
    [ "$i" = "$j" ] && continue
    if ip netns exec "vsdemo-ns$i" ping -c 2 -i 0.2 -W 2 -q "198.18.0.$((j+1))" >/dev/null; then
      echo "   ns$i -> 198.18.0.$((j+1))  ok"
    else
      echo "   ns$i -> 198.18.0.$((j+1))  FAILED"; fail=1
    fi
  done
done

echo "== the switch's view"
./target/release/vswitchctl --socket "$SOCK" show || true
./target/release/vswitchctl --socket "$SOCK" fdb show || true

if [ "$once" = 1 ]; then
  exit "$fail"
fi
cat <<MSG

vswitchd is running (pid $pid). Try:
  sudo ip netns exec vsdemo-ns0 ping 198.18.0.3
  sudo ./target/release/vswitchctl --socket $SOCK show
  curl -s http://127.0.0.1:9417/metrics | grep vswitchd_port_rx
Press Ctrl-C to stop and clean up.
MSG
wait "$pid"
