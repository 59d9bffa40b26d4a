import Logging
import Monitor
import Synchronization

/// Reports defined domains that could not start now because of an mdev they reference (missing,
/// inactive, no capacity, type not offered, parent missing, held by another running domain, being restored), in the
/// journal once per appearance and clearance and in the metrics. Incremental: a change re-evaluates
/// only the domains it can affect (`IndexState.domainsAffected(by:)`), never the whole index.
final class ReferenceMonitor: Sendable {
    private let metrics: PolicyMetrics
    private let logger: Logger
    /// Whether a restore is bringing an mdev back now: its domains are then `restoring`, not alarmed.
    private let restoring: @Sendable (String) -> Bool

    init(metrics: PolicyMetrics, restoring: @escaping @Sendable (String) -> Bool, logger: Logger) {
        self.metrics = metrics
        self.restoring = restoring
        self.logger = logger
    }

    /// Re-evaluates every domain (start-up, config reload). `state` is read while the verdicts are held,
    /// so the newest state always wins.
    func evaluateAll(enabled: Bool, state: () -> IndexState) {
        metrics.evaluateReferences { t in
            let s = state()
            evaluate(Set(s.domains.keys).union(t.verdicts.keys), in: s, enabled: enabled, tracker: &t)
        }
    }

    /// Re-evaluates the domains these changes can affect.
    func apply(_ changes: [IndexChange], enabled: Bool, state: () -> IndexState) {
        metrics.evaluateReferences { t in
            let s = state()
            evaluate(s.domainsAffected(by: changes), in: s, enabled: enabled, tracker: &t)
        }
    }

    /// Re-evaluates the domains that reference this mdev (its restore began, parked or ended).
    func apply(uuid: String, enabled: Bool, state: () -> IndexState) {
        metrics.evaluateReferences { t in
            let s = state()
            evaluate(s.domainsReferencing(uuid), in: s, enabled: enabled, tracker: &t)
        }
    }

    private func evaluate(_ domains: Set<String>, in state: IndexState, enabled: Bool, tracker t: inout ReferenceTracker) {
        metrics.setReferencesEnabled(enabled)
        for name in domains.sorted() {
            var verdict: DomainVerdict?
            if let domain = state.domains[name], domain.persistent, !domain.mdevUUIDs.isEmpty {
                verdict = DomainVerdict(autostart: domain.autostart,
                                        problems: enabled ? state.referenceProblems(ofDomain: name, restoring: restoring) : [])
            }
            let (appeared, cleared) = t.update(domain: name, verdict)
            for p in appeared { report(p) }
            for p in cleared { resolve(p, wasRestoring: p.reason == .restoring) }
        }
    }

    private func report(_ p: ReferenceProblem) {
        // A restore under way is news: the domain waits for it. Only what is left when it ends alarms.
        let level: Logger.Level = p.reason == .restoring ? .info : p.domainAutostart ? .error : .warning
        let why = switch p.reason {
        case .restoring: "the mdev is not active yet: mdevmon is restoring it"
        case .missing: "no such mdev exists"
        case .inactive: "the mdev is not active"
        case .noCapacity: "the mdev is not active and its parent has no available instance of its type"
        case .typeNotOffered: "the mdev is not active and its parent does not offer its type (yet): its driver has not registered it"
        case .parentMissing: "the mdev is not active and its parent device is not present"
        case .inUse: "running domain \(p.heldBy.joined(separator: ", ")) holds the mdev"
        }
        let boot = p.domainAutostart && p.reason != .restoring ? "; the domain autostarts and will fail to start at boot" : ""
        logger.log(level: level, "domain \(p.domain) references mdev \(p.uuid) but \(why)\(boot)",
                   metadata: MessageID.referenceProblem.metadata.merging([
                       LogKey.domainName: .string(p.domain), LogKey.mdevUUID: .string(p.uuid),
                       "reason": .string(p.reason.rawValue),
                   ]) { $1 })
    }

    private func resolve(_ p: ReferenceProblem, wasRestoring: Bool) {
        logger.log(level: wasRestoring ? .info : .notice, "domain \(p.domain) reference to mdev \(p.uuid) is resolved",
                   metadata: MessageID.referenceResolved.metadata.merging([
                       LogKey.domainName: .string(p.domain), LogKey.mdevUUID: .string(p.uuid),
                   ]) { $1 })
    }
}
