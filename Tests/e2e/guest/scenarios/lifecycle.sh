# lifecycle: define → start → autostart → destroy → start → undefine (→ destroy), then a transient
# create → destroy. After each step, within BOUND_MS: metrics, available instances of mtty-2, journal.

scenario_lifecycle() {
  scenario_begin lifecycle
  remote_also remote-lifecycle
  events_start
  local u=$U_LIFE t=mtty-2 a0
  a0=$(sysfs_available $t)
  kernel_available() { check "$1: kernel's $t available instances $2" test "$(sysfs_available $t)" -eq "$2"; }

  before_step; check "nodedev-define" nd_define $u $t
  expect_state "define" $u $t deviceDefined 0 1 0
  kernel_available define $a0

  before_step; check "nodedev-start" nd start $u
  expect_state "start" $u $t deviceCreated 1 1 0
  kernel_available start $((a0 - 1))

  before_step; check "nodedev-autostart" nd autostart $u
  expect_state "autostart" $u $t deviceUpdated 1 1 1

  before_step; check "nodedev-destroy" nd destroy $u
  expect_state "destroy" $u $t deviceDeleted 0 1 1
  kernel_available destroy $a0

  before_step; check "nodedev-start again" nd start $u
  expect_state "start again" $u $t deviceCreated 1 1 1
  kernel_available "start again" $((a0 - 1))

  # Undefining an active device leaves it running as a transient one.
  before_step; check "nodedev-undefine (active)" nd undefine $u
  expect_state "undefine" $u $t deviceUndefined 1 0 0

  before_step; check "nodedev-destroy (transient)" nd destroy $u
  expect_state "destroy transient" $u $t deviceDeleted absent
  kernel_available "destroy transient" $a0

  local v=$U_TRANS
  before_step; check "nodedev-create (transient)" nd_create $v $t
  expect_state "create" $v $t deviceCreated 1 0 0
  kernel_available create $((a0 - 1))

  before_step; check "nodedev-destroy (created)" nd destroy $v
  expect_state "destroy created" $v $t deviceDeleted absent
  kernel_available "destroy created" $a0
  forget $u $v
  events_stop
  scenario_end
}
