#!/bin/bash
# Boot one test guest (built by build-guest.sh) with one virtio-net NIC.
#
# Usage:
#   tests/qemu/run-guest.sh --guest-dir DIR | --kernel VMLINUZ --initrd INITRD
#       --netdev SPEC --mac MAC --log FILE|- --append "vs.ip=... vs.peers=..."
#       [--timeout SECONDS] [--accel tcg|kvm|kvm:tcg] [--mem MIB]
#       [--pidfile FILE] [-- EXTRA QEMU ARGS...]
#
#   --netdev SPEC   what follows QEMU's -netdev, e.g.
#                     tap,id=n0,ifname=vqt1,script=no,downscript=no
#                     stream,id=n0,server=off,addr.type=unix,addr.path=/run/x.sock
#                   (",id=n0" is added when SPEC has no id)
#   --mac MAC       guest NIC MAC, e.g. 52:54:00:12:34:56
#   --log FILE      serial console (kernel + VSGUEST lines); "-" for stdout
#   --append ARGS   vs.* parameters, see tests/qemu/guest/init
#   --timeout S     hard limit on the guest's life (default 300); then QEMU
#                   gets SIGTERM, SIGKILL 5 s later; exit status 124
#   --accel A       QEMU accelerator (default tcg; kvm:tcg uses KVM if it works)
#   --mem MIB       guest memory (default 256)
#   --pidfile FILE  QEMU writes its own pid there
#
# The script execs `timeout ... qemu-system-x86_64`, so when started in the
# background (`run-guest.sh ... &`), $! is that timeout process: `kill $!`
# stops QEMU too (timeout forwards SIGTERM). In the foreground it returns
# QEMU's exit status (0 after the guest's poweroff).
#
# Environment: VSQ_QEMU (default qemu-system-x86_64).
#
# Pitfall: `-netdev stream,server=off` connects once at startup and never
# retries; start the listener (the switch's unix: port) first.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
die() { echo "run-guest: error: $*" >&2; exit 2; }

KERNEL= INITRD= NETDEV= MAC= LOG= APPEND= TIMEOUT=300 ACCEL=tcg MEM=256 PIDFILE=
while [ $# -gt 0 ]; do
	case "$1" in
	--guest-dir) KERNEL=$2/vmlinuz INITRD=$2/initrd.gz; shift 2 ;;
	--kernel) KERNEL=$2; shift 2 ;;
	--initrd) INITRD=$2; shift 2 ;;
	--netdev) NETDEV=$2; shift 2 ;;
	--mac) MAC=$2; shift 2 ;;
	--log) LOG=$2; shift 2 ;;
	--append) APPEND=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--accel) ACCEL=$2; shift 2 ;;
	--mem) MEM=$2; shift 2 ;;
	--pidfile) PIDFILE=$2; shift 2 ;;
	--) shift; break ;;
	-h | --help) usage ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
[ -n "$KERNEL" ] && [ -n "$INITRD" ] || die "give --guest-dir DIR or --kernel and --initrd"
[ -f "$KERNEL" ] || die "kernel $KERNEL missing: run tests/qemu/build-guest.sh first"
[ -f "$INITRD" ] || die "initrd $INITRD missing: run tests/qemu/build-guest.sh first"
[ -n "$NETDEV" ] || die "--netdev SPEC missing"
[[ "$MAC" =~ ^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$ ]] || die "--mac '$MAC' is not a MAC address"
[ -n "$LOG" ] || die "--log FILE missing (or '-' for stdout)"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout '$TIMEOUT' is not a number of seconds"
case "$APPEND" in *vs.ip=*) ;; *) die "--append has no vs.ip=ADDR/LEN" ;; esac

case ",$NETDEV," in
*,id=*) NETID=$(sed -n 's/.*,id=\([^,]*\).*/\1/p' <<<",$NETDEV,") ;;
*) NETID=n0; NETDEV="$NETDEV,id=n0" ;;
esac

if [ "$LOG" = - ]; then SERIAL=stdio; else SERIAL=file:$LOG; fi

args=(
	-machine "accel=$ACCEL" -smp 1 -m "$MEM"
	-nodefaults -display none -monitor none -serial "$SERIAL"
	-no-reboot
	-kernel "$KERNEL" -initrd "$INITRD"
	-append "console=ttyS0 panic=-1 rdinit=/init $APPEND"
	-netdev "$NETDEV"
	-device "virtio-net-pci,netdev=$NETID,mac=$MAC"
)
[ -n "$PIDFILE" ] && args+=(-pidfile "$PIDFILE")

# stdin from /dev/null: a background QEMU must never read the terminal.
exec timeout --kill-after=5 "$TIMEOUT" "${VSQ_QEMU:-qemu-system-x86_64}" "${args[@]}" "$@" </dev/null
