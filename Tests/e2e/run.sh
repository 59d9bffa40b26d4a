#!/usr/bin/env bash
# End-to-end proof on a real kernel (issues 10, 17 and 23). Boots Debian guests under QEMU (TCG) with the mtty
# sample driver, stock libvirt and mdevctl, and mdevmon's Debian package (scripts/package.sh, built here
# on Debian 12, installed in the guest with apt-get); each guest runs the scenarios over five boots
# (guest/guest.sh) and this script collects one result per scenario and flavour. Two flavours: bookworm
# (Debian 12: libvirt 9.0, mdevctl 1.2, kernel 6.1) and trixie (Debian 13: libvirt 11.3, mdevctl 1.4,
# kernel 6.12), the same .deb in both. Run as root on Debian 12; prints `N passed, N failed, N skipped`,
# exits 1 on any failure.
#
# Usage: Tests/e2e/run.sh [--flavour bookworm|trixie|both] [--no-daemon] [--deb PATH] [--phases "one two three four five"]
#                          [--prepare-only]
#   --flavour       which guests (default both)
#   --no-daemon     do not build or install mdevmon; daemon scenarios report SKIP
#   --deb           use this mdevmon .deb instead of building one with scripts/package.sh
#   --prepare-only  build the .deb (into .e2e-cache/deb/) and each flavour's modules and base image, boot
#                   nothing; exits 1 when one did not build (scripts/test.sh runs it beside the unit tests)
# Environment: E2E_BOOT_TIMEOUT (seconds per boot, 420), E2E_BUILD_TIMEOUT (seconds, 1800),
#   E2E_BOUND_MS (the latency CI asserts for metrics and journal; default guest/lib.sh's, 3x the issue's
#   1 s target), E2E_KERNEL_ABI (bookworm guest kernel, default: what linux-image-amd64 depends on;
#   trixie's comes from trixie's own indexes).
# Cache: .e2e-cache/ (per flavour: images keyed by a hash of their inputs, mtty.ko and mdev_edu.ko;
#   per-run images, logs/<run>/<flavour>/).
set -euo pipefail
e2e=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$e2e/../.." && pwd)
cache=$repo/.e2e-cache
daemon=build deb="" phases="one two three four five" flavours="bookworm trixie" prepare_only=0
while (($#)); do
  case "$1" in
    --no-daemon) daemon=none; shift ;;
    --deb) daemon=given deb=$(readlink -f "$2"); shift 2 ;;
    --phases) phases=$2; shift 2 ;;
    --prepare-only) prepare_only=1; shift ;;
    --flavour|--flavor)
      case "$2" in
        bookworm|trixie) flavours=$2 ;;
        both) flavours="bookworm trixie" ;;
        *) echo "run.sh: --flavour takes bookworm, trixie or both, not '$2'" >&2; exit 2 ;;
      esac
      shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
((EUID == 0)) || { echo "run.sh: run as root (debootstrap, chroot)" >&2; exit 2; }
boot_timeout=${E2E_BOOT_TIMEOUT:-420}
build_timeout=${E2E_BUILD_TIMEOUT:-1800}

mkdir -p "$cache/logs"
exec {lock}>"$cache/.lock"
flock -w 3600 "$lock" || { echo "run.sh: another run holds $cache/.lock" >&2; exit 2; }
# What a build killed before its cleanup (host/chroot.sh) left mounted in its root: nothing uses it now (this
# run holds the lock), so it goes before anything here removes a directory, deepest first.
mapfile -t stale_mounts < <(findmnt -rn -o TARGET | grep "^$cache/" || true)
for m in $(printf '%s\n' "${stale_mounts[@]}" | sort -r); do umount -l "$m" || true; done
run_id=$(date +%Y%m%d-%H%M%S)
logs=$cache/logs/$run_id
mkdir -p "$logs"
ln -sfn "$run_id" "$cache/logs/latest"
t_all=$SECONDS
say() { echo "e2e: $*"; echo "$(date +%T) $*" >> "$logs/run.log"; }
die() { say "error: $*"; exit 2; }
timings=()
has_flavour() { [[ " $flavours " == *" $1 "* ]]; }
timed() { local name=$1 t0=$SECONDS; shift; "$@"; timings+=("$name $((SECONDS - t0)) s"); }
results=()   # "<flavour> <name> PASS|FAIL|SKIP <detail>"
infos=()

