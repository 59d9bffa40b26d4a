import Logging
import Monitor
import Synchronization

/// Reports defined domains that could not start now because of an mdev they reference (missing,
/// inactive, no capacity, parent missing, held by another running domain), in the
/// journal once per appearance and clearance and in the metrics. Incremental: a change re-evaluates
/// only the domains it can affect (`IndexState.domainsAffected(by:)`), never the whole index.
final class ReferenceMonitor: Sendable {
    private let metrics: PolicyMetrics
    private let logger: Logger
    /// Held across an evaluation, so a config reload and the change consumer never interleave.
    private let tracker = Mutex(ReferenceTracker())

    init(metrics: PolicyMetrics, logger: Logger) {
        self.metrics = metrics
        self.logger = logger
    }

    /// Re-evaluates every domain (start-up, config reload). `state` is read under the lock, so the
    /// newest state always wins.
    func evaluateAll(enabled: Bool, state: () -> IndexState) {
        tracker.withLock { t in
            let s = state()
            evaluate(Set(s.domains.keys).union(t.byDomain.keys), in: s, enabled: enabled, tracker: &t)
        }
    }

    /// Re-evaluates the domains these changes can affect.
    func apply(_ changes: [IndexChange], enabled: Bool, state: () -> IndexState) {
        tracker.withLock { t in
            let s = state()
            evaluate(s.domainsAffected(by: changes), in: s, enabled: enabled, tracker: &t)
        }
    }

    private func evaluate(_ domains: Set<String>, in state: IndexState, enabled: Bool, tracker t: inout ReferenceTracker) {
        metrics.setReferencesEnabled(enabled)
        for domain in domains.sorted() {
            let problems = enabled ? state.referenceProblems(ofDomain: domain) : []
            let (appeared, cleared) = t.update(domain: domain, problems)
            metrics.setProblems(domain: domain, problems)
            for p in appeared { report(p) }
            for p in cleared { resolve(p) }
        }
    }

    private func report(_ p: ReferenceProblem) {
        let level: Logger.Level = p.domainAutostart ? .error : .warning
        let why = switch p.reason {
        case .missing: "no such mdev exists"
        case .inactive: "the mdev is not active"
        case .noCapacity: "the mdev is not active and its parent has no available instance of its type"
        case .parentMissing: "the mdev is not active and its parent device is not present"
        case .inUse: "running domain \(p.heldBy.joined(separator: ", ")) holds the mdev"
        }
        let boot = p.domainAutostart ? "; the domain autostarts and will fail to start at boot" : ""
        logger.log(level: level, "domain \(p.domain) references mdev \(p.uuid) but \(why)\(boot)",
                   metadata: MessageID.referenceProblem.metadata.merging([
                       LogKey.domainName: .string(p.domain), LogKey.mdevUUID: .string(p.uuid),
                       "reason": .string(p.reason.rawValue),
                   ]) { $1 })
    }

    private func resolve(_ p: ReferenceProblem) {
        logger.notice("domain \(p.domain) reference to mdev \(p.uuid) is resolved",
                      metadata: MessageID.referenceResolved.metadata.merging([
                          LogKey.domainName: .string(p.domain), LogKey.mdevUUID: .string(p.uuid),
                      ]) { $1 })
    }
}
