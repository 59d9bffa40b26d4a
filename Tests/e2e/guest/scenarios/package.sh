# package: the .deb run.sh built on the host (payload /usr/local/lib/mdevmon-e2e/mdevmon.deb), installed
# with apt-get in the guest; an upgrade over itself keeps an edited config, restarts the service and the
# index comes back. doctor: the stock Debian 12 udev rule fails (exit 2), the /usr/sbin/mdevctl symlink
# makes that check pass.

DEB=/usr/local/lib/mdevmon-e2e/mdevmon.deb
have_package() { [ -s "$DEB" ]; }
# apt-get under TCG: unpacking 19 MB, the catalog rebuild and `systemctl start` (which waits for READY=1)
# take over a minute, longer than run's 60 s bound.
apt_get() { log "+ apt-get $*"; DEBIAN_FRONTEND=noninteractive timeout 600 apt-get "$@"; local rc=$?; ((rc == 0)) || log "  (exit $rc)"; return $rc; }

# Phase one, before anything needs the daemon.
scenario_package_install() {
  scenario_begin package-install
  # No network in the guest: every dependency must already be installed (libvirt, systemd).
  check "apt-get install ./mdevmon.deb" apt_get install -y --no-install-recommends "$DEB"
  check "dpkg: mdevmon installed ($(dpkg-query -W -f '${Version}' mdevmon 2>/dev/null))" \
    bash -c "dpkg-query -W -f '\${Status}' mdevmon | grep -q 'install ok installed'"
  check "/usr/bin/mdevmon runs" run /usr/bin/mdevmon --version
  check "unit in /usr/lib/systemd/system" test -f /usr/lib/systemd/system/mdevmon.service
  check "config is a conffile" bash -c "dpkg-query -W -f '\${Conffiles}' mdevmon | grep -q /etc/mdevmon/mdevmon.yaml"
  check "catalog installed and known to journalctl" \
    bash -c "journalctl --list-catalog 2>/dev/null | grep -q ${MSGID[deviceCreated]}"
  check "man page and completions" test -s /usr/share/man/man8/mdevmon.8.gz -a -s /usr/share/bash-completion/completions/mdevmon \
    -a -s /usr/share/zsh/vendor-completions/_mdevmon
  check "postinst enabled mdevmon.service" systemctl is-enabled -q mdevmon.service
  check "postinst started mdevmon (ready within 60 s)" wait_for 60 mdevmon_ready
  scenario_end
}

# Phase four (last boot): reinstall the same package over itself with an edited config.
scenario_package_upgrade() {
  scenario_begin package-upgrade
  local pid devices
  check "mdevmon ready before the upgrade" wait_for 60 mdevmon_ready
  series_sum mdev_devices; devices=$SERIES
  pid=$(mdevmon_pid)
  set_config autostart_grace_period 12s
  echo "# edited by the e2e upgrade scenario" >> /etc/mdevmon/mdevmon.yaml
  check "apt-get install --reinstall ./mdevmon.deb" \
    apt_get install -y --reinstall -o Dpkg::Options::=--force-confdef \
      -o Dpkg::Options::=--force-confold "$DEB"
  check "edited config kept" grep -q '^# edited by the e2e upgrade scenario' /etc/mdevmon/mdevmon.yaml
  check "edited value kept" grep -qE '^[[:space:]]*autostart_grace_period: 12s' /etc/mdevmon/mdevmon.yaml
  check "no .dpkg-new/.dpkg-dist beside the config" bash -c '! ls /etc/mdevmon/*.dpkg-* 2>/dev/null | grep -q .'
  restarted() { local p; p=$(mdevmon_pid); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$pid" ] && mdevmon_ready; }
  check "service restarted (MainPID $pid → $(mdevmon_pid)) and ready within 60 s" wait_for 60 restarted
  same_count() { scrape && series_sum mdev_devices && [ "$SERIES" = "$devices" ]; }
  check "index back: $devices mdevs" wait_for 30 same_count
  check "the daemon runs with the edited config (valid)" bash -c "/usr/bin/mdevmon doctor --json | jq -e '.checks[] | select(.check==\"config\") | .status == \"pass\"' > /dev/null"
  scenario_end
}

# doctor_udev WANT: `mdevmon doctor --json`; the udev_rules check must have status WANT.
doctor_udev() {
  local want=$1 rc=0 status
  /usr/bin/mdevmon doctor --json > "$E2E_DIR/$PHASE-doctor.json" 2> "$E2E_DIR/$PHASE-doctor.err" || rc=$?
  status=$(jq -r '.checks[] | select(.check=="udev_rules") | .status' "$E2E_DIR/$PHASE-doctor.json")
  log "doctor exit $rc, udev_rules $status: $(jq -c '.checks[] | select(.check=="udev_rules")' "$E2E_DIR/$PHASE-doctor.json")"
  DOCTOR_RC=$rc
  [ "$status" = "$want" ]
}

# Phase two: the stock image, whose 60-mdevctl.rules runs /usr/sbin/mdevctl.
scenario_doctor_stock() {
  scenario_begin doctor-stock-rule
  check "no /usr/sbin/mdevctl yet" test ! -e /usr/sbin/mdevctl
  check "doctor: udev_rules fail" doctor_udev fail
  check "doctor exits 2 (got $DOCTOR_RC)" test "$DOCTOR_RC" = 2
  check "the finding names /usr/sbin/mdevctl and the symlink fix" bash -c \
    "jq -e '.checks[] | select(.check==\"udev_rules\") | (.details | join(\" \") | contains(\"/usr/sbin/mdevctl\")) and (.fix | startswith(\"ln -s /usr/bin/mdevctl /usr/sbin/mdevctl\"))' '$E2E_DIR/$PHASE-doctor.json' > /dev/null"
  exported() { scrape && series mdev_host_check check=udev_rules status=fail && [ "$SERIES" = 1 ]; }
  check "the daemon exports mdev_host_check{check=\"udev_rules\",status=\"fail\"} 1" wait_for 30 exported
  scenario_end
}

# Phase four: phase three added the /usr/sbin/mdevctl symlink.
scenario_doctor_symlink() {
  scenario_begin doctor-symlink
  check "/usr/sbin/mdevctl exists" test -x /usr/sbin/mdevctl
  check "doctor: udev_rules pass" doctor_udev pass
  note "doctor exit $DOCTOR_RC: $(jq -r '[.checks[] | select(.status != "pass") | .check + " " + .status] | join(", ")' "$E2E_DIR/$PHASE-doctor.json")"
  scenario_end
}
