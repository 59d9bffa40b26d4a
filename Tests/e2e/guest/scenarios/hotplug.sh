# hotplug (issue 16): an active mtty mdev hot-plugged into a running domain (`attach-device --live`) is in
# use by that domain and not orphaned within BOUND_MS. A live detach stays pending (no guest OS answers the
# ACPI unplug): mdevmon keeps showing what libvirt's live XML holds, checked after a later refetch of the
# domain (a second hot-plug) so the check waits for a positive sign. Stopping the domain releases the
# device: no longer in use, and orphaned (no domain references it). An `attach-device --config` to the
# defined domain makes it a reference: not orphaned, referenced in the metrics and in `mdevmon list --json`.

# in_use_seen UUID DOMAIN 1|absent: in SCRAPE, the mdev is (1) or is not in use by the running domain.
in_use_seen() {
  series mdev_device_in_use uuid="$1" domain="$2"
  if [ "$3" = absent ]; then [ -z "$SERIES" ]; else [ "$SERIES" = "$3" ]; fi
}
orphaned_seen() { # UUID 1|absent
  series mdev_device_orphaned uuid="$1"
  if [ "$2" = absent ]; then [ -z "$SERIES" ]; else [ "$SERIES" = "$2" ]; fi
}
referenced_seen() { # DOMAIN UUID 1|absent: the domain's configuration references the mdev
  series mdev_domain_device_info domain="$1" uuid="$2"
  if [ "$3" = absent ]; then [ -z "$SERIES" ]; else [ "$SERIES" = "$3" ]; fi
}
# The same on a fresh scrape (fork-free, for `within`).
in_use_is() { scrape && in_use_seen "$@"; }
orphaned_is() { scrape && orphaned_seen "$@"; }
referenced_is() { scrape && referenced_seen "$@"; }
# list_device_has UUID FIELD DOMAIN: `mdevmon list --json` lists DOMAIN in the device's FIELD
# (domains: referenced by; in_use_by: held by a running domain).
list_device_has() {
  mdevmon list --json | jq -e --arg u "$1" --arg d "$3" ".devices[] | select(.uuid == \$u) | .$2 | index(\$d)" > /dev/null
}

