# references: a defined domain with a hostdev on an mtty device; destroying the device raises the
# problem metric and a journal warning within BOUND_MS, starting it again clears both.

problem_is() { # DOMAIN UUID REASON|absent (fork-free, for `within`)
  scrape || return 1
  if [ "$3" = absent ]; then series mdev_domain_reference_problem domain="$1"; [ -z "$SERIES" ]; return; fi
  series mdev_domain_reference_problem domain="$1" uuid="$2" reason="$3"
  [ "$SERIES" = 1 ]
}

scenario_references() {
  scenario_begin references
  local u=$U_REF dom=e2e-ref
  check "nodedev-define" nd_define $u mtty-1
  check "nodedev-start" nd start $u
  dom_xml $dom $u > /tmp/$dom.xml
  # The first define probes the emulator's capabilities, which is slow under TCG.
  if ! check "virsh define $dom (hostdev mdev $u)" timeout 180 virsh define /tmp/$dom.xml; then
    scenario_end; forget $u; return
  fi
  check "no problem while the device is active" wait_for 10 problem_is $dom $u absent

  before_step; check "nodedev-destroy" nd destroy $u
  within "destroy: problem metric (inactive)" problem_is $dom $u inactive
  # A warning (priority 4): the domain does not autostart.
  journal_within "destroy: journal warning" referenceProblem DOMAIN_NAME=$dom MDEV_UUID=$u PRIORITY=4

  before_step; check "nodedev-start" nd start $u
  within "start: problem cleared" problem_is $dom $u absent
  journal_within "start: journal says resolved" referenceResolved DOMAIN_NAME=$dom MDEV_UUID=$u

  check "nodedev-destroy + nodedev-undefine" bash -c "virsh nodedev-destroy $(devname $u) && virsh nodedev-undefine $(devname $u)"
  within "undefine: problem metric (missing)" problem_is $dom $u missing

  check "virsh undefine $dom" run virsh undefine $dom
  within "domain undefined: no problem series left" problem_is $dom $u absent
  forget $u
  scenario_end
}
