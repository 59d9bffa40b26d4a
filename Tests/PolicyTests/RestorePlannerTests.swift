import Monitor
@testable import Policy
import TestSupport
import Testing

@Suite struct RestorePlannerTests {
    let u1 = "11111111-0000-4000-8000-000000000001"
    let u2 = "22222222-0000-4000-8000-000000000002"
    let u3 = "33333333-0000-4000-8000-000000000003"

    func plan(_ saved: [PersistedState.Device], _ now: [MdevDevice], config: PolicyConfig = PolicyConfig())
        -> (tasks: [RestoreTask], skipped: [String: String]) {
        let result = RestorePlanner.plan(previous: PersistedState(bootID: "old", active: saved), state: .with(now), config: config)
        return (result.tasks, Dictionary(uniqueKeysWithValues: result.skipped.map { ($0.0.uuid, $0.1) }))
    }

    @Test func persistentWasActiveNowInactiveIsStarted() {
        let (tasks, skipped) = plan([Sample.saved(u1)], [Sample.device(u1)])
        #expect(tasks == [RestoreTask(device: Sample.saved(u1), kind: .start(name: Sample.name(u1)), reason: .wasActive)])
        #expect(tasks.first?.action == "start")
        #expect(skipped.isEmpty)
    }

    @Test func alreadyActiveNeedsNothing() {
        let (tasks, skipped) = plan([Sample.saved(u1)], [Sample.device(u1, active: true)])
        #expect(tasks.isEmpty)
        #expect(skipped.isEmpty)
    }

    @Test func goneDefinitionIsSkippedWithReason() {
        // Gone entirely, or only a transient device of that key is left.
        let (tasks, skipped) = plan([Sample.saved(u1), Sample.saved(u2)], [Sample.device(u2, persistent: false)])
        #expect(tasks.isEmpty)
        #expect(skipped == [u1: "its definition no longer exists", u2: "its definition no longer exists"])
    }

    @Test func sameUUIDUnderAnotherParentIsNotTheSameDevice() {
        let (tasks, skipped) = plan([Sample.saved(u1)], [Sample.device(u1, parent: Sample.otherParent)])
        #expect(tasks.isEmpty)
        #expect(skipped == [u1: "its definition no longer exists"])
    }

    @Test func transientIsSkippedUnlessRecreateTransient() {
        let attrs = [MdevAttr(name: "z", value: "1"), MdevAttr(name: "a", value: "2")]
        let saved = Sample.saved(u1, persistent: false, attrs: attrs)

        let off = plan([saved], [])
        #expect(off.tasks.isEmpty)
        #expect(off.skipped == [u1: "transient and recreate_transient is off"])

        var config = PolicyConfig()
        config.restore.recreateTransient = true
        let on = plan([saved], [], config: config)
        #expect(on.tasks == [RestoreTask(device: saved, kind: .recreate(xml: RestorePlanner.createXML(saved)), reason: .transient)])
        #expect(on.tasks.first?.action == "create")
        #expect(on.skipped.isEmpty)

        // A transient device already back (someone re-created it) needs nothing.
        #expect(plan([saved], [Sample.device(u1, active: true, persistent: false)], config: config).tasks.isEmpty)
    }

