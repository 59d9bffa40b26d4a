import Foundation
import Monitor
@testable import Policy
import TestSupport
import Testing

/// A remote libvirt host reboots while mdevmon keeps running: the reconnect's resync, not a start-up,
/// brings the news, and the restore acts on it as it would at start-up.
@Suite struct PolicyServiceRemoteRebootTests {
    let persistent = Sample.uuid()
    let transient = Sample.uuid()
    let stopped = Sample.uuid()
    let booted = Int(Date().timeIntervalSince1970) - 86_400

    /// Before: a persistent device and a transient one active, a third defined and inactive.
    var before: IndexState {
        .with([Sample.device(persistent, active: true), Sample.device(transient, active: true, persistent: false),
               Sample.device(stopped)])
    }
    /// After the host's reboot: the persistent ones inactive, the transient one gone.
    var after: IndexState { .with([Sample.device(persistent), Sample.device(stopped)]) }

    func reconnect(_ h: PolicyHarness, bootTime: Int, state: IndexState) async {
        await h.index.markDisconnected(reason: "keepalive timed out")
        await h.index.recordConnect(host: WatchedHost(hostname: "kvmz01", boot: .estimated(bootTime: bootTime)), reconnect: true)
        await h.index.replace(with: state)
    }

    @Test func aRebootSeenAtReconnectRestoresWhatItDeactivated() async throws {
        let config = fastConfig { $0.restore.recreateTransient = true }
        try await PolicyHarness.run(initial: before, config: config,
                                    bootID: HostBoot.estimated(bootTime: booted).persisted) { h in
            #expect(await h.consumedSoFar())
            #expect(h.actions.calls.isEmpty, "nothing to restore at start-up: no state file")
            let rebootedAt = Int(Date().timeIntervalSince1970) - 90
            await reconnect(h, bootTime: rebootedAt, state: after)

            #expect(await eventually { h.count("success") == 1 && h.count("success", action: "create") == 1 })
            let calls = h.actions.calls
            #expect(calls.filter { $0.action == "start" }.map(\.argument) == [Sample.name(persistent)])
            #expect(calls.filter { $0.action == "create" }.count == 1)
            #expect(calls.allSatisfy { !$0.argument.contains(stopped) }, "a device inactive before the reboot stays inactive")
            let notice = try #require(h.log.records.map(\.message).first { $0.contains("rebooted while libvirt was unreachable") })
            #expect(notice.contains("host kvmz01 rebooted") && notice.contains("2 mdevs to restore"))
            // The state file now names the new boot.
            #expect(await eventually { h.saved?.bootID == HostBoot.estimated(bootTime: rebootedAt).persisted })
        }
    }

    @Test func aReconnectInTheSameBootRestoresNothing() async throws {
        try await PolicyHarness.run(initial: before, bootID: HostBoot.estimated(bootTime: booted).persisted) { h in
            #expect(await h.consumedSoFar())
            // libvirtd restarted, the host did not; an operator stopped the device meanwhile. The estimate
            // moved a little, within the tolerance.
            await reconnect(h, bootTime: booted + 40, state: after)
            #expect(await h.consumedSoFar())
            #expect(h.actions.calls.isEmpty)
            #expect(!h.log.records.contains { $0.message.contains("rebooted") })
            #expect(h.metrics.pending["restore"] ?? 0 == 0)
        }
    }

    /// Between a resync that found a reboot and the policy planning for it, the index already holds the
    /// emptied active set: written under the old boot, the next start would find nothing to restore.
    @Test func theStateFileWaitsForTheNewBootToBePlanned() {
        let old = HostBoot.estimated(bootTime: booted).persisted
        var snapshot = IndexSnapshot(state: after, status: MonitorStatus(uri: "qemu+tls://kvmz01/system"))
        snapshot.status.synced = true
        snapshot.status.host = WatchedHost(hostname: "kvmz01", boot: .estimated(bootTime: booted + 86_400))
        #expect(PolicyService.persisted(snapshot, plannedBoot: old, pending: []) == nil)
        // Planned for: written, under the new boot.
        let new = HostBoot.estimated(bootTime: booted + 86_400).persisted
        #expect(PolicyService.persisted(snapshot, plannedBoot: new, pending: [])?.bootID == new)
        // Stale: never written.
        snapshot.status.synced = false
        #expect(PolicyService.persisted(snapshot, plannedBoot: new, pending: []) == nil)
        // A connection that reports no boot (tests, an old libvirt): the planned one.
        snapshot.status.synced = true
        snapshot.status.host = nil
        #expect(PolicyService.persisted(snapshot, plannedBoot: old, pending: [])?.bootID == old)
    }
}