# --- host packages and the flavours' inputs --------------------------------------------------------------
installed() {
  local p
  for p; do dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1; done
}
host_packages() {
  local want=(debootstrap qemu-system-x86 kmod e2fsprogs xz-utils curl)
  if has_flavour bookworm; then
    if ! apt-cache policy linux-image-amd64 | grep -q 'Candidate: [0-9]'; then
      timeout 300 apt-get -q update >> "$logs/apt.log" 2>&1 || die "apt-get update failed (see $logs/apt.log)"
    fi
    abi[bookworm]=${E2E_KERNEL_ABI:-$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-\(.*\)/\1/p' | head -1)}
    [ -n "${abi[bookworm]}" ] || die "cannot resolve the bookworm guest kernel (linux-image-amd64)"
    # mtty.ko for bookworm is built on the host (its gcc is bookworm's).
    want+=(linux-source-6.1 build-essential make gcc "linux-headers-${abi[bookworm]}")
  fi
  # What `swift build` links against (Swift itself is expected in /opt/swift, as scripts/ assume).
  # dpkg-dev and binutils: scripts/package.sh (dpkg-shlibdeps, strip).
  [ $daemon != build ] || want+=(libvirt-dev libxml2-dev libsystemd-dev zlib1g-dev pkg-config dpkg-dev binutils)
  if ! installed "${want[@]}"; then
    say "installing host packages: ${want[*]}"
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -q -y install --no-install-recommends "${want[@]}" \
      >> "$logs/apt.log" 2>&1 || die "apt-get install failed (see $logs/apt.log)"
  fi
  if has_flavour bookworm; then
    kver[bookworm]=$(apt-cache policy "linux-image-${abi[bookworm]}" | sed -n 's/.*Candidate: //p')
    srcver[bookworm]=$(dpkg-query -W -f '${Version}' linux-source-6.1)
    # The host's own Debian repositories (bookworm, -updates, -security), as apt resolved them.
    repos[bookworm]=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' | sort -u |
                      awk '$2 ~ /^bookworm(-updates|-security)?$/')
    say "bookworm: guest kernel linux-image-${abi[bookworm]} ${kver[bookworm]}, mtty from linux-source-6.1 ${srcver[bookworm]}"
  fi
  if has_flavour trixie; then trixie_inputs; fi
}
# Debian 13's kernel, kernel source and repositories, from trixie's own package indexes: a private apt
# state in the cache (the host's apt stays bookworm-only).
trixie_inputs() {
  local dir=$cache/apt-trixie opts
  mkdir -p "$dir/etc/apt.conf.d" "$dir/etc/preferences.d" "$dir/lists/partial" "$dir/archives/partial"
  repos[trixie]="http://deb.debian.org/debian trixie
http://deb.debian.org/debian trixie-updates
http://deb.debian.org/debian-security trixie-security"
  while read -r uri s; do echo "deb $uri $s main"; done <<<"${repos[trixie]}" > "$dir/etc/sources.list"
  opts=(-o "Dir::Etc=$dir/etc" -o "Dir::State=$dir" -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir"
        -o Dir::State::status=/dev/null -o APT::Architecture=amd64 -o Acquire::Languages=none
        -o Dir::Etc::TrustedParts=/usr/share/keyrings -o APT::Sandbox::User=root)
  timeout 300 apt-get "${opts[@]}" -q update >> "$logs/apt.log" 2>&1 || die "apt-get update of trixie's indexes failed (see $logs/apt.log)"
  abi[trixie]=$(apt-cache "${opts[@]}" depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-\(.*\)/\1/p' | head -1)
  [ -n "${abi[trixie]}" ] || die "cannot resolve the trixie guest kernel (linux-image-amd64 in trixie's indexes)"
  kver[trixie]=$(apt-cache "${opts[@]}" policy "linux-image-${abi[trixie]}" | sed -n 's/.*Candidate: //p')
  local series; series=$(cut -d. -f1,2 <<<"${abi[trixie]%%[-+]*}")
  srcver[trixie]=$(apt-cache "${opts[@]}" policy "linux-source-$series" | sed -n 's/.*Candidate: //p')
  [ -n "${kver[trixie]}" ] && [ -n "${srcver[trixie]}" ] && [ "${srcver[trixie]}" != "(none)" ] ||
    die "trixie: no linux-image-${abi[trixie]} or linux-source-$series in trixie's indexes"
  say "trixie: guest kernel linux-image-${abi[trixie]} ${kver[trixie]}, mtty from linux-source-$series ${srcver[trixie]} (built in a trixie root)"
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
    results+=("all build FAIL scripts/package.sh exited $rc: $(grep -m1 -E 'error|package.sh:' "$logs/build.log" | cut -c1-200) (see $logs/build.log)")
    say "mdevmon did not build (exit $rc); continuing with the guest-only scenarios"
  fi
}

# --- mtty and the base image, per flavour (cached) -------------------------------------------------------
# Cache entries: bookworm's are mtty-<key> and image-<key> (as before flavours), trixie's mtty-trixie-<key>
# and image-trixie-<key>. A flavour's older entries go once they are a day unused (run.sh touches what it
# uses), so a worktree still on an older key is not made to rebuild by another one's run.
prefix() { [ "$1" = bookworm ] && echo "" || echo "$1-"; }
drop_stale() { # KIND FLAVOUR KEEP: removes the flavour's other KIND entries unused for a day
  local pat=$1-[0-9a-f]{16}
  [ "$2" = bookworm ] || pat=$1-$2-[0-9a-f]{16}
  # Also what an interrupted build left (<entry>.tmp, its debootstrap root).
  # --one-file-system: never into what a killed build left mounted there.
  find "$cache" -maxdepth 1 -regextype posix-extended -regex ".*/$pat(\.tmp.*)?" ! -name "$3" -mtime +0 -exec rm -rf --one-file-system {} +
}
# mtty.ko and mdev_edu.ko (host/mdev_edu.c, which includes mtty.c) come from one build, in one entry.
mtty_module() { # FLAVOUR
  local f=$1 key dir
  key=$( { echo "${abi[$f]} ${kver[$f]} ${srcver[$f]}"; cat "$e2e/host/mtty.sh" "$e2e/host/mdev_edu.c"
           [ $f = bookworm ] || { echo "${repos[$f]}"; cat "$e2e/host/mtty-chroot.sh" "$e2e/host/chroot.sh"; }; } |
         sha256sum | cut -c1-16)
  dir=$cache/mtty-$(prefix $f)$key
  mtty[$f]=$dir/mtty.ko
  if [ -s "${mtty[$f]}" ] && [ -s "$dir/mdev_edu.ko" ]; then touch "$dir"; mtty_state[$f]=cached; return; fi
  mtty_state[$f]=built
  say "$f: building mtty.ko and mdev_edu.ko for ${abi[$f]}"
  rm -rf --one-file-system "$dir.tmp"
  if [ $f = bookworm ]; then
    timeout 600 "$e2e/host/mtty.sh" "${abi[$f]}" "$dir.tmp/mtty.ko" > "$logs/$f/mtty.log" 2>&1 ||
      die "$f: mtty build failed (see $logs/$f/mtty.log)"
  else
    timeout 1200 "$e2e/host/mtty-chroot.sh" $f "${repos[$f]}" "${abi[$f]}" "$cache/debs-$f" "$dir.tmp/mtty.ko" \
      > "$logs/$f/mtty.log" 2>&1 || die "$f: mtty build failed (see $logs/$f/mtty.log)"
  fi
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
  drop_stale mtty $f "${dir##*/}"
}
base_image() { # FLAVOUR
  local f=$1 key dir debs=$cache/debs
  [ $f = bookworm ] || debs=$cache/debs-$f
  key=$( { echo "${abi[$f]} ${kver[$f]} ${repos[$f]}"; cat "${mtty[$f]}" "$(dirname "${mtty[$f]}")/mdev_edu.ko" | sha256sum
           cat "$e2e/host/image.sh" "$e2e/host/chroot.sh" "$e2e/host/packages.txt"; } | sha256sum | cut -c1-16)
  dir=$cache/image-$(prefix $f)$key
  image[$f]=$dir
  if [ -s "$dir/base.img" ]; then touch "$dir"; image_state[$f]=warm; say "$f: base image cached: $dir"; return; fi
  image_state[$f]=cold
  say "$f: building the base image (debootstrap; a few minutes)"
  rm -rf --one-file-system "$dir.tmp"
  timeout 1500 "$e2e/host/image.sh" $f "${repos[$f]}" "${abi[$f]}" "${mtty[$f]}" "$e2e/host/packages.txt" "$debs" "$dir.tmp" \
    > "$logs/$f/image.log" 2>&1 || die "$f: image build failed (see $logs/$f/image.log)"
  mv "$dir.tmp" "$dir"
  drop_stale image $f "${dir##*/}"
}
# Builds one flavour's mtty.ko and base image in the background (overlapping the package build and the
# other flavour's); the subshell's outcome comes back as key=value lines in $logs/<flavour>/prepared.
start_prepare() { # FLAVOUR
  local f=$1
  ( t0=$SECONDS
    mtty_module $f
    t1=$SECONDS
    base_image $f
    printf '%s=%s\n' mtty "${mtty[$f]}" image "${image[$f]}" mtty_state "${mtty_state[$f]}" \
      image_state "${image_state[$f]}" mtty_s $((t1 - t0)) image_s $((SECONDS - t1)) > "$logs/$f/prepared" ) &
  prepare_pid[$f]=$!
}
finish_prepare() { # FLAVOUR: 0 when the flavour's image is ready
  local f=$1 rc=0 k v
  wait "${prepare_pid[$f]}" || rc=$?
  if ((rc == 0)) && [ -s "$logs/$f/prepared" ]; then
    local -A got=()
    while IFS== read -r k v; do got[$k]=$v; done < "$logs/$f/prepared"
    mtty[$f]=${got[mtty]} image[$f]=${got[image]} mtty_state[$f]=${got[mtty_state]} image_state[$f]=${got[image_state]}
    timings+=("$f mtty.ko (${got[mtty_state]}) ${got[mtty_s]} s" "$f base image (${got[image_state]}) ${got[image_s]} s")
    return 0
  fi
  results+=("$f image FAIL mtty.ko or the base image did not build (exit $rc): $(cat "$logs/$f"/mtty.log "$logs/$f"/image.log 2>/dev/null | tail -n 2 | tr -s '\n' ' ' | cut -c1-200)(see $logs/$f)")
  return 1
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
  grep -qxF "$(sed -n 's|^ExecStart=/usr/local/bin/|ExecStart=/usr/bin/|p' "$repo/deploy/mdevmon.service") --log.level debug" \
    "$e2e/guest/mdevmon-e2e-debug.conf" || die "guest/mdevmon-e2e-debug.conf's ExecStart no longer matches deploy/mdevmon.service's"
  install -D -m 0644 "$e2e/guest/mdevmon-e2e-debug.conf" "$root/etc/systemd/system/mdevmon.service.d/e2e-debug.conf"
  install -D -m 0755 "$e2e/guest/mdevctl-hold.sh" "$root/usr/local/lib/mdevmon-e2e/mdevctl-hold.sh"
  install -D -m 0644 "$e2e/guest/mdevmon-e2e-hold.service" "$root/etc/systemd/system/mdevmon-e2e-hold.service"
  ln -s /etc/systemd/system/mdevmon-e2e-hold.service "$root/etc/systemd/system/multi-user.target.wants/mdevmon-e2e-hold.service"
  payload=$root
}
# Copies a tree into the ext4 image with debugfs (no loop device or mount needed), root-owned, modes kept.
inject() { # IMAGE DIR LOGDIR
  local img=$1 dir=$2 cmds=$3/inject.debugfs p rel mode
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
  debugfs -w -f "$cmds" "$img" > "$3/inject.log" 2>&1 || die "debugfs failed (see $3/inject.log)"
  # Expected noise: removing what is not there yet, creating folders that exist, the blank line after removing a file.
  if grep -vqE '^debugfs[: ]|File not found by ext2_lookup|directory already exists|^Allocated inode|^$' "$3/inject.log"; then
    die "debugfs reported errors (see $3/inject.log)"
  fi
}
run_image() { # FLAVOUR
  local f=$1
  mkdir -p "$cache/run"
  run_img=$cache/run/$f.img
  cp --sparse=always "${image[$f]}/base.img" "$run_img"
  # host/debug-boot.sh boots this image with that kernel.
  echo "${image[$f]}" > "$cache/run/$f.image"
  inject "$run_img" "$payload" "$logs/$f"
  remote_guest_config $f
  e2fsck -fn "$run_img" > "$logs/$f/fsck.log" 2>&1 || die "$f: the injected image fails e2fsck (see $logs/$f/fsck.log)"
  if [ $daemon != none ]; then
    local size
    size=$(debugfs -R 'stat /usr/local/lib/mdevmon-e2e/mdevmon.deb' "$run_img" 2>/dev/null | sed -n 's/.*Size: \([0-9]*\).*/\1/p' | head -1)
    [ "$size" = "$(stat -c %s "$deb")" ] || die "$f: mdevmon.deb in the image has size '$size', want $(stat -c %s "$deb")"
  fi
}

# --- the remote daemon (issue 25) --------------------------------------------------------------------------
# One more mdevmon per flavour, on this host, from the same .deb, watching the guest's libvirtd over
# qemu+tcp through QEMU's port forward (127.0.0.1:<rport> → the guest's libvirtd-tcp.socket, auth_tcp none,
# inside the guest only). It runs across the flavour's five boots: every reboot is a lost connection and a
# reconnect. It owns only the remote restore's device (the guest's own mdevmon excludes it). The guest
# reaches its metrics at 10.0.2.2:<mport> (QEMU's user network maps it to 127.0.0.1 here).
declare -A rport=([bookworm]=16611 [trixie]=16612) mport=([bookworm]=19861 [trixie]=19862) remote_pid=()
# Enables libvirtd-tcp.socket with auth_tcp = "none" in the run image (the base image stays stock).
remote_guest_config() { # FLAVOUR
  local f=$1 dir=$cache/stage/remote-$1
  rm -rf "$dir"; mkdir -p "$dir/root/etc/libvirt" "$dir/root/etc/systemd/system/sockets.target.wants"
  debugfs -R "dump /etc/libvirt/libvirtd.conf $dir/root/etc/libvirt/libvirtd.conf" "$run_img" > /dev/null 2>&1
  [ -s "$dir/root/etc/libvirt/libvirtd.conf" ] || die "$f: no /etc/libvirt/libvirtd.conf in the image"
  printf '\n# mdevmon e2e (issue 25): the host watches this libvirtd over qemu+tcp, through QEMU'"'"'s port forward.\nauth_tcp = "none"\n' \
    >> "$dir/root/etc/libvirt/libvirtd.conf"
  chmod 0644 "$dir/root/etc/libvirt/libvirtd.conf"
  ln -s /lib/systemd/system/libvirtd-tcp.socket "$dir/root/etc/systemd/system/sockets.target.wants/libvirtd-tcp.socket"
  mkdir -p "$logs/$f/remote-inject"
  inject "$run_img" "$dir/root" "$logs/$f/remote-inject"
}
remote_start() { # FLAVOUR
  local f=$1 dir=$logs/$1/remote
  [ $daemon != none ] || return 0
  mkdir -p "$dir/state"
  rm -rf "$cache/remote-root"; dpkg-deb -x "$deb" "$cache/remote-root" || die "dpkg-deb -x $deb failed"
  cat > "$dir/mdevmon.yaml" <<YAML
# The remote daemon owns one device: e2e0000a-… (scenarios/remote.sh); the guest's mdevmon excludes it.
ownership:
  uuids: [e2e0000a-0000-4000-8000-000000000001]
policies:
  restore:
    enabled: true
    retry_initial: 1s
    retry_max: 5s
    deadline: 5m
YAML
  "$cache/remote-root/usr/bin/mdevmon" run -c "qemu+tcp://127.0.0.1:${rport[$f]}/system" \
    --web.listen-address "127.0.0.1:${mport[$f]}" --config.file "$dir/mdevmon.yaml" --state.dir "$dir/state" \
    --log.target stderr --log.level info > "$dir/stderr.log" 2>&1 &
  remote_pid[$f]=$!
  # Whatever ends this script (a die, a failed boot, ^C), the daemon does not outlive it on its port.
  trap 'for p in "${remote_pid[@]}"; do [ -z "$p" ] || kill "$p" 2>/dev/null; done' EXIT
  say "$f: remote mdevmon (pid ${remote_pid[$f]}) watches qemu+tcp://127.0.0.1:${rport[$f]}/system, metrics on 127.0.0.1:${mport[$f]}"
}
# After the flavour's boots: the daemon ran throughout, said once what a remote URI cannot do, judged the
# index in its host checks once libvirt answered, saw a connection die without a close (keepalive,
# scenarios/remote.sh's drop) and a reboot at a reconnect, and stops cleanly on SIGTERM.
remote_stop() { # FLAVOUR
  local f=$1 log=$logs/$1/remote/stderr.log pid=${remote_pid[$1]:-} problems=() rc=0 notices
  [ -n "$pid" ] || { results+=("$f remote-daemon SKIP mdevmon not built"); return 0; }
  kill -0 "$pid" 2>/dev/null || problems+=("it exited during the boots (see $log)")
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  remote_pid[$f]=""
  ((rc == 0 || rc == 143)) || problems+=("exit $rc after SIGTERM")
  notices=$(grep -c 'is remote: mdevctl' "$log" || true)
  [ "$notices" = 1 ] || problems+=("the remote startup notice was logged $notices times, want 1")
  grep -q 'keepalive timed out' "$log" || problems+=("no connection closed by keepalive (the dropped connection)")
  local n; n=$(grep -c 'rebooted while libvirt was unreachable' "$log" || true)
  ((n >= 1)) || problems+=("no reboot seen at a reconnect")
  # It starts before the guest: its first host checks run at the first-sync timeout, libvirt unread; the
  # first sync must bring a run that judges the index.
  grep -q 'host check domains_blocked passed' "$log" || problems+=("the host checks never judged the index after the first sync")
  if ((${#problems[@]})); then results+=("$f remote-daemon FAIL $(IFS=';'; echo "${problems[*]}") (see $log)")
  else results+=("$f remote-daemon PASS ran through the boots; one startup notice; keepalive closed the dropped connection; $n reboots seen at reconnects; stopped on SIGTERM")
  fi
}

# --- boots -----------------------------------------------------------------------------------------------
boot() { # FLAVOUR N PHASE
  local f=$1 n=$2 phase=$3 console qlog rc=0 t0=$SECONDS qpid
  console=$logs/$f/boot-$n-$phase.console.log qlog=$logs/$f/boot-$n-$phase.qemu.log
  say "$f boot $n: phase $phase (timeout ${boot_timeout} s)"
  # A network only for the remote daemon: QEMU's user network, its port forward to libvirtd-tcp.socket.
  local nic=(-nic none)
  [ -z "${remote_pid[$f]:-}" ] || nic=(-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:${rport[$f]}-:16509")
  # A kernel that panics before it runs /init (multi-threaded TCG's text patching hit a stale int3 in
  # sched_init_debug once, 4 s into a trixie boot) has run nothing of the guest: booted once more.
  # `panic=-1` makes a panicking kernel reboot, which -no-reboot turns into QEMU's exit (not a hang until
  # the timeout).
  local attempt
  for attempt in 1 2; do
    : > "$console"
    # -svm: with SVM in its CPU, udev loads kvm_amd in the Debian 13 guest, whose static-key text patching
    # under multi-threaded TCG once hit a stale int3 and panicked the guest (boot one, 31 s in; one of ~13
    # trixie boots). The scenarios' nested domains are type='qemu' and need no KVM.
    # Two edu devices (pci_0000_00_10_0, pci_0000_00_11_0): PCI mdev parents once a scenario loads mdev_edu
    # (host/mdev_edu.c); without it nothing binds them.
    timeout -k 10 "$boot_timeout" qemu-system-x86_64 -accel tcg -cpu qemu64,-svm -m 2048 -smp 2 -display none -no-reboot \
      -kernel "${image[$f]}/vmlinuz" -initrd "${image[$f]}/initrd.img" \
      -append "console=ttyS0 root=/dev/vda rw panic=-1 e2e.phase=$phase${E2E_BOUND_MS:+ e2e.bound_ms=$E2E_BOUND_MS}${remote_pid[$f]:+ e2e.remote=10.0.2.2:${mport[$f]}}" \
      -drive "file=$run_img,format=raw,if=virtio" -monitor none -serial "file:$console" \
      -device edu,addr=0x10 -device edu,addr=0x11 "${nic[@]}" \
      < /dev/null > "$qlog" 2>&1 &
    qpid=$!
    # Live progress from the console until qemu (or its timeout) exits.
    tail -n +1 -F --pid="$qpid" "$console" 2>/dev/null | grep -a --line-buffered -o -E 'E2E-(STEP|RESULT|INFO) .*' |
      sed -u -e 's/\r$//' -e "s/^/e2e:   $f /" || true
    wait "$qpid" || rc=$?
    if ((attempt == 1)) && grep -aq 'Kernel panic' "$console" && ! grep -aq 'Run /init as init process' "$console"; then
      cp "$console" "$console.panic"
      infos+=("$f boot-$phase the guest kernel panicked before /init under TCG (see $console.panic); booted again")
      say "$f boot $n: the kernel panicked before /init (TCG); booting again"
      rc=0
      continue
    fi
    break
  done
  timings+=("$f boot $n ($phase) $((SECONDS - t0)) s")
  # The guest's own logs, journals and results (rdump will not write into an existing folder).
  local got=$logs/$f/guest-$n-$phase
  mkdir -p "$got"
  debugfs -R "rdump /var/lib/mdevmon-e2e $got" "$run_img" > /dev/null 2>&1 || true
  debugfs -R "dump /var/lib/mdevmon/state.json $got/state.json" "$run_img" > /dev/null 2>&1 || true
  if ((rc == 124 || rc == 137)); then
    results+=("$f boot-$phase FAIL qemu killed after ${boot_timeout} s (see $console)")
  elif ((rc != 0)); then
    results+=("$f boot-$phase FAIL qemu exited $rc (see $qlog)")
  elif ! grep -aq "E2E-PHASE-END $phase" "$console"; then
    results+=("$f boot-$phase FAIL the guest did not finish the phase (see $console)")
  fi
  # Results from the guest's file; from the console if the file did not make it to the disk. The
  # latencies go to logs/<run>/latency.txt, one "<flavour> <scenario> total=…" line each (latency-report.sh).
  local file=$got/mdevmon-e2e/results-$phase.txt line
  [ -s "$file" ] || { file=$got/results-from-console.txt; grep -ao 'E2E-\(RESULT\|INFO\|LATENCY\) .*' "$console" | tr -d '\r' > "$file" || true; }
  while IFS= read -r line; do
    case $line in
      E2E-RESULT\ *) results+=("$f ${line#E2E-RESULT }") ;;
      E2E-INFO\ *) infos+=("$f ${line#E2E-INFO }") ;;
      E2E-LATENCY\ *) echo "$f ${line#E2E-LATENCY }" >> "$logs/latency.txt" ;;
    esac
  done < "$file"
  expect_results "$f" "$phase"
}
# A scenario that printed nothing (crash, timeout) is a failure, not a silent gap.
expect_results() { # FLAVOUR PHASE
  local f=$1 s r found
  declare -A want=([one]="package-install guest-baseline lifecycle sysfs references nodedev-update pci-capacity pci-sick remote-lifecycle remote-capacity remote-drop"
                   [two]="stock-autostart-bug recovery doctor-stock-rule hotplug readiness remote-reconnect remote-restore remote-hotplug remote-readiness"
                   [three]="late-parent pci-late-types" [four]="symlink-autostart pci-mdevctl-autostart doctor-symlink racing systemd package-upgrade"
                   [five]="stuck-call")
  for s in ${want[$2]:-}; do
    found=0
    for r in "${results[@]}"; do [[ $r == "$f $s "* ]] && found=1; done
    ((found)) || results+=("$f $s FAIL no result from boot phase $2")
  done
}

summary() {
  local r f name status detail passed=0 failed=0 skipped=0
  local -A fp=() ff=() fs=()
  echo
  for r in "${results[@]}"; do
    f=${r%% *} r=${r#* } name=${r%% *} r=${r#* } status=${r%% *}
    [ "$status" = "$r" ] && detail="" || detail=${r#* }
    printf '%-4s %-8s %-20s %s\n' "$status" "$f" "$name" "$detail"
    case $status in
      PASS) ((++passed)); fp[$f]=$((${fp[$f]:-0} + 1)) ;;
      SKIP) ((++skipped)); fs[$f]=$((${fs[$f]:-0} + 1)) ;;
      *) ((++failed)); ff[$f]=$((${ff[$f]:-0} + 1)) ;;
    esac
  done
  for r in "${infos[@]}"; do printf 'INFO %s\n' "$r"; done
  timings+=("total $((SECONDS - t_all)) s")
  printf 'time: %s\n' "$(IFS=';'; echo "${timings[*]}" | sed 's/;/; /g')"
  echo "logs: $logs"
  # The 1 s target is a benchmark, not part of this verdict: one line per flavour here, the table and the
  # check with latency-report.sh.
  local bench=""
  [ -s "$logs/latency.txt" ] &&
    bench=$("$e2e/latency-report.sh" --brief "$logs" 2>&1 || true
            echo "latency benchmark (the 1 s target, not part of this verdict): Tests/e2e/latency-report.sh $logs")
  [ -z "$bench" ] || echo "$bench"
  for f in $flavours; do echo "$f: ${fp[$f]:-0} passed, ${ff[$f]:-0} failed, ${fs[$f]:-0} skipped"; done
  echo "$passed passed, $failed failed, $skipped skipped"
  { printf '%s\n' "${results[@]}" "${infos[@]/#/INFO }"; printf 'time: %s\n' "${timings[*]}"
    [ -z "$bench" ] || echo "$bench"
    echo "$passed passed, $failed failed, $skipped skipped"; } > "$logs/summary.txt"
  ((failed == 0))
}

# Every /metrics the guest saved at the end of a boot (real mtty parents, devices, a domain) passes
# promtool's exposition-format lint.
check_exposition() { # FLAVOUR
  local f=$1
  [ $daemon != none ] || { results+=("$f exposition SKIP mdevmon not installed"); return; }
  [ -n "${phases// /}" ] || { results+=("$f exposition SKIP no boots (--phases \"\")"); return; }
  command -v promtool > /dev/null || { results+=("$f exposition SKIP no promtool on the host (apt-get install prometheus)"); return; }
  local m bad=() n=0 parents=0 devices=0 domains=0
  for m in "$logs/$f"/guest-*/mdevmon-e2e/*-metrics.txt; do
    [ -s "$m" ] || continue
    n=$((n + 1))
    promtool check metrics < "$m" > "$m.promtool" 2>&1 || bad+=("${m#"$logs"/}: $(head -c 200 "$m.promtool")")
    parents=$((parents + $(grep -c '^mdev_parent_type_info{' "$m" || true)))
    devices=$((devices + $(grep -c '^mdev_device_info{' "$m" || true)))
    domains=$((domains + $(grep -c '^mdev_domain_device_info{' "$m" || true)))
  done
  if ((n == 0)); then results+=("$f exposition FAIL no saved /metrics from the guest")
  elif ((${#bad[@]})); then results+=("$f exposition FAIL promtool check metrics: ${bad[*]}")
  elif ((parents == 0 || devices == 0 || domains == 0)); then
    results+=("$f exposition FAIL the scrapes lack parents ($parents), devices ($devices) or domains ($domains)")
  else results+=("$f exposition PASS promtool check metrics on $n scrapes ($parents parent types, $devices devices, $domains domain references in all)")
  fi
}

declare -A abi=() kver=() srcver=() repos=() mtty=() image=() mtty_state=() image_state=() prepare_pid=() ready=()
for f in $flavours; do mkdir -p "$logs/$f"; done
timed "host packages" host_packages
start_build
# Both flavours' mtty.ko and images build while the package does; the boots wait for all three, so no
# build competes with a guest whose latencies are measured.
for f in $flavours; do start_prepare $f; done
t_wait=$SECONDS
for f in $flavours; do finish_prepare $f && ready[$f]=1; done
timings+=("waited $((SECONDS - t_wait)) s for the images")
finish_build
if ((prepare_only)); then
  printf 'time: %s\n' "$(IFS=';'; echo "${timings[*]}" | sed 's/;/; /g')"
  for r in "${results[@]}"; do echo "FAIL $r"; done
  [ $daemon = none ] || echo "e2e: the package: $deb"
  ((${#results[@]} == 0)) || exit 1
  exit 0
fi
timed "payload" stage_payload
for f in $flavours; do
  [ -n "${ready[$f]:-}" ] || continue
  timed "$f per-run image" run_image $f
  n=0
  remote_start $f
  for phase in $phases; do boot $f $((++n)) "$phase"; done
  remote_stop $f
  check_exposition $f
done
summary
