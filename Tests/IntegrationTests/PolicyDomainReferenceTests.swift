import Foundation
import Logging
import Monitor
import Policy
import TestSupport
import Testing

/// Domain reference problems from the real libvirtd's domains and node devices.
@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct PolicyDomainReferenceTests {
    @Test func problemsAppearChangeAndClearWithTheDomain() async throws {
        let uuid = LibvirtHost.newUUID()
        let missing = LibvirtHost.newUUID()
        let domain = "mdevmon-policy-test-\(UUID().uuidString.prefix(8).lowercased())"
        let marker = domain + "-marker"
        defer {
            LibvirtHost.virsh("undefine", domain)
            LibvirtHost.virsh("undefine", marker)
            LibvirtHost.cleanup(uuid: uuid)
        }
        let stateDir = try TemporaryDirectory()
        defer { stateDir.remove() }
        var config = PolicyConfig()
        config.restore.enabled = false
        let log = LogCapture()

        // Read-write: libvirt 9.0 refuses virNodeDeviceGetAutostart on a read-only connection, which
        // breaks a read-only Monitor's sync whenever any persistent mdev exists. That is a Monitor issue,
        // covered by the read-only runs in PolicyRestoreTests.dryRunAttemptsNothingAndKeepsThePlanForRealMode and StateFileCrashTests.
        try await withPolicy(config: config, readOnly: false, stateDir: stateDir.path, log: log) { monitor, policy in
            await monitor.waitForFirstSync()
            func problems() -> [ReferenceProblem] { policy.metrics.snapshot.problems.filter { $0.domain == domain } }
            func logged(_ event: Monitor.MessageID) -> [LogRecord] {
                log.records(event).filter { $0.value(LogKey.domainName) == domain }
            }

            // Both referenced mdevs are missing at first.
            try LibvirtHost.defineDomain(name: domain, mdevUUIDs: [uuid, missing])
            let bothMissing = [uuid, missing].sorted().map {
                ReferenceProblem(domain: domain, uuid: $0, reason: .missing, domainAutostart: false)
            }
            #expect(await eventually(timeout: .seconds(30)) { problems() == bothMissing }, "got \(problems())")
            #expect(await eventually(timeout: .seconds(30)) { logged(.referenceProblem).count == 2 })
            for record in logged(.referenceProblem) {
                #expect(record.level == .warning)
                #expect(record.value("reason") == "missing")
                #expect([uuid, missing].contains(record.value(LogKey.mdevUUID) ?? ""))
            }

            // Defining the mdev (not starting it) on this host's PCI parent: libvirt files it under that
            // real device, which offers no mdev types (no vendor driver here), so starting it could not
            // succeed: its type is not offered, not merely inactive (issues 16 and 23).
            _ = try LibvirtHost.define(uuid: uuid)
            #expect(await eventually(timeout: .seconds(30)) { problems().first { $0.uuid == uuid }?.reason == .typeNotOffered }, "got \(problems())")
            #expect(monitor.device(uuid: uuid)?.parent == LibvirtHost.pciParent.name)
            #expect(problems().first { $0.uuid == missing }?.reason == .missing)
            #expect(await eventually(timeout: .seconds(30)) { logged(.referenceProblem).count == 3 })
            let changed = try #require(logged(.referenceProblem).last)
            #expect(changed.value(LogKey.mdevUUID) == uuid && changed.value("reason") == "type_not_offered")
            #expect(logged(.referenceResolved).isEmpty, "a reason change is not a resolution")
            let listed = try #require(DomainListing(monitor.index.snapshot.state).domains.first { $0.name == domain })
            #expect(listed.startable == false)
            // In the domain's document order.
            #expect(listed.blockers.map(\.uuid) == [uuid, missing])
            #expect(listed.blockers.map(\.reason) == ["type_not_offered", "missing"])

            // Undefining the domain clears both, once each, at notice.
            #expect(LibvirtHost.virsh("undefine", domain).status == 0)
            #expect(await eventually(timeout: .seconds(30)) { problems().isEmpty }, "not cleared: \(problems())")
            #expect(await eventually(timeout: .seconds(30)) { logged(.referenceResolved).count == 2 })
            let resolved = logged(.referenceResolved)
            #expect(resolved.allSatisfy { $0.level == .notice })
            #expect(Set(resolved.compactMap { $0.value(LogKey.mdevUUID) }) == [uuid, missing])

            // No repeats when unrelated things happen afterwards. A second domain referencing a missing mdev
            // is the marker: once its problem is logged, the policy has consumed every earlier change.
            #expect(LibvirtHost.virsh("nodedev-undefine", LibvirtHost.mdevName(uuid: uuid)).status == 0)
            #expect(await eventually(timeout: .seconds(30)) { monitor.device(uuid: uuid) == nil })
            try LibvirtHost.defineDomain(name: marker, mdevUUIDs: [missing])
            #expect(await eventually(timeout: .seconds(30)) {
                log.records(.referenceProblem).contains { $0.value(LogKey.domainName) == marker }
            })
            #expect(logged(.referenceProblem).count == 3)
            #expect(logged(.referenceResolved).count == 2)
        }
    }
}
