#!/usr/bin/env bash
# End-to-end proof on a real kernel (issue 10). Boots a Debian 12 guest under QEMU (TCG) with the mtty
# sample driver, stock libvirt and mdevctl, and mdevmon's Debian package (scripts/package.sh, built here,
# installed in the guest with apt-get); the guest runs the scenarios over four boots (guest/guest.sh) and this script collects
# one result per scenario. Run as root on Debian 12; prints `N passed, N failed, N skipped`, exits 1 on
# any failure.
#
# Usage: Tests/e2e/run.sh [--no-daemon] [--deb PATH] [--phases "one two three four"]
#   --no-daemon  do not build or install mdevmon; daemon scenarios report SKIP
#   --deb        use this mdevmon .deb instead of building one with scripts/package.sh
# Environment: E2E_BOOT_TIMEOUT (seconds per boot, 300), E2E_BUILD_TIMEOUT (seconds, 1800),
#   E2E_BOUND_MS (the issue's 1 s bound for metrics and journal, 1000), E2E_KERNEL_ABI (guest kernel,
#   default: what linux-image-amd64 depends on).
# Cache: .e2e-cache/ (image keyed by a hash of its inputs, mtty.ko, per-run image, logs/<run>/).
set -euo pipefail
e2e=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$e2e/../.." && pwd)
cache=$repo/.e2e-cache
daemon=build deb="" phases="one two three four"
while (($#)); do
  case "$1" in
    --no-daemon) daemon=none; shift ;;
    --deb) daemon=given deb=$(readlink -f "$2"); shift 2 ;;
    --phases) phases=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
((EUID == 0)) || { echo "run.sh: run as root (debootstrap, chroot)" >&2; exit 2; }
boot_timeout=${E2E_BOOT_TIMEOUT:-300}
build_timeout=${E2E_BUILD_TIMEOUT:-1800}

mkdir -p "$cache/logs"
exec {lock}>"$cache/.lock"
flock -w 3600 "$lock" || { echo "run.sh: another run holds $cache/.lock" >&2; exit 2; }
run_id=$(date +%Y%m%d-%H%M%S)
logs=$cache/logs/$run_id
mkdir -p "$logs"
ln -sfn "$run_id" "$cache/logs/latest"
t_all=$SECONDS
say() { echo "e2e: $*"; echo "$(date +%T) $*" >> "$logs/run.log"; }
die() { say "error: $*"; exit 2; }
timings=()
timed() { local name=$1 t0=$SECONDS; shift; "$@"; timings+=("$name $((SECONDS - t0)) s"); }
results=()   # "<name> PASS|FAIL|SKIP <detail>"
infos=()

# --- host packages ---------------------------------------------------------------------------------------
installed() {
  local p
  for p; do dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1; done
}
host_packages() {
  local base=(debootstrap qemu-system-x86 linux-source-6.1 build-essential make gcc kmod e2fsprogs xz-utils curl)
  if ! apt-cache policy linux-image-amd64 | grep -q 'Candidate: [0-9]'; then
    timeout 300 apt-get -q update >> "$logs/apt.log" 2>&1 || die "apt-get update failed (see $logs/apt.log)"
  fi
  abi=${E2E_KERNEL_ABI:-$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-\(.*\)/\1/p' | head -1)}
  [ -n "$abi" ] || die "cannot resolve the guest kernel (linux-image-amd64)"
  local want=("${base[@]}" "linux-headers-$abi")
  # What `swift build` links against (Swift itself is expected in /opt/swift, as scripts/ assume).
  # dpkg-dev and binutils: scripts/package.sh (dpkg-shlibdeps, strip).
  [ $daemon != build ] || want+=(libvirt-dev libxml2-dev libsystemd-dev zlib1g-dev pkg-config dpkg-dev binutils)
  if ! installed "${want[@]}"; then
    say "installing host packages: ${want[*]}"
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -q -y install --no-install-recommends "${want[@]}" \
      >> "$logs/apt.log" 2>&1 || die "apt-get install failed (see $logs/apt.log)"
  fi
  kernel_version=$(apt-cache policy "linux-image-$abi" | sed -n 's/.*Candidate: //p')
  source_version=$(dpkg-query -W -f '${Version}' linux-source-6.1)
  say "guest kernel linux-image-$abi $kernel_version, mtty from linux-source-6.1 $source_version"
}

# --- daemon ----------------------------------------------------------------------------------------------
start_build() {
  [ $daemon = build ] || return 0
  say "building the mdevmon package (scripts/package.sh: release, static stdlib) in the background"
  rm -rf "$cache/deb"
  ( cd "$repo" && timeout "$build_timeout" scripts/package.sh --out "$cache/deb" ) > "$logs/build.log" 2>&1 &
  build_pid=$! build_t0=$SECONDS
}
finish_build() {
  case $daemon in
    none) return 0 ;;
    given) [ -s "$deb" ] || die "--deb $deb does not exist"; return 0 ;;
  esac
  local rc=0
  wait "$build_pid" || rc=$?
  timings+=("package.sh $((SECONDS - build_t0)) s (in parallel)")
  deb=$(ls "$cache"/deb/mdevmon_*_amd64.deb 2>/dev/null | head -1 || true)
  if ((rc == 0)) && [ -s "$deb" ]; then
    say "mdevmon package built: $deb"
  else
    daemon=none
    results+=("build FAIL scripts/package.sh exited $rc: $(grep -m1 -E 'error|package.sh:' "$logs/build.log" | cut -c1-200) (see $logs/build.log)")
    say "mdevmon did not build (exit $rc); continuing with the guest-only scenarios"
  fi
}