    @Test func autostartStillInactiveIsStarted() {
        let (tasks, skipped) = plan([], [Sample.device(u1, autostart: true), Sample.device(u2, active: true, autostart: true),
                                         Sample.device(u3)])
        #expect(tasks == [RestoreTask(device: PersistedState.Device(Sample.device(u1, autostart: true)),
                                      kind: .start(name: Sample.name(u1)), reason: .autostart)])
        #expect(skipped.isEmpty)
    }

    @Test func wasActiveWinsOverAutostartForTheSameDevice() {
        let (tasks, _) = plan([Sample.saved(u1)], [Sample.device(u1, autostart: true)])
        #expect(tasks.map(\.reason) == [.wasActive])
    }

    @Test func onlyOwnedDevicesArePlanned() {
        var config = PolicyConfig()
        config.ownership.excludeUUIDs = [u2.uppercased()]
        config.ownership.parents = [Sample.parent]
        let (tasks, skipped) = plan(
            [Sample.saved(u1), Sample.saved(u2), Sample.saved(u3, parent: Sample.otherParent)],
            [Sample.device(u1), Sample.device(u2), Sample.device(u3, parent: Sample.otherParent, autostart: true),
             Sample.device(u2, parent: Sample.otherParent, autostart: true)],
            config: config)
        #expect(tasks.map(\.device.uuid) == [u1])
        #expect(skipped.isEmpty, "devices mdevmon does not own are not even mentioned")

        // Not owned and gone: not reported either.
        #expect(plan([Sample.saved(u2)], [], config: config).skipped.isEmpty)
    }

    @Test func tasksAreInKeyOrder() {
        let (tasks, _) = plan([Sample.saved(u3), Sample.saved(u1)],
                              [Sample.device(u3), Sample.device(u1), Sample.device(u2, autostart: true)])
        #expect(tasks.map(\.device.uuid) == [u1, u2, u3])
        #expect(tasks.map(\.reason) == [.wasActive, .autostart, .wasActive])
    }

    @Test func samePlanForSameInputs() {
        let saved = [Sample.saved(u1), Sample.saved(u2, persistent: false)]
        let now = [Sample.device(u1), Sample.device(u3, autostart: true)]
        #expect(plan(saved, now).tasks == plan(saved, now).tasks)
    }

    @Test func createXMLKeepsAttrOrderAndEscapes() {
        let d = PersistedState.Device(
            uuid: u1, parent: "pci_0000_3b_00_0", mdevType: "nvidia-63",
            attrs: [MdevAttr(name: "z<1>", value: "a&b 'c' \"d\""), MdevAttr(name: "a", value: "2")],
            persistent: false)
        #expect(RestorePlanner.createXML(d) == """
            <device>
              <parent>pci_0000_3b_00_0</parent>
              <capability type='mdev'>
                <type id='nvidia-63'/>
                <uuid>\(u1)</uuid>
                <attr name='z&lt;1&gt;' value='a&amp;b &apos;c&apos; &quot;d&quot;'/>
                <attr name='a' value='2'/>
              </capability>
            </device>

            """)
    }

    @Test func createXMLWithoutAttrs() {
        let d = Sample.saved(u2, type: "i915-GVTg_V5_4", persistent: false)
        #expect(RestorePlanner.createXML(d) ==
            "<device>\n  <parent>\(Sample.parent)</parent>\n  <capability type='mdev'>\n    <type id='i915-GVTg_V5_4'/>\n    <uuid>\(u2)</uuid>\n  </capability>\n</device>\n")
    }
}

/// A late parent: libvirt files defined mdevs under its root device `computer` until the real parent appears.
@Suite struct RestorePlannerPlaceholderParentTests {
    let u1 = "44444444-0000-4000-8000-000000000004"
    let u2 = "55555555-0000-4000-8000-000000000005"
    let computer = IndexState.placeholderParent

    @Test func deviceUnderPlaceholderIsStillTheSavedDevice() {
        let result = RestorePlanner.plan(
            previous: PersistedState(bootID: "old", active: [Sample.saved(u1)]),
            state: .with([Sample.device(u1, parent: computer)]), config: PolicyConfig())
        #expect(result.skipped.isEmpty, "a device waiting for its parent is not gone")
        #expect(result.tasks.map(\.device) == [Sample.saved(u1)])
        #expect(result.tasks.first?.reason == .wasActive)
    }

    @Test func autostartDeviceIsPlannedOnceAndKeepsItsSavedParent() {
        let result = RestorePlanner.plan(
            previous: PersistedState(bootID: "old", active: [Sample.saved(u1)]),
            state: .with([Sample.device(u1, parent: computer, autostart: true), Sample.device(u2, parent: computer, autostart: true)]),
            config: PolicyConfig())
        #expect(result.tasks.count == 2, "one task per uuid")
        #expect(result.tasks.first { $0.device.uuid == u1 }?.device.parent == Sample.parent)
        #expect(result.tasks.first { $0.device.uuid == u2 }?.reason == .autostart)
    }
}

@Suite struct PolicyServicePlaceholderParentTests {
    /// The saved device sits under `computer` at boot; nothing is attempted until libvirt moves it
    /// to its real parent, and then the start uses the device's new name.
    @Test func waitsForTheRealParentThenStartsUnderTheNewName() async throws {
        let uuid = Sample.uuid()
        let previous = PersistedState(bootID: "previous-boot", active: [Sample.saved(uuid)])
        let initial = IndexState.with([Sample.device(uuid, parent: IndexState.placeholderParent)], parents: [])
        // The device's parent in the index at each start.
        let parentAtStart = Capture()
        let hooks: (DeviceIndex) -> FakeDeviceActions.Hooks = { index in
            FakeDeviceActions.Hooks(beforeAction: { _ in
                parentAtStart.append(index.snapshot.state.devices(uuid: uuid).first?.parent ?? "none")
            })
        }
        try await PolicyHarness.run(initial: initial, previous: previous, config: fastConfig(), hooks: hooks) { h in
            // The restore announced that it waits (for any parent: the real one is not known yet).
            #expect(await eventually { h.log.records.contains { $0.uuid == uuid && $0.message.contains("waiting for parent (not yet known)") } })
            #expect(h.actions.startCalls.isEmpty, "started before the parent appeared")
            #expect(h.metrics.pending["restore"] == 1)
            await h.index.mutate { state in
                state.removeDevice(named: Sample.name(uuid, parent: IndexState.placeholderParent))
                    + state.upsertParent(Sample.parentDevice())
                    + state.upsertDevice(Sample.definition(uuid), flags: DeviceFlags(active: false, persistent: true, autostart: false))
            }
            #expect(await eventually { h.count("success") == 1 })
            #expect(h.actions.startCalls == [Sample.name(uuid)])
            #expect(h.count("failure") == 0)
            #expect(parentAtStart.all == [Sample.parent], "started while under \(IndexState.placeholderParent)")
        }
    }
}
