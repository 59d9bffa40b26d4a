import Foundation
import Logging
import Monitor
import Policy
import Synchronization

/// One log record captured from the policy service.
struct CapturedLog: Sendable {
    var level: Logger.Level
    var message: String
    var metadata: Logger.Metadata

    func value(_ key: String) -> String? { metadata[key].map { "\($0)" } }
    func `is`(_ event: Monitor.LogEvent) -> Bool { value(Monitor.LogEvent.metadataKey) == event.id }
}

/// Collects what a `Logger` made by `logger` logs, without touching `LoggingSystem`.
final class PolicyLogCapture: Sendable {
    private let storage = Mutex<[CapturedLog]>([])

    var records: [CapturedLog] { storage.withLock { $0 } }

    func append(_ record: CapturedLog) { storage.withLock { $0.append(record) } }

    /// Records of `event` concerning the mdev `uuid` (any mdev when nil).
    func records(_ event: Monitor.LogEvent, uuid: String? = nil) -> [CapturedLog] {
        records.filter { $0.is(event) && (uuid == nil || $0.value(LogKey.mdevUUID) == uuid) }
    }

    var logger: Logger {
        var logger = Logger(label: "test.policy") { _ in PolicyCaptureHandler(capture: self) }
        logger.logLevel = .debug
        return logger
    }
}

struct PolicyCaptureHandler: LogHandler {
    let capture: PolicyLogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: Logging.LogEvent) {
        capture.append(CapturedLog(level: event.level, message: event.message.description,
                                   metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
    }
}

/// A fresh directory under the system temp dir, removed by `remove()`.
struct PolicyTempDir {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "mdevmon-policy-it-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A real MonitorService (read-write when the policy acts, as `mdevmon run` does, unless `readOnly`
/// says otherwise) and a PolicyService acting through it, both running for the duration of `body`.
func withPolicy<T: Sendable>(
    config: PolicyConfig, readOnly: Bool? = nil, stateDir: String, log: PolicyLogCapture,
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
