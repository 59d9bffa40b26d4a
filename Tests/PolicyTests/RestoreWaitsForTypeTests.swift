import Foundation
import Monitor
import Policy
import TestSupport
import Testing

/// A vGPU host's boot (issue 23): the GPU is a PCI device from the start, and its vendor driver registers
/// the mdev types later. A restore waits for the parent to offer the device's type with an instance
/// available, is woken by the index change that shows it, and counts nothing as failed meanwhile.
@Suite struct RestoreWaitsForTypeTests {
    let owned = Sample.uuid()

    var previous: PersistedState { PersistedState(bootID: "previous-boot", active: [Sample.saved(owned)]) }

    /// The parent as libvirt lists it before its driver registered `Sample.type`: another type only.
    static let withoutTheType = Sample.parentDevice(type: "nvidia-other")

    /// Nothing at warning or above but the harness's marker domains.
    static func quiet(_ h: PolicyHarness) -> Bool {
        h.log.records(atLeast: .warning).allSatisfy { $0.value(LogKey.domainName)?.hasPrefix("marker-") == true }
    }

    @Test func typesRegisteredLaterWakeTheRestoreWithoutAnyFailure() async throws {
        let initial = IndexState(devices: [Sample.device(owned)], parents: [Self.withoutTheType], domains: [])
        try await PolicyHarness.run(initial: initial, previous: previous) { h in
            #expect(await eventually { h.metrics.waiting.values.map(\.reason) == [.type] })
            let waiting = try #require(h.metrics.waiting.values.first)
            #expect(waiting == RestoreWaiting(uuid: owned, parent: Sample.parent, mdevType: Sample.type, reason: .type))
            let said = try #require(h.log.records.first { $0.uuid == owned && $0.message.contains("waiting for parent") })
            #expect(said.level == .info)
            #expect(said.message == "mdev \(owned): waiting for parent \(Sample.parent) to offer type \(Sample.type)")
            // The restore has seen a later index change and still asked libvirt nothing.
            #expect(await h.consumedSoFar())
            #expect(h.actions.calls.isEmpty && h.actions.checkedParents.isEmpty)

            // The driver registers the type: libvirt's UPDATE for the parent becomes a parentChanged.
            let registered = ContinuousClock.now
            await h.index.mutate { $0.upsertParent(Sample.parentDevice()) }
            #expect(await eventually { h.count("success") == 1 })
            let start = try #require(h.actions.calls.first)
            #expect(start.time > registered)
            #expect(h.actions.startCalls == [Sample.name(owned)])
            #expect(h.count("failure") == 0 && h.log.records(.restoreFailed).isEmpty)
            #expect(h.metrics.waiting.isEmpty)
            #expect(Self.quiet(h))
        }
    }

    /// A parent libvirt does not list at all (no mdev types yet) is the same wait; its appearance wakes it.
    @Test func aParentOfferingNoTypesYetIsWaitedFor() async throws {
        try await PolicyHarness.run(initial: .with([Sample.device(owned)], parents: []), previous: previous) { h in
            #expect(await eventually { h.metrics.waiting.values.map(\.reason) == [.type] })
            await h.index.mutate { $0.upsertParent(Sample.parentDevice()) }
            #expect(await eventually { h.count("success") == 1 })
            #expect(h.count("failure") == 0 && Self.quiet(h))
        }
    }

    /// Offered, but every instance is taken (a shared pool used up by another parent's mdevs): it waits
    /// for an instance, and the capacity change that frees one wakes it.
    @Test func noInstanceAvailableWaitsForOne() async throws {
        let initial = IndexState(devices: [Sample.device(owned)], parents: [Sample.parentDevice(available: 0)], domains: [])
        try await PolicyHarness.run(initial: initial, previous: previous) { h in
            #expect(await eventually { h.metrics.waiting.values.map(\.reason) == [.instance] })
            #expect(h.log.records.contains { $0.level == .info && $0.message.contains("to have an instance of type \(Sample.type) available") })
            #expect(await h.consumedSoFar())
            #expect(h.actions.calls.isEmpty)
            await h.index.mutate { $0.upsertParent(Sample.parentDevice(available: 1)) }
            #expect(await eventually { h.count("success") == 1 })
            #expect(h.count("failure") == 0 && Self.quiet(h))
        }
    }

    /// mdevctl's udev rule starts the device on the kernel's uevent, taking the pool's last instance, before
    /// libvirt's UPDATE shows the types: the restore waiting for an instance ends, skipped, not left waiting.
    @Test func aDeviceSomeoneElseStartedEndsTheWait() async throws {
        let initial = IndexState(devices: [Sample.device(owned)], parents: [Sample.parentDevice(available: 0)], domains: [])
        try await PolicyHarness.run(initial: initial, previous: previous) { h in
            #expect(await eventually { h.metrics.waiting.values.map(\.reason) == [.instance] })
            await h.index.mutate { $0.upsertDevice(Sample.definition(owned), flags: DeviceFlags(active: true, persistent: true, autostart: false)) }
            #expect(await eventually { h.count("skipped") == 1 })
            #expect(h.metrics.waiting.isEmpty && h.actions.calls.isEmpty)
            #expect(await eventually { h.metrics.pending["restore"] == 0 })
        }
    }

