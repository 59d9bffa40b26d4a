@testable import Exporter
import Foundation
import Monitor
@testable import Policy
import PolicyExporter
import Testing

extension Fixtures {
    static let problemDomain = "vm \"q\" \\ <b>\nx"
    static let orphan = "33333333-3333-4333-8333-333333333333"

    /// One policy contributor for renders that only read it (its reload timestamp is fixed at creation).
    static let policy = makePolicy()

    /// The daemon's own policy contributor: two failed restores and one that succeeded, one still pending
    /// (waiting for its parent to offer its type), and one reference problem on the small snapshot's domain.
    static func makePolicy() -> PolicyExport {
        let metrics = PolicyMetrics()
        metrics.count(policy: "restore", action: "start", result: "failure")
        metrics.count(policy: "restore", action: "start", result: "failure")
        metrics.count(policy: "restore", action: "start", result: "success")
        metrics.setPending("restore", 1)
        let waiting = RestoreWaiting(uuid: "66666666-6666-4666-8666-666666666666", parent: "pci_0000_af_00_0", mdevType: "nvidia-63", reason: .type)
        metrics.setWaiting(MdevKey(uuid: waiting.uuid, parent: waiting.parent), waiting)
        metrics.setProblems([ReferenceProblem(domain: problemDomain, uuid: "22222222-2222-4222-8222-222222222222",
                                              reason: .inactive, domainAutostart: false)], enabled: true)
        return PolicyExport(metrics: metrics)
    }

    /// The small snapshot plus an active mdev no domain references.
    static func smallWithOrphan() -> IndexSnapshot {
        var snapshot = small()
        _ = snapshot.state.upsertDevice(
            Sample.device(orphan, active: true, persistent: true, autostart: false).definition,
            flags: DeviceFlags(active: true, persistent: true, autostart: false))
        return snapshot
    }
}

/// `PolicyExport`, the contributor the daemon registers, rendered through the exporter's writer (which
/// sorts families by name).
@Suite struct PolicyExportTests {
    static let timestampFamily = "mdev_config_last_reload_success_timestamp_seconds"

    @Test func exactFamilies() throws {
        let export = Fixtures.makePolicy()
        var writer = MetricsWriter()
        export.contribute(to: &writer, snapshot: Fixtures.smallWithOrphan())
        var lines = text(writer.finish()).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)

        // The one wall-clock value: checked against the metrics, then left out of the exact comparison.
        let stamp = try #require(lines.firstIndex { $0.hasPrefix(Self.timestampFamily + " ") })
        let value = try #require(Double(lines[stamp].dropFirst(Self.timestampFamily.count + 1)))
        #expect(abs(value - export.metrics.snapshot.lastReloadSuccess) < 0.001)
        lines[stamp] = Self.timestampFamily + " T"

        #expect(lines.joined(separator: "\n") == #"""
            # HELP mdev_config_last_reload_success_timestamp_seconds When the configuration was last loaded successfully, in seconds since the epoch.
            # TYPE mdev_config_last_reload_success_timestamp_seconds gauge
            mdev_config_last_reload_success_timestamp_seconds T
            # HELP mdev_config_last_reload_successful 1 when the last load of the configuration file (start-up or SIGHUP) succeeded; 0 while an invalid file is ignored.
            # TYPE mdev_config_last_reload_successful gauge
            mdev_config_last_reload_successful 1
            # HELP mdev_device_orphaned 1 for an active mdev that no defined domain references and no running domain uses.
            # TYPE mdev_device_orphaned gauge
            mdev_device_orphaned{uuid="33333333-3333-4333-8333-333333333333",parent="pci_0000_3b_00_0"} 1
            # HELP mdev_domain_autostart 1 when a defined domain that references mdevs starts at host boot, else 0.
            # TYPE mdev_domain_autostart gauge
            mdev_domain_autostart{domain="vm \"q\" \\ <b>\nx"} 0
            # HELP mdev_domain_reference_problem 1 while a defined domain could not start because of an mdev it references; reason: missing, inactive, no_capacity (inactive, parent has no instance of its type left), type_not_offered (inactive, parent does not offer its type: its driver has not registered it), parent_missing, in_use (held by another running domain), restoring (the restore policy is bringing it back now).
            # TYPE mdev_domain_reference_problem gauge
            mdev_domain_reference_problem{domain="vm \"q\" \\ <b>\nx",uuid="22222222-2222-4222-8222-222222222222",reason="inactive"} 1
            # HELP mdev_domain_startable 1 when every mdev a defined domain references is ready for it to start now (active and not held by another running domain), else 0.
            # TYPE mdev_domain_startable gauge
            mdev_domain_startable{domain="vm \"q\" \\ <b>\nx"} 0
            # HELP mdev_policy_actions_total Policy actions taken, by policy, action (start, create) and result (success, failure, gave_up, skipped, dry_run).
            # TYPE mdev_policy_actions_total counter
            mdev_policy_actions_total{policy="restore",action="create",result="dry_run"} 0
            mdev_policy_actions_total{policy="restore",action="create",result="failure"} 0
            mdev_policy_actions_total{policy="restore",action="create",result="gave_up"} 0
            mdev_policy_actions_total{policy="restore",action="create",result="skipped"} 0
            mdev_policy_actions_total{policy="restore",action="create",result="success"} 0
            mdev_policy_actions_total{policy="restore",action="start",result="dry_run"} 0
            mdev_policy_actions_total{policy="restore",action="start",result="failure"} 2
            mdev_policy_actions_total{policy="restore",action="start",result="gave_up"} 0
            mdev_policy_actions_total{policy="restore",action="start",result="skipped"} 0
            mdev_policy_actions_total{policy="restore",action="start",result="success"} 1
            # HELP mdev_policy_pending Devices a policy still plans to act on (waiting for a parent, retrying, or held until a reload by a dry run or by ownership).
            # TYPE mdev_policy_pending gauge
            mdev_policy_pending{policy="restore"} 1
            # HELP mdev_restore_waiting 1 while a planned restore waits, before its first attempt, for its parent: for=parent (libvirt files the mdev under its placeholder parent: the device is not there), type (no parent offers the mdev's type: its driver has not registered it, or the device is not there), instance (no instance of the type is available).
            # TYPE mdev_restore_waiting gauge
            mdev_restore_waiting{uuid="66666666-6666-4666-8666-666666666666",parent="pci_0000_af_00_0",mdev_type="nvidia-63",for="type"} 1

