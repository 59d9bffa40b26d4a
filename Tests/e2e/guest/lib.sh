# Helpers for the guest scenario scripts (sourced by guest.sh). Every wait here is bounded.
# Output convention: fd 3 is the serial console (and the journal), stdout/stderr go to the phase log.
#
# Under TCG every process start costs 0.1-0.3 s (curl ~0.3 s, a journalctl | jq pipeline ~0.7 s), so
# what measures latency avoids forks: metrics are scraped through bash's /dev/tcp and read with builtins,
# clocks come from $EPOCHREALTIME, and a journal entry's latency is its own receive timestamp.

E2E_DIR=/var/lib/mdevmon-e2e
PARENT=mtty_mtty
SYSFS_TYPES=/sys/class/mdev_bus/mtty/mdev_supported_types
METRICS_URL=http://127.0.0.1:9850/metrics
DEVICES_URL=http://127.0.0.1:9850/api/v1/devices
# Latency. TARGET_MS is the issue's target for metrics and journal to follow a change: a benchmark figure,
# reported on every E2E-LATENCY line and checked by latency-report.sh on the host, not by CI. BOUND_MS is
# what CI asserts: 3x the target, so a healthy daemon on a machine 3x slower than ours still passes (a
# fresh, slower machine, nested `virsh start` 9.0 s against 4-5.6 s here, measured 1,183 and 1,012 ms; a CI
# whose verdict depends on the host's load blocks good submissions), while a change never shown, or shown
# seconds late, still fails. E2E_BOUND_MS on run.sh's side overrides it (e2e.bound_ms= on the command line).
TARGET_MS=1000
BOUND_MS=$(sed -n 's/.*\be2e\.bound_ms=\([0-9]*\).*/\1/p' /proc/cmdline)
BOUND_MS=${BOUND_MS:-$((3 * TARGET_MS))}
# How much longer a late change is still waited for, to tell "late" from "never" in the report.
GRACE_MS=5000
export LIBVIRT_DEFAULT_URI=qemu:///system LC_ALL=C
# Which guest this is (bookworm: Debian 12, trixie: Debian 13); scenarios adapt to facts (the libvirt
# version, the udev rule), the flavour names them in their details.
FLAVOUR=$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")

# Fixed UUIDs make logs greppable across boots; the prefix says which scenario owns a device.
U_BASE=e2e00000-0000-4000-8000-000000000001
U_LIFE=e2e00001-0000-4000-8000-000000000001
U_TRANS=e2e00001-0000-4000-8000-000000000002
U_SYSFS=e2e00002-0000-4000-8000-000000000001
U_REF=e2e00006-0000-4000-8000-000000000001
U_AUTO=e2e00003-0000-4000-8000-00000000000a   # persistent, autostart on, inactive before the reboot
U_PERS=e2e00003-0000-4000-8000-00000000000b   # persistent, active before the reboot, autostart off
U_TRAN=e2e00003-0000-4000-8000-00000000000c   # transient, active before the reboot
U_EXCL=e2e00003-0000-4000-8000-00000000000d   # like U_PERS but in ownership.exclude_uuids
U_RACE1=e2e00005-0000-4000-8000-000000000001  # autostart on and active before the reboot
U_RACE2=e2e00005-0000-4000-8000-000000000002  # autostart on, inactive before the reboot
U_HOT=e2e00007-0000-4000-8000-000000000001    # hot-plugged into a running domain, then --config attached
U_HOT2=e2e00007-0000-4000-8000-000000000002   # hot-plugged after the pending detach of U_HOT
U_RDY=e2e00008-0000-4000-8000-000000000001    # referenced by two domains, one running
U_RDYCAP=e2e00008-0000-4000-8000-000000000002 # mtty-2, defined and inactive while mtty-2 is used up
U_UPD=e2e00009-0000-4000-8000-000000000001    # defined mtty-1, started, its definition updated to mtty-2

