#!/usr/bin/env bash
# Installs and starts everything mdevmon and its tests need on a fresh Debian 12 machine (as root).
# Idempotent: safe to run again; it starts only what is not running yet.
set -euo pipefail

PACKAGES=(
  libvirt-daemon-system libvirt-clients libvirt-dev libxml2-dev libsystemd-dev zlib1g-dev mdevctl
  qemu-system-x86 systemd prometheus prometheus-alertmanager curl openssl python3 python3-yaml
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}" >/dev/null
fi
# The Debian prometheus packages start their services where systemd is PID 1; tests run their own.

# A /dev/kvm whose group libvirt's qemu user is not in (a sandbox's device node: a gid with no name, or one
# a later package named, such as ssl-cert) is usable by root but not by that user: libvirt then probes QEMU
# with KVM as root, finds its cached capabilities outdated at every lookup ("KVM was enabled when probing,
# but it is not available now") and probes again, ~30 s per `virsh define`. Giving the node the kvm group
# makes both views agree. Hosts with a normal /dev/kvm (group kvm) are left alone.
if [ -c /dev/kvm ] && [ "$(stat -c %G /dev/kvm)" != kvm ] && getent group kvm >/dev/null &&
   ! id -Gn libvirt-qemu 2>/dev/null | tr ' ' '\n' | grep -qx "$(stat -c %G /dev/kvm)"; then
  chgrp kvm /dev/kvm
fi

# libvirtd: PID 1 is not systemd on build machines, so start the monolithic daemon by hand.
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
  pgrep -x libvirtd >/dev/null || libvirtd -d
  for _ in $(seq 1 100); do
    virsh -c qemu:///system version >/dev/null 2>&1 && break
    sleep 0.1
  done
  virsh -c qemu:///system version >/dev/null || { echo "deps: libvirtd did not start" >&2; exit 1; }
fi

# virtlogd: a domain start needs it (the hotplug test runs one); libvirtd does not start it by itself here.
pgrep -x virtlogd >/dev/null || virtlogd -d

# journald: standalone, when no journal is listening yet.
if ! pgrep -x systemd-journal >/dev/null 2>&1; then
  mkdir -p /run/systemd/journal
  /lib/systemd/systemd-journald >/dev/null 2>&1 &
  for _ in $(seq 1 50); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
fi
echo "deps: libvirtd and journald are up"
