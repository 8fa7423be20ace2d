#!/usr/bin/env bash
# Installs the Debian packages vswitch's scripts use (run as root):
#
#   scripts/install-deps.sh             the test tools (.ci/run, scripts/test.sh)
#   scripts/install-deps.sh --demo      only ip, ping and protoc (scripts/demo.sh)
#   scripts/install-deps.sh --bench     the test tools plus the peers of benches/compare.sh
#   scripts/install-deps.sh --package   lintian and dpkg-dev (scripts/package.sh)
#
# apt-get's output is shown, one line per package, so a slow mirror is
# visible rather than a silent pause.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
test_pkgs=(
  iproute2 iputils-ping procps util-linux kmod ethtool   # namespaces, taps, ping
  iperf3 tcpdump tshark python3-scapy netsniff-ng        # traffic generators and sniffers
  nftables iptables                                      # NAT topology test
  prometheus curl                                        # metrics: promtool, real Prometheus
  qemu-system-x86 busybox-static cpio xz-utils           # QEMU guest tests
  g++                                                    # libFuzzer (scripts/fuzz.sh)
  protobuf-compiler                                      # build.rs: GoBGP's gRPC API
  gobgpd frr                                             # EVPN test (tests/e2e_evpn.rs)
)
rust_components=1
case "${1:-}" in
  "")        pkgs=("${test_pkgs[@]}") ;;
  --bench)   pkgs=("${test_pkgs[@]}" openvswitch-switch vde2 valgrind) ;;
  --demo)    pkgs=(iproute2 iputils-ping protobuf-compiler); rust_components=0 ;;
  --package) pkgs=(lintian dpkg-dev protobuf-compiler); rust_components=0 ;;
  *) echo "usage: $0 [--demo | --bench | --package]" >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: needs root (apt-get install): sudo $0 $*" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install-deps: no apt-get (not Debian/Ubuntu?); install these yourself: ${pkgs[*]}" >&2
  exit 1
fi
echo "== apt-get install ${pkgs[*]}"
apt-get update -q
apt-get install -y -q --no-install-recommends "${pkgs[@]}"
# rustfmt and clippy for the lint step (a rustup toolchain may lack them).
if [ "$rust_components" = 1 ] && command -v rustup >/dev/null; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
echo "== dependencies installed: ${pkgs[*]}"
