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
        defer {
            LibvirtHost.virsh("undefine", domain)
            LibvirtHost.cleanup(uuid: uuid)
        }
        let stateDir = try PolicyTempDir()
        defer { stateDir.remove() }
        var config = PolicyConfig()
        config.restore.enabled = false
        let log = LogCapture()

        // Read-write: libvirt 9.0 refuses virNodeDeviceGetAutostart on a read-only connection, which
        // breaks a read-only Monitor's sync whenever any persistent mdev exists. That is a Monitor issue,
        // covered by the read-only runs in PolicyRestoreTests.dryRunAttemptsNothing and StateFileCrashTests.
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

            // Defining the mdev (not starting it) turns one reference into "inactive".
            _ = try LibvirtHost.define(uuid: uuid)
            #expect(await eventually(timeout: .seconds(30)) { problems().first { $0.uuid == uuid }?.reason == .inactive }, "got \(problems())")
            #expect(problems().first { $0.uuid == missing }?.reason == .missing)
            #expect(await eventually(timeout: .seconds(30)) { logged(.referenceProblem).count == 3 })
            let changed = try #require(logged(.referenceProblem).last)
            #expect(changed.value(LogKey.mdevUUID) == uuid && changed.value("reason") == "inactive")
            #expect(logged(.referenceResolved).isEmpty, "a reason change is not a resolution")

            // Undefining the domain clears both, once each, at notice.
            #expect(LibvirtHost.virsh("undefine", domain).status == 0)
            #expect(await eventually(timeout: .seconds(30)) { problems().isEmpty }, "not cleared: \(problems())")
            #expect(await eventually(timeout: .seconds(30)) { logged(.referenceResolved).count == 2 })
            let resolved = logged(.referenceResolved)
            #expect(resolved.allSatisfy { $0.level == .notice })
            #expect(Set(resolved.compactMap { $0.value(LogKey.mdevUUID) }) == [uuid, missing])

            // No repeats when unrelated things happen afterwards.
            #expect(LibvirtHost.virsh("nodedev-undefine", LibvirtHost.mdevName(uuid: uuid)).status == 0)
            #expect(await eventually(timeout: .seconds(30)) { monitor.device(uuid: uuid) == nil })
            try await Task.sleep(for: .milliseconds(300))
            #expect(logged(.referenceProblem).count == 3)
            #expect(logged(.referenceResolved).count == 2)
        }
    }
}
