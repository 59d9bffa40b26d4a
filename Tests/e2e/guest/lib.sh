# Helpers for the guest scenario scripts (sourced by guest.sh). Every wait here is bounded.
# Output convention: fd 3 is the serial console (and the journal), stdout/stderr go to the phase log.

E2E_DIR=/var/lib/mdevmon-e2e
E2E_LIB=/usr/local/lib/mdevmon-e2e
PARENT=mtty_mtty
SYSFS_TYPES=/sys/class/mdev_bus/mtty/mdev_supported_types
METRICS_URL=http://127.0.0.1:9850/metrics
DEVICES_URL=http://127.0.0.1:9850/api/v1/devices
# The issue's bound for metrics and journal to follow a change.
BOUND_MS=${E2E_BOUND_MS:-1000}
# How long a late change is still waited for, to tell "late" from "never" in the report.
GRACE_MS=${E2E_GRACE_MS:-10000}
export LIBVIRT_DEFAULT_URI=qemu:///system

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

now_ms() { date +%s%3N; }
log() { echo "$(date +%T.%3N) $*"; }
say() { echo "$*" >&3; log "$*"; }
# Runs a command with its output in the log; bounded so a wedged libvirtd cannot stall the phase.
run() { log "+ $*"; timeout 60 "$@"; local rc=$?; ((rc == 0)) || log "  (exit $rc)"; return $rc; }

have_daemon() { [ -x /usr/local/bin/mdevmon ]; }

