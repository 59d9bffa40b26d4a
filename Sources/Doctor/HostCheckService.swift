import Foundation
public import Logging
public import Monitor
public import Policy
public import ServiceLifecycle
import Synchronization

/// The last host-check run, read by the exporter (metrics and landing page) at scrape time.
public final class HostCheckResults: Sendable {
    public struct Report: Sendable {
        public var checks: [HostCheck]
        /// Seconds since the epoch.
        public var time: Double
    }

    /// The last run's report, and how many times its index checks were judged again since start-up.
    private let state = Mutex<(report: Report?, follows: Int)>((nil, 0))

    public init() {}

    /// How many times the index checks were judged again between runs.
    var follows: Int { state.withLock { $0.follows } }

    /// nil until the first run finished.
    public var report: Report? { state.withLock { $0.report } }

    func publish(_ checks: [HostCheck]) {
        let report = Report(checks: checks, time: Date().timeIntervalSince1970)
        state.withLock { $0.report = report }
    }

    /// Replaces the checks with these ids in the last run's report (nothing before the first run); the
    /// run's time stays.
    /// - Returns: the checks whose status changed, as the report now has them.
    func update(_ checks: [HostCheck]) -> [HostCheck] {
        state.withLock { state in
            guard var current = state.report else { return [] }
            var changed: [HostCheck] = []
            for check in checks {
                guard let i = current.checks.firstIndex(where: { $0.id == check.id }) else { continue }
                if current.checks[i].status != check.status { changed.append(check) }
                current.checks[i] = check
            }
            state.report = current
            state.follows += 1
            return changed
        }
    }
}

/// Runs the `mdevmon doctor` checks inside the daemon: once at start-up (after the first sync, or
/// after `firstSyncTimeout` when libvirt does not answer, and then again once the first sync completes:
/// the checks that read the index said "not checked") and again on every `requestRun()` (SIGHUP).
/// Each run journals every finding once with its `MESSAGE_ID` and publishes the results.
///
/// Between runs, the checks that judge only the index (`unparented_mdevs`, `domains_blocked`) follow it:
/// `settle` after a change (a vendor driver registering its parent's types, a domain defined) they are
/// judged again, and a check whose status changed is journaled, so a boot-time failure clears by itself.
public struct HostCheckService: Service {
    let uri: String
    let readOnly: Bool
    let inputs: HostDoctor.Inputs
    /// Read at each run: the configuration the daemon runs with, never the file parsed again.
    let config: @Sendable () -> HostDoctor.LoadedConfig
    let snapshot: @Sendable () -> IndexSnapshot
    /// The reference policy's verdicts, or nil to judge from the index.
    let referenceProblems: @Sendable () -> [ReferenceProblem]?
    /// Whether the restore policy is bringing back the mdev of a UUID.
    let restoring: @Sendable (String) -> Bool
    let waitForFirstSync: @Sendable () async -> Void
    let firstSyncTimeout: Duration
    /// Connects to libvirt and reads what the checks need; blocks (a libvirtd that does not answer).
    let probe: @Sendable (_ uri: String, _ readOnly: Bool) -> LibvirtProbe
    let logger: Logger
    /// The index's changes, followed between runs; nil: only runs.
    let indexChanges: IndexSubscription?
    /// How long the index checks wait after a change, so a burst (and the policy's verdicts on it) settles.
    let settle: Duration
    public let results = HostCheckResults()
    private let requests: AsyncStream<Void>
    private let requestContinuation: AsyncStream<Void>.Continuation
    private let followRequests: AsyncStream<Void>
    private let followContinuation: AsyncStream<Void>.Continuation

