#!/usr/bin/env bash
# Builds an e2e guest: a Debian root file system (stock packages, stock mdevctl) with mtty.ko and
# mdev_edu.ko, as a raw ext4 image plus the kernel and initrd to boot it with. mdevmon itself is not in it:
# run.sh copies the image and injects the daemon for each run.
# Usage: host/image.sh <suite> <repos> <kernel-abi> <mtty.ko> <packages.txt> <deb cache dir> <output dir>
#   suite: bookworm or trixie; repos: the apt sources, "URI SUITE" per line (main only)
#   mdev_edu.ko is taken from the directory of <mtty.ko> (host/mtty.sh builds both there)
set -euo pipefail
suite=$1 repos=$2 abi=$3 mtty=$4 packages=$5 debs=$6 out=$7
source "$(dirname "$0")/chroot.sh"

new_root "$suite" "$repos" "$out" "$debs"
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$packages")
echo "image.sh: installing ${pkgs[*]} linux-image-$abi" >&2
# The kernel last and alone: installed together with udev and kmod, their triggers build the initrd twice.
apt_install "${pkgs[@]}"
apt_install "linux-image-$abi"

# mtty: out-of-tree module, loaded at boot (modprobe pulls in vfio and mdev first). mdev_edu (the PCI
# parent on the edu devices run.sh gives the guests) is installed but not loaded: scenarios modprobe it
# late, and it has no modalias, so udev does not load it for the edu devices either.
install -D -m 0644 "$mtty" "$root/lib/modules/$abi/extra/mtty.ko"
install -D -m 0644 "$(dirname "$mtty")/mdev_edu.ko" "$root/lib/modules/$abi/extra/mdev_edu.ko"
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
unbind_all
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