# --- mtty and the base image (cached) --------------------------------------------------------------------
mtty_module() {
  local key
  key=$( { echo "$abi $kernel_version $source_version"; cat "$e2e/host/mtty.sh"; } | sha256sum | cut -c1-16)
  mtty=$cache/mtty-$key/mtty.ko
  if [ ! -s "$mtty" ]; then
    say "building mtty.ko for $abi"
    timeout 600 "$e2e/host/mtty.sh" "$abi" "$mtty.tmp" > "$logs/mtty.log" 2>&1 || die "mtty build failed (see $logs/mtty.log)"
    mv "$mtty.tmp" "$mtty"
    find "$cache" -maxdepth 1 -name 'mtty-*' ! -name "mtty-$key" -exec rm -rf {} +
  fi
}
base_image() {
  local key repos
  repos=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' | sort -u)
  key=$( { echo "$abi $kernel_version $repos"; sha256sum "$mtty"; cat "$e2e/host/image.sh" "$e2e/host/packages.txt"; } |
         sha256sum | cut -c1-16)
  image=$cache/image-$key
  if [ -s "$image/base.img" ]; then say "base image cached: $image"; image_state=warm; return; fi
  image_state=cold
  say "building the base image (debootstrap; a few minutes)"
  rm -rf "$image.tmp"
  timeout 1200 "$e2e/host/image.sh" "$abi" "$mtty" "$e2e/host/packages.txt" "$cache/debs" "$image.tmp" \
    > "$logs/image.log" 2>&1 || die "image build failed (see $logs/image.log)"
  mv "$image.tmp" "$image"
  find "$cache" -maxdepth 1 -name 'image-*' ! -name "image-$key" -exec rm -rf {} +
}

