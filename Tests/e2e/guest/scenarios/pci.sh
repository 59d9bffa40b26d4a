# PCI parents (issue 23): mdev_edu (host/mdev_edu.c) binds the guest's two edu devices and registers mdev
# types on them, as a vGPU's vendor driver does on its GPU: libvirt lists pci_0000_00_10_0 and
# pci_0000_00_11_0 as parents once it loads, never before. One pool of 24 ports serves both (SR-IOV VFs
# share one), `fail_available` makes every type's available_instances fail with EIO, unbinding one takes
# its types away.
# libvirt's events (libvirt 9.0 and 11.3 alike): a UPDATE for each PCI parent ~0.6-1.2 s after the types
# register or unregister (modprobe, unbind, rebind); CREATED/DELETED for an mdev, and no event at all for
# either parent when an mdev takes or frees an instance of the shared pool, nor while a read fails.
#   pci-capacity (boot one): types appearing and going change the mdev_parent_* series and the blocker of a
#     domain referencing an inactive mdev (type_not_offered, inactive, no_capacity) within the bound after
#     libvirt's UPDATE; a create on one parent moves the other's available instances.
#   pci-sick (boot one): with the failing read on, libvirt fails to give the parents: mdevmon marks them
#     (mdev_libvirt_fetch_failed) and keeps their last known state, and a libvirtd restart still ends in a
#     full sync with every mdev exported; the mark clears once the read works.
#   pci-late-types (boot three): after a reboot, mdev_edu loaded late; the restores waited without failing
#     and start the devices once libvirt lists the types.
#   pci-mdevctl-autostart (boot four): the same with mdevctl's own udev autostart (the symlink fix), for
#     the figure beside mdevmon's.

EDU1=pci_0000_00_10_0 EDU2=pci_0000_00_11_0
EDU1_ADDR=0000:00:10.0 EDU2_ADDR=0000:00:11.0
U_PCI_DEF=e2e0000e-0000-4000-8000-000000000001   # mdev_edu-2 on EDU2, defined and inactive, a domain's
U_PCI_A=e2e0000e-0000-4000-8000-000000000002     # transient mdev_edu-1 on EDU1
U_PCI_B=e2e0000e-0000-4000-8000-000000000003     # transient mdev_edu-1 on EDU1, made while reads fail
U_PCI_WAS=e2e0000e-0000-4000-8000-00000000000a   # persistent on EDU1, active before the reboot to boot three
U_PCI_AUTO=e2e0000e-0000-4000-8000-00000000000b  # persistent on EDU1, autostart on, inactive before it
PCI_DOM=e2e-pci

