#!/bin/sh
# Scenario stuck-call (boot five): libvirt's mdevctl callout hangs for one device, as it does behind a stuck
# vendor driver or udev. `mdevctl-hold.sh setup` (mdevmon-e2e-hold.service, before libvirtd) copies mdevctl
# beside itself and bind-mounts this script over /usr/bin/mdevctl. A call whose arguments name the UUID in
# /var/lib/mdevmon-e2e/hold-uuid then blocks while /run/mdevmon-e2e-hold exists (the scenario removes it);
# every other call runs mdevctl at once.
set -u
# The copy is on the root file system: /run is mounted noexec.
real=/usr/local/lib/mdevmon-e2e/mdevctl.real flag=/run/mdevmon-e2e-hold
if [ "${1:-}" = setup ]; then
  # Once: a second copy would be of this wrapper, which would then run itself.
  /bin/findmnt /usr/bin/mdevctl > /dev/null && exit 0
  uuid=$(/bin/cat /var/lib/mdevmon-e2e/hold-uuid) || exit 1
  [ -n "$uuid" ] || exit 1
  /bin/cp /usr/bin/mdevctl "$real" && /bin/touch "$flag" && /bin/mount --bind /usr/local/lib/mdevmon-e2e/mdevctl-hold.sh /usr/bin/mdevctl
  exit
fi
# libvirt runs mdevctl with a minimal environment: every program by its path.
uuid=$(/bin/cat /var/lib/mdevmon-e2e/hold-uuid 2>/dev/null)
case "$*" in
  *"$uuid"*)
    if [ -n "$uuid" ] && [ -e "$flag" ]; then
      # When the hold began (ms since the epoch) and what was held: the scenario measures from here.
      echo "$(/bin/date +%s%3N) $*" >> /run/mdevmon-e2e-held.log
      while [ -e "$flag" ]; do /bin/sleep 0.1; done
    fi ;;
esac
exec "$real" "$@"
