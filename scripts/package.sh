#!/usr/bin/env bash
# Builds the Debian package and checks it:
#
#   scripts/package.sh      -> target/debian/vswitchd_VERSION-1_ARCH.deb (+ -dbgsym .ddeb)
#
#   1. the release binaries are built, and vswitch-gen writes the man pages
#      (vswitchd(8), vswitchctl(8) and a page per vswitchctl command,
#      vswitchd.toml(5)) and the bash/zsh/fish completions into target/gen;
#      cargo-deb (installed from crates.io at a pinned version if missing)
#      builds the .deb, with the debug symbols in a separate -dbgsym
#      package;
#   2. lintian checks it: no errors or warnings may remain (tags the package
#      overrides are explained in dist/deb/lintian-overrides);
#   3. `dpkg-deb -c` lists it, and every path the units, the docs and the
#      scripts rely on must be in it;
#   4. it is unpacked into a scratch root (dpkg -x: no maintainer scripts, no
#      systemd) and the unpacked vswitchd checks the unpacked default config
#      (`vswitchd --check-config`), the units' ExecStart binaries are checked
#      to be in the package, and the ifup script answers.
#
# Needs: cargo (Rust as in README.md), and lintian + dpkg-dev, which
# `scripts/install-deps.sh --package` installs (this script runs it as root
# when lintian is missing). Does not need root otherwise and changes nothing
# outside target/ and a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0

step() { echo; echo "== $*"; }
fail() { echo "package: $*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo not found: install Rust with rustup (https://rustup.rs)"
if ! command -v lintian >/dev/null || ! command -v dpkg-shlibdeps >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    step "lintian or dpkg-dev missing: installing them"
    ./scripts/install-deps.sh --package
  else
    fail "lintian and dpkg-dev are needed: sudo ./scripts/install-deps.sh --package"
  fi
fi
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  step "installing cargo-deb $CARGO_DEB_VERSION (crates.io)"
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi

step "build, and generate man pages and completions (vswitch-gen)"
cargo build --release --locked
rm -rf target/gen
target/release/vswitch-gen target/gen

step "build the package (cargo deb)"
out=target/debian
rm -rf "$out"
cargo deb --locked --dbgsym --output "$out/"
deb=$(find "$out" -maxdepth 1 -name 'vswitchd_*.deb' | head -1)
[ -n "$deb" ] || fail "no vswitchd_*.deb in $out"
ls -l "$out"

step "lintian $deb"
# Fails on errors and warnings; info tags are printed but allowed. The
# package's own overrides (usr/share/lintian/overrides/vswitchd) are read.
lintian --fail-on error,warning --display-info "$deb"
echo "lintian: clean"

step "contents (dpkg-deb -c)"
listing=$(dpkg-deb -c "$deb")
echo "$listing"
for path in \
  ./usr/sbin/vswitchd \
  ./usr/bin/vswitchctl \
  ./etc/vswitchd/vswitchd.toml \
  ./usr/lib/systemd/system/vswitchd.service \
  ./usr/lib/systemd/system/vswitchd@.service \
  ./usr/lib/vswitchd/qemu-ifup \
  ./usr/lib/vswitchd/qemu-ifdown \
  ./usr/share/vswitchd/dashboards/vswitchd.json \
  ./usr/share/vswitchd/dashboards/vswitchd-alerts.yml \
  ./usr/share/doc/vswitchd/copyright \
  ./usr/share/doc/vswitchd/operations.md \
  ./usr/share/doc/vswitchd/configuration.md \
  ./usr/share/doc/vswitchd/qemu.md \
  ./usr/share/man/man8/vswitchd.8.gz \
  ./usr/share/man/man8/vswitchctl.8.gz \
  ./usr/share/man/man8/vswitchctl-port-add.8.gz \
  ./usr/share/man/man5/vswitchd.toml.5.gz \
  ./usr/share/bash-completion/completions/vswitchctl \
  ./usr/share/bash-completion/completions/vswitchd \
  ./usr/share/zsh/vendor-completions/_vswitchctl \
  ./usr/share/fish/vendor_completions.d/vswitchctl.fish; do
  grep -q " $path\$" <<<"$listing" || fail "$path is not in the package"
done
dpkg-deb -f "$deb" Package Version Architecture Depends
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)
grep -qx /etc/vswitchd/vswitchd.toml <<<"$conffiles" || fail "/etc/vswitchd/vswitchd.toml is not a conffile"
echo "conffiles: $conffiles"
# The maintainer scripts cargo-deb generates for the units: enable and start
# vswitchd.service on install, stop it on removal.
postinst=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./postinst)
grep -q "deb-systemd-helper.*enable.*vswitchd.service" <<<"$postinst" || fail "postinst does not enable vswitchd.service"
dpkg-deb --ctrl-tarfile "$deb" | tar -tf - ./prerm ./postrm >/dev/null || fail "no prerm/postrm"
echo "maintainer scripts: postinst enables vswitchd.service; prerm, postrm present"

step "unpack into a scratch root and check the shipped config"
root=$(mktemp -d /tmp/vswitchd-pkgroot.XXXXXX)
trap 'rm -rf "$root"' EXIT
dpkg -x "$deb" "$root"
"$root/usr/sbin/vswitchd" --version
"$root/usr/bin/vswitchctl" --version
"$root/usr/sbin/vswitchd" --check-config --config "$root/etc/vswitchd/vswitchd.toml"
# Every binary a unit starts must be one the package installs.
for unit in "$root"/usr/lib/systemd/system/vswitchd.service "$root"/usr/lib/systemd/system/vswitchd@.service; do
  # shellcheck disable=SC2013 # one word per line: the binary
  for bin in $(sed -n 's/^Exec[A-Za-z]*=[-@+!]*\([^ ]*\).*/\1/p' "$unit"); do
    case "$bin" in
      /usr/sbin/vswitchd | /usr/bin/vswitchctl) [ -x "$root$bin" ] || fail "$unit: $bin not in the package" ;;
      /bin/kill) ;;
      *) fail "$unit starts $bin, which the package does not ship" ;;
    esac
  done
done
echo "units: ExecStart binaries are in the package"
# The ifup script runs and refuses a call without an interface name (exit 2).
rc=0
"$root/usr/lib/vswitchd/qemu-ifup" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "qemu-ifup without arguments exited $rc, expected 2"
echo "qemu-ifup: answers"
# The man pages render without warnings, and the completions parse.
if command -v man >/dev/null; then
  for page in "$root"/usr/share/man/man*/*.gz; do
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || true)
    [ -z "$warnings" ] || fail "$(basename "$page"): $warnings"
  done
fi
bash -n "$root/usr/share/bash-completion/completions/vswitchctl" || fail "bash completion does not parse"
echo "man pages: render cleanly; completions: parse"

echo
echo "== package ok: $deb"
