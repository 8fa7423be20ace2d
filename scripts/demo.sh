#!/usr/bin/env bash
# vswitch demo: three network namespaces joined by vswitchd.
#
#   sudo ./scripts/demo.sh          build, start the switch, ping across, keep
#                                   running until Ctrl-C (then clean up)
#   sudo ./scripts/demo.sh --once   the same, but stop after the pings
#
# It creates namespaces vsdemo-ns0..2 and TAPs vsdemo0..2 (owned by vswitchd,
# each moved into one namespace), with addresses 198.18.0.1-3/24, and removes
# all of it on exit. Metrics on 127.0.0.1:9418, so an installed vswitchd
# service (9417) can keep running. It installs ip, ping and protoc (the
# build's) if they are missing, and builds vswitchd when target/release has none (with the
# invoking user's cargo when run through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
[ "${1:-}" = "--once" ] && once=1
if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (creates namespaces and TAPs): sudo $0 $*" >&2
  exit 1
fi
for tool in ip ping protoc; do
  if ! command -v "$tool" >/dev/null; then
    echo "== $tool missing: installing iproute2, iputils-ping and protobuf-compiler"
    ./scripts/install-deps.sh --demo
    break
  fi
done

# The binaries: use them when built and newer than the sources, else build.
# sudo resets PATH (secure_path), so a rustup user's ~/.cargo/bin is not on
# it: look there too, and build as that user so target/ stays theirs.
rust_version=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
bins_ok() { [ -x target/release/vswitchd ] && [ -x target/release/vswitchctl ]; }
stale() { [ -n "$(find src Cargo.lock -newer target/release/vswitchd 2>/dev/null | head -1)" ]; }
build_as="" cargo=""
if command -v cargo >/dev/null; then
  cargo=$(command -v cargo)
elif [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] &&
  user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6) &&
  [ -x "$user_home/.cargo/bin/cargo" ]; then
  cargo=$user_home/.cargo/bin/cargo build_as=$SUDO_USER
elif [ -x "${HOME:-/nonexistent}/.cargo/bin/cargo" ]; then
  cargo=$HOME/.cargo/bin/cargo
fi
if bins_ok && ! stale; then
  echo "== using the built target/release/vswitchd"
elif [ -z "$cargo" ] && bins_ok; then
  echo "== target/release/vswitchd is older than the sources and cargo is not on root's PATH;"
  echo "   using it anyway (to rebuild: cargo build --release, as yourself, then run the demo again)"
elif [ -z "$cargo" ]; then
  cat >&2 <<MSG
demo: target/release/vswitchd is not built, and cargo is not on root's PATH
(sudo resets PATH, so ~/.cargo/bin is not on it). Build it as yourself first,
then run the demo:

  cargo build --release        # needs Rust $rust_version or newer: rustup update
  sudo ./scripts/demo.sh

No Rust yet? Install it with rustup (https://rustup.rs), not Debian's rustc,
which is too old for this crate.
MSG
  exit 1
elif [ -n "$build_as" ]; then
  echo "== building vswitchd as $build_as with $cargo (release; the first build takes a few minutes)"
  runuser -u "$build_as" -- env HOME="$user_home" PATH="$(dirname "$cargo"):$PATH" \
    "$cargo" build --release --bins
else
  echo "== building vswitchd with $cargo (release; the first build takes a few minutes)"
  PATH="$(dirname "$cargo"):$PATH" "$cargo" build --release --bins
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
  --control-socket "$SOCK" --metrics-addr 127.0.0.1:9418 &
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
  curl -s http://127.0.0.1:9418/metrics | grep vswitchd_port_rx
Press Ctrl-C to stop and clean up.
MSG
wait "$pid"
