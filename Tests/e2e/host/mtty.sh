#!/usr/bin/env bash
# Builds the mtty sample driver for the guest kernel. Debian builds without CONFIG_SAMPLES, so the module
# comes from the linux-source-6.1 tarball, compiled out of tree against the guest kernel's own headers.
# Usage: host/mtty.sh <kernel-abi, e.g. 6.1.0-56-amd64> <output mtty.ko>
set -euo pipefail
abi=$1 out=$2
tarball=/usr/src/linux-source-6.1.tar.xz
headers=/usr/src/linux-headers-$abi
[ -r "$tarball" ] || { echo "mtty.sh: $tarball missing (apt-get install linux-source-6.1)" >&2; exit 1; }
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
