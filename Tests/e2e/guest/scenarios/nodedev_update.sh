# nodedev-update (issue 17): a persistent mdev's definition against its live state.
# libvirt ≥ 10.1 (Debian 13): define an mtty-1 mdev (inactive: no drift series) and start it (drift in_sync); `virsh nodedev-update
# --config` with its definition's XML but mtty-2 changes its definition while it runs mtty-1: libvirt sends UPDATE,
# mdevmon exports drifted within BOUND_MS and journals it once; `nodedev-destroy` makes it inactive (series
# gone, back in sync journaled once) and the next `nodedev-start` applies mtty-2, which mdevmon shows as its live type.
# libvirt < 10.1 (Debian 12) has no nodedev-update and no inactive XML: the same binary exports an active
# defined mdev as unknown, never in_sync or drifted. Either way an inactive defined mdev and a transient one
# have no drift series.

# drift_seen UUID STATE: in SCRAPE, the mdev's one-hot mdev_device_definition_drift has STATE at 1 and the
# other two states at 0.
drift_seen() {
  local s want
  for s in in_sync drifted unknown; do
    want=0; [ $s = "$2" ] && want=1
    series mdev_device_definition_drift uuid="$1" state=$s
    [ "$SERIES" = $want ] || return 1
  done
}
drift_is() { scrape && drift_seen "$@"; }
no_drift_is() { scrape && series mdev_device_definition_drift uuid="$1" && [ -z "$SERIES" ]; }
# inactive_without_drift UUID: mdevmon lists the mdev as inactive (mdev_device_active 0, the positive sign)
# and exports no drift series for it.
inactive_without_drift() { no_drift_is "$1" && series mdev_device_active uuid="$1" && [ "$SERIES" = 0 ]; }
live_type_seen() { series mdev_device_info uuid="$1" mdev_type="$2"; [ "$SERIES" = 1 ]; } # UUID TYPE, in SCRAPE
live_type_is() { scrape && live_type_seen "$@"; }
# drift_explain UUID: after a failed drift check, says what mdevmon exported instead (in the result line).
drift_explain() {
  scrape || { note "no scrape"; return 0; }
  series mdev_device_active uuid="$1"
  local active=${SERIES:-not listed}
  if ! grep -q '^mdev_device_definition_drift{' <<<"$SCRAPE"; then
    # Normal while no mdev is active and persistent; after a start it means an old daemon. Said once.
    [ -n "${NO_DRIFT_NOTED:-}" ] ||
      note "mdevmon exports no mdev_device_definition_drift series at all (mdev_device_active for $1: $active; with it active, the daemon predates issue 17's drift export)"
    NO_DRIFT_NOTED=1
  elif [ "$active" != 1 ]; then
    note "mdev_device_active for $1: $active"
  else
    note "exported for $1: $(grep "^mdev_device_definition_drift{uuid=\"$1\"" <<<"$SCRAPE" | sed 's/.*state=\("[a-z_]*"\).* /\1=/' | tr '\n' ' ')"
  fi
  log_metrics "$1"
}
# update_event_ms UUID: ms from the step's end to libvirt's UPDATE event for the device since the step
# began, or nothing (the recorder's update lines have no ": detail" after the name). Skips the lines
# recorded before the step, as libvirt_event_ms.
update_event_ms() {
  local line ts ms name n=0
  name=$(devname "$1")
  while IFS= read -r line; do
    ((n++ < ${EV_SEEN:-0})) && continue
    [[ $line == *"event 'update' for node device $name" ]] || continue
    ts=${line%%: event *}
    ms=$(date -d "$ts" +%s%3N 2>/dev/null) || continue
    ((ms >= STEP_START)) && { echo "$((ms - CHECK_END))"; return; }
  done < "$E2E_DIR/$PHASE-nodedev-events.txt"
}
sysfs_type() { basename "$(readlink "/sys/bus/mdev/devices/$1/mdev_type")"; }
list_type() { mdevmon list --json | jq -r --arg u "$1" '.devices[] | select(.uuid == $u) | .mdev_type'; }

