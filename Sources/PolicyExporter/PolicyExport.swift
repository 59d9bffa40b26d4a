public import Exporter
public import Monitor
public import Policy
import Synchronization

/// Publishes the policies' state through the exporter (which must not depend on Policy). It lives in
/// its own small module, between the two, so the daemon and the tests use the same one.
public struct PolicyExport: MetricsContributor, LandingContributor {
    public let metrics: PolicyMetrics
    private let orphans = OrphanCache()

    public init(metrics: PolicyMetrics) { self.metrics = metrics }

    public func contribute(to writer: inout MetricsWriter, snapshot: IndexSnapshot) {
        let s = metrics.snapshot
        writer.family("mdev_policy_actions_total", type: .counter,
                      help: "Policy actions taken, by policy, action (start, create) and result (success, failure, gave_up, skipped, dry_run).")
        for (key, value) in s.actions.sorted(by: { $0.key < $1.key }) {
            writer.sample("mdev_policy_actions_total",
                          labels: ["policy": key.policy, "action": key.action, "result": key.result], value: value)
        }
        writer.family("mdev_policy_pending", type: .gauge, help: "Devices a policy still plans to act on (waiting for a parent, retrying, or held until a reload by a dry run or by ownership).")
        for (policy, value) in s.pending.sorted(by: { $0.key < $1.key }) {
            writer.sample("mdev_policy_pending", labels: ["policy": policy], value: value)
        }
        writer.family("mdev_restore_waiting", type: .gauge,
                      help: "1 while a planned restore waits, before its first attempt, for its parent: for=parent (libvirt files the mdev under its placeholder parent: the device is not there), type (no parent offers the mdev's type: its driver has not registered it, or the device is not there), instance (no instance of the type is available).")
        for w in s.waiting.values.sorted() {
            writer.sample("mdev_restore_waiting", labels: ["uuid": w.uuid, "parent": w.parent, "mdev_type": w.mdevType, "for": w.reason.rawValue], value: 1)
        }
        writer.family("mdev_config_last_reload_successful", type: .gauge,
                      help: "1 when the last load of the configuration file (start-up or SIGHUP) succeeded; 0 while an invalid file is ignored.")
        writer.sample("mdev_config_last_reload_successful", value: s.reloadSuccessful ? 1 : 0)
        writer.family("mdev_config_last_reload_success_timestamp_seconds", type: .gauge,
                      help: "When the configuration was last loaded successfully, in seconds since the epoch.")
        writer.sample("mdev_config_last_reload_success_timestamp_seconds", value: s.lastReloadSuccess)
        writer.family("mdev_domain_reference_problem", type: .gauge,
                      help: "1 while a defined domain could not start because of an mdev it references; reason: missing, inactive, no_capacity (inactive, parent has no instance of its type left), type_not_offered (inactive, parent does not offer its type: its driver has not registered it), parent_missing, in_use (held by another running domain), restoring (the restore policy is bringing it back now).")
        for p in s.problems {
            writer.sample("mdev_domain_reference_problem",
                          labels: ["domain": p.domain, "uuid": p.uuid, "reason": p.reason.rawValue], value: 1)
        }
        // Startable, blockers and autostart come from the same evaluations: a domain defined a moment ago
        // appears once the policy has judged it, never as startable before.
        let verdicts = s.sortedVerdicts
        if s.referencesEnabled {
            writer.family("mdev_domain_startable", type: .gauge,
                          help: "1 when every mdev a defined domain references is ready for it to start now (active and not held by another running domain), else 0.")
            for (domain, verdict) in verdicts {
                writer.sample("mdev_domain_startable", labels: ["domain": domain], value: verdict.startable ? 1 : 0)
            }
        }
        writer.family("mdev_domain_autostart", type: .gauge,
                      help: "1 when a defined domain that references mdevs starts at host boot, else 0.")
        for (domain, verdict) in verdicts {
            writer.sample("mdev_domain_autostart", labels: ["domain": domain], value: verdict.autostart ? 1 : 0)
        }
        writer.family("mdev_device_orphaned", type: .gauge, help: "1 for an active mdev that no defined domain references and no running domain uses.")
        for d in orphans.devices(of: snapshot) {
            writer.sample("mdev_device_orphaned", labels: ["uuid": d.uuid, "parent": d.parent], value: 1)
        }
    }

    public func landingSections(snapshot: IndexSnapshot) -> [LandingSection] {
        let s = metrics.snapshot
        var sections: [LandingSection] = []
        if !s.waiting.isEmpty {
            sections.append(LandingSection(
                title: "Restores waiting for their parent",
                columns: ["mdev UUID", "Parent", "Type", "Waiting for"],
                rows: s.waiting.values.sorted().map { [$0.uuid, $0.parent, $0.mdevType, $0.reason.rawValue] },
                emptyText: ""))
        }
        guard s.referencesEnabled else { return sections }
        return sections + [LandingSection(
            title: "Domains that could not start now",
            columns: ["Domain", "mdev UUID", "Reason", "Held by", "Domain autostart"],
            rows: s.problems.map {
                [$0.domain, $0.uuid, $0.reason.rawValue, $0.heldBy.isEmpty ? "-" : $0.heldBy.joined(separator: ", "),
                 $0.domainAutostart ? "yes" : "no"]
            },
            emptyText: "Every defined domain could start now: its mdevs exist, are active and free.")]
    }
}

/// The orphaned devices of the last index generation scraped. Finding them scans every device (10,000:
/// most of a scrape's cost beyond the cached families), and between two scrapes the index usually did
/// not change at all.
private final class OrphanCache: Sendable {
    private struct Entry {
        /// Held, so that no other index's history can take its address and pass for it.
        let history: ChangeHistory
        let generation: Int
        let devices: [MdevKey]
    }
    private let last = Mutex<Entry?>(nil)

    func devices(of snapshot: IndexSnapshot) -> [MdevKey] {
        // A snapshot built by hand (tests) has no history: its generation says nothing.
        guard let history = snapshot.history else { return snapshot.state.orphanedDevices.map(\.key) }
        if let entry = last.withLock({ $0 }), entry.history === history, entry.generation == snapshot.generation {
            return entry.devices
        }
        let devices = snapshot.state.orphanedDevices.map(\.key)
        last.withLock { $0 = Entry(history: history, generation: snapshot.generation, devices: devices) }
        return devices
    }
}
