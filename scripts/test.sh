#!/usr/bin/env bash
# vswitch's test command (the README gives it; .ci/run runs it):
#   lint, unit and property tests, end-to-end tests in network namespaces with
#   real tools (ping, iperf3, tcpdump, scapy), the kernel-bridge differential
#   test, metrics with a real Prometheus, and real QEMU guests.
# Needs root: it creates namespaces, TAPs and veths (all in 198.18.0.0/15) and
# removes them again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "test: needs root (network namespaces, TAP devices): sudo $0" >&2
  exit 1
fi
# sudo's secure_path drops ~/.cargo/bin: use the invoking user's rustup
# toolchain when root has none.
if ! command -v cargo >/dev/null && [ -n "${SUDO_USER:-}" ]; then
  uh=$(getent passwd "$SUDO_USER" | cut -d: -f6)
  if [ -x "$uh/.cargo/bin/cargo" ]; then
    export PATH="$uh/.cargo/bin:$PATH" RUSTUP_HOME="$uh/.rustup" CARGO_HOME="$uh/.cargo"
  fi
fi
command -v cargo >/dev/null || { echo "test: cargo not found: install Rust 1.95+ with rustup (https://rustup.rs), or run as root with cargo on PATH" >&2; exit 1; }
for tool in ip ping iperf3 tcpdump promtool prometheus qemu-system-x86_64 busybox g++; do
  if ! command -v "$tool" >/dev/null; then
    echo "== $tool missing: installing test dependencies"
    ./scripts/install-deps.sh
    break
  fi
done
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import scapy' 2>/dev/null || ./scripts/install-deps.sh

step() { echo; echo "== $*"; }

step "format and lints"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --locked --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps

step "build"
cargo build --locked --release --bins

step "config examples, alert rules"
for f in examples/config/*.toml dist/*.toml; do
  [ -e "$f" ] || continue
  ./target/release/vswitchd --check-config --config "$f" >/dev/null
done
promtool check rules dashboards/vswitchd-alerts.yml
promtool test rules tests/metrics/alerts-test.yml

step "QEMU guest image (cached)"
tests/qemu/build-guest.sh target/qemu-guest

step "unit, property and end-to-end tests"
# Test binaries run one after another; tests inside one run in parallel.
cargo test --locked --release -- --test-threads="${VSWITCH_TEST_THREADS:-4}"

step "fuzz targets, 20 s each (docs/dev/fuzzing.md)"
scripts/fuzz.sh --time 20

echo
echo "== all tests passed"