    /// - Parameters:
    ///   - config: the configuration in effect and its file's last load error, read at each run
    ///     (`HostDoctor.LoadedConfig.inEffect`).
    public init(
        uri: String, readOnly: Bool, inputs: HostDoctor.Inputs, config: @escaping @Sendable () -> HostDoctor.LoadedConfig,
        snapshot: @escaping @Sendable () -> IndexSnapshot,
        referenceProblems: @escaping @Sendable () -> [ReferenceProblem]? = { nil },
        restoring: @escaping @Sendable (String) -> Bool = { _ in false },
        waitForFirstSync: @escaping @Sendable () async -> Void, firstSyncTimeout: Duration = .seconds(15),
        probe: @escaping @Sendable (_ uri: String, _ readOnly: Bool) -> LibvirtProbe = { LibvirtProbe.run(uri: $0, readOnly: $1) },
        indexChanges: IndexSubscription? = nil, settle: Duration = .seconds(1),
        logger: Logger
    ) {
        self.indexChanges = indexChanges
        self.settle = settle
        self.uri = uri
        self.readOnly = readOnly
        self.inputs = inputs
        self.config = config
        self.snapshot = snapshot
        self.referenceProblems = referenceProblems
        self.restoring = restoring
        self.waitForFirstSync = waitForFirstSync
        self.firstSyncTimeout = firstSyncTimeout
        self.probe = probe
        self.logger = logger
        // Requests coalesce: a run already pending covers any number of further SIGHUPs.
        (requests, requestContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (followRequests, followContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for another run (the SIGHUP path); returns at once.
    public func requestRun() { requestContinuation.yield() }

    /// Asks for the index checks to be judged again (the policy's verdicts changed); returns at once.
    public func requestFollow() { followContinuation.yield() }

    public func run() async throws {
        let wait = waitForFirstSync, timeout = firstSyncTimeout
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await wait() }
                group.addTask { try? await Task.sleep(for: timeout) }
                await group.next()
                group.cancelAll()
            }
        }
        if Task.isCancelled || Task.isShuttingDownGracefully { return }
        // Shutdown cancels a run under way: its probe may wait long on a libvirtd that does not answer.
        let synced = snapshot().status.synced
        await cancelWhenGracefulShutdown { await self.runChecks() }
        if !synced {
            // Run at the timeout, libvirt unread: once the first sync completes, the index can be judged.
            await cancelWhenGracefulShutdown { await wait() }
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            await cancelWhenGracefulShutdown { await self.runChecks() }
        }
        await withDiscardingTaskGroup { group in
            if let indexChanges {
                group.addTask {
                    for await _ in indexChanges.cancelOnGracefulShutdown() { self.requestFollow() }
                }
            }
            group.addTask {
                for await _ in self.followRequests.cancelOnGracefulShutdown() {
                    // Requests arriving meanwhile coalesce into one more iteration.
                    do { try await Task.sleep(for: self.settle) } catch { break }
                    self.followIndex()
                }
            }
            for await _ in requests.cancelOnGracefulShutdown() {
                await cancelWhenGracefulShutdown { await self.runChecks() }
            }
            group.cancelAll()
        }
    }

    /// Judges the index-only checks again; journals those whose status changed.
    func followIndex() {
        guard let checks = indexChecksNow() else { return }
        for check in results.update(checks) { Self.journal(check, logger: logger) }
    }

    /// The index-only checks judged on the index as it is now; nil while it is not synced.
    private func indexChecksNow() -> [HostCheck]? {
        let snap = snapshot()
        guard snap.status.synced else { return nil }
        return HostDoctor.indexChecks(snap.state, config: config().config, problems: referenceProblems(), restoring: restoring)
    }

    /// One run: the libvirt probe and the file reads block, so they run off the cooperative pool. A run
    /// cut short by shutdown publishes and journals nothing (the probe finishes on its own thread).
    func runChecks() async {
        let snap = snapshot()
        let state = snap.status.synced ? snap.state : nil
        let uri = uri, readOnly = readOnly, inputs = inputs, config = config(), probe = probe, problems = referenceProblems()
        guard var checks = try? await Blocking.runAbandoningOnCancel({
            HostDoctor.evaluate(inputs: inputs, config: config, probe: probe(uri, readOnly), state: state, problems: problems)
        }, abandon: { _ in }) else { return }
        // The probe may have taken seconds: the index checks judge the index as it is now, so a change
        // followed meanwhile is not undone.
        if let fresh = indexChecksNow() {
            checks = checks.map { check in fresh.first { $0.id == check.id } ?? check }
        }
        results.publish(checks)
        for check in checks { Self.journal(check, logger: logger) }
    }

    static func journal(_ check: HostCheck, logger: Logger) {
        var metadata: Logger.Metadata = [LogKey.checkID: .string(check.id), LogKey.checkStatus: .string(check.status.rawValue)]
        if let fix = check.fix { metadata[LogKey.checkFix] = .string(fix) }
        let details = check.details.isEmpty ? "" : " (" + check.details.joined(separator: "; ") + ")"
        switch check.status {
        case .pass:
            metadata.merge(MessageID.hostCheckPassed.metadata) { $1 }
            logger.info("host check \(check.id) passed: \(check.summary)", metadata: metadata)
        case .warn:
            metadata.merge(MessageID.hostCheckWarning.metadata) { $1 }
            logger.warning("host check \(check.id) warns: \(check.summary)\(details)", metadata: metadata)
        case .fail:
            metadata.merge(MessageID.hostCheckFailed.metadata) { $1 }
            logger.error("host check \(check.id) failed: \(check.summary)\(details)", metadata: metadata)
        }
    }
}
