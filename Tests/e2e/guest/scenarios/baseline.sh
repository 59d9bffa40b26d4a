# guest-baseline: the kernel, mtty and libvirt's node-device driver work, without mdevmon.

# Available instances of TYPE as libvirt reports them for the parent.
libvirt_available() {
  virsh nodedev-dumpxml "$PARENT" |
    sed -n "/<type id='$1'>/,/<\/type>/s/.*<availableInstances>\([0-9]*\)<.*/\1/p"
}

scenario_baseline() {
  scenario_begin guest-baseline
  check "mtty module loaded at boot" grep -q '^mtty ' /proc/modules
  check "libvirt lists $PARENT with cap mdev_types" wait_for 30 parent_present
  local t
  for t in mtty-1 mtty-2; do
    check "$t: libvirt and sysfs agree on available instances" \
      test "$(libvirt_available $t)" = "$(sysfs_available $t)"
  done
  note "available: mtty-1 $(sysfs_available mtty-1), mtty-2 $(sysfs_available mtty-2)"

  timeout 60 virsh nodedev-event --event lifecycle --loop > /tmp/events.txt 2>&1 &
  local events=$!
  sleep 1
  local u=$U_BASE before
  before=$(sysfs_available mtty-2)
  check "nodedev-define" nd_define $u mtty-2
  check "defined device is not in sysfs" bash -c "! test -e /sys/bus/mdev/devices/$u"
  check "nodedev-start" nd start $u
  check "started device is in sysfs" sysfs_active $u
  check "mtty-2 available instances count down" test "$(sysfs_available mtty-2)" -eq $((before - 1))
  check "nodedev-destroy" nd destroy $u
  check "destroyed device left sysfs" wait_for 5 bash -c "! test -e /sys/bus/mdev/devices/$u"
  check "nodedev-undefine" nd undefine $u
  check "undefined device left libvirt" bash -c "! virsh nodedev-list --all --cap mdev | grep -q ${u//-/_}"
  sleep 1
  kill $events 2>/dev/null; wait $events 2>/dev/null
  log "nodedev-event output:"; cat /tmp/events.txt
  local n
  n=$(grep -c "$(devname $u)" /tmp/events.txt)
  check "nodedev-event reported the device's lifecycle ($n events)" test "$n" -ge 3
  if have_daemon; then check "mdevmon.service is active" systemctl is-active -q mdevmon.service; fi
  scenario_end
}
