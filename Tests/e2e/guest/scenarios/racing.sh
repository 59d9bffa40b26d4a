# With the /usr/sbin/mdevctl symlink (the fix for Debian 12's udev rule), mdevctl's autostart and
# mdevmon's restore race at boot. U_RACE1 was active before the reboot (restored at once), U_RACE2 was
# not (mdevmon looks after the grace period).

RACERS=("$U_RACE1" "$U_RACE2")

prepare_racing() {
  say "E2E-STEP preparing racing mdevctl"
  mv "$E2E_DIR/mtty.conf.off" /etc/modules-load.d/mtty.conf
  ln -sfn /usr/bin/mdevctl /usr/sbin/mdevctl
  # Without the daemon no late-parent scenario loaded mtty this boot.
  grep -q '^mtty ' /proc/modules || run modprobe mtty
  wait_for 30 parent_present || log "parent $PARENT did not appear"
  forget "${RECOVERY[@]}" "$U_EXCL" "${RACERS[@]}"
  nd_define "$U_RACE1" mtty-1 && nd autostart "$U_RACE1" && nd start "$U_RACE1"
  nd_define "$U_RACE2" mtty-1 && nd autostart "$U_RACE2"
  have_daemon && { wait_for 10 state_lists "$U_RACE1" || log "state file does not list $U_RACE1"; }
  have_daemon && cat /var/lib/mdevmon/state.json
  return 0
}

# "add <uuid>" lines logged by the e2e udev rule (99-mdevmon-e2e.rules) this boot.
uevents() { journalctl -b -t e2e-uevent -o cat | grep -c "^$1 $2\$"; }

scenario_symlink_autostart() {
  scenario_begin symlink-autostart
  check "/usr/sbin/mdevctl symlink present" test -L /usr/sbin/mdevctl
  local u
  for u in "${RACERS[@]}"; do check "$u active within 60 s" wait_for 60 sysfs_active "$u"; done
  check "no 'not found' from the udev rule" bash -c "! journalctl -b -t mdevctl -o cat | grep -q 'not found'"
  log "mdevctl log:"; journalctl -b -t mdevctl -o short-precise
  scenario_end
}

scenario_racing() {
  scenario_begin racing
  local u
  # Let mdevmon finish: restores done (pending 0) and the grace period (10 s) over.
  wait_for 40 restores_done || fail "restore still pending after 40 s"
  sleep 2
  for u in "${RACERS[@]}"; do
    check "$u active" sysfs_active "$u"
    check "$u came up exactly once (uevents add $(uevents add "$u"), remove $(uevents remove "$u"))" \
      test "$(uevents add "$u")" = 1 -a "$(uevents remove "$u")" = 0
    check "$u: no deviceDeleted this boot" test "$(boot_count "${MSGID[deviceDeleted]}" MDEV_UUID="$u")" -eq 0
    local won=mdevctl
    (( $(boot_count "${MSGID[restoreSucceeded]}" MDEV_UUID="$u") > 0 )) && won=mdevmon
    note "$u started by $won"
  done
  check "metric: no failed restore" test "$(metric_sum mdev_policy_actions_total result=failure)" = 0
  check "metric: no gave_up restore" test "$(metric_sum mdev_policy_actions_total result=gave_up)" = 0
  check "journal: no restoreFailed" test "$(boot_count "${MSGID[restoreFailed]}")" -eq 0
  check "journal: no error logged by mdevmon" test -z "$(journalctl -b -u mdevmon.service -p err -o cat)"
  # A healthy host's reboot (mdevctl's rule works, mdevmon restores what it missed) is no alarm: a restore
  # under way is `restoring` at info, not a blocker at warning that is resolved seconds later.
  local loud
  loud=$(journalctl -b -u mdevmon.service -p warning -o cat | head -n 5 | tr '\n' '|')
  check "journal: nothing at warning or above from mdevmon this boot${loud:+ (got: $loud)}" test -z "$loud"
  note "skipped $(metric_sum mdev_policy_actions_total result=skipped), success $(metric_sum mdev_policy_actions_total result=success)"
  scenario_end
}
