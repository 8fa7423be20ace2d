#!/bin/bash
# Build the test guest: a Debian cloud kernel and a busybox initramfs.
#
# Usage: tests/qemu/build-guest.sh OUTDIR
#
# Produces OUTDIR/vmlinuz, OUTDIR/initrd.gz and OUTDIR/guest.info (what was
# built from what). Cached: when those exist and were built from the same
# inputs (this script, tests/qemu/guest/*, kernel package), nothing is done.
# The kernel .deb is kept in OUTDIR/deb/ so that a change to the init script
# only rebuilds the initramfs.
#
# Needs: apt-get (Debian mirrors configured; the download runs as any user but
# `apt-get update` only as root), dpkg, depmod (kmod), cpio, gzip, xz/zstd when
# modules are compressed, /bin/busybox from busybox-static.
#
# Environment:
#   VSQ_KERNEL_PKG   kernel package to use (default: what linux-image-cloud-amd64
#                    depends on, e.g. linux-image-6.1.0-56-cloud-amd64)
#   VSQ_BUSYBOX      static busybox binary (default /bin/busybox)
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ $# -eq 1 ] || usage
case "$1" in -h | --help) usage ;; esac

HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
BUSYBOX=${VSQ_BUSYBOX:-/bin/busybox}
# Modules the guest needs, leaves first is not required: dependencies are
# resolved from modules.dep and built-in ones skipped.
WANT_MODULES="virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net"

log() { echo "build-guest: $*" >&2; }
die() { echo "build-guest: error: $*" >&2; exit 1; }

# -- which kernel package ----------------------------------------------------
kernel_pkg() {
	if [ -n "${VSQ_KERNEL_PKG:-}" ]; then
		echo "$VSQ_KERNEL_PKG"
		return
	fi
	local p
	p=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1)
	if [ -z "$p" ] && [ "$(id -u)" = 0 ]; then
		log "no package lists for linux-image-cloud-amd64, running apt-get update"
		apt-get update -qq >&2 || true
		p=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1)
	fi
	[ -n "$p" ] || die "cannot find the package behind linux-image-cloud-amd64 (apt-cache depends); set VSQ_KERNEL_PKG"
	echo "$p"
}

# -- cache check ---------------------------------------------------------------
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: apt-get install busybox-static"
file_is_static() { ! LC_ALL=C ldd "$1" >/dev/null 2>&1; }
file_is_static "$BUSYBOX" || die "$BUSYBOX is dynamically linked: install busybox-static"

