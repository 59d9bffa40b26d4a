#!/usr/bin/env bash
# For poking at the guest by hand: boots a copy of the last run's image (its state as the last boot left
# it) with the current guest scripts and runs SCRIPT inside it (sourced by guest.sh with lib.sh loaded,
# phase "debug"); prints the guest's log of it.
# Usage: host/debug-boot.sh [--flavour bookworm|trixie] SCRIPT [timeout seconds]   (default bookworm)
set -euo pipefail
e2e=$(cd "$(dirname "$0")/.." && pwd)
cache=$(cd "$e2e/../.." && pwd)/.e2e-cache
flavour=bookworm
[ "${1:-}" != --flavour ] || { flavour=$2; shift 2; }
script=$(readlink -f "$1") limit=${2:-240}
[ -s "$cache/run/$flavour.img" ] && [ -s "$cache/run/$flavour.image" ] ||
  { echo "debug-boot.sh: no $flavour run image yet (run Tests/e2e/run.sh --flavour $flavour first)" >&2; exit 2; }
image=$(cat "$cache/run/$flavour.image")
work=$(mktemp -d "$cache/debug.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp --sparse=always "$cache/run/$flavour.img" "$work/img"
{
  for f in guest.sh lib.sh; do echo "rm /usr/local/lib/mdevmon-e2e/$f"; echo "write $e2e/guest/$f /usr/local/lib/mdevmon-e2e/$f"; done
  for f in "$e2e"/guest/scenarios/*.sh; do
    echo "rm /usr/local/lib/mdevmon-e2e/scenarios/${f##*/}"; echo "write $f /usr/local/lib/mdevmon-e2e/scenarios/${f##*/}"
  done
  echo "sif /usr/local/lib/mdevmon-e2e/guest.sh mode 0100755"
  echo "mkdir /var/lib/mdevmon-e2e"; echo "rm /var/lib/mdevmon-e2e/debug.sh"; echo "rm /var/lib/mdevmon-e2e/debug.log"
  echo "write $script /var/lib/mdevmon-e2e/debug.sh"
} > "$work/cmds"
debugfs -w -f "$work/cmds" "$work/img" > /dev/null 2>&1
# The same two edu devices as run.sh's boots (PCI mdev parents once mdev_edu is loaded).
timeout -k 5 "$limit" qemu-system-x86_64 -accel tcg -cpu qemu64,-svm -m 2048 -smp 2 -display none -no-reboot \
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "console=ttyS0 root=/dev/vda rw e2e.phase=debug" \
  -drive "file=$work/img,format=raw,if=virtio" -device edu,addr=0x10 -device edu,addr=0x11 \
  -nic none -monitor none -serial "file:$work/console.log" < /dev/null || true
debugfs -R "dump /var/lib/mdevmon-e2e/debug.log $work/debug.log" "$work/img" > /dev/null 2>&1 || true
cat "$work/debug.log" 2>/dev/null || { echo "no debug.log; console tail:"; tail -20 "$work/console.log"; }