# --- per-run image: base + daemon + e2e scripts ----------------------------------------------------------
stage_payload() {
  local stage=$cache/stage root
  rm -rf "$stage"
  root=$stage/root
  mkdir -p "$root"
  if [ $daemon != none ]; then
    # The guest installs it with apt-get in phase one (scenario package-install) and reinstalls it in
    # phase four (package-upgrade).
    install -D -m 0644 "$deb" "$root/usr/local/lib/mdevmon-e2e/mdevmon.deb"
  fi
  install -D -m 0755 "$e2e/guest/guest.sh" "$root/usr/local/lib/mdevmon-e2e/guest.sh"
  install -D -m 0644 "$e2e/guest/lib.sh" "$root/usr/local/lib/mdevmon-e2e/lib.sh"
  install -D -m 0644 -t "$root/usr/local/lib/mdevmon-e2e/scenarios" "$e2e"/guest/scenarios/*.sh
  install -D -m 0644 "$e2e/guest/mdevmon-e2e.service" "$root/etc/systemd/system/mdevmon-e2e.service"
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
  ln -s /etc/systemd/system/mdevmon-e2e.service "$root/etc/systemd/system/multi-user.target.wants/mdevmon-e2e.service"
  install -D -m 0644 "$e2e/guest/99-mdevmon-e2e.rules" "$root/etc/udev/rules.d/99-mdevmon-e2e.rules"
  payload=$root
}
# Copies a tree into the ext4 image with debugfs (no loop device or mount needed), root-owned, modes kept.
inject() {
  local img=$1 dir=$2 cmds=$logs/inject.debugfs p rel mode
  ( cd "$dir"
    find . -mindepth 1 | sort | while read -r p; do
      rel=${p#.}
      mode=$(printf '0%o' "0x$(stat -c %f "$p")")
      if [ -L "$p" ]; then
        echo "rm $rel"; echo "symlink $rel $(readlink "$p")"
      elif [ -d "$p" ]; then
        echo "mkdir $rel"; echo "sif $rel mode $mode"
      else
        echo "rm $rel"; echo "write $dir/${p#./} $rel"; echo "sif $rel mode $mode"
      fi
      [ -L "$p" ] || { echo "sif $rel uid 0"; echo "sif $rel gid 0"; }
    done ) > "$cmds"
  debugfs -w -f "$cmds" "$img" > "$logs/inject.log" 2>&1 || die "debugfs failed (see $logs/inject.log)"
  # Expected noise: removing what is not there yet, creating folders that exist.
  if grep -vqE '^debugfs[: ]|File not found by ext2_lookup|directory already exists|^Allocated inode' "$logs/inject.log"; then
    die "debugfs reported errors (see $logs/inject.log)"
  fi
}
run_image() {
  mkdir -p "$cache/run"
  run_img=$cache/run/run.img
  cp --sparse=always "$image/base.img" "$run_img"
  inject "$run_img" "$payload"
  e2fsck -fn "$run_img" > "$logs/fsck.log" 2>&1 || die "the injected image fails e2fsck (see $logs/fsck.log)"
  if [ $daemon != none ]; then
    local size
    size=$(debugfs -R 'stat /usr/local/lib/mdevmon-e2e/mdevmon.deb' "$run_img" 2>/dev/null | sed -n 's/.*Size: \([0-9]*\).*/\1/p' | head -1)
    [ "$size" = "$(stat -c %s "$deb")" ] || die "mdevmon.deb in the image has size '$size', want $(stat -c %s "$deb")"
  fi
}

# --- boots -----------------------------------------------------------------------------------------------
boot() {
  local n=$1 phase=$2 console qlog rc=0 t0=$SECONDS qpid
  console=$logs/boot-$n-$phase.console.log qlog=$logs/boot-$n-$phase.qemu.log
  say "boot $n: phase $phase (timeout ${boot_timeout} s)"
  : > "$console"
  timeout -k 10 "$boot_timeout" qemu-system-x86_64 -accel tcg -m 2048 -smp 2 -display none -no-reboot \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "console=ttyS0 root=/dev/vda rw e2e.phase=$phase e2e.bound_ms=${E2E_BOUND_MS:-1000}" \
    -drive "file=$run_img,format=raw,if=virtio" -nic none -monitor none -serial "file:$console" \
    < /dev/null > "$qlog" 2>&1 &
  qpid=$!
  # Live progress from the console until qemu (or its timeout) exits.
  tail -n +1 -F --pid="$qpid" "$console" 2>/dev/null | grep -a --line-buffered -o -E 'E2E-(STEP|RESULT|INFO) .*' |
    sed -u -e 's/\r$//' -e 's/^/e2e:   /' || true
  wait "$qpid" || rc=$?
  timings+=("boot $n ($phase) $((SECONDS - t0)) s")
  # The guest's own logs, journals and results (rdump will not write into an existing folder).
  local got=$logs/guest-$n-$phase
  mkdir -p "$got"
  debugfs -R "rdump /var/lib/mdevmon-e2e $got" "$run_img" > /dev/null 2>&1 || true
  debugfs -R "dump /var/lib/mdevmon/state.json $got/state.json" "$run_img" > /dev/null 2>&1 || true
  if ((rc == 124 || rc == 137)); then
    results+=("boot-$phase FAIL qemu killed after ${boot_timeout} s (see $console)")
  elif ((rc != 0)); then
    results+=("boot-$phase FAIL qemu exited $rc (see $qlog)")
  elif ! grep -aq "E2E-PHASE-END $phase" "$console"; then
    results+=("boot-$phase FAIL the guest did not finish the phase (see $console)")
  fi
  # Results from the guest's file; from the console if the file did not make it to the disk.
  local file=$got/mdevmon-e2e/results-$phase.txt line
  [ -s "$file" ] || { file=$got/results-from-console.txt; grep -ao 'E2E-\(RESULT\|INFO\) .*' "$console" | tr -d '\r' > "$file" || true; }
  while IFS= read -r line; do
    case $line in
      E2E-RESULT\ *) results+=("${line#E2E-RESULT }") ;;
      E2E-INFO\ *) infos+=("${line#E2E-INFO }") ;;
    esac
  done < "$file"
  expect_results "$phase"
}
# A scenario that printed nothing (crash, timeout) is a failure, not a silent gap.
expect_results() {
  local s r found
  declare -A want=([one]="package-install guest-baseline lifecycle sysfs references"
                   [two]="stock-autostart-bug recovery doctor-stock-rule hotplug readiness"
                   [three]="late-parent" [four]="symlink-autostart doctor-symlink racing systemd package-upgrade")
  for s in ${want[$1]:-}; do
    found=0
    for r in "${results[@]}"; do [ "${r%% *}" = "$s" ] && found=1; done
    ((found)) || results+=("$s FAIL no result from boot phase $1")
  done
}

