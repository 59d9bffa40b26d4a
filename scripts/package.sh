#!/usr/bin/env bash
# Builds the Debian package out/mdevmon_<version>_amd64.deb with dpkg-deb (no debhelper needed):
# the release binary (static Swift stdlib, stripped), the unit in /usr/lib/systemd/system, the default
# config as a conffile in /etc/mdevmon/, the journal catalog, bash and zsh completions, a man page, and
# Depends: computed by dpkg-shlibdeps. Also the mdevmon@.service template for remote hosts (not enabled),
# its user (sysusers.d) and, in /usr/share/doc/mdevmon, remote.md and its examples. Runs lintian when it
# is installed.
#
# Usage: scripts/package.sh [--out DIR] [--no-build]
#   --out       where the .deb goes (default: out/)
#   --no-build  package the binary already in .build-release/release/mdevmon
# Version: Version.string in Sources/mdevmon/BuildInfo.swift; on a commit tagged v<that version> the
# package version is exactly it, otherwise <version>~git<commits since the root>.<short hash> (sorts
# before the release and rises with every commit). A dirty tree adds +dirty.
# Takes 15-35 minutes cold on 2 shared cores (the release build), about 3 with a warm .build-release.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=$repo/out build=1 scratch=$repo/.build-release
while (($#)); do
  case "$1" in
    --out) out=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
export PATH="$PATH:/opt/swift/usr/bin"
for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
  command -v "$tool" > /dev/null || { echo "package.sh: $tool not found (apt-get install dpkg-dev binutils)" >&2; exit 1; }
done

base=$(sed -n 's/.*static let string = "\(.*\)".*/\1/p' Sources/mdevmon/BuildInfo.swift)
[ -n "$base" ] || { echo "package.sh: no Version.string in Sources/mdevmon/BuildInfo.swift" >&2; exit 1; }
revision=$(git rev-parse --short=12 HEAD)
if [ "$(git tag --points-at HEAD --list "v$base")" = "v$base" ]; then
  version=$base
else
  version="$base~git$(git rev-list --count HEAD).$(git rev-parse --short=7 HEAD)"
fi
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then version+="+dirty" revision+="-dirty"; fi
arch=amd64
# The maintainer: MDEVMON_MAINTAINER, else the author of HEAD.
maintainer=${MDEVMON_MAINTAINER:-$(git log -1 --format='%an <%ae>' HEAD)}
[ "$(dpkg --print-architecture)" = $arch ] || { echo "package.sh: builds $arch packages only" >&2; exit 1; }

t0=$SECONDS
date=$(git log -1 --format=%cs HEAD)
if ((build)); then
  echo "package.sh: swift build -c release --static-swift-stdlib (scratch $scratch)"
  swift build -c release --product mdevmon --static-swift-stdlib --scratch-path "$scratch" 2>&1 | tail -n 1
  # The man page: swift-argument-parser's generate-manual tool, the one its generate-manual plugin runs.
  # The plugin itself (swift package plugin generate-manual) works offline too, but it rebuilds every
  # product without --static-swift-stdlib, which in one scratch directory recompiles everything twice per
  # package (about 10 minutes each here); the tool alone builds in debug in a minute.
  echo "package.sh: swift build --product generate-manual"
  swift build --product generate-manual --scratch-path "$scratch" 2>&1 | tail -n 1
fi
bin=$scratch/release/mdevmon
tool=$scratch/debug/generate-manual
[ -x "$bin" ] || { echo "package.sh: $bin not built" >&2; exit 1; }
[ -x "$tool" ] || { echo "package.sh: $tool not built" >&2; exit 1; }
if ldd "$bin" | grep -q libswiftCore; then
  echo "package.sh: $bin is not linked with the static Swift stdlib" >&2; exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mdevmon-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/DEBIAN"

# Binary: stripped as dh_strip does (debug info and the symbol table; Swift's metadata sections stay).
install -D -m 0755 "$bin" "$root/usr/bin/mdevmon"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/mdevmon"
"$root/usr/bin/mdevmon" --version > /dev/null || { echo "package.sh: the stripped binary does not run" >&2; exit 1; }

# Unit: the package installs the binary to /usr/bin, deploy/mdevmon.service names /usr/local/bin.
unit=$root/usr/lib/systemd/system/mdevmon.service
install -D -m 0644 deploy/mdevmon.service "$unit"
sed -i 's|^ExecStart=/usr/local/bin/mdevmon |ExecStart=/usr/bin/mdevmon |' "$unit"
grep -q '^ExecStart=/usr/bin/mdevmon run ' "$unit" ||
  { echo "package.sh: ExecStart in deploy/mdevmon.service is not /usr/local/bin/mdevmon run …" >&2; exit 1; }
sed -i 's|^# Install: .*|# Installed by the mdevmon package (enabled on install): systemctl status mdevmon|' "$unit"
# The template for remote hosts, the same way; no instance is enabled.
template=$root/usr/lib/systemd/system/mdevmon@.service
install -D -m 0644 deploy/mdevmon@.service "$template"
sed -i 's|^ExecStart=/usr/local/bin/mdevmon |ExecStart=/usr/bin/mdevmon |' "$template"
grep -q '^ExecStart=/usr/bin/mdevmon run ' "$template" ||
  { echo "package.sh: ExecStart in deploy/mdevmon@.service is not /usr/local/bin/mdevmon run …" >&2; exit 1; }
sed -i 's|^# Install: .*|# Installed by the mdevmon package, no instance enabled; per host: systemctl enable --now mdevmon@HOST|' "$template"
# The revision for mdev_build_info, as deploy/install.sh sets it.
for unit in mdevmon.service mdevmon@.service; do
  install -D -m 0644 /dev/stdin "$root/usr/lib/systemd/system/$unit.d/revision.conf" \
    <<< "$(printf '[Service]\nEnvironment=MDEVMON_REVISION=%s' "$revision")"
done
# The template's user, created by postinst.
install -D -m 0644 deploy/mdevmon.sysusers "$root/usr/lib/sysusers.d/mdevmon.conf"

install -D -m 0644 deploy/mdevmon.yaml "$root/etc/mdevmon/mdevmon.yaml"
install -D -m 0644 deploy/mdevmon.catalog "$root/usr/lib/systemd/catalog/mdevmon.catalog"

# Completions and the man page come from the binary's own argument parser.
# A completion file is sourced, not run: no #! line (lintian: bash-completion-with-hashbang).
"$root/usr/bin/mdevmon" --generate-completion-script bash | sed '1{/^#!/d}' > "$work/bash"
"$root/usr/bin/mdevmon" --generate-completion-script zsh > "$work/zsh"
install -D -m 0644 "$work/bash" "$root/usr/share/bash-completion/completions/mdevmon"
install -D -m 0644 "$work/zsh" "$root/usr/share/zsh/vendor-completions/_mdevmon"
mkdir -p "$work/man"
"$tool" "$root/usr/bin/mdevmon" --section 8 --date "$date" --authors "mdevmon maintainers" --output-directory "$work/man" > /dev/null
[ -s "$work/man/mdevmon.8" ] || { echo "package.sh: generate-manual wrote no mdevmon.8" >&2; exit 1; }
install -d "$root/usr/share/man/man8"
gzip -9n < "$work/man/mdevmon.8" > "$root/usr/share/man/man8/mdevmon.8.gz"
chmod 0644 "$root/usr/share/man/man8/mdevmon.8.gz"

doc=$root/usr/share/doc/mdevmon
install -D -m 0644 deploy/debian/copyright "$doc/copyright"
install -D -m 0644 docs/remote.md "$doc/remote.md"
install -D -m 0644 deploy/mdevmon-instance.env.example "$doc/examples/mdevmon-instance.env.example"
install -D -m 0644 deploy/mdevmon-remote.yaml "$doc/examples/mdevmon-remote.yaml"
# Yams compiles its own copy of libyaml into the binary (SwiftPM has no way to use Debian's libyaml0.2).
install -D -m 0644 deploy/debian/lintian-overrides "$root/usr/share/lintian/overrides/mdevmon"
{
  echo "mdevmon ($version) unstable; urgency=medium"
  echo
  echo "  * Package built from revision $revision by scripts/package.sh."
  echo
  echo " -- $maintainer  $(git log -1 --format=%aD HEAD)"
} | gzip -9n > "$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
echo /etc/mdevmon/mdevmon.yaml > "$root/DEBIAN/conffiles"

# Depends from the binary's shared libraries (dpkg-shlibdeps wants a debian/control to read).
mkdir -p "$work/src/debian"
printf 'Source: mdevmon\n\nPackage: mdevmon\nArchitecture: %s\n' $arch > "$work/src/debian/control"
depends=$(cd "$work/src" && dpkg-shlibdeps -O -e"$root/usr/bin/mdevmon" 2> "$work/shlibdeps.err" |
          sed -n 's/^shlibs:Depends=//p') ||
  { cat "$work/shlibdeps.err" >&2; echo "package.sh: dpkg-shlibdeps failed" >&2; exit 1; }
[ -n "$depends" ] || { echo "package.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: mdevmon
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Recommends: libvirt-daemon-system, mdevctl
Section: admin
Priority: optional
Description: VFIO mediated device (mdev) monitor for libvirt hosts
 mdevmon subscribes to libvirt node-device and domain events, keeps an
 in-memory index of every mediated device (vGPU slices, mtty, vfio-ap/ccw),
 serves it as Prometheus metrics on port 9850, logs every change to the
 systemd journal with stable message IDs, restores mdevs after a host reboot
 and reports defined domains whose mdevs are missing or inactive.
 .
 "mdevmon doctor" checks the host for what keeps mdevs from starting, such as
 a udev rule that runs a program that does not exist.
CONTROL

find "$root" -type d -exec chmod 0755 {} +
( cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums )
chmod 0644 "$root/DEBIAN/md5sums"
mkdir -p "$out"
deb=$out/mdevmon_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" > /dev/null
echo "package.sh: $deb ($(du -h "$deb" | cut -f1), installed $installed_size KiB) in $((SECONDS - t0)) s"
echo "package.sh: Depends: $depends"
if command -v lintian > /dev/null; then
  lintian --info "$deb" || { echo "package.sh: lintian reported errors" >&2; exit 1; }
fi
