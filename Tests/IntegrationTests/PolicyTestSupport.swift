import Foundation
import Logging
import Monitor
import Policy
import Synchronization
import TestSupport

/// DoctorTests' name for it, until that file moves to a target of its own.
typealias PolicyTempDir = TemporaryDirectory

/// A real MonitorService (read-write when the policy acts, as `mdevmon run` does, unless `readOnly`
/// says otherwise) and a PolicyService acting through it, both running for the duration of `body`.
func withPolicy<T: Sendable>(
    config: PolicyConfig, readOnly: Bool? = nil, stateDir: String, log: LogCapture,
    _ body: (MonitorService, PolicyService) async throws -> T
) async throws -> T {
    var quiet = Logger(label: "test.monitor")
    quiet.logLevel = .warning
    let monitor = MonitorService(
        configuration: MonitorConfiguration(uri: LibvirtHost.uri, readOnly: readOnly ?? !config.needsWriteAccess,
                                            initialBackoff: .milliseconds(200), maxBackoff: .seconds(1)),
        logger: quiet)
    let policy = PolicyService(
        index: monitor.index, waitForFirstSync: { await monitor.waitForFirstSync() },
        actions: MonitorDeviceActions(monitor: monitor), config: config,
        store: StateStore(directory: stateDir), bootID: BootID.current() ?? "unknown-boot",
        saveDelay: .milliseconds(50), logger: log.logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await monitor.run() }
        group.addTask { try await policy.run() }
        defer { group.cancelAll() }
        return try await body(monitor, policy)
    }
}

extension PolicyMetrics.Snapshot {
    /// The `restore` policy's `start` counter for `result`.
    func restore(_ result: String, action: String = "start") -> Int {
        actions.first { $0.key.policy == "restore" && $0.key.action == action && $0.key.result == result }?.value ?? 0
    }
}