scenario_hotplug() {
  scenario_begin hotplug
  remote_also remote-hotplug
  local u=$U_HOT v=$U_HOT2 dom=e2e-hot t0 want detach_start detach_end detach_mark
  hotplug_end() { dom_forget $dom; forget $u $v; dom_events_stop; scenario_end; }
  dom_events_start
  hostdev_xml $u > /tmp/hd-$u.xml
  hostdev_xml $v > /tmp/hd-$v.xml
  check "nodedev-create $u (mtty-1)" nd_create $u mtty-1
  check "nodedev-create $v (mtty-1)" nd_create $v mtty-1
  check "before any domain: $u orphaned" wait_for 10 orphaned_is $u 1
  dom_xml $dom > /tmp/$dom.xml
  if ! check "virsh define $dom (no mdev)" run timeout 180 virsh define /tmp/$dom.xml; then hotplug_end; return; fi
  now t0
  if ! check "virsh start $dom" run virsh start $dom; then hotplug_end; return; fi
  note "nested start $((CHECK_END - t0)) ms"

  before_step; check "attach-device --live $u" run virsh attach-device $dom /tmp/hd-$u.xml --live
  within "live attach: in use by $dom" in_use_is $u $dom 1
  within "live attach: not orphaned" last_or_new orphaned_seen $u absent
  journal_within "live attach: journal" deviceUseChanged MDEV_UUID=$u
  settle_domain $dom device-added
  check "libvirt's live XML holds $u" live_holds $dom $u
  check "list --json: $u in use by $dom" list_device_has $u in_use_by $dom

  # libvirt waits 5 s for the guest to acknowledge, then returns success with the unplug still pending.
  before_step; now t0
  check "detach-device --live $u" run virsh detach-device $dom /tmp/hd-$u.xml --live
  detach_start=$STEP_START detach_end=$CHECK_END detach_mark=$JCURSOR
  if live_holds $dom $u; then
    want=1; note "live detach returned after $((detach_end - t0)) ms and stays pending (libvirt's live XML keeps $u)"
  else
    want=absent; note "live detach returned after $((detach_end - t0)) ms and completed"
  fi
  # A second hot-plug makes mdevmon read the domain's live XML again, after the detach: once it shows,
  # mdevmon's answer for $u is the one it read after the detach.
  before_step; check "attach-device --live $v (a later refetch of $dom)" run virsh attach-device $dom /tmp/hd-$v.xml --live
  within "second live attach: $v in use by $dom" in_use_is $v $dom 1
  settle_domain $dom device-added
  check "after the live detach: mdevmon shows $u in use by $dom: $want, as libvirt's live XML" in_use_is $u $dom $want
  # Whether libvirt said the unplug failed, and if so whether mdevmon journaled it (its lag after libvirt).
  STEP_START=$detach_start CHECK_END=$detach_end JCURSOR=$detach_mark
  if dom_event_seen $dom device-removal-failed; then
    note "libvirt sent DEVICE_REMOVAL_FAILED +$DOM_EVENT_MS ms after the detach returned"
    # Waited for from libvirt's event (what mdevmon answers), reported from the detach's end like the rest.
    CHECK_END=$((detach_end + DOM_EVENT_MS))
    if journal_within "removal failed: journal warning" deviceRemovalFailed DOMAIN_NAME=$dom PRIORITY=4; then
      PEND_MS[-1]=$((PEND_MS[-1] + DOM_EVENT_MS))
      settle "$DOM_EVENT_MS"
    fi
  else
    note "libvirt sent no DEVICE_REMOVAL_FAILED (nothing in the guest answers the unplug)"
  fi

  before_step; check "virsh destroy $dom" run virsh destroy $dom
  within "destroy: $u no longer in use" in_use_is $u $dom absent
  within "destroy: $v no longer in use" last_or_new in_use_seen $v $dom absent
  within "destroy: $u orphaned (no domain references it)" last_or_new orphaned_seen $u 1
  settle_domain $dom lifecycle

  # libvirt 11.3 sends "Defined Updated" (before virsh returns); libvirt 9.0 sends no domain event for a
  # --config attach or detach (probed: none at all); mdevmon sees
  # libvirt rewrite /etc/libvirt/qemu/$dom.xml (inotify) and fetches the domain again.
  # Over a remote connection there is no file to watch: libvirt 9's silent --config change is seen only at
  # the domain's next event (the remote daemon's startup notice says so), so it is not checked there.
  if ! libvirt_at_least 11.0 && [ -n "$REMOTE_AS" ]; then
    remote_pause
    note "remote: config attach and detach not checked on libvirt $(libvirt_version) (no event, no local file to watch)"
  fi
  before_step; check "attach-device --config $u" run virsh attach-device $dom /tmp/hd-$u.xml --config
  within "config attach: $dom references $u (metrics)" referenced_is $dom $u 1 || log_metrics $u
  within "config attach: $u not orphaned" last_or_new orphaned_seen $u absent || log_metrics $u
  if dom_event_seen $dom lifecycle; then note "libvirt sent a lifecycle event for the config attach ($DOM_EVENT_MS ms after virsh returned)"
  else note "libvirt sent no domain event for the config attach"; fi
  settle_domain $dom lifecycle
  check "list --json: $u referenced by $dom" list_device_has $u domains $dom
  before_step; check "detach-device --config $u" run virsh detach-device $dom /tmp/hd-$u.xml --config
  within "config detach: $dom no longer references $u" referenced_is $dom $u absent || log_metrics $u
  within "config detach: $u orphaned again" last_or_new orphaned_seen $u 1 || log_metrics $u
  settle_domain $dom lifecycle
  hotplug_end
}
