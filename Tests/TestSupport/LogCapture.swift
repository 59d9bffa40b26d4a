public import Logging
public import Monitor
import Synchronization

/// One captured log record.
public struct LogRecord: Sendable {
    public var level: Logger.Level
    public var message: String
    public var metadata: Logger.Metadata

    /// A metadata value as text.
    public func value(_ key: String) -> String? { metadata[key].map { "\($0)" } }
    public var messageID: String? { value(Monitor.MessageID.metadataKey) }
    public var uuid: String? { value(LogKey.mdevUUID) }
    public var domain: String? { value(LogKey.domainName) }

    public func `is`(_ event: Monitor.MessageID) -> Bool { messageID == event.id }
}

/// Collects every record logged through `logger`, from any thread. Never touches `LoggingSystem`.
public final class LogCapture: Sendable {
    private let storage = Mutex<[LogRecord]>([])

    public init() {}

    public var records: [LogRecord] { storage.withLock { $0 } }

    func append(_ record: LogRecord) { storage.withLock { $0.append(record) } }

    /// Records of `event`, concerning the mdev `uuid` when given.
    public func records(_ event: Monitor.MessageID, uuid: String? = nil) -> [LogRecord] {
        records.filter { $0.is(event) && (uuid == nil || $0.uuid == uuid) }
    }

    /// Records at `level` or more severe.
    public func records(atLeast level: Logger.Level) -> [LogRecord] { records.filter { $0.level >= level } }

    public func logger(label: String = "test") -> Logger {
        var logger = Logger(label: label) { _ in CapturingLogHandler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    public var logger: Logger { logger() }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: Logging.LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        capture.append(LogRecord(level: event.level, message: event.message.description, metadata: merged))
    }
}
