# systemd: STATUS= in `systemctl status`; a stopped daemon is restarted by the watchdog; afterwards the
# index it serves equals `mdevmon list --json`.

scenario_systemd() {
  scenario_begin systemd
  local status
  status=$(systemctl show -P StatusText mdevmon.service)
  check "STATUS= set (\"$status\")" bash -c "[[ '$status' =~ mdevs,\ [0-9]+\ active ]]"
  check "systemctl status shows it" bash -c "systemctl status --no-pager mdevmon.service | grep -qF 'Status: \"$status\"'"
  # Under the unit's syscall filter the daemon lifts systemd's 1024 open-files soft limit to the hard one.
  local limits
  limits=$(awk '/^Max open files/ {print $4 "/" $5}' "/proc/$(mdevmon_pid)/limits")
  check "open-files soft limit lifted to the hard one ($limits)" test "${limits%/*}" = "${limits#*/}"

  # A short watchdog for the test; TimeoutAbortSec bounds the SIGABRT (core dump) stage.
  mkdir -p /etc/systemd/system/mdevmon.service.d
  printf '[Service]\nWatchdogSec=5s\nTimeoutAbortSec=10s\n' > /etc/systemd/system/mdevmon.service.d/e2e-watchdog.conf
  run systemctl daemon-reload
  run systemctl restart mdevmon.service
  check "mdevmon ready after restart with WatchdogSec=5s" wait_for 60 mdevmon_ready
  local pid restarts t0 t
  pid=$(mdevmon_pid) restarts=$(systemctl show -P NRestarts mdevmon.service)
  mark_journal
  now t0
  check "kill -STOP $pid" kill -STOP "$pid"
  restarted() { local p; p=$(mdevmon_pid); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$pid" ] && mdevmon_ready; }
  if check "watchdog restarted mdevmon within 60 s" wait_for 60 restarted; then
    now t; note "restarted $(((t - t0) / 1000)) s after SIGSTOP"
  fi
  check "NRestarts went up" test "$(systemctl show -P NRestarts mdevmon.service)" -gt "$restarts"
  check "systemd logged the watchdog timeout" bash -c "journalctl -q --after-cursor='$JCURSOR' -o cat | grep -q 'mdevmon.service: Watchdog timeout'"

  same_index() {
    curl -fsS --max-time 3 "$DEVICES_URL" > /tmp/index.json && timeout 20 mdevmon list --json > /tmp/list.json &&
      cmp -s /tmp/index.json /tmp/list.json
  }
  if ! check "/api/v1/devices equals mdevmon list --json" wait_for 15 same_index; then
    diff /tmp/index.json /tmp/list.json | head -20
  fi
  rm -f /etc/systemd/system/mdevmon.service.d/e2e-watchdog.conf
  run systemctl daemon-reload
  scenario_end
}
