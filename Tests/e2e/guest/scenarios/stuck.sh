# stuck-call (boot five): libvirt's mdevctl callout hangs while mdevmon restores a device, and mdevmon says
# so within its bound (--libvirt.stuck-after, 20 s by default; the package's unit leaves it so): /healthz is
# 503 and names the call, mdev_libvirt_call_in_flight_seconds gives its growing age, the journal has a
# warning. The systemd watchdog is left out on purpose: with WatchdogSec=5s (a drop-in for this boot), a
# daemon that stopped its pings during the hang would be killed long before /healthz says so. Once the hang
# ends, the device is restored and the index follows, with no restart.
# The hold (mdevctl-hold.sh, mdevmon-e2e-hold.service) starts before libvirtd and holds only U_STUCK's calls.
# On libvirt 9.0 the held start also blocks node-device listings and that device's fetch (found on the host:
# `virsh nodedev-list` waits), so nothing else runs in this boot.

U_STUCK=e2e00010-0000-4000-8000-000000000001   # persistent, active before the reboot; its start is held
STUCK_AFTER_S=20                                # mdevmon's default --libvirt.stuck-after
STUCK_WATCHDOG=/etc/systemd/system/mdevmon.service.d/e2e-stuck-watchdog.conf

prepare_stuck_call() {
  say "E2E-STEP preparing stuck-call"
  forget "${RACERS[@]}" "$U_STUCK"
  nd_define "$U_STUCK" mtty-1 && nd start "$U_STUCK"
  wait_for 10 state_lists "$U_STUCK" || log "state file does not list $U_STUCK"
  echo "$U_STUCK" > "$E2E_DIR/hold-uuid"
  mkdir -p "${STUCK_WATCHDOG%/*}"
  printf '[Service]\nWatchdogSec=5s\n' > "$STUCK_WATCHDOG"
}

healthz_body() { curl -sS -m 3 http://127.0.0.1:9850/healthz 2>&1; }
healthz_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' http://127.0.0.1:9850/healthz; }
stuck_said() { [ "$(healthz_code)" = 503 ] && healthz_body | grep -q "libvirt call not returning: start node device $(devname "$U_STUCK")"; }
held_since() { [ -s /run/mdevmon-e2e-held.log ] && cut -d' ' -f1 /run/mdevmon-e2e-held.log | head -1; }
in_flight() { scrape && plain_series mdev_libvirt_call_in_flight_seconds && echo "$SERIES"; }
# in_flight_over SECONDS: the gauge is above SECONDS.
in_flight_over() { local v; v=$(in_flight) && awk -v a="$v" -v b="$1" 'BEGIN { exit !(a > b) }'; }
journal_says() { journalctl -b -u mdevmon.service -p "$1" -o cat MESSAGE_ID="${MSGID[$2]}" | grep -qF "$3"; }
stuck_restored() { (( $(boot_count "${MSGID[restoreSucceeded]}" MDEV_UUID="$U_STUCK") >= 1 )); }
in_flight_zero() { [ "$(in_flight)" = 0 ]; }
# Whatever the scenario got to: the hold lifted, mdevctl and the unit as the package has them, the device gone.
stuck_cleanup() {
  rm -f /run/mdevmon-e2e-hold "$E2E_DIR/hold-uuid" "$STUCK_WATCHDOG"
  systemctl daemon-reload
  umount /usr/bin/mdevctl 2>/dev/null
  forget "$U_STUCK"
}

scenario_stuck_call() {
  scenario_begin stuck-call
  local t0 t said restarts age call="start node device $(devname "$U_STUCK")"
  if ! findmnt /usr/bin/mdevctl > /dev/null; then
    fail "mdevctl is not held ($(systemctl is-active mdevmon-e2e-hold.service))"; stuck_cleanup; scenario_end; return
  fi
  check "watchdog shortened for this boot ($(systemctl show -P WatchdogUSec mdevmon.service))" \
    test "$(systemctl show -P WatchdogUSec mdevmon.service)" = 5s
  check "mdevmon's restore reached mdevctl and is held" wait_for 60 held_since || { stuck_cleanup; scenario_end; return; }
  t0=$(held_since)
  log "held: $(cat /run/mdevmon-e2e-held.log)"
  restarts=$(systemctl show -P NRestarts mdevmon.service)
  # Within the bound and the watch's period (a quarter of it), with the 3 s grace a slow machine needs.
  if check "/healthz 503 naming the held start within $((STUCK_AFTER_S + 5 + 3)) s" wait_for $((STUCK_AFTER_S + 5 + 3)) stuck_said; then
    now t; said=$((t - t0))
    info "stuck-call: /healthz said so $said ms after libvirt's mdevctl callout began to hang (bound ${STUCK_AFTER_S} s, watch every $((STUCK_AFTER_S / 4)) s)"
  fi
  log "healthz: $(healthz_body)"
  age=$(in_flight)
  check "mdev_libvirt_call_in_flight_seconds above $((STUCK_AFTER_S - 1)) (got ${age:-none})" in_flight_over $((STUCK_AFTER_S - 1))
  if [ -n "$age" ]; then check "mdev_libvirt_call_in_flight_seconds grows past $age" wait_for 5 in_flight_over "$age"
  else fail "mdev_libvirt_call_in_flight_seconds not exported"; fi
  check "journal: a warning naming the call (libvirtCallStuck)" wait_for 10 journal_says warning libvirtCallStuck "has not answered '$call'"
  check "mdevmon still runs, not restarted by its 5 s watchdog (NRestarts $restarts)" \
    test "$(systemctl is-active mdevmon.service)/$(systemctl show -P NRestarts mdevmon.service)" = "active/$restarts"
  # What else the held start blocks on this libvirt, for the record.
  if timeout 5 virsh nodedev-list --cap mdev_types > /dev/null 2>&1; then
    info "stuck-call: libvirt $(libvirt_version) answers node-device listings while the start is held"
  else
    info "stuck-call: libvirt $(libvirt_version) does not answer node-device listings while the start is held (5 s)"
  fi

  say "E2E-STEP stuck-call: releasing mdevctl"
  rm -f /run/mdevmon-e2e-hold
  check "$U_STUCK active (sysfs) within 30 s of the release" wait_for 30 sysfs_active "$U_STUCK"
  check "journal: restoreSucceeded for $U_STUCK" wait_for 30 stuck_restored
  check "metrics: $U_STUCK active, persistent (the index caught up)" wait_for 30 device_is "$U_STUCK" 1 1 0
  check "/healthz ok again" wait_for 30 healthz_ok
  check "mdev_libvirt_call_in_flight_seconds back to 0" wait_for 10 in_flight_zero
  check "journal: libvirt's answer noticed (libvirtCallReturned)" wait_for 10 journal_says notice libvirtCallReturned "answered '$call'"
  check "no failed restore" test "$(metric_sum mdev_policy_actions_total result=failure)" = 0
  check "mdevmon not restarted (NRestarts $restarts)" test "$(systemctl show -P NRestarts mdevmon.service)" = "$restarts"
  log "mdevmon journal this boot:"; journalctl -b -u mdevmon.service -o short-precise | tail -n 40
  stuck_cleanup
  scenario_end
}
