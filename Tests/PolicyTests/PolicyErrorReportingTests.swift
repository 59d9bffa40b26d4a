import Foundation
import Monitor
import Policy
import Synchronization
import TestSupport
import Testing

/// A libvirt error is reported as itself, with libvirt's own code, never disguised as something else.
@Suite struct PolicyErrorReportingTests {
    /// Checking the parent (`wait_for_type: false` asks libvirt whether it exists) fails with a libvirt
    /// error: the journal says so (not "waiting for the parent"), and the restore goes on once the parent
    /// appears.
    @Test func aFailedParentCheckIsReportedAsThatError() async throws {
        let uuid = Sample.uuid()
        let initial = IndexState.with([Sample.device(uuid)], parents: [])
        let previous = PersistedState(bootID: "previous-boot", active: [Sample.saved(uuid)])
        let calls = Mutex(0)
        let hooks: (DeviceIndex) -> FakeDeviceActions.Hooks = { index in
            FakeDeviceActions.Hooks(exists: { name in
                let n = calls.withLock { c in c += 1; return c }
                if n == 1 {
                    throw LibvirtError(code: LibvirtError.Code.rpc, domain: 7, message: "Cannot recv data: Connection reset by peer",
                                       operation: "look up node device", object: name)
                }
                return index.snapshot.state.parents[name] != nil
            })
        }
        try await PolicyHarness.run(initial: initial, previous: previous, config: fastConfig { $0.restore.waitForType = false },
                                    hooks: hooks) { h in
            #expect(await eventually { h.log.records.contains { $0.message.contains("cannot check whether parent") } })
            let warning = try #require(h.log.records.first { $0.message.contains("cannot check whether parent") })
            #expect(warning.level == .warning)
            #expect(warning.message.contains("Cannot recv data: Connection reset by peer"))
            #expect(warning.value(LogKey.libvirtErrorCode) == String(LibvirtError.Code.rpc))
            #expect(warning.uuid == uuid)

            await h.index.mutate { $0.upsertParent(Sample.parentDevice()) }
            #expect(await eventually { h.count("success") == 1 })
            #expect(h.actions.startCalls == [Sample.name(uuid)])
        }
    }

    /// A refused start names libvirt's message and code in the journal fields.
    @Test func aRefusedStartCarriesLibvirtsCode() async throws {
        let uuid = Sample.uuid()
        let initial = IndexState.with([Sample.device(uuid)])
        let previous = PersistedState(bootID: "previous-boot", active: [Sample.saved(uuid)])
        let refusal: @Sendable () -> any Error = {
            LibvirtError(code: 1, domain: 50, message: "internal error: Unable to start mediated device 'mdev_x'",
                         operation: "start node device", object: "mdev_x")
        }
        try await PolicyHarness.run(initial: initial, previous: previous, failTimes: .max,
                                    hooks: { _ in FakeDeviceActions.Hooks(failure: refusal) }) { h in
            #expect(await eventually { h.count("gave_up") == 1 })
            let gaveUp = try #require(h.log.records(.restoreGaveUp, uuid: uuid).first)
            #expect(gaveUp.message.contains("Unable to start mediated device 'mdev_x'"))
            #expect(gaveUp.value(LogKey.error) == "internal error: Unable to start mediated device 'mdev_x'")
            #expect(gaveUp.value(LogKey.libvirtErrorCode) == "1")
            #expect(gaveUp.value(LogKey.libvirtErrorDomain) == "50")
            let retried = try #require(h.log.records(.restoreFailed, uuid: uuid).first)
            #expect(retried.value(LogKey.libvirtErrorCode) == "1")
        }
    }
}