# --- scenario bookkeeping: one E2E-RESULT line per scenario -----------------------------------------------
scenario_begin() {
  SCENARIO=$1 FAILS=() NOTES=() MAXLAT=0
  SCENARIO_T0=$(now_ms)
  say "E2E-STEP $SCENARIO begin"
}
fail() { FAILS+=("$*"); log "FAIL: $*"; }
note() { NOTES+=("$*"); log "note: $*"; }
check() { local what=$1; shift; if "$@"; then log "ok: $what"; return 0; fi; fail "$what"; return 1; }
scenario_end() {
  local status=PASS detail
  ((${#FAILS[@]} == 0)) || status=FAIL
  if [ $status = FAIL ]; then detail=$(IFS=';'; echo "${FAILS[*]:0:4}"); else detail=$(IFS=';'; echo "${NOTES[*]}"); fi
  detail="${detail:+$detail; }max latency ${MAXLAT} ms; $(( ($(now_ms) - SCENARIO_T0) / 1000 )) s"
  result "$SCENARIO" $status "$detail"
}
result() { say "E2E-RESULT $1 $2 ${*:3}"; echo "E2E-RESULT $1 $2 ${*:3}" >> "$E2E_DIR/results-$PHASE.txt"; }
skip() { result "$1" SKIP "${*:2}"; }
info() { say "E2E-INFO $*"; echo "E2E-INFO $*" >> "$E2E_DIR/results-$PHASE.txt"; }

# within MS WHAT CMD...: polls CMD until it succeeds; fails WHAT past MS, but keeps polling up to GRACE_MS
# so the report tells a late change (with its latency) from one that never happened.
within() {
  local bound=$1 what=$2 t0 t; shift 2
  t0=$(now_ms)
  while :; do
    if "$@"; then
      t=$(( $(now_ms) - t0 )); ((t > MAXLAT)) && MAXLAT=$t
      if ((t > bound)); then fail "$what after ${t} ms (bound ${bound} ms)"; return 1; fi
      log "ok: $what (${t} ms)"; return 0
    fi
    t=$(( $(now_ms) - t0 ))
    if ((t > bound + GRACE_MS)); then fail "$what: not within $(( (bound + GRACE_MS) / 1000 )) s"; return 1; fi
    sleep 0.05
  done
}
# wait_for SECONDS CMD...: polls CMD (every 0.2 s) until it succeeds; no failure recorded.
wait_for() {
  local deadline=$(( $(now_ms) + $1 * 1000 )); shift
  until "$@"; do (( $(now_ms) < deadline )) || return 1; sleep 0.2; done
}

# --- metrics ---------------------------------------------------------------------------------------------
scrape() { curl -fsS --max-time 3 "$METRICS_URL"; }
# metric NAME [label=value ...]: the value of the series with (at least) these labels; empty if none.
metric_in() {
  local text=$1 name=$2; shift 2
  awk -v name="$name" -v want="$*" '
    BEGIN { n = split(want, w, " ") }
    /^#/ { next }
    {
      brace = index($0, "{")
      metric = brace ? substr($0, 1, brace - 1) : $1
      if (metric != name) next
      labels = brace ? "," substr($0, brace + 1, length($0) - brace - length($NF) - 2) : ""
      for (i = 1; i <= n; i++) {
        eq = index(w[i], "="); k = substr(w[i], 1, eq - 1); v = substr(w[i], eq + 1)
        if (index(labels, "," k "=\"" v "\"") == 0) next
      }
      print $NF; exit
    }' <<<"$text"
}
metric() { local text; text=$(scrape) || return 1; metric_in "$text" "$@"; }
# Sum of every series of NAME carrying these labels (0 when none).
metric_sum() {
  local text name=$1; shift
  text=$(scrape) || return 1
  local want=$* 
  awk -v name="$name" -v want="$want" '
    BEGIN { n = split(want, w, " "); s = 0 }
    /^#/ { next }
    {
      brace = index($0, "{"); metric = brace ? substr($0, 1, brace - 1) : $1
      if (metric != name) next
      labels = brace ? "," substr($0, brace + 1) : ""
      for (i = 1; i <= n; i++) {
        eq = index(w[i], "="); k = substr(w[i], 1, eq - 1); v = substr(w[i], eq + 1)
        if (index(labels, "," k "=\"" v "\"") == 0) next
      }
      s += $NF
    }
    END { print s }' <<<"$text"
}
# device_is UUID ACTIVE PERSISTENT AUTOSTART (each 0/1), or device_is UUID absent.
device_is() {
  local text uuid=$1
  text=$(scrape) || return 1
  if [ "$2" = absent ]; then
    [ -z "$(metric_in "$text" mdev_device_active uuid="$uuid")" ] && [ -z "$(metric_in "$text" mdev_device_persistent uuid="$uuid")" ]
    return
  fi
  [ "$(metric_in "$text" mdev_device_active uuid="$uuid")" = "$2" ] &&
    [ "$(metric_in "$text" mdev_device_persistent uuid="$uuid")" = "$3" ] &&
    [ "$(metric_in "$text" mdev_device_autostart uuid="$uuid")" = "$4" ]
}
sysfs_available() { cat "$SYSFS_TYPES/$1/available_instances"; }
# The exported available instances of TYPE equal the kernel's own count.
available_matches() {
  local want got
  want=$(sysfs_available "$1") || return 1
  got=$(metric mdev_parent_available_instances parent="$PARENT" mdev_type="$1")
  [ "$got" = "$want" ]
}
available_is() { [ "$(metric mdev_parent_available_instances parent="$PARENT" mdev_type="$1")" = "$2" ]; }

# --- journal ---------------------------------------------------------------------------------------------
mark_journal() { JCURSOR=$(journalctl -q -n 0 --show-cursor | sed -n 's/^-- cursor: //p'); }
# journal_count MESSAGE_ID [FIELD=value ...]: entries since the last mark_journal.
journal_count() {
  local id=$1; shift
  journalctl -q -o json ${JCURSOR:+--after-cursor="$JCURSOR"} MESSAGE_ID="$id" "$@" | wc -l
}
journal_has() { (( $(journal_count "$@") > 0 )); }
# Same, for the whole boot.
boot_count() { local id=$1; shift; journalctl -q -b -o json MESSAGE_ID="$id" "$@" | wc -l; }

declare -A MSGID=(
  [deviceCreated]=202ea77633e84d68920fd63160db7796 [deviceDeleted]=9bf4b6fba937428b83297b40068e5d20
  [deviceDefined]=174cc5720df84ff6a75fe1df5fa4d63d [deviceUndefined]=89a56dbb5db84d15a52fc34802740f19
  [deviceUpdated]=8ea4f381660744b3ba51e7593bb6768e [connectionLost]=5c6802befd4b48938873a4a8de99fc7f
  [restoreAttempted]=96d95f84ede645a5a93a0d434be17cc2 [restoreSucceeded]=bbfa2ce917cb44fd8bf21a9f81cc114f
  [restoreFailed]=ecbbc38f1a6e4e3291993e77d59e2f02 [restoreGaveUp]=7ea09811fff94b9eb90d12d1bbcdd1f5
  [referenceProblem]=5fb8310ebd9e4045a60c41deca91a9fa [referenceResolved]=337eb4be11954663930d3186f213c1cd
)

# --- libvirt and sysfs -----------------------------------------------------------------------------------
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
# Removes a device whatever its state, ignoring errors (cleanup between scenarios).
forget() {
  local uuid
  for uuid; do
    libvirt_active "$uuid" && run virsh nodedev-destroy "$(devname "$uuid")"
    sysfs_active "$uuid" && echo 1 > "/sys/bus/mdev/devices/$uuid/remove"
    libvirt_defined "$uuid" && run virsh nodedev-undefine "$(devname "$uuid")"
  done
  return 0
}
dom_xml() { # NAME UUID
  cat <<EOF
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <hostdev mode='subsystem' type='mdev' model='vfio-pci'>
      <source><address uuid='$2'/></source>
    </hostdev>
  </devices>
</domain>
EOF
}

# --- mdevmon ---------------------------------------------------------------------------------------------
mdevmon_pid() { systemctl show -P MainPID mdevmon.service; }
mdevmon_ready() { systemctl is-active -q mdevmon.service && curl -fsS --max-time 2 -o /dev/null "$METRICS_URL"; }
# The state file lists these UUIDs (the daemon writes it 200 ms after a change).
state_lists() { local u; for u; do grep -rqs "$u" /var/lib/mdevmon || return 1; done; }
# Replaces one `key: value` line of the installed config, keeping everything else as install.sh put it.
set_config() { sed -i -E "s|^([[:space:]]*$1:)[[:space:]]*[^#]*|\\1 $2 |" /etc/mdevmon/mdevmon.yaml; }

# --- one step of a device's life ------------------------------------------------------------------------
# before_step marks the journal; after the command, expect_state checks that within BOUND_MS of the
# command's return the metrics show the state, the type's available instances equal the kernel's, and
# the journal holds the event for the device.
before_step() { mark_journal; }
# expect_state WHAT UUID TYPE EVENT ACTIVE PERSISTENT AUTOSTART   (or ... EVENT absent)
expect_state() {
  local what=$1 uuid=$2 type=$3 event=$4; shift 4
  local state=("$@")
  step_ok() {
    device_is "$uuid" "${state[@]}" && available_matches "$type" && journal_has "${MSGID[$event]}" MDEV_UUID="$uuid"
  }
  if ! within "$BOUND_MS" "$what" step_ok; then
    device_is "$uuid" "${state[@]}" || fail "$what: metrics show active/persistent/autostart $(state_words "$uuid"), want ${state[*]}"
    available_matches "$type" || fail "$what: mdev_parent_available_instances{$type} $(metric mdev_parent_available_instances parent="$PARENT" mdev_type="$type"), kernel $(sysfs_available "$type")"
    journal_has "${MSGID[$event]}" MDEV_UUID="$uuid" || fail "$what: no $event journal entry"
  fi
}
state_words() {
  local text; text=$(scrape)
  echo "$(metric_in "$text" mdev_device_active uuid="$1")/$(metric_in "$text" mdev_device_persistent uuid="$1")/$(metric_in "$text" mdev_device_autostart uuid="$1")"
}
