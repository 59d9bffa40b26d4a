import Foundation
public import Monitor
import Synchronization

/// Counters and gauges the policies publish; read by the exporter at scrape time.
public final class PolicyMetrics: Sendable {
    public struct ActionKey: Hashable, Sendable, Comparable {
        public var policy: String
        public var action: String
        public var result: String
        public static func < (a: Self, b: Self) -> Bool { (a.policy, a.action, a.result) < (b.policy, b.action, b.result) }
    }

    public struct Snapshot: Sendable {
        public var actions: [ActionKey: Int]
        public var pending: [String: Int]
        /// Every reference problem, sorted, and the verdict on every evaluated domain, from the same
        /// evaluations: a domain not evaluated yet has neither.
        public var problems: [ReferenceProblem]
        public var verdicts: [String: DomainVerdict]
        /// The same verdicts sorted by domain name, for the exposition.
        public var sortedVerdicts: [(domain: String, verdict: DomainVerdict)]
        public var referencesEnabled: Bool
        /// Whether the last configuration load (start-up or SIGHUP) succeeded, and when one last did
        /// (seconds since the epoch), as Prometheus' own `…_config_last_reload_*` gauges.
        public var reloadSuccessful: Bool
        public var lastReloadSuccess: Double
        /// When the configuration was last loaded or a load last failed (seconds since the epoch), and
        /// why that load failed (nil after a success): for the landing page.
        public var lastReloadAttempt: Double
        public var lastReloadError: String?
        /// The restores waiting for their parent, by device.
        public var waiting: [MdevKey: RestoreWaiting]
    }

    /// Every restore series starts at 0, so `increase()` sees the first failure after a restart.
    private let state = Mutex(Snapshot(
        actions: Dictionary(uniqueKeysWithValues: ["start", "create"].flatMap { action in
            ["success", "failure", "gave_up", "skipped", "dry_run"].map {
                (ActionKey(policy: "restore", action: action, result: $0), 0)
            }
        }),
        pending: ["restore": 0], problems: [], verdicts: [:], sortedVerdicts: [], referencesEnabled: true,
        reloadSuccessful: true, lastReloadSuccess: PolicyMetrics.now(), lastReloadAttempt: PolicyMetrics.now(),
        lastReloadError: nil, waiting: [:]))

    public init() {}

    static func now() -> Double { Date().timeIntervalSince1970 }

    public var snapshot: Snapshot {
        var out = state.withLock { $0 }
        // Sorted once per evaluation that changed something, at the first scrape after it, not per scrape.
        (out.problems, out.verdicts, out.sortedVerdicts) = references.withLock { r in
            if r.sorted == nil {
                let verdicts = r.tracker.verdicts.sorted { $0.key < $1.key }.map { (domain: $0.key, verdict: $0.value) }
                r.sorted = (r.tracker.current, verdicts)
            }
            return (r.sorted!.problems, r.tracker.verdicts, r.sorted!.verdicts)
        }
        return out
    }

    /// The reference policy's verdicts: the one place they are kept, with their sorted forms (nil after an
    /// evaluation, until the next read).
    private struct References {
        var tracker = ReferenceTracker()
        var sorted: (problems: [ReferenceProblem], verdicts: [(domain: String, verdict: DomainVerdict)])?
    }
    private let references = Mutex(References())
    private let evaluated = Mutex<[@Sendable () -> Void]>([])

    /// Calls `handler` after each evaluation of the verdicts (quick, non-blocking handlers only): a verdict
    /// can change without an index change, when a restore starts or gives up.
    public func onReferencesEvaluated(_ handler: @escaping @Sendable () -> Void) {
        evaluated.withLock { $0.append(handler) }
    }

    /// Runs one evaluation on the verdicts, holding them: a reload's and the change consumer's
    /// evaluations never interleave, and a scrape sees one evaluation whole.
    func evaluateReferences<T>(_ body: (inout ReferenceTracker) -> T) -> T {
        let result = references.withLock { r in
            r.sorted = nil
            return body(&r.tracker)
        }
        for handler in evaluated.withLock({ $0 }) { handler() }
        return result
    }

    func count(policy: String, action: String, result: String) {
        state.withLock { $0.actions[ActionKey(policy: policy, action: action, result: result), default: 0] += 1 }
    }

    func recordReload(success: Bool, error: String? = nil) {
        let at = Self.now()
        state.withLock {
            $0.reloadSuccessful = success
            $0.lastReloadAttempt = at
            $0.lastReloadError = success ? nil : error
            if success { $0.lastReloadSuccess = at }
        }
    }

    func setPending(_ policy: String, _ n: Int) { state.withLock { $0.pending[policy] = n } }

    /// What a restore waits for now (nil: it no longer waits).
    func setWaiting(_ key: MdevKey, _ waiting: RestoreWaiting?) {
        state.withLock { $0.waiting[key] = waiting }
    }

    /// Replaces every domain's problems at once (tests; the policy evaluates domain by domain).
    func setProblems(_ problems: [ReferenceProblem], enabled: Bool) {
        evaluateReferences { _ = $0.update(problems) }
        setReferencesEnabled(enabled)
    }

    func setReferencesEnabled(_ enabled: Bool) {
        state.withLock { $0.referencesEnabled = enabled }
    }
}
