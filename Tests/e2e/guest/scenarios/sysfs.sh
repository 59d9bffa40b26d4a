# sysfs: a device made with plain Linux commands, made persistent through libvirt (or mdevctl), removed
# through sysfs; then undefining an active persistent device leaves it active and transient.

scenario_sysfs() {
  scenario_begin sysfs
  events_start
  local u=$U_SYSFS t=mtty-1 name
  name=$(devname $u)

  before_step; check "echo UUID > …/mtty-1/create" bash -c "echo $u > $SYSFS_TYPES/$t/create"
  expect_state "sysfs create" $u $t deviceCreated 1 0 0
  check "libvirt knows it as $name" libvirt_active $u

  # Make the running device persistent from its own XML; libvirt 9.0 may refuse an active device.
  before_step
  virsh nodedev-dumpxml "$name" > /tmp/sysfs-dump.xml
  if run virsh nodedev-define /tmp/sysfs-dump.xml; then
    note "made persistent with nodedev-define of its nodedev-dumpxml"
  else
    local why; why=$(virsh nodedev-define /tmp/sysfs-dump.xml 2>&1 | tr -s '\n' ' ')
    note "nodedev-define refused (${why:0:120}); made persistent with mdevctl define --uuid"
    check "mdevctl define --uuid" run mdevctl define --uuid $u
  fi
  expect_state "define of the active device" $u $t deviceDefined 1 1 0

  before_step; check "echo 1 > …/$u/remove" bash -c "echo 1 > /sys/bus/mdev/devices/$u/remove"
  expect_state "sysfs remove" $u $t deviceDeleted 0 1 0

  before_step; check "nodedev-start" nd start $u
  expect_state "start" $u $t deviceCreated 1 1 0

  before_step; check "nodedev-undefine (active)" nd undefine $u
  expect_state "undefine of an active persistent device" $u $t deviceUndefined 1 0 0
  check "still active in the kernel after undefine" sysfs_active $u

  before_step; check "sysfs remove (transient)" bash -c "echo 1 > /sys/bus/mdev/devices/$u/remove"
  expect_state "sysfs remove transient" $u $t deviceDeleted absent
  forget $u
  events_stop
  scenario_end
}
