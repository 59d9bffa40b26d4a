#!/usr/bin/env bash
# Builds the e2e guest: a Debian 12 root file system (stock packages, stock mdevctl) with mtty.ko, as a
# raw ext4 image plus the kernel and initrd to boot it with. mdevmon itself is not in it: run.sh copies
# the image and injects the daemon for each run.
# Usage: host/image.sh <kernel-abi> <mtty.ko> <packages.txt> <deb cache dir> <output dir>
set -euo pipefail
abi=$1 mtty=$2 packages=$3 debs=$4 out=$5

# The host's own Debian repositories (bookworm, -updates, -security), as apt resolved them.
repos=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' | sort -u |
        awk '$2 ~ /^bookworm(-updates|-security)?$/')
mirror=$(awk '$2 == "bookworm" {print $1; exit}' <<<"$repos")
mirror=${mirror:-http://deb.debian.org/debian/}

root=$(mktemp -d "${out%/}.root.XXXXXX")
mounted=()
cleanup() {
  local m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
bind() { mkdir -p "$2" && mount "${@:3}" "$1" "$2" && mounted+=("$2"); }

mkdir -p "$debs"
echo "image.sh: debootstrap bookworm from $mirror" >&2
debootstrap --variant=minbase --cache-dir="$debs" bookworm "$root" "$mirror" >&2

: > "$root/etc/apt/sources.list"
while read -r uri suite; do echo "deb $uri $suite main"; done <<<"$repos" > "$root/etc/apt/sources.list"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
bind proc "$root/proc" -t proc
bind sysfs "$root/sys" -t sysfs
bind /dev "$root/dev" --bind
bind devpts "$root/dev/pts" -t devpts
bind "$debs" "$root/var/cache/apt/archives" --bind

mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$packages")
echo "image.sh: installing ${pkgs[*]} linux-image-$abi" >&2
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -q update >&2
apt_install() {
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends \
    -o Dpkg::Use-Pty=0 "$@" >&2
}
# The kernel last and alone: installed together with udev and kmod, their triggers build the initrd twice.
apt_install "${pkgs[@]}"
apt_install "linux-image-$abi"

# mtty: out-of-tree module, loaded at boot (modprobe pulls in vfio and mdev first).
install -D -m 0644 "$mtty" "$root/lib/modules/$abi/extra/mtty.ko"
chroot "$root" depmod -a "$abi"
echo mtty > "$root/etc/modules-load.d/mtty.conf"

echo '/dev/vda / ext4 defaults 0 1' > "$root/etc/fstab"
echo e2e-guest > "$root/etc/hostname"
: > "$root/etc/machine-id"
# The console carries the results: no login prompt on it. Nothing here needs timers, the libvirt default
# network (no dnsmasq) or guest shutdown handling.
chroot "$root" systemctl mask -q serial-getty@ttyS0.service getty@tty1.service libvirt-guests.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer 2>/dev/null || true
rm -f "$root/etc/libvirt/qemu/networks/autostart/default.xml"
# journald keeps this boot's and the previous boots' journals on disk for the scenario checks.
mkdir -p "$root/var/log/journal"

rm -f "$root/usr/sbin/policy-rc.d"
for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}"; done
mounted=()
rm -rf "$root"/var/lib/apt/lists/* "$root"/tmp/* "$root"/boot/*.bak

mkdir -p "$out"
cp "$root/boot/vmlinuz-$abi" "$out/vmlinuz"
cp "$root/boot/initrd.img-$abi" "$out/initrd.img"
# Room for the journal, libvirt state and the daemon beside what the packages use.
size_mb=$(( $(du -sm "$root" | cut -f1) + 1024 ))
rm -f "$out/base.img"
truncate -s "${size_mb}M" "$out/base.img"
mkfs.ext4 -q -F -L e2e-root -d "$root" "$out/base.img"
dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Package} ${Version}\n' > "$out/packages.lock"
echo "image.sh: $out/base.img (${size_mb} MiB)" >&2
