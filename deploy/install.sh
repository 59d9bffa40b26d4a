#!/usr/bin/env bash
# Installs mdevmon as a systemd service: binary, unit, default config, journal catalog; and the
# mdevmon@.service template for watching remote hosts (not enabled; docs/remote.md), its user and examples.
# Run as root from a checkout after `swift build -c release` (or let it build).
# Usage: deploy/install.sh [--prefix /usr/local] [--no-build] [--root DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local root="" build=1
while (($#)); do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
export PATH="$PATH:/opt/swift/usr/bin"
if ((build)); then
  swift build -c release --product mdevmon --static-swift-stdlib 2>&1 | tail -n 2
fi
bin=.build/release/mdevmon
[ -x "$bin" ] || { echo "install.sh: $bin not built" >&2; exit 1; }

install -D -m 0755 "$bin" "$root$prefix/bin/mdevmon"
install -D -m 0644 deploy/mdevmon.service "$root/etc/systemd/system/mdevmon.service"
install -D -m 0644 deploy/mdevmon@.service "$root/etc/systemd/system/mdevmon@.service"
if [ "$prefix" != /usr/local ]; then
  sed -i "s|/usr/local/bin/mdevmon|$prefix/bin/mdevmon|" "$root/etc/systemd/system/mdevmon.service" \
    "$root/etc/systemd/system/mdevmon@.service"
fi
# Keep an operator's edited config.
[ -e "$root/etc/mdevmon/mdevmon.yaml" ] || install -D -m 0644 deploy/mdevmon.yaml "$root/etc/mdevmon/mdevmon.yaml"
install -D -m 0644 deploy/mdevmon.catalog "$root/usr/lib/systemd/catalog/mdevmon.catalog"
install -d -m 0700 "$root/var/lib/mdevmon"
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
for unit in mdevmon.service mdevmon@.service; do
  install -d "$root/etc/systemd/system/$unit.d"
  printf '[Service]\nEnvironment=MDEVMON_REVISION=%s\n' "$revision" > "$root/etc/systemd/system/$unit.d/revision.conf"
done

# The remote watchers (mdevmon@.service): their user, their configuration directory (readable by them,
# by no one else), and the examples to start one from.
install -D -m 0644 deploy/mdevmon.sysusers "$root/etc/sysusers.d/mdevmon.conf"
if command -v systemd-sysusers > /dev/null; then
  systemd-sysusers ${root:+--root="$root"} "$PWD/deploy/mdevmon.sysusers"
  [ -d "$root/etc/mdevmon-remote" ] || install -d -m 0750 -g "$(grep '^mdevmon:' "$root/etc/group" | cut -d: -f3)" "$root/etc/mdevmon-remote"
else
  echo "install.sh: systemd-sysusers not found: create the mdevmon user (deploy/mdevmon.sysusers) before using mdevmon@.service" >&2
fi
doc=$root$prefix/share/doc/mdevmon
install -D -m 0644 docs/remote.md "$doc/remote.md"
install -D -m 0644 deploy/mdevmon-instance.env.example "$doc/examples/mdevmon-instance.env.example"
install -D -m 0644 deploy/mdevmon-remote.yaml "$doc/examples/mdevmon-remote.yaml"

if [ -z "$root" ]; then
  journalctl --update-catalog 2>/dev/null || true
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now mdevmon.service
    echo "install.sh: mdevmon enabled and started; see: systemctl status mdevmon"
  else
    echo "install.sh: installed; systemd is not PID 1 here, start it with: $prefix/bin/mdevmon run"
  fi
  echo "install.sh: to watch remote hosts (mdevmon@HOST), see $prefix/share/doc/mdevmon/remote.md"
fi
