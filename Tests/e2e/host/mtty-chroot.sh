#!/usr/bin/env bash
# Builds mtty.ko and mdev_edu.ko for a guest kernel whose compiler the host does not have (Debian 13's 6.12
# kernel is built with gcc 14, the host has bookworm's gcc 12): debootstraps a throw-away build root of the
# guest's suite, installs gcc, make, the kernel's headers and linux-source there, and runs host/mtty.sh
# (with host/mdev_edu.c beside it) inside it. The build tools stay out of the guest image.
# Usage: host/mtty-chroot.sh <suite> <repos> <kernel-abi> <deb cache dir> <output mtty.ko>
#   writes <output mtty.ko> and $(dirname <output mtty.ko>)/mdev_edu.ko
#   repos: the apt sources, "URI SUITE" per line (main only)
set -euo pipefail
suite=$1 repos=$2 abi=$3 debs=$4 out=$5
here=$(cd "$(dirname "$0")" && pwd)
source "$here/chroot.sh"

series=$(cut -d. -f1,2 <<<"${abi%%[-+]*}")
mkdir -p "$(dirname "$out")"
new_root "$suite" "$repos" "$(dirname "$out")/build" "$debs"
echo "mtty-chroot.sh: installing gcc make kmod linux-headers-$abi linux-source-$series" >&2
# trixie's headers depend on the kernel image; INITRD=No spares building an initrd nobody boots.
INITRD=No apt_install gcc make kmod "linux-headers-$abi" "linux-source-$series"
install -D -m 0755 "$here/mtty.sh" "$root/tmp/mtty.sh"
install -D -m 0644 "$here/mdev_edu.c" "$root/tmp/mdev_edu.c"
chroot "$root" /tmp/mtty.sh "$abi" /tmp/mtty.ko
install -D -m 0644 "$root/tmp/mtty.ko" "$out"
install -D -m 0644 "$root/tmp/mdev_edu.ko" "$(dirname "$out")/mdev_edu.ko"
