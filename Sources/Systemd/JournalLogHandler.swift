public import Logging
import Synchronization

/// A `LogHandler` that writes structured entries to systemd-journald through `sd_journal_sendv`.
///
/// Every metadata key becomes an upper-case journal field (`mdev.uuid` → `MDEV_UUID`,
/// `message.id` → `MESSAGE_ID`), so operators can filter with `journalctl MDEV_UUID=…` and the message
/// catalog can explain entries by their `MESSAGE_ID`. Metadata precedence, lowest first: the handler's own
/// metadata (set through the `Logger`), the metadata provider, the call site.
///
/// A failed send never throws or crashes: that entry is written to standard error instead, and
/// ``sendFailures`` counts how often it happened.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    /// The logger label this handler was made for.
    public let label: String
    /// The `SYSLOG_IDENTIFIER` field of every entry.
    public let syslogIdentifier: String

    /// Used for entries the journal refused.
    var fallback: StderrLogHandler
    /// Sends the fields of one entry; returns 0 or a negative errno. Tests replace it.
    var transport: @Sendable ([String]) -> Int32 = JournalSocket.send

    private static let failures = Atomic<Int>(0)

    /// How many entries could not be sent to the journal since the process started.
    public static var sendFailures: Int { failures.load(ordering: .relaxed) }

    /// - Parameters:
    ///   - label: The logger label.
    ///   - syslogIdentifier: The `SYSLOG_IDENTIFIER` field; `journalctl -t mdevmon` selects by it.
    ///   - level: The initial minimum level.
    ///   - fallbackFormat: The stderr line format used when the journal cannot be reached.
    ///   - metadataProvider: Task-local metadata to add to every entry.
    public init(
        label: String,
        syslogIdentifier: String = "mdevmon",
        level: Logger.Level = .info,
        fallbackFormat: LogFormat = .logfmt,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.syslogIdentifier = syslogIdentifier
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.fallback = StderrLogHandler(label: label, format: fallbackFormat, level: level, metadataProvider: nil)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = EffectiveMetadata.merge(
            handler: metadata, provider: metadataProvider, callSite: event.metadata, error: event.error)
        let message = event.message.description
        let fields = JournalFields.entry(
            level: event.level, message: message, metadata: merged,
            file: event.file, function: event.function, line: event.line,
            syslogIdentifier: syslogIdentifier)
        let result = transport(fields)
        guard result < 0 else { return }

        // Explain the switch once; afterwards the count is enough, and every entry still reaches stderr.
        if Self.failures.wrappingAdd(1, ordering: .relaxed).oldValue == 0 {
            fallback.write(
                level: .warning,
                message: "journal send failed; writing log entries to stderr instead",
                mergedMetadata: ["error": "\(SystemdError(operation: "sd_journal_sendv", errno: -result))"])
        }
        fallback.write(level: event.level, message: message, mergedMetadata: merged)
    }
}
