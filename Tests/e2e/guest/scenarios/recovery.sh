# Reboot recovery on the stock image (mdevctl's udev rule calls the missing /usr/sbin/mdevctl).
# Boot one prepares, boot two checks.

RECOVERY=("$U_AUTO" "$U_PERS" "$U_TRAN")

prepare_recovery() {
  say "E2E-STEP preparing reboot recovery"
  forget "$U_AUTO" "$U_PERS" "$U_TRAN" "$U_EXCL"
  nd_define "$U_AUTO" mtty-1 && nd autostart "$U_AUTO"
  nd_define "$U_PERS" mtty-2 && nd start "$U_PERS"
  nd_create "$U_TRAN" mtty-2
  nd_define "$U_EXCL" mtty-1 && nd start "$U_EXCL"
  mkdir -p "$E2E_DIR/before"
  local u
  for u in "${RECOVERY[@]}" "$U_EXCL"; do
    virsh nodedev-dumpxml "$(devname "$u")" > "$E2E_DIR/before/$u.xml" 2>&1
  done
  # The domain for the start attempt after the reboot.
  dom_xml e2e-boot "$U_PERS" > /tmp/e2e-boot.xml && run timeout 180 virsh define /tmp/e2e-boot.xml
  if have_daemon; then
    set_config recreate_transient true
    # U_RREST is the remote daemon's to restore (scenarios/remote.sh).
    set_config exclude_uuids "[$U_EXCL, $U_RREST]"
    set_config autostart_grace_period 10s
    log "config for the reboot:"; cat /etc/mdevmon/mdevmon.yaml
    run systemctl reload mdevmon.service
    wait_for 10 state_lists "$U_PERS" "$U_TRAN" "$U_EXCL" || log "state file does not list the active devices yet"
    cat /var/lib/mdevmon/state.json
  fi
}

# The identity the restore must keep: type, uuid, attrs (from nodedev-dumpxml).
identity() { grep -E "<type id=|<uuid>|<attr " "$1" | tr -d ' \n'; }

scenario_stock_autostart() {
  scenario_begin stock-autostart-bug
  # Looked at first, before mdevmon's autostart grace period (10 s after its first sync) has passed.
  if sysfs_active "$U_AUTO"; then note "autostart device was already active at the first look"
  else note "autostart device inactive at boot, as expected"; fi
  check "autostart is on for $U_AUTO" bash -c "virsh nodedev-info $(devname "$U_AUTO") | grep -Eq 'Autostart: +yes'"
  check "udev rule failed: /usr/sbin/mdevctl not found" \
    bash -c "journalctl -b -t mdevctl -o cat | grep -q '/usr/sbin/mdevctl: not found'"
  have_daemon || check "without mdevmon the autostart device stays down" bash -c "sleep 5; ! test -e /sys/bus/mdev/devices/$U_AUTO"
  scenario_end
}

scenario_recovery() {
  scenario_begin recovery
  local u all_up
  all_up() { local x; for x in "${RECOVERY[@]}"; do sysfs_active "$x" || return 1; done; }
  check "all three devices active within 60 s" wait_for 60 all_up
  for u in "${RECOVERY[@]}"; do
    virsh nodedev-dumpxml "$(devname "$u")" > "/tmp/after-$u.xml" 2>&1
    check "$u keeps uuid, type and attrs" test "$(identity "/tmp/after-$u.xml")" = "$(identity "$E2E_DIR/before/$u.xml")"
  done
  check "metrics: autostart device active, persistent, autostart" device_is "$U_AUTO" 1 1 1
  check "metrics: persistent device active, persistent" device_is "$U_PERS" 1 1 0
  check "metrics: transient device re-created, transient" device_is "$U_TRAN" 1 0 0
  check "excluded device left alone: inactive" bash -c "! test -e /sys/bus/mdev/devices/$U_EXCL"
  check "excluded device still defined" libvirt_defined "$U_EXCL"
  check "no restore attempt for the excluded device" test "$(boot_count "${MSGID[restoreAttempted]}" MDEV_UUID="$U_EXCL")" -eq 0
  for u in "${RECOVERY[@]}"; do
    check "journal: restoreSucceeded for $u" test "$(boot_count "${MSGID[restoreSucceeded]}" MDEV_UUID="$u")" -ge 1
  done
  check "journal: autostart failure repaired for $U_AUTO" \
    bash -c "journalctl -b -o cat MESSAGE_ID=${MSGID[restoreSucceeded]} MDEV_UUID=$U_AUTO | grep -q 'autostart had failed'"
  check "metric: restore start success = 2" test "$(metric_sum mdev_policy_actions_total policy=restore action=start result=success)" = 2
  check "metric: restore create success = 1" test "$(metric_sum mdev_policy_actions_total policy=restore action=create result=success)" = 1
  check "metric: no failed restore" test "$(metric_sum mdev_policy_actions_total result=failure)" = 0
  note "success actions total $(metric_sum mdev_policy_actions_total result=success)"
  scenario_end
}

# Report only: whether a domain with an mtty hostdev starts (vfio type1 with an emulated IOMMU, TCG).
try_domain_start() {
  say "E2E-STEP domain start attempt"
  sysfs_active "$U_PERS" || run virsh nodedev-start "$(devname "$U_PERS")"
  local out rc
  out=$(timeout 120 virsh start e2e-boot 2>&1); rc=$?
  log "virsh start e2e-boot: rc $rc: $out"
  if ((rc == 0)); then
    sleep 3
    info "domain-start: a domain with hostdev mdev $U_PERS started ($(virsh domstate e2e-boot 2>&1))"
    run virsh destroy e2e-boot
  else
    info "domain-start: a domain with hostdev mdev $U_PERS did not start: $(tr -s '\n' ' ' <<<"$out" | cut -c1-200)"
  fi
  run virsh undefine e2e-boot
}

prepare_late_parent() {
  say "E2E-STEP preparing late parent"
  mv /etc/modules-load.d/mtty.conf "$E2E_DIR/mtty.conf.off"
  have_daemon && { wait_for 10 state_lists "${RECOVERY[@]}" || log "state file does not list the restored devices"; }
  have_daemon && cat /var/lib/mdevmon/state.json
  return 0
}
