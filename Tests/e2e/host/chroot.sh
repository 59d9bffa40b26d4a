# Shared by image.sh and mtty-chroot.sh (sourced): a debootstrapped Debian root with the given apt
# sources, the kernel file systems mounted in, and a cleanup that unmounts and removes it on exit, also when
# the script is killed (TERM, INT, HUP).
# new_root SUITE REPOS BASE DEBS: debootstraps SUITE (minbase) into a fresh root BASE.root.XXXXXX, writes REPOS
# ("URI SUITE" lines) as its sources.list, mounts /proc, /sys, its own devpts and /dev/shm, binds DEBS
# (apt's archive cache), and updates apt's lists; sets `root`.
# The host's /dev is never bound in: the root keeps the nodes debootstrap made (null, zero, random, tty, …).
# A bound /dev let the guests' packages change the host's /dev/kvm group, and a bind left behind by a killed
# build let a later `rm -rf` of the checkout delete the host's device nodes.
mounted=()
root=""
cleanup_root() {
  local i
  trap '' TERM INT HUP   # a second signal must not cut the unmounting short
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  mounted=()
  [ -z "$root" ] || rm -rf --one-file-system "$root"
}
trap cleanup_root EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP
bind() { mkdir -p "$2" && mount "${@:3}" "$1" "$2" && mounted+=("$2"); }
unbind_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}"; done
  mounted=()
}
new_root() {
  local suite=$1 repos=$2 base=$3 debs=$4 mirror
  mirror=$(awk -v s="$suite" '$2 == s {print $1; exit}' <<<"$repos")
  mirror=${mirror:-http://deb.debian.org/debian/}
  root=$(mktemp -d "${base%/}.root.XXXXXX")
  mkdir -p "$debs"
  echo "${0##*/}: debootstrap $suite from $mirror" >&2
  debootstrap --variant=minbase --cache-dir="$debs" "$suite" "$root" "$mirror" >&2
  while read -r uri s; do echo "deb $uri $s main"; done <<<"$repos" > "$root/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  bind proc "$root/proc" -t proc
  bind sysfs "$root/sys" -t sysfs
  bind devpts "$root/dev/pts" -t devpts -o newinstance,ptmxmode=0666
  bind tmpfs "$root/dev/shm" -t tmpfs
  bind "$debs" "$root/var/cache/apt/archives" --bind
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -q update >&2
}
apt_install() { # PACKAGE...; INITRD from the caller's environment reaches the kernel's hooks
  chroot "$root" env DEBIAN_FRONTEND=noninteractive ${INITRD:+INITRD=$INITRD} apt-get -q -y install --no-install-recommends \
    -o Dpkg::Use-Pty=0 "$@" >&2
}