declare -A MSGID=(
  [deviceCreated]=202ea77633e84d68920fd63160db7796 [deviceDeleted]=9bf4b6fba937428b83297b40068e5d20
  [deviceDefined]=174cc5720df84ff6a75fe1df5fa4d63d [deviceUndefined]=89a56dbb5db84d15a52fc34802740f19
  [deviceUpdated]=8ea4f381660744b3ba51e7593bb6768e [connectionLost]=5c6802befd4b48938873a4a8de99fc7f
  [restoreAttempted]=96d95f84ede645a5a93a0d434be17cc2 [restoreSucceeded]=bbfa2ce917cb44fd8bf21a9f81cc114f
  [restoreFailed]=ecbbc38f1a6e4e3291993e77d59e2f02 [restoreGaveUp]=7ea09811fff94b9eb90d12d1bbcdd1f5
  [referenceProblem]=5fb8310ebd9e4045a60c41deca91a9fa [referenceResolved]=337eb4be11954663930d3186f213c1cd
  [deviceUseChanged]=cc19ff07188b43bc91c5ab9c22dde7ca [deviceRemovalFailed]=8727d23047c24a02b394ed0dc3b06afa
  [definitionDrifted]=5dc25d7424044f988312caf6715613bc [definitionInSync]=2e49b99ccfcd4b7db9360793a5071574
  [libvirtCallStuck]=5261558ee6eb45a2ae80ad5f877e6363 [libvirtCallReturned]=9124c933cde045c592b21930604615fc
)

