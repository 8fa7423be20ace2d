#!/usr/bin/env bash
# Installs the Debian packages vswitch's demo and tests use (run as root).
# Called by .ci/run and by scripts/test.sh / scripts/demo.sh when a tool is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  iproute2 iputils-ping procps util-linux kmod ethtool   # namespaces, taps, ping
  iperf3 tcpdump tshark python3-scapy netsniff-ng        # traffic generators and sniffers
  nftables iptables                                      # NAT topology test
  prometheus curl                                        # metrics: promtool, real Prometheus
  qemu-system-x86 busybox-static cpio xz-utils           # QEMU guest tests
)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(openvswitch-switch vde2 valgrind)               # peers for benches/compare.sh
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
# rustfmt and clippy for the lint step (a rustup toolchain may lack them).
if command -v rustup >/dev/null; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
echo "dependencies installed"