scenario_nodedev_update() {
  scenario_begin nodedev-update
  local u=$U_UPD name v mark n
  name=$(devname $u) v=$(libvirt_version) NO_DRIFT_NOTED=""
  forget $u
  events_start
  mark_journal; mark=$JCURSOR
  before_step; check "nodedev-define $u (mtty-1)" nd_define $u mtty-1
  within "define (inactive): listed inactive, no drift series" inactive_without_drift $u || drift_explain $u
  settle_libvirt $u
  before_step; check "nodedev-start" nd start $u
  if ! libvirt_at_least 10.1; then
    within "start on libvirt $v: drift unknown" drift_is $u unknown || drift_explain $u
    settle_libvirt $u
    if virsh help nodedev-update > /dev/null 2>&1; then fail "virsh $v knows nodedev-update, expected only from 10.1"; fi
    before_step; check "nodedev-undefine (active: now transient)" nd undefine $u
    within "undefine: transient, no drift series" no_drift_is $u || drift_explain $u
    settle_libvirt $u
    JCURSOR=$mark
    check "journal: no drift or in-sync entry for $u" \
      test "$(journal_count "${MSGID[definitionDrifted]}" MDEV_UUID=$u)$(journal_count "${MSGID[definitionInSync]}" MDEV_UUID=$u)" = 00
    note "nodedev-update needs libvirt ≥ 10.1 (here $v): checked drift unknown for an active defined mdev"
    forget $u
    events_stop
    scenario_end
    return
  fi

  within "start: active, runs its definition: drift in_sync" drift_is $u in_sync || drift_explain $u
  settle_libvirt $u
  # The device's own definition with the other type: libvirt 11.3 validates the update against its
  # schema, which needs <name> (the define XML without it fails: "Expecting an element name").
  virsh nodedev-dumpxml --inactive "$name" > "$E2E_DIR/$PHASE-$u-defined.xml" 2>&1
  sed "s|<type id='mtty-1'/>|<type id='mtty-2'/>|" "$E2E_DIR/$PHASE-$u-defined.xml" > /tmp/$u-mtty-2.xml
  check "the update XML is the definition with type mtty-2" grep -q "<type id='mtty-2'/>" /tmp/$u-mtty-2.xml
  before_step
  if ! check "nodedev-update --config (type mtty-2) of the active device" run virsh nodedev-update "$name" /tmp/$u-mtty-2.xml --config; then
    note "nodedev-update: $(virsh nodedev-update "$name" /tmp/$u-mtty-2.xml --config 2>&1 | tr -s '\n' ' ' | cut -c1-160)"
    forget $u; events_stop; scenario_end; return
  fi
  local d
  within "update: drift drifted" drift_is $u drifted || drift_explain $u
  journal_within "update: journal entry (drifted)" definitionDrifted MDEV_UUID=$u SYSLOG_IDENTIFIER=mdevmon
  # libvirt's UPDATE event, in ms after nodedev-update returned (CHECK_END is still that step's end).
  d=$(update_event_ms $u)
  if [ -n "$d" ]; then
    if ((d < 0)); then note "libvirt's UPDATE event came $((-d)) ms before nodedev-update returned"
    else note "libvirt's UPDATE event +$d ms after nodedev-update returned"; fi
  else fail "libvirt sent no UPDATE event for $name after nodedev-update --config"; fi
  settle "$d"
  virsh nodedev-dumpxml --inactive "$name" > "$E2E_DIR/$PHASE-$u-inactive.xml" 2>&1
  virsh nodedev-dumpxml "$name" > "$E2E_DIR/$PHASE-$u-live.xml" 2>&1
  check "libvirt: the definition (dumpxml --inactive) has mtty-2" grep -q "<type id='mtty-2'/>" "$E2E_DIR/$PHASE-$u-inactive.xml"
  check "libvirt: the live XML still has mtty-1" grep -q "<type id='mtty-1'/>" "$E2E_DIR/$PHASE-$u-live.xml"
  check "kernel: the device still runs mtty-1" test "$(sysfs_type $u)" = mtty-1
  check "metrics: live type still mtty-1" live_type_is $u mtty-1

  before_step; check "nodedev-destroy" nd destroy $u
  within "destroy (inactive): drift series gone" inactive_without_drift $u || drift_explain $u
  journal_within "destroy: journal entry (back in sync)" definitionInSync MDEV_UUID=$u SYSLOG_IDENTIFIER=mdevmon
  settle_libvirt $u

  before_step; check "nodedev-start (applies the new definition)" nd start $u
  within "start: live type mtty-2 (mdev_device_info)" live_type_is $u mtty-2 || log_metrics $u
  within "start: drift in_sync" last_or_new drift_seen $u in_sync || drift_explain $u
  settle_libvirt $u
  check "kernel: the device runs mtty-2" test "$(sysfs_type $u)" = mtty-2
  check "list --json: $u has type mtty-2" test "$(list_type $u)" = mtty-2
  # Counted once the last step's positive signs are in: one entry each for the whole scenario.
  JCURSOR=$mark
  n=$(journal_count "${MSGID[definitionDrifted]}" MDEV_UUID=$u)
  check "journal: exactly one drifted entry for $u (got $n)" test "$n" = 1
  n=$(journal_count "${MSGID[definitionInSync]}" MDEV_UUID=$u)
  check "journal: exactly one back-in-sync entry for $u (got $n)" test "$n" = 1
  forget $u
  events_stop
  scenario_end
}