            """#)
    }

    /// Startable comes from the policy's evaluations, not from the newest snapshot: a domain defined a
    /// moment ago, not yet judged, has no series rather than a startable 1.
    @Test func aDomainNotYetEvaluatedIsNotStartable() {
        let export = Fixtures.makePolicy()
        var snapshot = Fixtures.small()
        _ = snapshot.state.upsertDomain(DomainInfo(name: "vm-new", uuid: "44444444-4444-4444-8444-444444444444", active: false,
                                               persistent: true, autostart: true, mdevUUIDs: ["55555555-5555-4555-8555-555555555555"]))
        var writer = MetricsWriter()
        export.contribute(to: &writer, snapshot: snapshot)
        let body = text(writer.finish())
        #expect(!body.contains("vm-new"), "a domain the policy never evaluated was exported")
        #expect(body.split(separator: "\n").filter { $0.hasPrefix("mdev_domain_startable{") }.count == 1, "only the evaluated domain")
    }

    @Test func aFailedReloadReadsZero() {
        let export = Fixtures.makePolicy()
        export.metrics.recordReload(success: false)
        var writer = MetricsWriter()
        export.contribute(to: &writer, snapshot: Fixtures.small())
        #expect(text(writer.finish()).contains("\nmdev_config_last_reload_successful 0\n"))
    }

    @Test func landingSectionsListWaitingRestoresAndProblemsWhileEnabled() {
        let export = Fixtures.makePolicy()
        let sections = export.landingSections(snapshot: Fixtures.small())
        let waiting = LandingSection(
            title: "Restores waiting for their parent",
            columns: ["mdev UUID", "Parent", "Type", "Waiting for"],
            rows: [["66666666-6666-4666-8666-666666666666", "pci_0000_af_00_0", "nvidia-63", "type"]],
            emptyText: "")
        #expect(sections == [waiting, LandingSection(
            title: "Domains that could not start now",
            columns: ["Domain", "mdev UUID", "Reason", "Held by", "Domain autostart"],
            rows: [[Fixtures.problemDomain, "22222222-2222-4222-8222-222222222222", "inactive", "-", "no"]],
            emptyText: "Every defined domain could start now: its mdevs exist, are active and free.")])
        export.metrics.setProblems([], enabled: false)
        #expect(export.landingSections(snapshot: Fixtures.small()) == [waiting])
        export.metrics.setWaiting(MdevKey(uuid: "66666666-6666-4666-8666-666666666666", parent: "pci_0000_af_00_0"), nil)
        #expect(export.landingSections(snapshot: Fixtures.small()).isEmpty)
    }

    /// The orphan list is kept per index generation: every mutation must still show in the next scrape.
    @Test func orphansFollowEveryMutationOfTheIndex() async {
        let export = Fixtures.makePolicy()
        let index = DeviceIndex(uri: "test:///orphans")
        func orphaned() -> [String] {
            var writer = MetricsWriter()
            export.contribute(to: &writer, snapshot: index.snapshot)
            return text(writer.finish()).split(separator: "\n").filter { $0.hasPrefix("mdev_device_orphaned{") }.map(String.init)
        }
        let device = Sample.device(Fixtures.orphan, active: true, persistent: true, autostart: false)
        let line = #"mdev_device_orphaned{uuid="\#(Fixtures.orphan)",parent="pci_0000_3b_00_0"} 1"#
        await index.replace(with: IndexState(devices: [device], parents: [], domains: [
            DomainInfo(name: "vm", uuid: "", active: false, persistent: true, autostart: false, mdevUUIDs: [Fixtures.orphan]),
        ]))
        #expect(orphaned() == [])
        #expect(orphaned() == [])
        await index.mutate { $0.removeDomain(named: "vm") }
        #expect(orphaned() == [line])
        #expect(orphaned() == [line])
        await index.mutate { $0.upsertDevice(device.definition, flags: DeviceFlags(active: false, persistent: true, autostart: false)) }
        #expect(orphaned() == [])
    }
}
