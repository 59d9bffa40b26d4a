# Remote (issue 25): a second mdevmon on the host watches this guest's libvirtd over qemu+tcp (run.sh starts
# it, one per flavour, for all five boots; it owns only U_RREST, which this guest's mdevmon excludes).
# The lifecycle, capacity, hot-plug and readiness checks are made against both daemons on the same changes
# (`remote_also` in those scenarios). Here: what only a reboot shows.
#   one:  remote-drop: libvirtd's replies are dropped (tc), so the connection dies without a close; the
#         remote daemon must notice through keepalive. U_RREST is left active for the reboot.
#   two:  remote-reconnect: the remote daemon is back after the reboot (time since libvirtd started);
#         remote-restore: it saw the reboot and started U_RREST through the remote connection.

U_RREST=e2e0000a-0000-4000-8000-000000000001   # persistent, active before the reboot, owned by the remote daemon

# The guest's NIC (QEMU's user network): static, so nothing waits for DHCP. 10.0.2.2 is the host.
remote_network() {
  have_remote || return 0
  local nic
  nic=$(ls /sys/class/net | grep -v '^lo$' | head -1)
  [ -n "$nic" ] || { log "remote: no network interface"; return 1; }
  run ip link set "$nic" up
  ip -4 addr show dev "$nic" | grep -q 10.0.2.15 || run ip addr add 10.0.2.15/24 dev "$nic"
  log "remote: $nic up; libvirtd-tcp.socket $(systemctl is-active libvirtd-tcp.socket); remote metrics at $REMOTE"
}
# sample NAME: SERIES = the value of the unlabelled sample NAME in SCRAPE.
sample() {
  local line
  SERIES=
  while IFS= read -r line; do [[ $line == "$1 "* ]] && { SERIES=${line##* }; return 0; }; done <<<"$SCRAPE"
  return 1
}
sample_of() { scrape && sample "$1" && echo "$SERIES"; }   # sample_of NAME: prints its value
remote_up_is() { scrape && sample mdev_libvirt_up && [ "$SERIES" = "$1" ]; }
remote_device_active() { scrape && device_state "$1" && [ "${STATE%%/*}" = 1 ]; }

prepare_remote_restore() {
  have_remote || return 0
  say "E2E-STEP preparing the remote restore"
  forget "$U_RREST"
  nd_define "$U_RREST" mtty-1 && nd start "$U_RREST"
  # The remote daemon writes its state 200 ms after it saw the device active.
  wait_for 20 remote remote_device_active "$U_RREST" || log "remote: the remote daemon does not show $U_RREST active"
}

scenario_remote_drop() {
  scenario_begin remote-drop
  if ! have_remote; then skip remote-drop "no remote mdevmon (run.sh passes e2e.remote=)"; return 0; fi
  local nic reconnects t0 t
  nic=$(ls /sys/class/net | grep -v '^lo$' | head -1)
  check "the remote daemon is connected" wait_for 60 remote remote_up_is 1
  reconnects=$(remote sample_of mdev_libvirt_reconnects_total || echo 0)
  echo "$reconnects" > "$E2E_DIR/remote-reconnects-before"
  # Every packet libvirtd sends to the host is dropped from here on: no FIN, no RST, the remote client's
  # keepalive (5 s, 3 missed) must find out. The metrics port stays reachable.
  check "tc drops libvirtd's replies" bash -c "tc qdisc add dev $nic root handle 1: prio &&
    tc filter add dev $nic parent 1: protocol ip prio 1 u32 match ip sport 16509 0xffff action drop"
  now t0
  if check "the remote daemon notices within 45 s" wait_for 45 remote remote_up_is 0; then
    now t
    note "connection loss seen $((t - t0)) ms after the drop (keepalive: 5 s interval, 3 missed)"
    info "remote-drop $FLAVOUR: the host's mdevmon saw the dropped connection after $((t - t0)) ms"
  fi
  scenario_end
}

scenario_remote_reconnect() {
  scenario_begin remote-reconnect
  if ! have_remote; then skip remote-reconnect "no remote mdevmon (run.sh passes e2e.remote=)"; return 0; fi
  local before after since_boot since_libvirtd started
  before=$(cat "$E2E_DIR/remote-reconnects-before" 2>/dev/null || echo 0)
  reconnected() { remote_up_is 1 && sample mdev_libvirt_reconnects_total && ((SERIES > before)); }
  if check "the remote daemon reconnected within 120 s" wait_for 120 remote reconnected; then
    since_boot=$(cut -d' ' -f1 /proc/uptime)
    started=$(systemctl show -P ActiveEnterTimestampMonotonic libvirtd.service)
    since_libvirtd=$(awk -v up="$since_boot" -v st="${started:-0}" 'BEGIN { printf "%.1f", up - st / 1e6 }')
    after=$(remote sample_of mdev_libvirt_reconnects_total)
    note "reconnected ${since_boot} s after boot, ${since_libvirtd} s after libvirtd started (reconnects $before → $after)"
    info "remote-reconnect $FLAVOUR: ${since_libvirtd} s after libvirtd started, ${since_boot} s after boot"
  fi
  scenario_end
}

scenario_remote_restore() {
  scenario_begin remote-restore
  if ! have_remote; then skip remote-restore "no remote mdevmon (run.sh passes e2e.remote=)"; return 0; fi
  local names_host
  check "$U_RREST restored within 120 s" wait_for 120 sysfs_active "$U_RREST"
  check "the remote daemon shows $U_RREST active" wait_for 20 remote remote_device_active "$U_RREST"
  restored() { scrape && series mdev_policy_actions_total policy=restore action=start result=success && ((SERIES >= 1)); }
  check "the remote daemon counted its start" wait_for 20 remote restored
  check "this guest's mdevmon did not try it (excluded)" test "$(boot_count "${MSGID[restoreAttempted]}" MDEV_UUID="$U_RREST")" -eq 0
  names_host() { scrape && series mdev_libvirt_host_info hostname="$(hostname)" && [ "$SERIES" = 1 ]; }
  check "the remote daemon names the watched host $(hostname)" remote names_host
  forget "$U_RREST"
  scenario_end
}