    /// An autostart device that mdevctl's udev rule started during the wait is skipped at once: no grace
    /// period in which `mdev_policy_pending` stays 1 and the journal says autostart is given time.
    @Test func anAutostartDeviceStartedDuringTheWaitSkipsTheGrace() async throws {
        let auto = Sample.uuid()
        let initial = IndexState(devices: [Sample.device(auto, autostart: true)], parents: [Self.withoutTheType], domains: [])
        let cfg = fastConfig { $0.restore.autostartGracePeriod = .seconds(3600) }
        try await PolicyHarness.run(initial: initial, previous: PersistedState(bootID: "previous-boot", active: []), config: cfg) { h in
            #expect(await eventually { h.metrics.waiting.values.map(\.reason) == [.type] })
            await h.index.mutate { state in
                state.upsertParent(Sample.parentDevice())
                    + state.upsertDevice(Sample.definition(auto), flags: DeviceFlags(active: true, persistent: true, autostart: true))
            }
            // Within the hour's grace only if the grace was skipped.
            #expect(await eventually { h.count("skipped") == 1 })
            #expect(!h.log.records.contains { $0.uuid == auto && $0.message.contains("giving autostart") })
            #expect(h.actions.calls.isEmpty)
            #expect(await eventually { h.metrics.pending["restore"] == 0 })
        }
    }

    /// `mdevmon list`'s verdict, from the index alone: the same reasons the runner waits for.
    @Test func theIndexAloneSaysWhatEachRestoreWaitsFor() {
        let (typeless, full, free, active, adrift) = (Sample.uuid(), Sample.uuid(), Sample.uuid(), Sample.uuid(), Sample.uuid())
        let state = IndexState(devices: [
            Sample.device(typeless, parent: "pci_typeless"), Sample.device(full, parent: "pci_full"),
            Sample.device(free), Sample.device(active, parent: "pci_typeless", active: true),
            Sample.device(adrift, parent: IndexState.placeholderParent),
        ], parents: [Sample.parentDevice("pci_typeless", type: "nvidia-other"), Sample.parentDevice("pci_full", available: 0), Sample.parentDevice()],
           domains: [])
        let pending = [Sample.saved(typeless, parent: "pci_typeless"), Sample.saved(full, parent: "pci_full"), Sample.saved(free),
                       Sample.saved(active, parent: "pci_typeless"), Sample.saved(adrift, parent: "pci_gone")]
        #expect(pending.map { RestoreWaiting.inIndex($0, state)?.reason } == [.type, .instance, nil, nil, .parent])
        let table = RestoreWaiting.table(pending: pending, state: state).split(separator: "\n").map {
            $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        }
        #expect(table.first == ["RESTORE_PENDING", "PARENT", "TYPE", "WAITING_FOR"])
        #expect(table.contains([typeless, "pci_typeless", Sample.type, "type"]))
        #expect(table.contains([free, Sample.parent, Sample.type, "-"]))
        #expect(table.contains([adrift, "pci_gone", Sample.type, "parent"]))
    }

    /// A reload reaches a restore waiting for its type: `wait_for_type: false` makes it try at once.
    @Test func aReloadToWaitForTypeOffEndsTheWait() async throws {
        let initial = IndexState(devices: [Sample.device(owned)], parents: [Self.withoutTheType], domains: [])
        try await PolicyHarness.run(initial: initial, previous: previous) { h in
            #expect(await eventually { h.metrics.waiting.values.map(\.reason) == [.type] })
            h.service.update(config: fastConfig { $0.restore.waitForType = false })
            #expect(await eventually { h.count("success") == 1 }, "the reload did not end the wait")
            #expect(h.actions.checkedParents == [Sample.parent])
        }
    }

    /// The autostart grace period counts from when the parent can host the device, not from start-up.
    @Test func theAutostartGraceCountsFromTheTypeAppearing() async throws {
        let auto = Sample.uuid()
        let initial = IndexState(devices: [Sample.device(auto, autostart: true)], parents: [Self.withoutTheType], domains: [])
        let cfg = fastConfig { $0.restore.autostartGracePeriod = .milliseconds(300) }
        try await PolicyHarness.run(initial: initial, previous: PersistedState(bootID: "previous-boot", active: []), config: cfg) { h in
            // The parent exists from the start: a grace counted from then would end less than 300 ms after the
            // type appears.
            #expect(await eventually { h.log.records.contains { $0.uuid == auto && $0.message.contains("to offer type") } })
            let registered = ContinuousClock.now
            await h.index.mutate { $0.upsertParent(Sample.parentDevice()) }
            #expect(await eventually { h.count("success") == 1 })
            let start = try #require(h.actions.calls.first)
            #expect(start.time - registered >= .milliseconds(300), "started \(start.time - registered) after the type appeared")
        }
    }

    /// `wait_for_type: false`: once the parent device exists, the restore tries, and a refused start is a
    /// failure retried on the backoff (for a driver whose types libvirt does not show).
    @Test func waitForTypeOffTriesOnceTheParentExists() async throws {
        let initial = IndexState(devices: [Sample.device(owned)], parents: [Self.withoutTheType], domains: [])
        let cfg = fastConfig { $0.restore.waitForType = false }
        try await PolicyHarness.run(initial: initial, previous: previous, config: cfg, failTimes: .max) { h in
            #expect(await eventually { h.count("gave_up") == 1 })
            #expect(h.actions.checkedParents.contains(Sample.parent))
            #expect(h.count("failure") >= 2)
            #expect(h.metrics.waiting.isEmpty)
        }
    }
}
