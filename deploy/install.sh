#!/usr/bin/env bash
# Installs mdevmon as a systemd service: binary, unit, default config, journal catalog.
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
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
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
if [ "$prefix" != /usr/local ]; then
  sed -i "s|/usr/local/bin/mdevmon|$prefix/bin/mdevmon|" "$root/etc/systemd/system/mdevmon.service"
fi
# Keep an operator's edited config.
[ -e "$root/etc/mdevmon/mdevmon.yaml" ] || install -D -m 0644 deploy/mdevmon.yaml "$root/etc/mdevmon/mdevmon.yaml"
install -D -m 0644 deploy/mdevmon.catalog "$root/usr/lib/systemd/catalog/mdevmon.catalog"
install -d -m 0700 "$root/var/lib/mdevmon"
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
install -d "$root/etc/systemd/system/mdevmon.service.d"
printf '[Service]\nEnvironment=MDEVMON_REVISION=%s\n' "$revision" > "$root/etc/systemd/system/mdevmon.service.d/revision.conf"

if [ -z "$root" ]; then
  journalctl --update-catalog 2>/dev/null || true
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now mdevmon.service
    echo "install.sh: mdevmon enabled and started; see: systemctl status mdevmon"
  else
    echo "install.sh: installed; systemd is not PID 1 here, start it with: $prefix/bin/mdevmon run"
  fi
fi
