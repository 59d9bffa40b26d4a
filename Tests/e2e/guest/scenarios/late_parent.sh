# late-parent: mtty is loaded ~20 s after mdevmon started; mdevmon waits for the parent's CREATED
# event, then restores (no attempts before).

scenario_late_parent() {
  scenario_begin late-parent
  check "mtty not loaded at boot" bash -c "! grep -q '^mtty ' /proc/modules"
  check "libvirt has no mtty parent" bash -c "! virsh nodedev-list --cap mdev_types | grep -qx $PARENT"
  local started up wait_s
  wait_for 60 systemctl is-active -q mdevmon.service || fail "mdevmon.service not active"
  started=$(systemctl show -P ExecMainStartTimestampMonotonic mdevmon.service)
  up=$(awk '{printf "%d", $1 * 1000000}' /proc/uptime)
  wait_s=$(( (started + 20000000 - up) / 1000000 ))
  ((wait_s > 0)) && { log "sleeping ${wait_s} s until 20 s after mdevmon started"; sleep "$wait_s"; }
  local u
  check "mdevmon logged that it waits for the parent" \
    bash -c "journalctl -b -u mdevmon.service -o cat | grep -q 'waiting for parent $PARENT'"
  local early
  early=$(journalctl -q -b -o json MESSAGE_ID="${MSGID[restoreAttempted]}" | jq -r '"\(.MDEV_UUID) on \(.MDEV_PARENT)"' | sort | uniq -c | xargs)
  check "no restore attempt before the parent exists${early:+ (attempts: $early)}" test -z "$early"
  local skipped
  skipped=$(journalctl -q -b -u mdevmon.service -o cat | grep -o 'not restoring mdev [0-9a-f-]* on [a-z_0-9]*: .*' | sort -u | tr '\n' ';')
  [ -n "$skipped" ] && note "mdevmon at start: ${skipped%;}"

  mark_journal
  local t0 t; now t0
  check "modprobe mtty" run modprobe mtty
  all_up() { local x; for x in "${RECOVERY[@]}"; do sysfs_active "$x" || return 1; done; }
  if check "all three devices restored within 60 s of modprobe" wait_for 60 all_up; then
    now t; note "restored $((t - t0)) ms after modprobe"
  else
    for u in "${RECOVERY[@]}"; do sysfs_active "$u" || fail "$u not active"; done
  fi
  for u in "${RECOVERY[@]}"; do
    # The device shows in sysfs before libvirt's create returns and mdevmon journals the outcome.
    check "journal: restoreSucceeded for $u after the parent appeared" wait_for 30 journal_has "${MSGID[restoreSucceeded]}" MDEV_UUID="$u"
  done
  check "no restoreFailed this boot" test "$(boot_count "${MSGID[restoreFailed]}")" -eq 0
  check "no restoreGaveUp this boot" test "$(boot_count "${MSGID[restoreGaveUp]}")" -eq 0
  check "metric: no failed restore" test "$(metric_sum mdev_policy_actions_total result=failure)" = 0
  scenario_end
}
