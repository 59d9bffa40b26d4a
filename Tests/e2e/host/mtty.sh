#!/usr/bin/env bash
# Builds the mtty sample driver for the guest kernel. Debian builds without CONFIG_SAMPLES, so the module
# comes from the linux-source-<major.minor> tarball of the same kernel series (its mtty API follows the
# kernel's), compiled out of tree against the guest kernel's own headers. Runs on the host for Debian 12
# (the host's gcc is bookworm's) and inside a trixie build root for Debian 13 (host/mtty-chroot.sh).
# Usage: host/mtty.sh <kernel-abi, e.g. 6.1.0-56-amd64 or 6.12.118+deb13-amd64> <output mtty.ko>
set -euo pipefail
abi=$1 out=$2
series=$(cut -d. -f1,2 <<<"${abi%%[-+]*}")
tarball=/usr/src/linux-source-$series.tar.xz
headers=/usr/src/linux-headers-$abi
[ -r "$tarball" ] || { echo "mtty.sh: $tarball missing (apt-get install linux-source-$series)" >&2; exit 1; }
[ -d "$headers" ] || { echo "mtty.sh: $headers missing (apt-get install linux-headers-$abi)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xJf "$tarball" -C "$work" --wildcards '*/samples/vfio-mdev/mtty.c'
mkdir "$work/mod"
mv "$work"/linux-source-*/samples/vfio-mdev/mtty.c "$work/mod/"
echo 'obj-m := mtty.o' > "$work/mod/Kbuild"
make -s -C "$headers" M="$work/mod" -j"$(nproc)" modules >&2
# modpost fills `depends=` from the headers' Module.symvers, so the guest's depmod lets modprobe load
# vfio and mdev first (a bare insmod fails with "Unknown symbol vfio_register_emulated_iommu_dev").
modinfo -F depends "$work/mod/mtty.ko" | grep -q mdev || { echo "mtty.sh: mtty.ko lacks depends=mdev" >&2; exit 1; }
[ "$(modinfo -F vermagic "$work/mod/mtty.ko" | cut -d' ' -f1)" = "$abi" ] || { echo "mtty.sh: vermagic is not $abi" >&2; exit 1; }
install -D -m 0644 "$work/mod/mtty.ko" "$out"
