#!/usr/bin/env bash
# Builds the mtty sample driver for the guest kernel. Debian builds without CONFIG_SAMPLES, so the module
# comes from the linux-source-<major.minor> tarball of the same kernel series (its mtty API follows the
# kernel's), compiled out of tree against the guest kernel's own headers. Runs on the host for Debian 12
# (the host's gcc is bookworm's) and inside a trixie build root for Debian 13 (host/mtty-chroot.sh).
# The same build makes mdev_edu.ko (host/mdev_edu.c, next to this script: a PCI mdev parent on QEMU's edu
# device that includes the extracted mtty.c) and installs it beside mtty.ko.
# Usage: host/mtty.sh <kernel-abi, e.g. 6.1.0-56-amd64 or 6.12.118+deb13-amd64> <output mtty.ko>
#   writes <output mtty.ko> and $(dirname <output mtty.ko>)/mdev_edu.ko
set -euo pipefail
abi=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
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
cp "$here/mdev_edu.c" "$work/mod/"
echo 'obj-m := mtty.o mdev_edu.o' > "$work/mod/Kbuild"
# The module sources are ours and the kernel's own sample: any compiler warning is a fault here.
make -s -C "$headers" M="$work/mod" -j"$(nproc)" modules > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
cat "$work/build.log" >&2
# "Skipping BTF generation … unavailability of vmlinux" is the headers package's note, not a warning.
! grep -i 'warning' "$work/build.log" >&2 || { echo "mtty.sh: the module build warned" >&2; exit 1; }
for ko in mtty mdev_edu; do
  # modpost fills `depends=` from the headers' Module.symvers, so the guest's depmod lets modprobe load
  # vfio and mdev first (a bare insmod fails with "Unknown symbol vfio_register_emulated_iommu_dev").
  modinfo -F depends "$work/mod/$ko.ko" | grep -q mdev || { echo "mtty.sh: $ko.ko lacks depends=mdev" >&2; exit 1; }
  [ "$(modinfo -F vermagic "$work/mod/$ko.ko" | cut -d' ' -f1)" = "$abi" ] || { echo "mtty.sh: $ko.ko's vermagic is not $abi" >&2; exit 1; }
done
install -D -m 0644 "$work/mod/mtty.ko" "$out"
install -D -m 0644 "$work/mod/mdev_edu.ko" "$(dirname "$out")/mdev_edu.ko"
