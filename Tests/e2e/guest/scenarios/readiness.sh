# readiness (issue 16): can a defined domain start? Two defined domains reference one active mdev; while
# the first runs, the second is blocked (`in_use`, startable 0) within BOUND_MS, and libvirt agrees (its
# start fails: the mdev is in use); stopping the first clears it. A domain referencing a defined, inactive
# mtty-2 mdev is blocked `inactive`; once mtty-2's available_instances is 0 (instances created through
# sysfs until it is) it is `no_capacity` within BOUND_MS, and libvirt agrees (nodedev-start fails);
# removing one instance turns it back to `inactive` within BOUND_MS. `mdevmon list --domains --json` shows
# the blockers. The capacity steps are settled with the delay of libvirt's own event for the instance (as
# in lifecycle): mdevmon cannot show a change libvirt has not announced. The domain steps have no libvirt
# event recorded (their latency lines say `libvirt=-`).

startable_seen() { # DOMAIN 0|1: in SCRAPE, the domain's startable gauge
  series mdev_domain_startable domain="$1"
  [ "$SERIES" = "$2" ]
}
startable_is() { scrape && startable_seen "$@"; }
available_seen() { available_ok mtty-2; }   # in SCRAPE, mtty-2's available instances are the kernel's
# list_blocked DOMAIN UUID REASON: `mdevmon list --domains --json` says the domain cannot start, with this
# blocker among its blockers.
list_blocked() {
  mdevmon list --domains --json | jq -e --arg d "$1" --arg u "$2" --arg r "$3" \
    '.domains[] | select(.name == $d and .startable == false) | .blockers[] | select(.uuid == $u and .reason == $r)' > /dev/null
}
mtty2_exported() { scrape && available_seen; }

scenario_readiness() {
  scenario_begin readiness
  remote_also remote-readiness
  local u=$U_RDY x=$U_RDYCAP a=e2e-rdy-a b=e2e-rdy-b c=e2e-rdy-c t0 out rc n=0 f last
  local fill=()
  fill_one() { # creates one more mtty-2 instance through sysfs
    local id
    printf -v id 'e2e00008-0000-4000-8000-0000000001%02d' $n
    n=$((n + 1))
    echo "$id" > "$SYSFS_TYPES/mtty-2/create" || return 1
    fill+=("$id")
  }
  remove_last() { echo 1 > "/sys/bus/mdev/devices/${fill[-1]}/remove"; }
  readiness_end() {
    dom_forget $a $b $c
    for f in "${fill[@]}"; do sysfs_active "$f" && echo 1 > "/sys/bus/mdev/devices/$f/remove"; done
    forget $u $x
    events_stop
    scenario_end
  }

  events_start
  # --- in_use: the mdev is held by another running domain ---
  check "nodedev-create $u (mtty-1)" nd_create $u mtty-1
  dom_xml $a $u > /tmp/$a.xml
  dom_xml $b $u > /tmp/$b.xml
  if ! check "virsh define $a and $b (both reference $u)" bash -c "timeout 180 virsh define /tmp/$a.xml && virsh define /tmp/$b.xml"; then
    readiness_end; return
  fi
  both_startable() { startable_is $a 1 && startable_is $b 1; }
  check "both startable while $u is active and unused" wait_for 10 both_startable

  before_step; now t0
  if ! check "virsh start $a" run virsh start $a; then readiness_end; return; fi
  note "nested start $((CHECK_END - t0)) ms"
  within "$a running: $b blocked by $u, in_use" problem_is $b $u in_use
  within "$a running: $b startable 0" last_or_new startable_seen $b 0
  check "$a holds $u itself: no blocker for $a" problem_is $a $u absent
  check "list --domains --json: $b blocked by $u in_use" list_blocked $b $u in_use
  out=$(timeout 60 virsh start $b 2>&1); rc=$?
  log "virsh start $b: rc $rc: $out"
  check "libvirt agrees: virsh start $b fails, $u in use" test $rc -ne 0 -a -n "$(grep -o 'in use' <<<"$out")"

  before_step; check "virsh destroy $a" run virsh destroy $a
  within "$a stopped: $b no longer blocked" problem_is $b $u absent
  within "$a stopped: $b startable 1" last_or_new startable_seen $b 1

  # --- no_capacity: an inactive mdev whose parent has no instance of its type left ---
  check "nodedev-define $x (mtty-2, inactive)" nd_define $x mtty-2
  dom_xml $c $x > /tmp/$c.xml
  check "virsh define $c (references $x)" run virsh define /tmp/$c.xml
  within "define $c: blocked by $x, inactive" problem_is $c $x inactive
  while (($(sysfs_available mtty-2) > 1)); do fill_one || { fail "creating mtty-2 instance #$n"; break; }; done
  check "mdevmon caught up with $((${#fill[@]})) new mtty-2 instances" wait_for 20 mtty2_exported
  # libvirt 11.3 announces sysfs-made mdevs about 1 s apart under TCG, so after a quick fill its CREATED
  # events trail by seconds: the measured step starts once libvirt lists every instance made so far.
  libvirt_has_fill() { local l f; l=$(virsh nodedev-list --cap mdev); for f in "${fill[@]}"; do grep -qx "$(devname $f)" <<<"$l" || return 1; done; }
  check "libvirt lists the $((${#fill[@]})) new mtty-2 instances" wait_for 60 libvirt_has_fill
  before_step; check "create the last mtty-2 instance (sysfs)" fill_one
  last=${fill[-1]}
  within "mtty-2 used up: $c blocked by $x, no_capacity" problem_is $c $x no_capacity
  within "mtty-2 used up: exported available instances 0" last_or_new available_seen
  settle_libvirt $last
  check "kernel: mtty-2 available_instances 0 after ${#fill[@]} instances" test "$(sysfs_available mtty-2)" -eq 0
  check "$c startable 0" startable_is $c 0
  check "list --domains --json: $c blocked by $x no_capacity" list_blocked $c $x no_capacity
  out=$(timeout 60 virsh nodedev-start "$(devname $x)" 2>&1); rc=$?
  log "virsh nodedev-start $x: rc $rc: $out"
  check "libvirt agrees: nodedev-start $x fails, no available instances" \
    test $rc -ne 0 -a -n "$(grep -o 'No available instances' <<<"$out")"

  before_step; check "remove one mtty-2 instance (sysfs)" remove_last
  within "one instance free: $c blocked by $x, inactive again" problem_is $c $x inactive
  within "one instance free: exported available instances 1" last_or_new available_seen
  settle_libvirt $last
  readiness_end
}
