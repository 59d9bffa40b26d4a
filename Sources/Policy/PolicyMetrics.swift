import Foundation
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
        public var problems: [ReferenceProblem]
        public var referencesEnabled: Bool
        /// Whether the last configuration load (start-up or SIGHUP) succeeded, and when one last did
        /// (seconds since the epoch), as Prometheus' own `…_config_last_reload_*` gauges.
        public var reloadSuccessful: Bool
        public var lastReloadSuccess: Double
        /// When the configuration was last loaded or a load last failed (seconds since the epoch), and
        /// why that load failed (nil after a success): for the landing page.
        public var lastReloadAttempt: Double
        public var lastReloadError: String?
    }

    /// Every restore series starts at 0, so `increase()` sees the first failure after a restart.
    private let state = Mutex(Snapshot(
        actions: Dictionary(uniqueKeysWithValues: ["start", "create"].flatMap { action in
            ["success", "failure", "gave_up", "skipped", "dry_run"].map {
                (ActionKey(policy: "restore", action: action, result: $0), 0)
            }
        }),
        pending: ["restore": 0], problems: [], referencesEnabled: true,
        reloadSuccessful: true, lastReloadSuccess: PolicyMetrics.now(), lastReloadAttempt: PolicyMetrics.now(),
        lastReloadError: nil))

    public init() {}

    static func now() -> Double { Date().timeIntervalSince1970 }

    public var snapshot: Snapshot {
        var out = state.withLock { $0 }
        // Sorted at read time (a scrape), so a change costs only its own domain's problems.
        out.problems = problemsByDomain.withLock { $0.values.flatMap { $0 } }.sorted()
        return out
    }

    /// Problems by domain; `Snapshot.problems` is their sorted union.
    private let problemsByDomain = Mutex<[String: [ReferenceProblem]]>([:])

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

    func setProblems(domain: String, _ problems: [ReferenceProblem]) {
        problemsByDomain.withLock { $0[domain] = problems.isEmpty ? nil : problems }
    }

    /// Replaces every domain's problems at once (tests; the policy updates domain by domain).
    func setProblems(_ problems: [ReferenceProblem], enabled: Bool) {
        problemsByDomain.withLock { $0 = Dictionary(grouping: problems, by: \.domain) }
        setReferencesEnabled(enabled)
    }

    func setReferencesEnabled(_ enabled: Bool) {
        state.withLock { $0.referencesEnabled = enabled }
    }
}
