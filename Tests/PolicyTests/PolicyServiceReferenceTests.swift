import Foundation
import Logging
import Monitor
import Policy
import TestSupport
import Testing

/// Domain reference problems are logged once when they appear and once when they clear.
@Suite struct PolicyServiceReferenceTests {
    let inactive = Sample.uuid()
    let missing = Sample.uuid()
    let unrelated = Sample.uuid()

    var initial: IndexState {
        .with([Sample.device(inactive)], domains: [
            Sample.domain("vm-warn", uuids: [inactive]),
            Sample.domain("vm-boot", uuids: [missing], autostart: true),
        ])
    }

    @Test func loggedOnceAtWarningOrErrorAndClearedOnceAtNotice() async throws {
        try await PolicyHarness.run(initial: initial, config: fastConfig { $0.restore.enabled = false }) { h in
            #expect(await eventually { h.log.records(.referenceProblem).count == 2 })
            let problems = h.log.records(.referenceProblem)
            let warn = try #require(problems.first { $0.domain == "vm-warn" })
            #expect(warn.level == .warning)
            #expect(warn.uuid == inactive)
            #expect(warn.metadata["reason"] == "inactive")
            #expect(warn.message == "domain vm-warn references mdev \(inactive) but the mdev is not active")
            let boot = try #require(problems.first { $0.domain == "vm-boot" })
            #expect(boot.level == .error, "an autostart domain will fail at the next boot")
            #expect(boot.uuid == missing)
            #expect(boot.metadata["reason"] == "missing")
            #expect(boot.message.contains("no such mdev exists; the domain autostarts"))
            #expect(h.metrics.problems == [
                ReferenceProblem(domain: "vm-boot", uuid: missing, reason: .missing, domainAutostart: true),
                ReferenceProblem(domain: "vm-warn", uuid: inactive, reason: .inactive, domainAutostart: false),
            ])
            #expect(h.metrics.referencesEnabled)

            // Unrelated changes re-evaluate but must not repeat anything.
            await h.index.mutate { $0.upsertDevice(Sample.definition(unrelated), flags: DeviceFlags(active: true, persistent: true, autostart: false)) }
            await h.index.mutate { $0.upsertParent(Sample.parentDevice(Sample.otherParent)) }
            await h.index.mutate { $0.upsertDomain(Sample.domain("vm-fine", uuids: [unrelated])) }

            // The inactive mdev starts: resolved, once.
            await h.index.mutate { $0.upsertDevice(Sample.definition(inactive), flags: DeviceFlags(active: true, persistent: true, autostart: false)) }
            #expect(await eventually { h.log.records(.referenceResolved).count == 1 })
            let resolved = try #require(h.log.records(.referenceResolved).first)
            #expect(resolved.level == .notice)
            #expect(resolved.domain == "vm-warn" && resolved.uuid == inactive)
            #expect(h.log.records(.referenceProblem).count == 2, "unrelated changes repeated a problem")
            #expect(h.metrics.problems.map(\.domain) == ["vm-boot"])

            // The autostart domain is undefined: resolved, once.
            await h.index.mutate { $0.removeDomain(named: "vm-boot") }
            #expect(await eventually { h.log.records(.referenceResolved).count == 2 })
            let cleared = h.log.records(.referenceResolved)[1]
            #expect(cleared.domain == "vm-boot" && cleared.uuid == missing)
            #expect(h.metrics.problems.isEmpty)