inputs_hash() {
	{
		cat "$HERE/build-guest.sh" "$HERE"/guest/*
		echo "$1"
		sha256sum <"$BUSYBOX"
	} | sha256sum | cut -d' ' -f1
}

# The package name is resolved first: a new kernel in the archive means a rebuild.
PKG=$(kernel_pkg)
KVER=${PKG#linux-image-}
HASH=$(inputs_hash "$PKG")
if [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.gz" ] && [ -f "$OUT/guest.info" ] &&
	grep -qx "inputs=$HASH" "$OUT/guest.info"; then
	log "up to date: $OUT ($PKG)"
	exit 0
fi

WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# -- kernel package ------------------------------------------------------------
mkdir -p "$OUT/deb"
DEB=$(ls "$OUT/deb/${PKG}_"*_amd64.deb 2>/dev/null | tail -n1 || true)
if [ -z "$DEB" ]; then
	log "downloading $PKG"
	(cd "$WORK" && apt-get download -q "$PKG" >&2) ||
		die "apt-get download $PKG failed (Debian mirror reachable? apt-get update?)"
	mv "$WORK/${PKG}_"*_amd64.deb "$OUT/deb/"
	DEB=$(ls "$OUT/deb/${PKG}_"*_amd64.deb | tail -n1)
fi
log "unpacking $(basename "$DEB")"
dpkg -x "$DEB" "$WORK/pkg"
KIMG="$WORK/pkg/boot/vmlinuz-$KVER"
MODROOT="$WORK/pkg/lib/modules/$KVER"
[ -f "$KIMG" ] || die "$KIMG not in $DEB"
[ -d "$MODROOT" ] || die "$MODROOT not in $DEB"

# The package ships no modules.dep (postinst runs depmod): make one.
if [ ! -s "$MODROOT/modules.dep" ]; then
	command -v depmod >/dev/null || PATH=$PATH:/sbin:/usr/sbin
	depmod -b "$WORK/pkg" "$KVER" || die "depmod failed (apt-get install kmod)"
fi

# -- modules in load order -----------------------------------------------------
# modules.dep: "kernel/x/a.ko[.xz]: kernel/y/b.ko kernel/z/c.ko" (a needs b, c;
# b, c listed so that loading them in reverse order works).
declare -A DEP_OF PATH_OF BUILTIN LOADED
while IFS= read -r line; do
	path=${line%%:*}
	deps=${line#*:}
	name=$(basename "$path")
	name=${name%%.ko*}
	name=${name//-/_}
	PATH_OF[$name]=$path
	DEP_OF[$name]=$deps
done <"$MODROOT/modules.dep"
if [ -f "$MODROOT/modules.builtin" ]; then
	while IFS= read -r path; do
		name=$(basename "$path")
		name=${name%%.ko*}
		BUILTIN[${name//-/_}]=1
	done <"$MODROOT/modules.builtin"
fi

ORDER=()
add_module() { # name
	local m=$1 i dn deps
	[ -n "${LOADED[$m]:-}" ] && return
	if [ -n "${BUILTIN[$m]:-}" ]; then
		LOADED[$m]=builtin
		return
	fi
	[ -n "${PATH_OF[$m]:-}" ] || die "module $m neither built in nor in modules.dep of $KVER"
	LOADED[$m]=pending
	# dependencies, deepest first (modules.dep lists them nearest first)
	read -r -a deps <<<"${DEP_OF[$m]}"
	for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
		dn=$(basename "${deps[i]}")
		dn=${dn%%.ko*}
		add_module "${dn//-/_}"
	done
	LOADED[$m]=module
	ORDER+=("$m")
}
for m in $WANT_MODULES; do add_module "$m"; done

# -- initramfs tree ------------------------------------------------------------
ROOT="$WORK/root"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,lib/modules}
cp "$BUSYBOX" "$ROOT/bin/busybox"
for a in $("$BUSYBOX" --list-full); do
	[ -e "$ROOT/$a" ] || ln -s /bin/busybox "$ROOT/$a"
done
install -m 0755 "$HERE/guest/init" "$ROOT/init"
install -m 0755 "$HERE/guest/vs-serve" "$ROOT/bin/vs-serve"
install -m 0755 "$HERE/guest/vs-state" "$ROOT/bin/vs-state"
# Early console for the kernel before init mounts devtmpfs (needs root).
mknod -m 600 "$ROOT/dev/console" c 5 1 2>/dev/null || true

: >"$ROOT/lib/modules/load.list"
for m in "${ORDER[@]}"; do
	src="$MODROOT/${PATH_OF[$m]}"
	dst="$ROOT/lib/modules/$m.ko"
	case "$src" in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" >"$dst" ;; # busybox insmod cannot read xz
	*.ko.zst) zstd -qdc "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*) die "unknown module format: $src" ;;
	esac
	echo "$m" >>"$ROOT/lib/modules/load.list"
done
builtin_list=""
for m in $WANT_MODULES; do
	[ "${LOADED[$m]}" = builtin ] && builtin_list="$builtin_list $m"
done
log "modules: ${ORDER[*]}${builtin_list:+ (built in:$builtin_list)}"

# -- outputs (written under temporary names, then renamed) ---------------------
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc --owner=0:0 --reproducible) | gzip -n -9 >"$WORK/initrd.gz"
cp "$KIMG" "$WORK/vmlinuz"
mv -f "$WORK/vmlinuz" "$OUT/vmlinuz"
mv -f "$WORK/initrd.gz" "$OUT/initrd.gz"
cat >"$OUT/guest.info" <<EOF
kernel_package=$PKG
kernel_deb=$(basename "$DEB")
kernel_version=$KVER
modules=${ORDER[*]}
builtin_modules=${builtin_list# }
busybox=$("$BUSYBOX" 2>&1 | head -n1)
inputs=$HASH
EOF
log "built $OUT/vmlinuz $OUT/initrd.gz ($PKG)"