# --- clock and log ---------------------------------------------------------------------------------------
now() { local _us=${EPOCHREALTIME/./}; printf -v "$1" "%d" $((10#$_us / 1000)); }   # now VAR: ms since epoch
log() {
  local s=${EPOCHREALTIME%.*} us=${EPOCHREALTIME#*.}
  printf '%(%T)T.%03d %s\n' "$s" $((10#$us / 1000)) "$*"
}
say() { echo "$*" >&3; log "$*"; }
# Runs a command with its output in the log; bounded so a wedged libvirtd cannot stall the phase.
run() { log "+ $*"; timeout 60 "$@"; local rc=$?; ((rc == 0)) || log "  (exit $rc)"; return $rc; }
have_daemon() { [ -x /usr/bin/mdevmon ]; }   # installed from the package

# --- scenario bookkeeping: one E2E-RESULT line per scenario -----------------------------------------------
scenario_begin() {
  SCENARIO=$1 FAILS=() LATE=() NOTES=() MAXLAT=0 PEND_WHAT=() PEND_MS=() PEND_END=0 REMOTE_AS="" LAST_MS=-
  R_NAMES=() R_FAILS=() R_MAX=() R_N=() R_PEND_WHAT=() R_PEND_MS=() R_PEND_LOCAL=() R_PEND_I=()
  now SCENARIO_T0
  say "E2E-STEP $SCENARIO begin"
}
fail() { FAILS+=("$*"); log "FAIL: $*"; }
note() { NOTES+=("$*"); log "note: $*"; }
# check WHAT CMD...: records a failure unless CMD succeeds; CHECK_END is when CMD returned (a step's end).
check() {
  local what=$1 rc=0; shift
  "$@" || rc=$?
  now CHECK_END
  if ((rc == 0)); then log "ok: $what"; else fail "$what"; fi
  return $rc
}
# latency WHAT MS: a latency measured from the step's end (CHECK_END), kept until settle reports and judges it.
latency() {
  PEND_WHAT+=("$1") PEND_MS+=("$2") PEND_END=$CHECK_END
  log "measured: $1 ($2 ms)"
}
# settle [LIBVIRT_MS]: reports and judges every latency measured since the last settle. LIBVIRT_MS: when
# libvirt's own event for the change came, in ms after the step's end (negative: before it), if known.
# mdevmon does not poll, so it cannot show a change before libvirt announces it: its share is the part of
# the total after libvirt's event (all of it when libvirt announced before the step returned; negative when
# mdevmon showed the change first). The figure judged is that share where libvirt's event is known, else
# the total: against BOUND_MS here, against TARGET_MS by latency-report.sh. One line per latency, on the
# console and in the results file run.sh collects (it gathers them into logs/<run>/latency.txt):
#   E2E-LATENCY <scenario> total=<ms> libvirt=<+ms|-ms|-> mdevmon=<ms|-> target=<ms> <what>
# Called by before_step and scenario_end for what nobody settled with libvirt's event.
settle() {
  local d=${1:-} i ms lv share fig text line
  for i in "${!PEND_MS[@]}"; do
    ms=${PEND_MS[i]} lv=- share=-
    ((ms > MAXLAT)) && MAXLAT=$ms
    if [ -n "$d" ]; then printf -v lv '%+d' "$d"; share=$((ms - (d > 0 ? d : 0))); fi
    if [ "$share" = - ]; then fig=$ms text="total $ms ms, libvirt's event -, mdevmon's share -"
    else fig=$share text="total $ms ms, libvirt's event $lv ms, mdevmon's share $share ms"; fi
    text="${PEND_WHAT[i]}: $text"
    line="E2E-LATENCY $SCENARIO total=$ms libvirt=$lv mdevmon=$share target=$TARGET_MS ${PEND_WHAT[i]}"
    say "$line"; echo "$line" >> "$E2E_DIR/results-$PHASE.txt"
    if ((fig > BOUND_MS)); then LATE+=("$text"); log "LATE: $text (bound $BOUND_MS ms)"
    elif ((ms > BOUND_MS)); then note "$text"   # late in total, on time after libvirt's event
    else log "ok: $text"; fi
  done
  # The local figure of each step, for the remote line beside it (the remote one may have come first).
  LOCAL_MS=()
  for i in "${!PEND_MS[@]}"; do LOCAL_MS["${PEND_WHAT[i]}"]=${PEND_MS[i]}; done
  PEND_WHAT=() PEND_MS=()
  settle_remote "$d"
}
# settle_libvirt UUID: settle with libvirt's first node-device lifecycle event for the mdev since the step
# began (the recorder of events_start). libvirt's event may come after mdevmon already showed the change
# (libvirt 11.3 announced a sysfs-made mdev 7 s late under load): when a latency is over the target, the
# event is waited for up to 20 s after the step.
settle_libvirt() {
  local CHECK_END=$PEND_END d ms over=0 t   # libvirt_event_ms counts from the measured step's end
  ((${#PEND_MS[@]} + ${#R_PEND_MS[@]})) || return 0
  for ms in "${PEND_MS[@]}" "${R_PEND_MS[@]}"; do ((ms > TARGET_MS)) && over=1; done
  while d=$(libvirt_event_ms "$1"); [ -z "$d" ] && ((over)); do
    now t; ((t - CHECK_END <= 20000)) || break
    sleep 0.2
  done
  settle "$d"
}
# settle_domain DOMAIN EVENT: settle with libvirt's domain EVENT (device-added, lifecycle, ...) since the
# step began, when the recorder of dom_events_start saw one.
settle_domain() {
  local CHECK_END=$PEND_END
  ((${#PEND_MS[@]} + ${#R_PEND_MS[@]})) || return 0
  if dom_event_seen "$1" "$2"; then settle "$DOM_EVENT_MS"; else settle; fi
}
scenario_end() {
  local status=PASS detail="" t
  settle
  ((${#FAILS[@]} + ${#LATE[@]} == 0)) || status=FAIL
  ((${#FAILS[@]})) && detail=$(IFS=';'; echo "${FAILS[*]:0:6}")
  ((${#FAILS[@]} > 6)) && detail+="; and $((${#FAILS[@]} - 6)) more"
  ((${#LATE[@]})) && detail+="${detail:+; }over ${BOUND_MS} ms: $(IFS=','; echo "${LATE[*]}")"
  ((${#NOTES[@]})) && detail+="${detail:+; }$(IFS=';'; echo "${NOTES[*]}")"
  now t
  result "$SCENARIO" $status "${detail:+$detail; }max latency ${MAXLAT} ms; $(((t - SCENARIO_T0) / 1000)) s"
  local i
  for i in "${!R_NAMES[@]}"; do
    if ((R_N[i] == 0)) && [ -z "${R_FAILS[i]}" ]; then result "${R_NAMES[i]}" FAIL "nothing was measured remotely"
    elif [ -n "${R_FAILS[i]}" ]; then result "${R_NAMES[i]}" FAIL "${R_FAILS[i]#; }; ${R_N[i]} checks, max latency ${R_MAX[i]} ms"
    else result "${R_NAMES[i]}" PASS "${R_N[i]} checks through qemu+tcp beside $SCENARIO's, max latency ${R_MAX[i]} ms"; fi
  done
}
result() { say "E2E-RESULT $1 $2 ${*:3}"; echo "E2E-RESULT $1 $2 ${*:3}" >> "$E2E_DIR/results-$PHASE.txt"; }
skip() { result "$1" SKIP "${*:2}"; }
info() { say "E2E-INFO $*"; echo "E2E-INFO $*" >> "$E2E_DIR/results-$PHASE.txt"; }

# wait_for SECONDS CMD...: polls CMD until it succeeds; no failure recorded.
wait_for() {
  local deadline t; now t; deadline=$((t + $1 * 1000)); shift
  until "$@"; do now t; ((t < deadline)) || return 1; sleep 0.2; done
}
# within WHAT CMD...: polls CMD (a fork-free metrics condition) from the last step's end; records its
# latency, or a failure if it does not hold within BOUND_MS + GRACE_MS.
# While a scenario has `remote_also NAME`, CMD is also polled against the host's mdevmon (which watches this
# guest's libvirtd over qemu+tcp), at the same time: its latency from the same step's end is reported as
# scenario NAME beside the local one.
within() {
  local what=$1 t here=0 there=1; shift
  [ -n "$REMOTE_AS" ] && there=0
  LAST_MS=-
  while :; do
    if ((!here)) && "$@"; then now t; latency "$what" $((t - CHECK_END)); LAST_MS=$((t - CHECK_END)); here=1; fi
    if ((!there)) && remote "$@"; then now t; remote_latency "$what" $((t - CHECK_END)); there=1; fi
    ((here && there)) && return 0
    now t
    if ((t - CHECK_END > BOUND_MS + GRACE_MS)); then
      ((there)) || remote_fail "$what: not within $(((BOUND_MS + GRACE_MS) / 1000)) s"
      ((here)) && return 0
      fail "$what: not within $(((BOUND_MS + GRACE_MS) / 1000)) s"; return 1
    fi
    sleep 0.02
  done
}

# --- metrics, fork-free ----------------------------------------------------------------------------------
SCRAPE= SERIES= STATE=
# scrape: GET /metrics into SCRAPE (body only). Reads exactly Content-Length bytes: the server keeps
# the connection open after the response whatever the request asks.
scrape() {
  local fd line len=""
  exec {fd}<>"/dev/tcp/${SCRAPE_AT:-127.0.0.1/9850}" 2>/dev/null || return 1
  printf 'GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&"$fd"
  SCRAPE=
  IFS= read -r -t 3 -u "$fd" line && [[ $line == HTTP/1.?" 200"* ]] || { exec {fd}>&-; return 1; }
  while IFS= read -r -t 3 -u "$fd" line && [ "$line" != $'\r' ]; do
    [[ ${line,,} == content-length:* ]] && len=${line#*:} && len=${len//[!0-9]/}
  done
  if [ -n "$len" ]; then IFS= read -r -t 3 -N "$len" -u "$fd" SCRAPE; else IFS= read -r -t 3 -d '' -u "$fd" SCRAPE; fi
  exec {fd}>&-
  [ -n "$SCRAPE" ]
}
# plain_series NAME: SERIES = the value of the sample NAME without labels in SCRAPE.
plain_series() {
  local line
  SERIES=
  while IFS= read -r line; do [[ $line == "$1 "* ]] && { SERIES=${line##* }; return 0; }; done <<<"$SCRAPE"
  return 1
}
# series NAME [label=value ...]: SERIES = the value of the first series in SCRAPE with these labels.
series() {
  local name=$1 line labels kv; shift
  SERIES=
  while IFS= read -r line; do
    [[ $line == "$name{"* ]] || continue
    labels=",${line#*\{}" && labels=${labels%\}*}
    for kv; do [[ $labels == *",${kv%%=*}=\"${kv#*=}\""* ]] || continue 2; done
    SERIES=${line##* }
    return 0
  done <<<"$SCRAPE"
}
# series_sum NAME [label=value ...]: SERIES = sum over matching series (0 when none).
series_sum() {
  local name=$1 line labels kv sum=0; shift
  while IFS= read -r line; do
    [[ $line == "$name{"* ]] || continue
    labels=",${line#*\{}" && labels=${labels%\}*}
    for kv; do [[ $labels == *",${kv%%=*}=\"${kv#*=}\""* ]] || continue 2; done
    sum=$((sum + ${line##* }))
  done <<<"$SCRAPE"
  SERIES=$sum
}
# last_or_new COND...: COND (a test on SCRAPE that does not scrape) on the last scrape, else on a fresh one.
# For a condition that follows from the same change as the one `within` just waited for: it is not made
# one scrape later than the change by scraping again first. Its latency stays an upper bound (the time it
# is checked, with data at most that old).
last_or_new() { [ -n "$SCRAPE" ] && "$@" || { scrape && "$@"; }; }
# log_metrics TEXT: logs the samples of the last SCRAPE that mention TEXT (a UUID, a domain), for a failure's
# account of what mdevmon exported.
log_metrics() { log "exported samples naming $1: $(grep -F "$1" <<<"$SCRAPE" | grep -v '^#' | tr '\n' ' ')"; }
metric() { scrape && series "$@" && echo "$SERIES"; }
metric_sum() { scrape && series_sum "$@" && echo "$SERIES"; }
# device_state UUID: STATE = "active/persistent/autostart" from SCRAPE ("//" when absent).
device_state() {
  local a p s
  series mdev_device_active uuid="$1"; a=$SERIES
  series mdev_device_persistent uuid="$1"; p=$SERIES
  series mdev_device_autostart uuid="$1"; s=$SERIES
  STATE="$a/$p/$s"
}
# device_is UUID ACTIVE PERSISTENT AUTOSTART (each 0/1), or device_is UUID absent; scrapes.
device_is() {
  scrape || return 1
  device_state "$1"
  if [ "$2" = absent ]; then [ "$STATE" = // ]; else [ "$STATE" = "$2/$3/$4" ]; fi
}
sysfs_available() { local n; read -r n < "$SYSFS_TYPES/$1/available_instances" && echo "$n"; }
# available_ok TYPE: in SCRAPE, the type's available instances equal the kernel's count now.
available_ok() {
  local want
  read -r want < "$SYSFS_TYPES/$1/available_instances" || return 1
  series mdev_parent_available_instances parent="$PARENT" mdev_type="$1"
  [ "$SERIES" = "$want" ]
}

# --- journal ---------------------------------------------------------------------------------------------
mark_journal() { JCURSOR=$(journalctl -q -n 0 --show-cursor | sed -n 's/^-- cursor: //p'); }
# Entries since the last mark_journal with MESSAGE_ID and FIELD=value..., as receive timestamps (µs). The
# fields are matched with jq: systemd 252's journalctl finds nothing for --after-cursor plus field matches.
journal_times() {
  local f sel=".MESSAGE_ID == \"$1\""
  shift
  for f; do sel+=" and .${f%%=*} == \"${f#*=}\""; done
  journalctl -q -o json --after-cursor="$JCURSOR" | jq -r "select($sel) | .__REALTIME_TIMESTAMP"
}
journal_count() { journal_times "$@" | wc -l; }
journal_has() { [ -n "$(journal_times "$@")" ]; }
# Whole boot, with journalctl's own matching.
boot_count() { local id=$1; shift; journalctl -q -b -o json MESSAGE_ID="$id" "$@" | wc -l; }
# journal_within WHAT EVENT [FIELD=value ...]: the event's entry arrives; its latency is its receive time
# minus the last step's end.
journal_within() {
  local what=$1 event=$2 ts t; shift 2
  while :; do
    ts=$(journal_times "${MSGID[$event]}" "$@" | head -1)
    [ -n "$ts" ] && break
    now t
    if ((t - CHECK_END > BOUND_MS + GRACE_MS)); then fail "$what: no $event journal entry"; return 1; fi
    sleep 0.1
  done
  t=$((ts / 1000 - CHECK_END))
  latency "$what" $((t < 0 ? 0 : t))
}

# --- one step of a device's life ------------------------------------------------------------------------
# before_step settles what the last step measured and marks the journal (and how many node-device events
# were recorded so far: older lines are not read again); after the step's `check`, expect_state checks
# that within BOUND_MS the metrics show the device's state and the type's available instances equal the
# kernel's, and that the journal got the event for the device; each latency is settled with the delay of
# libvirt's own event, which tells mdevmon's lag from libvirt's.
before_step() {
  local seen=()
  settle
  mark_journal
  EV_SEEN=0
  [ -r "$E2E_DIR/$PHASE-nodedev-events.txt" ] && mapfile -t seen < "$E2E_DIR/$PHASE-nodedev-events.txt" && EV_SEEN=${#seen[@]}
  now STEP_START
}
# expect_state WHAT UUID TYPE EVENT ACTIVE PERSISTENT AUTOSTART   (or ... EVENT absent)
expect_state() {
  local what=$1 uuid=$2 type=$3 event=$4 want; shift 4
  if [ "$1" = absent ]; then want=//; else want="$1/$2/$3"; fi
  state_ok() { scrape && device_state "$uuid" && [ "$STATE" = "$want" ]; }
  available_now() { scrape && available_ok "$type"; }
  within "$what: state" state_ok || fail "$what: metrics active/persistent/autostart $STATE, want $want"
  # The remote daemon's capacity figures are their own scenario.
  local as=$REMOTE_AS
  [ -z "$as" ] || remote_also remote-capacity
  within "$what: available $type" available_now ||
    fail "$what: available instances of $type exported ${SERIES:-none}, kernel $(sysfs_available "$type")"
  [ -z "$as" ] || remote_also "$as"
  journal_within "$what: journal $event" "$event" MDEV_UUID="$uuid"
  settle_libvirt "$uuid"
  return 0
}
# Background `virsh nodedev-event` recorders (lifecycle and update events, with timestamps).
events_start() {
  local e
  EV_PIDS=()
  for e in lifecycle update; do
    virsh nodedev-event --loop --timestamp --event $e >> "$E2E_DIR/$PHASE-nodedev-events.txt" 2>&1 &
    EV_PIDS+=($!)
  done
  sleep 1   # let them register before the first step
}
events_stop() { kill "${EV_PIDS[@]}" 2>/dev/null; wait "${EV_PIDS[@]}" 2>/dev/null; return 0; }
# libvirt_event_ms UUID: ms from the step's end to libvirt's first event for the device since the step
# began (negative when it came before the end), or nothing when there was none. Skips the EV_SEEN lines
# recorded before the step (each line read costs a `date` fork).
libvirt_event_ms() {
  local line ts ms name n=0
  name=$(devname "$1")
  while IFS= read -r line; do
    ((n++ < ${EV_SEEN:-0})) && continue
    [[ $line == *"node device $name:"* ]] || continue
    ts=${line%%: event *}
    ms=$(date -d "$ts" +%s%3N 2>/dev/null) || continue
    ((ms >= STEP_START)) && { echo "$((ms - CHECK_END))"; return; }
  done < "$E2E_DIR/$PHASE-nodedev-events.txt"
}

# --- libvirt and sysfs -----------------------------------------------------------------------------------
# libvirt_version: the running daemon's version ("11.3.0"), asked once.
libvirt_version() {
  [ -n "${LIBVIRT_VERSION:-}" ] ||
    LIBVIRT_VERSION=$(timeout 60 virsh version --daemon 2>/dev/null | sed -n 's/^Running against daemon: *//p')
  echo "${LIBVIRT_VERSION:-unknown}"
}
# libvirt_at_least MAJOR.MINOR: the running libvirt is that version or newer.
libvirt_at_least() {
  local v; v=$(libvirt_version)
  [ "$v" != unknown ] && [ "$(printf '%s\n%s\n' "$1" "$v" | sort -V | head -1)" = "$1" ]
}
devname() { echo "mdev_${1//-/_}_mtty"; }
mdev_xml() { # UUID TYPE [PARENT]
  printf "<device>\n  <parent>%s</parent>\n  <capability type='mdev'>\n    <type id='%s'/>\n    <uuid>%s</uuid>\n  </capability>\n</device>\n" \
    "${3:-$PARENT}" "$2" "$1"
}
nd_define() { mdev_xml "$1" "$2" > "/tmp/$1.xml" && run virsh nodedev-define "/tmp/$1.xml"; }
nd_create() { mdev_xml "$1" "$2" > "/tmp/$1.xml" && run virsh nodedev-create "/tmp/$1.xml"; }
nd() { local verb=$1 uuid=$2; shift 2; run virsh "nodedev-$verb" "$(devname "$uuid")" "$@"; }
# Kernel truth: the mdev exists in sysfs.
sysfs_active() { [ -e "/sys/bus/mdev/devices/$1" ]; }
libvirt_active() { virsh nodedev-list --cap mdev | grep -qx "$(devname "$1")"; }
libvirt_defined() { virsh nodedev-list --all --cap mdev | grep -qx "$(devname "$1")"; }
parent_present() { virsh nodedev-list --cap mdev_types 2>/dev/null | grep -qx "$PARENT"; }
# Removes devices whatever their state, ignoring errors (cleanup between scenarios).
forget() {
  local uuid
  for uuid; do
    libvirt_active "$uuid" && run virsh nodedev-destroy "$(devname "$uuid")"
    sysfs_active "$uuid" && echo 1 > "/sys/bus/mdev/devices/$uuid/remove"
    libvirt_defined "$uuid" && run virsh nodedev-undefine "$(devname "$uuid")"
  done
  return 0
}
# dom_xml NAME [UUID ...]: a domain with no OS and no disk, one hostdev per mdev UUID. ACPI is on: PCI
# hotplug on the `pc` machine goes through it (without it `attach-device --live` of a hostdev fails).
dom_xml() {
  local u
  printf "<domain type='qemu'>\n  <name>%s</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n" "$1"
  printf "  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n  <features><acpi/></features>\n  <devices>\n"
  shift
  for u; do hostdev_xml "$u" | sed 's/^/    /'; done
  printf "  </devices>\n</domain>\n"
}
hostdev_xml() { # UUID
  printf "<hostdev mode='subsystem' type='mdev' model='vfio-pci'>\n  <source><address uuid='%s'/></source>\n</hostdev>\n" "$1"
}
dom_running() { [ "$(virsh domstate "$1" 2>/dev/null)" = running ]; }
dom_defined() { virsh dominfo "$1" > /dev/null 2>&1; }
# live_holds DOMAIN UUID: libvirt's live XML of the domain has a hostdev for the mdev (libvirt's truth).
live_holds() { virsh dumpxml "$1" 2>/dev/null | grep -q "<address uuid='$2'/>"; }
# Removes domains whatever their state, ignoring errors (cleanup, also after a failure).
dom_forget() {
  local d
  for d; do
    dom_running "$d" && run virsh destroy "$d"
    dom_defined "$d" && run virsh undefine "$d"
  done
  return 0
}
# Background `virsh event --all` recorder (domain lifecycle, device-added/-removed/-removal-failed...).
dom_events_start() {
  virsh event --all --loop --timestamp >> "$E2E_DIR/$PHASE-domain-events.txt" 2>&1 &
  DOM_EV_PID=$!
  sleep 1   # let it register before the first step
}
dom_events_stop() { kill "$DOM_EV_PID" 2>/dev/null; wait "$DOM_EV_PID" 2>/dev/null; return 0; }
# dom_event_seen DOMAIN EVENT: the recorder saw libvirt's EVENT (e.g. device-removal-failed) for DOMAIN
# since the step began; DOM_EVENT_MS = its delay after the step's end.
dom_event_seen() {
  local line ts ms
  while IFS= read -r line; do
    [[ $line == *"event '$2' for domain '$1'"* ]] || continue
    ts=${line%%: event *}
    ms=$(date -d "$ts" +%s%3N 2>/dev/null) || continue
    ((ms >= STEP_START)) && { DOM_EVENT_MS=$((ms - CHECK_END)); return 0; }
  done < "$E2E_DIR/$PHASE-domain-events.txt"
  return 1
}

# --- mdevmon ---------------------------------------------------------------------------------------------
mdevmon_pid() { systemctl show -P MainPID mdevmon.service; }
mdevmon_ready() { systemctl is-active -q mdevmon.service && scrape; }
# healthz_ok: mdevmon's /healthz answers 200 `ok`.
healthz_ok() { curl -fsS -m 3 http://127.0.0.1:9850/healthz | grep -qx ok; }
# restores_done: mdevmon's restore policy has nothing pending (polled: a `test "$(metric …)"` argument
# would be expanded once, before the first try).
restores_done() { [ "$(metric mdev_policy_pending policy=restore)" = 0 ]; }
# The state file lists these UUIDs (the daemon writes it 200 ms after a change).
state_lists() { local u; for u; do grep -qs "$u" /var/lib/mdevmon/state.json || return 1; done; }
# Replaces one `key: value` line of the installed config, keeping everything else as the package put it.
set_config() { sed -i -E "s|^([[:space:]]*$1:)[[:space:]]*[^#]*|\\1 $2 |" /etc/mdevmon/mdevmon.yaml; }

# work_timings: for the record (issue 23: why mdevmon's share after libvirt's event is larger in a TCG
# guest), what mdevmon's event handling cost this boot so far (its mdev_libvirt_call_duration_seconds and
# mdev_event_queue_wait_seconds summaries) and what one poll of this harness (a scrape and its parse) costs.
work_timings() {
  local m t0 t1 i
  m=$(curl -fsS -m 5 "$METRICS_URL") || return 0
  now t0; for i in {1..20}; do scrape && series mdev_device_active uuid=none; done; now t1
  info "$(awk -v poll=$(((t1 - t0) / 20)) -v phase="$PHASE" '
    function mean(k) { return c[k] ? 1000 * s[k] / c[k] : 0 }
    /^mdev_libvirt_call_duration_seconds_(sum|count)\{/ { split($1, a, "\""); if ($1 ~ /_sum/) s[a[2]] = $2; else c[a[2]] = $2 }
    /^mdev_event_queue_wait_seconds_sum / { s["wait"] = $2 }
    /^mdev_event_queue_wait_seconds_count / { c["wait"] = $2 }
    END {
      printf "work-timings (boot %s): node-device fetches %d, mean %.1f ms; domain fetches %d, mean %.1f ms; objects queued %d, mean wait %.1f ms; full syncs %d, mean %.0f ms; one poll of the e2e harness (scrape and parse) %d ms",
        phase, c["fetch_node_device"], mean("fetch_node_device"), c["fetch_domain"], mean("fetch_domain"),
        c["wait"], mean("wait"), c["full_sync"], mean("full_sync"), poll }' <<<"$m")"
}

# --- the remote mdevmon (issue 25) -----------------------------------------------------------------------
# run.sh runs a second mdevmon on the host, watching this guest's libvirtd over qemu+tcp (QEMU forwards
# 127.0.0.1:<port> on the host to libvirtd-tcp.socket here). Its metrics are at e2e.remote=<ip>:<port>:
# the host as QEMU's user network shows it (10.0.2.2). Unset: no remote daemon, remote scenarios SKIP.
REMOTE=$(sed -n 's/.*\be2e\.remote=\([0-9.:]*\).*/\1/p' /proc/cmdline)
have_remote() { [ -n "$REMOTE" ]; }
declare -A LOCAL_MS=()
REMOTE_AS="" LAST_MS=- R_I=0 R_NAMES=() R_FAILS=() R_MAX=() R_N=() R_PEND_WHAT=() R_PEND_MS=() R_PEND_LOCAL=() R_PEND_I=()
# remote CMD...: CMD with scrape() reading the remote daemon; the caller's SCRAPE, SERIES and STATE stay.
remote() { local SCRAPE= SERIES= STATE= SCRAPE_AT="${REMOTE%:*}/${REMOTE##*:}"; "$@"; }
# remote_also NAME: from here to scenario_end (or remote_pause), `within` also checks the remote daemon
# and reports under NAME (a scenario name containing "remote"); SKIPs NAME when there is no remote daemon.
remote_also() {
  if ! have_remote; then skip "$1" "no remote mdevmon (run.sh passes e2e.remote=)"; return 0; fi
  local i
  for i in "${!R_NAMES[@]}"; do [ "${R_NAMES[i]}" = "$1" ] && { REMOTE_AS=$1 R_I=$i; return 0; }; done
  R_NAMES+=("$1") R_FAILS+=("") R_MAX+=(0) R_N+=(0)
  REMOTE_AS=$1 R_I=$((${#R_NAMES[@]} - 1))
}
remote_pause() { REMOTE_AS=""; }
remote_fail() { R_FAILS[R_I]+="; $*"; log "FAIL ($REMOTE_AS): $*"; }
# remote_latency WHAT MS: kept until settle, which judges it as the local ones of the same step: against
# BOUND_MS on mdevmon's share after libvirt's event where that is known, else on the total.
remote_latency() {
  R_PEND_WHAT+=("$1") R_PEND_MS+=("$2") R_PEND_LOCAL+=("$LAST_MS") R_PEND_I+=("$R_I")
  log "measured remotely ($REMOTE_AS): $1 ($2 ms)"
  LAST_MS=-
  return 0
}
# settle_remote LIBVIRT_MS: settle's half for the remote daemon: one E2E-LATENCY line per latency under
# the remote scenario's name, with the local figure of the same step beside it.
settle_remote() {
  local d=${1:-} i ms lv share fig line k
  for i in "${!R_PEND_MS[@]}"; do
    ms=${R_PEND_MS[i]} k=${R_PEND_I[i]} lv=- share=-
    if [ -n "$d" ]; then printf -v lv '%+d' "$d"; share=$((ms - (d > 0 ? d : 0))); fi
    [ "$share" = - ] && fig=$ms || fig=$share
    line="E2E-LATENCY ${R_NAMES[k]} total=$ms libvirt=$lv mdevmon=$share target=$TARGET_MS ${R_PEND_WHAT[i]} (local ${LOCAL_MS[${R_PEND_WHAT[i]}]:-${R_PEND_LOCAL[i]}} ms)"
    say "$line"; echo "$line" >> "$E2E_DIR/results-$PHASE.txt"
    R_N[k]=$((R_N[k] + 1))
    ((ms > R_MAX[k])) && R_MAX[k]=$ms
    ((fig > BOUND_MS)) && R_FAILS[k]+="; ${R_PEND_WHAT[i]}: total $ms ms, mdevmon's share $share ms, over $BOUND_MS ms"
  done
  R_PEND_WHAT=() R_PEND_MS=() R_PEND_LOCAL=() R_PEND_I=()
}