            // More unrelated churn, then a marker change we can wait for: still nothing repeated.
            await h.index.mutate { $0.upsertDevice(Sample.definition(unrelated), flags: DeviceFlags(active: false, persistent: true, autostart: false)) }
            await h.index.mutate { $0.upsertDomain(Sample.domain("vm-marker", uuids: [missing])) }
            #expect(await eventually { h.log.records(.referenceProblem).count == 4 })
            #expect(Set(h.log.records(.referenceProblem).suffix(2).compactMap(\.domain)) == ["vm-fine", "vm-marker"])
            #expect(h.log.records(.referenceResolved).count == 2)
        }
    }

    @Test func reasonChangeIsReportedAgainButNotAsResolved() async throws {
        try await PolicyHarness.run(initial: initial, config: fastConfig { $0.restore.enabled = false }) { h in
            #expect(await eventually { h.log.records(.referenceProblem).count == 2 })
            // The missing mdev gets defined, still inactive: the problem changes reason.
            await h.index.mutate { $0.upsertDevice(Sample.definition(missing), flags: DeviceFlags(active: false, persistent: true, autostart: false)) }
            #expect(await eventually { h.log.records(.referenceProblem).count == 3 })
            let changed = try #require(h.log.records(.referenceProblem).last)
            #expect(changed.domain == "vm-boot" && changed.metadata["reason"] == "inactive" && changed.level == .error)
            #expect(h.log.records(.referenceResolved).isEmpty, "a problem that only changed reason was logged as resolved")
            #expect(h.metrics.problems.first { $0.domain == "vm-boot" }?.reason == .inactive)
        }
    }

    @Test func disabledPolicyReportsNothingUntilEnabled() async throws {
        let cfg = fastConfig {
            $0.restore.enabled = false
            $0.domainReferences.enabled = false
        }
        try await PolicyHarness.run(initial: initial, config: cfg) { h in
            #expect(await eventually { h.saved != nil })
            #expect(h.log.records(.referenceProblem).isEmpty)
            #expect(h.metrics.problems.isEmpty)
            #expect(!h.metrics.referencesEnabled)

            var on = cfg
            on.domainReferences.enabled = true
            h.service.update(config: on)
            #expect(h.log.records(.referenceProblem).count == 2)
            #expect(h.metrics.problems.count == 2)
            #expect(h.metrics.referencesEnabled)
        }
    }

    /// A reboot of a healthy host: the autostart domain's mdev is being restored, so its blocker is
    /// `restoring` (journaled at info), never an error that the restore resolves seconds later; once the
    /// device is up the domain is startable, and nothing was written at warning or above.
    @Test func aRestoreUnderWayIsNoAlarm() async throws {
        let restored = Sample.uuid()
        let initial = IndexState.with([Sample.device(restored)], domains: [Sample.domain("vm-gpu", uuids: [restored], autostart: true)])
        let previous = PersistedState(bootID: "previous-boot", active: [Sample.saved(restored)])
        try await PolicyHarness.run(initial: initial, previous: previous, hooks: { index in
            .init(beforeAction: { _ in
                // libvirt's event for the start.
                await index.mutate { $0.upsertDevice(Sample.definition(restored), flags: DeviceFlags(active: true, persistent: true, autostart: false)) }
            })
        }) { h in
            #expect(await eventually { h.log.records(.restoreSucceeded).count == 1 })
            #expect(await eventually { h.log.records(.referenceResolved).count == 1 }, "the restoring blocker never cleared")
            #expect(h.metrics.problems.isEmpty)
            #expect(h.metrics.verdicts["vm-gpu"]?.startable == true)
            let reported = h.log.records(.referenceProblem)
            #expect(reported.count == 1)
            #expect(reported.first?.metadata["reason"] == "restoring" && reported.first?.level == .info, "\(reported)")
            #expect(h.log.records(.referenceResolved).first?.level == .info)
            #expect(h.log.records(atLeast: .warning).isEmpty, "a healthy reboot wrote \(h.log.records(atLeast: .warning).map(\.message))")
        }
    }

    /// A restore that gives up leaves the domain with the real blocker, at error level for an autostart
    /// domain: `restoring` hides nothing once nothing is restoring.
    @Test func aRestoreThatGivesUpUncoversTheRealBlocker() async throws {
        let broken = Sample.uuid()
        let initial = IndexState.with([Sample.device(broken)], domains: [Sample.domain("vm-gpu", uuids: [broken], autostart: true)])
        let previous = PersistedState(bootID: "previous-boot", active: [Sample.saved(broken)])
        try await PolicyHarness.run(initial: initial, previous: previous, failTimes: .max) { h in
            #expect(await eventually { h.count("gave_up") == 1 })
            #expect(await eventually { h.metrics.problems.first?.reason == .inactive })
            let reported = h.log.records(.referenceProblem)
            #expect(reported.map { $0.metadata["reason"] } == ["restoring", "inactive"])
            #expect(reported.last?.level == .error)
            #expect(h.log.records(.referenceResolved).isEmpty, "a reason change is not a resolution")
        }
    }
}