edu_types() { echo "/sys/bus/pci/devices/$1/mdev_supported_types"; }   # ADDR
edu_name() { echo "mdev_${1//-/_}_${2//[:.]/_}"; }                      # UUID ADDR: libvirt's name of the mdev
edu_sysfs_available() { local n; read -r n < "$(edu_types "$1")/$2/available_instances" && echo "$n"; }   # ADDR TYPE
edu_xml() { mdev_xml "$1" "$2" "$3"; }                                 # UUID TYPE PARENT
edu_loaded() { grep -q '^mdev_edu ' /proc/modules; }
edu_listed() { virsh nodedev-list --cap mdev_types 2>/dev/null | grep -qx "$1"; }
# Fork-free, for `within`: the parent's TYPE exported with the kernel's count now (ADDR given), or absent.
edu_exported() { # PARENT TYPE ADDR|absent
  scrape || return 1
  series mdev_parent_available_instances parent="$1" mdev_type="$2"
  if [ "$3" = absent ]; then [ -z "$SERIES" ]; return; fi
  local want; read -r want < "$(edu_types "$3")/$2/available_instances" || return 1
  [ "$SERIES" = "$want" ]
}
fetch_failed_is() { # NAME 1|absent
  scrape || return 1
  series mdev_libvirt_fetch_failed kind=node_device name="$1"
  if [ "$2" = absent ]; then [ -z "$SERIES" ]; else [ "$SERIES" = "$2" ]; fi
}
waiting_is() { # UUID FOR|absent
  scrape || return 1
  series mdev_restore_waiting uuid="$1"
  if [ "$2" = absent ]; then [ -z "$SERIES" ]; return; fi
  series mdev_restore_waiting uuid="$1" for="$2"
  [ "$SERIES" = 1 ]
}
# node_event_ms NAME: ms from the step's end to libvirt's first event for node device NAME since the step
# began (update or lifecycle), or nothing.
node_event_ms() {
  local line ts ms n=0
  while IFS= read -r line; do
    ((n++ < ${EV_SEEN:-0})) && continue
    [[ $line == *" for node device $1" || $line == *" for node device $1:"* ]] || continue
    ts=${line%%: event *}
    ms=$(date -d "$ts" +%s%3N 2>/dev/null) || continue
    ((ms >= STEP_START)) && { echo "$((ms - CHECK_END))"; return; }
  done < "$E2E_DIR/$PHASE-nodedev-events.txt"
}
# settle_node NAME: settle with libvirt's first event for NAME since the step began, waited for up to 5 s
# (20 s when a latency is over the target, as settle_libvirt): mdevctl's udev rule acts on the kernel's
# uevent, before libvirt's event, and its share is then negative.
settle_node() {
  local CHECK_END=$PEND_END d ms limit=5000 t
  ((${#PEND_MS[@]})) || return 0
  for ms in "${PEND_MS[@]}"; do ((ms > TARGET_MS)) && limit=20000; done
  while d=$(node_event_ms "$1"); [ -z "$d" ]; do
    now t; ((t - CHECK_END <= limit)) || break
    sleep 0.2
  done
  settle "$d"
}
edu_create() { echo "$1" > "$(edu_types "$2")/$3/create"; }             # UUID ADDR TYPE (sysfs)
edu_nd() { mdev_xml "$2" "$3" "$4" > "/tmp/$2.xml" && run virsh "nodedev-$1" "/tmp/$2.xml"; }   # define|create UUID TYPE PARENT
# edu_forget UUID...: removes EDU1's mdevs whatever their state (cleanup).
edu_forget() {
  local u n
  for u; do
    n=$(edu_name "$u" $EDU1_ADDR)
    virsh nodedev-list --cap mdev | grep -qx "$n" && run virsh nodedev-destroy "$n"
    [ -e "/sys/bus/mdev/devices/$u" ] && echo 1 > "/sys/bus/mdev/devices/$u/remove"
    local n2; n2=$(edu_name "$u" $EDU2_ADDR)
    virsh nodedev-list --all --cap mdev | grep -qxE "$n|$n2" && { run virsh nodedev-undefine "$n"; run virsh nodedev-undefine "$n2"; }
  done
  return 0
}
# node_event_at NAME: when (ms since the epoch) libvirt's first event for node device NAME since the step
# began came, or nothing.
node_event_at() { local d; d=$(node_event_ms "$1") && [ -n "$d" ] && echo $((CHECK_END + d)); }
# all_exported: every mdev libvirt lists (active or defined) has its mdev_device_info series.
all_exported() {
  local n c
  n=$(virsh nodedev-list --all --cap mdev | grep -c .)
  scrape || return 1
  c=$(grep -c '^mdev_device_info{' <<<"$SCRAPE")
  log "libvirt lists $n mdevs, mdevmon exports $c"
  [ "$n" = "$c" ]
}
edu_remove() { [ -e "/sys/bus/mdev/devices/$1" ] && echo 1 > "/sys/bus/mdev/devices/$1/remove"; return 0; }

scenario_pci_capacity() {
  scenario_begin pci-capacity
  local fill=() n u x
  dom_forget $PCI_DOM; edu_forget $U_PCI_DEF $U_PCI_A
  check "mdev_edu not loaded: no PCI parent listed" bash -c "! grep -q '^mdev_edu ' /proc/modules && ! virsh nodedev-list --cap mdev_types | grep -q '^pci_'"
  events_start
  check "nodedev-define $U_PCI_DEF (mdev_edu-2 on $EDU2, which offers no types yet)" edu_nd define $U_PCI_DEF mdev_edu-2 $EDU2
  dom_xml $PCI_DOM $U_PCI_DEF > /tmp/$PCI_DOM.xml
  check "virsh define $PCI_DOM (references $U_PCI_DEF)" run timeout 180 virsh define /tmp/$PCI_DOM.xml
  within "before the driver: $PCI_DOM blocked by $U_PCI_DEF, type_not_offered" problem_is $PCI_DOM $U_PCI_DEF type_not_offered

  # --- the vendor driver registers its types: one UPDATE per PCI parent ---
  before_step; check "modprobe mdev_edu" run modprobe mdev_edu
  within "types registered: $EDU1 mdev_edu-1 exported" edu_exported $EDU1 mdev_edu-1 $EDU1_ADDR
  settle_node $EDU1
  within "types registered: $EDU2 mdev_edu-2 exported" edu_exported $EDU2 mdev_edu-2 $EDU2_ADDR
  within "types registered: $PCI_DOM blocked by $U_PCI_DEF, inactive" problem_is $PCI_DOM $U_PCI_DEF inactive
  settle_node $EDU2

  # --- a create on one parent takes from the pool both share: libvirt says nothing of either parent ---
  before_step; check "nodedev-create $U_PCI_A (mdev_edu-1 on $EDU1)" edu_nd create $U_PCI_A mdev_edu-1 $EDU1
  within "create on $EDU1: $EDU1 available follows" edu_exported $EDU1 mdev_edu-1 $EDU1_ADDR
  within "create on $EDU1: $EDU2 (same pool) available follows" edu_exported $EDU2 mdev_edu-1 $EDU2_ADDR
  settle_node "$(edu_name $U_PCI_A $EDU1_ADDR)"

  # --- the pool used up from EDU1: EDU2's mdev_edu-2 has no instance left: no_capacity ---
  n=0
  while (($(edu_sysfs_available $EDU2_ADDR mdev_edu-2) > 1)) && ((n++ < 24)); do
    u=$(printf 'e2e0000f-0000-4000-8000-%012d' $n)
    edu_create $u $EDU1_ADDR mdev_edu-2 && fill+=($u) || { fail "creating pool instance #$n"; break; }
  done
  libvirt_has_fill() { local l f; l=$(virsh nodedev-list --cap mdev); for f in "${fill[@]}"; do grep -qx "$(edu_name $f $EDU1_ADDR)" <<<"$l" || return 1; done; }
  check "libvirt lists the ${#fill[@]} pool instances" wait_for 60 libvirt_has_fill
  check "mdevmon caught up with them" wait_for 20 edu_exported $EDU2 mdev_edu-2 $EDU2_ADDR
  u=e2e0000f-0000-4000-8000-999999999999
  before_step; check "the last instance of the pool (sysfs, on $EDU1)" edu_create $u $EDU1_ADDR mdev_edu-2
  fill+=($u)
  within "pool used up: $EDU2 mdev_edu-2 available 0" edu_exported $EDU2 mdev_edu-2 $EDU2_ADDR
  within "pool used up: $PCI_DOM blocked by $U_PCI_DEF, no_capacity" problem_is $PCI_DOM $U_PCI_DEF no_capacity
  settle_node "$(edu_name $u $EDU1_ADDR)"
  check "kernel: $EDU2 mdev_edu-2 available_instances 0" test "$(edu_sysfs_available $EDU2_ADDR mdev_edu-2)" -eq 0
  before_step; check "free one instance (sysfs remove on $EDU1)" edu_remove $u
  within "one free: $PCI_DOM blocked by $U_PCI_DEF, inactive again" problem_is $PCI_DOM $U_PCI_DEF inactive
  within "one free: $EDU2 mdev_edu-2 available follows" edu_exported $EDU2 mdev_edu-2 $EDU2_ADDR
  settle_node "$(edu_name $u $EDU1_ADDR)"
  for x in "${fill[@]}"; do edu_remove $x; done

  # --- the driver unbinds from EDU2: its types go, libvirt sends an UPDATE ---
  check "mdevmon caught up with the freed pool" wait_for 20 edu_exported $EDU2 mdev_edu-2 $EDU2_ADDR
  before_step; check "unbind $EDU2_ADDR from mdev_edu" bash -c "echo $EDU2_ADDR > /sys/bus/pci/drivers/mdev_edu/unbind"
  within "unbind: $EDU2 mdev_edu-2 no longer exported" edu_exported $EDU2 mdev_edu-2 absent
  within "unbind: $PCI_DOM blocked by $U_PCI_DEF, type_not_offered" problem_is $PCI_DOM $U_PCI_DEF type_not_offered
  settle_node $EDU2
  before_step; check "bind $EDU2_ADDR again" bash -c "echo $EDU2_ADDR > /sys/bus/pci/drivers/mdev_edu/bind"
  within "rebind: $EDU2 mdev_edu-2 exported again" edu_exported $EDU2 mdev_edu-2 $EDU2_ADDR
  within "rebind: $PCI_DOM blocked by $U_PCI_DEF, inactive" problem_is $PCI_DOM $U_PCI_DEF inactive
  settle_node $EDU2
  check "list --domains --json: $PCI_DOM blocked by $U_PCI_DEF inactive" \
    bash -c "mdevmon list --domains --json | jq -e '.domains[] | select(.name == \"$PCI_DOM\") | .blockers[] | select(.uuid == \"$U_PCI_DEF\" and .reason == \"inactive\")' > /dev/null"
  events_stop
  dom_forget $PCI_DOM; edu_forget $U_PCI_DEF
  scenario_end
}

scenario_pci_sick() {
  scenario_begin pci-sick
  local before
  edu_loaded || run modprobe mdev_edu
  check "both PCI parents listed" wait_for 30 bash -c "virsh nodedev-list --cap mdev_types | grep -qx $EDU1 && virsh nodedev-list --cap mdev_types | grep -qx $EDU2"
  check "mdevmon exports $EDU1" wait_for 20 edu_exported $EDU1 mdev_edu-1 $EDU1_ADDR
  check "mdevmon exports $EDU2" wait_for 20 edu_exported $EDU2 mdev_edu-1 $EDU2_ADDR
  events_start
  echo 1 > /sys/module/mdev_edu/parameters/fail_available
  check "kernel: available_instances fails with EIO" bash -c "cat $(edu_types $EDU1_ADDR)/mdev_edu-1/available_instances 2>&1 | grep -q 'Input/output error'"
  # No uevent and no libvirt event while it fails (libvirt's nodedev-create fails on the parent too): an
  # mdev made through sysfs brings its CREATED, and mdevmon's re-read of both parents fails.
  before_step; check "create $U_PCI_B on $EDU1 (sysfs) while reads fail" edu_create $U_PCI_B $EDU1_ADDR mdev_edu-1
  within "sick: $U_PCI_B exported active" device_is $U_PCI_B 1 0 0
  within "sick: $EDU1 marked (mdev_libvirt_fetch_failed)" fetch_failed_is $EDU1 1
  within "sick: $EDU2 (same driver) marked" fetch_failed_is $EDU2 1
  settle_node "$(edu_name $U_PCI_B $EDU1_ADDR)"
  check "sick: $EDU1 keeps its last known types" edu_exported_any $EDU1
  check "journal names $EDU1 and libvirt's error once" \
    test "$(journalctl -b -u mdevmon.service -o cat | grep -c "cannot read node device $EDU1: .*Input/output error")" -eq 1
  check "/healthz ok while a parent is sick" healthz_ok

  # The read works again: libvirt says nothing; the next change on the parent re-reads it and the mark clears.
  echo 0 > /sys/module/mdev_edu/parameters/fail_available
  before_step; check "remove $U_PCI_B (sysfs), reads working again" edu_remove $U_PCI_B
  within "healed: $EDU1 mark cleared" fetch_failed_is $EDU1 absent
  within "healed: $EDU2 mark cleared" fetch_failed_is $EDU2 absent
  within "healed: $EDU1 mdev_edu-1 exported with the kernel's count" edu_exported $EDU1 mdev_edu-1 $EDU1_ADDR
  settle_node "$(edu_name $U_PCI_B $EDU1_ADDR)"

  # A libvirtd restart while the reads fail: libvirt 9.0 and 11.3 then list no PCI parent (its mdevs under
  # the placeholder parent), yet mdevmon's full sync completes and exports every mdev libvirt lists.
  echo 1 > /sys/module/mdev_edu/parameters/fail_available
  check "create $U_PCI_B on $EDU1 again (sysfs)" edu_create $U_PCI_B $EDU1_ADDR mdev_edu-1
  check "mdevmon exports it" wait_for 20 device_is $U_PCI_B 1 0 0
  scrape; plain_series mdev_index_last_sync_timestamp_seconds; before=${SERIES%.*}
  check "systemctl restart libvirtd (reads failing)" run systemctl restart libvirtd
  synced_again() { scrape && plain_series mdev_index_last_sync_timestamp_seconds && ((${SERIES%.*} > before)) && plain_series mdev_libvirt_up && [ "$SERIES" = 1 ]; }
  check "full sync after the restart" wait_for 60 synced_again
  check "after the restart: $U_PCI_B still exported active" device_is $U_PCI_B 1 0 0
  check "after the restart: every mdev libvirt lists is exported" wait_for 20 all_exported
  check "/healthz ok after the restart" healthz_ok
  check "no failed full sync" test "$(journalctl -b -u mdevmon.service -o cat | grep -c 'full sync failed' || true)" -eq 0
  # Reads work again; a uevent on each PCI device makes libvirt read them: the parents come back.
  echo 0 > /sys/module/mdev_edu/parameters/fail_available
  before_step; check "change uevents for both edu devices" bash -c "echo change > /sys/bus/pci/devices/$EDU1_ADDR/uevent && echo change > /sys/bus/pci/devices/$EDU2_ADDR/uevent"
  within "back: $EDU1 mdev_edu-1 exported with the kernel's count" edu_exported $EDU1 mdev_edu-1 $EDU1_ADDR
  within "back: $EDU2 mdev_edu-1 exported with the kernel's count" edu_exported $EDU2 mdev_edu-1 $EDU2_ADDR
  settle_node $EDU1
  events_stop
  edu_remove $U_PCI_B
  edu_forget $U_PCI_A
  scenario_end
}
edu_exported_any() { scrape && series mdev_parent_type_info parent="$1" && [ "$SERIES" = 1 ]; }

# End of boot two: persistent mdevs on EDU1 for the reboot; mdev_edu is not loaded at boot.
prepare_pci_reboot() {
  say "E2E-STEP preparing the PCI parent's reboot"
  edu_loaded || run modprobe mdev_edu
  wait_for 30 edu_listed $EDU1 || log "$EDU1 not listed"
  edu_forget $U_PCI_WAS $U_PCI_AUTO
  local u
  for u in $U_PCI_WAS $U_PCI_AUTO; do edu_nd define $u mdev_edu-1 $EDU1; done
  run virsh nodedev-start "$(edu_name $U_PCI_WAS $EDU1_ADDR)"
  run virsh nodedev-autostart "$(edu_name $U_PCI_AUTO $EDU1_ADDR)"
  have_daemon && { wait_for 10 state_lists $U_PCI_WAS || log "state file does not list $U_PCI_WAS"; }
  return 0
}

# pci_active UUID: the mdev is active in sysfs (the kernel's truth).
pci_active() { [ -e "/sys/bus/mdev/devices/$1" ]; }

scenario_pci_late_types() {
  scenario_begin pci-late-types
  local t_ev t_auto t_mod grace_ms=10000 n
  check "mdev_edu not loaded at boot" bash -c "! grep -q '^mdev_edu ' /proc/modules"
  check "$EDU1 is a PCI device libvirt lists without mdev types" bash -c "virsh nodedev-list --cap pci | grep -qx $EDU1 && ! virsh nodedev-list --cap mdev_types | grep -qx $EDU1"
  check "waiting: mdev_restore_waiting{uuid=$U_PCI_WAS,for=type}" wait_for 30 waiting_is $U_PCI_WAS type
  check "journal (info): waiting for parent $EDU1 to offer type mdev_edu-1" \
    bash -c "journalctl -b -u mdevmon.service -o cat -p info | grep -q 'mdev $U_PCI_WAS: waiting for parent $EDU1 to offer type mdev_edu-1'"
  check "mdevmon doctor names the wait" bash -c "mdevmon doctor 2>&1 | grep -q '$U_PCI_WAS: waiting for parent $EDU1 to offer type mdev_edu-1'"
  check "mdevmon list names the wait (RESTORE_PENDING … type)" \
    bash -c "timeout 20 mdevmon list | grep -Eq '^$U_PCI_WAS +$EDU1 +mdev_edu-1 +type\$'"
  events_start
  before_step; check "modprobe mdev_edu ($(cut -d' ' -f1 /proc/uptime) s after boot)" run modprobe mdev_edu
  t_mod=$CHECK_END
  within "$U_PCI_WAS (active before the reboot) restored" pci_active $U_PCI_WAS
  settle_node $EDU1
  t_ev=$(CHECK_END=$t_mod node_event_at $EDU1)
  check "libvirt sent an UPDATE for $EDU1" test -n "$t_ev"
  # The autostart device: mdevctl's udev rule (broken on this boot's stock image) does not start it; mdevmon
  # does once the grace period, counted from the types' arrival, is over.
  check "$U_PCI_AUTO (autostart) started after the grace period" wait_for 40 pci_active $U_PCI_AUTO
  t_auto=$(journalctl -b -o json MESSAGE_ID="${MSGID[restoreAttempted]}" MDEV_UUID=$U_PCI_AUTO | jq -r '.__REALTIME_TIMESTAMP' | head -1)
  if [ -n "$t_auto" ] && [ -n "$t_ev" ]; then
    n=$((t_auto / 1000 - t_ev))
    note "autostart attempted $n ms after libvirt's UPDATE (grace ${grace_ms} ms)"
    check "the grace period counted from the types' arrival" test "$n" -ge $((grace_ms - 500))
  else
    fail "no restoreAttempted for $U_PCI_AUTO (${t_auto:-none}) or no UPDATE for $EDU1 (${t_ev:-none})"
  fi
  check "no restoreFailed for the PCI devices" test "$(journalctl -b -q -o json MESSAGE_ID="${MSGID[restoreFailed]}" | grep -c e2e0000e)" -eq 0
  check "nothing at warning or above about them" bash -c "! journalctl -b -u mdevmon.service -p warning -o cat | grep -q e2e0000e"
  check "no restore waits any more" wait_for 10 waiting_is $U_PCI_WAS absent
  # Boot four measures mdevctl's own autostart of it: inactive again, so mdevmon leaves it the grace period.
  run virsh nodedev-destroy "$(edu_name $U_PCI_AUTO $EDU1_ADDR)"
  events_stop
  scenario_end
}

# Boot four: the /usr/sbin/mdevctl symlink makes mdevctl's udev rule work; it starts the autostart device
# when the driver registers the types, measured the same way as mdevmon's restore in boot three.
scenario_pci_mdevctl_autostart() {
  scenario_begin pci-mdevctl-autostart
  check "/usr/sbin/mdevctl symlink present" test -L /usr/sbin/mdevctl
  check "mdev_edu not loaded at boot" bash -c "! grep -q '^mdev_edu ' /proc/modules"
  events_start
  before_step; check "modprobe mdev_edu" run modprobe mdev_edu
  within "$U_PCI_AUTO started by mdevctl's udev rule" pci_active $U_PCI_AUTO
  settle_node $EDU1
  if have_daemon; then
    within "$U_PCI_WAS restored by mdevmon" pci_active $U_PCI_WAS
    settle_node $EDU1
    # After the grace period, mdevmon's restore of it ends as skipped: mdevctl had started it.
    check "mdevmon's restores ended (the grace period over)" wait_for 40 restores_done
    check "mdevmon did not start $U_PCI_AUTO (mdevctl did, within the grace period)" \
      test "$(journalctl -b -q -o json MESSAGE_ID="${MSGID[restoreSucceeded]}" MDEV_UUID=$U_PCI_AUTO | wc -l)" -eq 0
    check "its restore saw it active and skipped it" \
      bash -c "journalctl -b -u mdevmon.service -o cat | grep -q 'mdev $U_PCI_AUTO is already active; nothing to do'"
  fi
  events_stop
  scenario_end
}