summary() {
  local r name status passed=0 failed=0 skipped=0
  echo
  for r in "${results[@]}"; do
    name=${r%% *} r=${r#* } status=${r%% *}
    [ "$status" = "$r" ] && r="" || r=${r#* }
    printf '%-4s %-20s %s\n' "$status" "$name" "$r"
    case $status in PASS) ((++passed)) ;; SKIP) ((++skipped)) ;; *) ((++failed)) ;; esac
  done
  for r in "${infos[@]}"; do printf 'INFO %s\n' "$r"; done
  timings+=("total $((SECONDS - t_all)) s")
  printf 'time: %s\n' "$(IFS=';'; echo "${timings[*]}" | sed 's/;/; /g')"
  echo "logs: $logs"
  echo "$passed passed, $failed failed, $skipped skipped"
  { printf '%s\n' "${results[@]}" "${infos[@]/#/INFO }"; echo "$passed passed, $failed failed, $skipped skipped"; } > "$logs/summary.txt"
  ((failed == 0))
}

timed "host packages" host_packages
start_build
timed "mtty.ko" mtty_module
timed "base image" base_image
timings[-1]="${timings[-1]/base image/base image ($image_state)}"
finish_build
timed "per-run image" eval 'stage_payload && run_image'
# Every /metrics the guest saved at the end of a boot (real mtty parents, devices, a domain) passes
# promtool's exposition-format lint.
check_exposition() {
  [ $daemon != none ] || { results+=("exposition SKIP mdevmon not installed"); return; }
  command -v promtool > /dev/null || { results+=("exposition SKIP no promtool on the host (apt-get install prometheus)"); return; }
  local f bad=() n=0 parents=0 devices=0 domains=0
  for f in "$logs"/guest-*/mdevmon-e2e/*-metrics.txt; do
    [ -s "$f" ] || continue
    n=$((n + 1))
    promtool check metrics < "$f" > "$f.promtool" 2>&1 || bad+=("${f#"$logs"/}: $(head -c 200 "$f.promtool")")
    parents=$((parents + $(grep -c '^mdev_parent_type_info{' "$f" || true)))
    devices=$((devices + $(grep -c '^mdev_device_info{' "$f" || true)))
    domains=$((domains + $(grep -c '^mdev_domain_device_info{' "$f" || true)))
  done
  if ((n == 0)); then results+=("exposition FAIL no saved /metrics from the guest")
  elif ((${#bad[@]})); then results+=("exposition FAIL promtool check metrics: ${bad[*]}")
  elif ((parents == 0 || devices == 0 || domains == 0)); then
    results+=("exposition FAIL the scrapes lack parents ($parents), devices ($devices) or domains ($domains)")
  else results+=("exposition PASS promtool check metrics on $n scrapes ($parents parent types, $devices devices, $domains domain references in all)")
  fi
}

n=0
for phase in $phases; do boot $((++n)) "$phase"; done
check_exposition
summary
