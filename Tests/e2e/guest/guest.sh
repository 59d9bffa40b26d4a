#!/usr/bin/env bash
# Runs one boot phase of the end-to-end scenarios inside the guest (started by mdevmon-e2e.service after
# mdevmon.service), then powers the guest off. The phase comes from `e2e.phase=` on the kernel command line;
# each phase checks what the previous boot prepared and prepares the next boot.
#   one:   installs the mdevmon .deb with apt-get (mdevmon at debug level this boot: e2e-debug.conf);
#          baseline (no daemon needed), lifecycle, sysfs, references, nodedev-update (definition drift; the
#          update itself needs libvirt ≥ 10.1), pci-capacity, pci-sick; prepares the reboot; remote-drop (the
#          host's mdevmon, over qemu+tcp, notices a dropped connection)
#   two:   stock mdevctl autostart bug (no daemon needed), reboot recovery, remote reconnect and restore,
#          doctor on the stock udev rule,
#          domain start, hotplug and readiness (nested domains); removes mtty from boot
#   three: late parent, pci-late-types; installs the /usr/sbin/mdevctl symlink
#   four:  symlink autostart (no daemon needed), pci-mdevctl-autostart, doctor with the symlink, racing
#          mdevctl, systemd watchdog, package upgrade over itself; prepares stuck-call
#   five:  stuck-call (libvirt's mdevctl callout held during a restore), alone
#   debug: sources /var/lib/mdevmon-e2e/debug.sh (for poking at the guest by hand)
# Results: `E2E-RESULT <scenario> PASS|FAIL|SKIP <detail>` and one `E2E-LATENCY <scenario> total=…
# libvirt=… mdevmon=… target=… <what>` per measured latency (lib.sh's settle) on the console and in
# /var/lib/mdevmon-e2e/results-<phase>.txt; the detailed log, journals and listings beside it.
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
PHASE=$(sed -n 's/.*\be2e\.phase=\([a-z]*\).*/\1/p' /proc/cmdline)
[ -n "$PHASE" ] || exit 0
source "$here/lib.sh"
for f in "$here"/scenarios/*.sh; do source "$f"; done

mkdir -p "$E2E_DIR"
exec 3>&1 >>"$E2E_DIR/$PHASE.log" 2>&1
: > "$E2E_DIR/results-$PHASE.txt"

finish() {
  say "E2E-STEP collecting logs"
  journalctl -b --no-pager -o short-precise > "$E2E_DIR/$PHASE-journal.txt" 2>&1
  journalctl -b --no-pager -o json -u mdevmon.service > "$E2E_DIR/$PHASE-mdevmon.json" 2>&1
  have_daemon && timeout 20 mdevmon list --parents > "$E2E_DIR/$PHASE-list.txt" 2>&1
  timeout 5 curl -fsS "$METRICS_URL" > "$E2E_DIR/$PHASE-metrics.txt" 2>&1
  say "E2E-PHASE-END $PHASE"
  sync
  systemctl poweroff --no-block
}
trap finish EXIT

say "E2E-PHASE-BEGIN $PHASE ($FLAVOUR, kernel $(uname -r), mdevmon $(have_daemon && echo installed || echo absent))"
log "uptime $(cut -d' ' -f1 /proc/uptime) s; mdevmon: $(systemctl is-active mdevmon.service)"
remote_network
# The debug drop-in is boot one's (the payload has it in every run image): gone for the next start here.
[ "$PHASE" = one ] || { [ ! -e /etc/systemd/system/mdevmon.service.d/e2e-debug.conf ] ||
  { rm -f /etc/systemd/system/mdevmon.service.d/e2e-debug.conf && systemctl daemon-reload; }; }
if have_daemon && [ "$PHASE" != three ]; then
  wait_for 60 mdevmon_ready || log "mdevmon is not ready after 60 s: $(systemctl is-active mdevmon.service)"
fi

case $PHASE in
  one)
    info "stack: Debian $(cat /etc/debian_version) ($FLAVOUR), kernel $(uname -r), libvirt $(libvirt_version), $(mdevctl version 2>/dev/null || mdevctl --version 2>&1 | head -1), libvirt daemons running: $(systemctl list-units --state=active --no-legend --plain 'libvirtd.service' 'virt*d.service' 2>/dev/null | awk '{print $1}' | xargs)"
    if have_package; then scenario_package_install; else skip package-install "no package in the image"; fi
    scenario_baseline
    if have_daemon; then
      scenario_lifecycle
      scenario_sysfs
      scenario_references
      scenario_nodedev_update
      scenario_pci_capacity
      scenario_pci_sick
      work_timings
    else
      for s in lifecycle sysfs references nodedev-update remote-lifecycle remote-capacity pci-capacity pci-sick; do skip $s "mdevmon not installed"; done
    fi
    # Debug logging (each event's timings) was for this boot only.
    rm -f /etc/systemd/system/mdevmon.service.d/e2e-debug.conf && systemctl daemon-reload
    prepare_recovery
    prepare_remote_restore
    # Last: from here libvirtd's replies to the remote daemon are dropped.
    scenario_remote_drop
    ;;
  two)
    scenario_stock_autostart
    if have_daemon; then scenario_recovery; else skip recovery "mdevmon not installed"; fi
    scenario_remote_reconnect
    scenario_remote_restore
    if have_daemon; then scenario_doctor_stock; else skip doctor-stock-rule "mdevmon not installed"; fi
    try_domain_start
    if have_daemon; then
      scenario_hotplug
      scenario_readiness
      work_timings
    else
      for s in hotplug readiness remote-hotplug remote-readiness; do skip $s "mdevmon not installed"; done
    fi
    prepare_late_parent
    prepare_pci_reboot
    ;;
  three)
    if have_daemon; then scenario_late_parent; else skip late-parent "mdevmon not installed"; fi
    if have_daemon; then scenario_pci_late_types; else skip pci-late-types "mdevmon not installed"; fi
    prepare_racing
    ;;
  four)
    scenario_symlink_autostart
    scenario_pci_mdevctl_autostart
    if have_daemon; then
      scenario_doctor_symlink
      scenario_racing
      scenario_systemd
      scenario_package_upgrade
    else
      for s in doctor-symlink racing systemd package-upgrade; do skip $s "mdevmon not installed"; done
    fi
    have_daemon && prepare_stuck_call
    ;;
  five)
    if have_daemon; then scenario_stuck_call; else skip stuck-call "mdevmon not installed"; fi
    ;;
  # For debugging by hand: boot with e2e.phase=debug after putting a script at $E2E_DIR/debug.sh.
  debug) [ -r "$E2E_DIR/debug.sh" ] && source "$E2E_DIR/debug.sh" ;;
  *) say "E2E-RESULT phase-$PHASE FAIL unknown phase" ;;
esac
