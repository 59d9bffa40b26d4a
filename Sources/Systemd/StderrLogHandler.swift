import Glibc
public import Logging
import Synchronization

/// A `LogHandler` that writes one logfmt or JSON line per entry to standard error.
///
/// Each line goes out in a single `write(2)` under a process-wide lock, so lines from concurrent tasks never
/// interleave, even when stderr is a pipe shared with libvirt's own error output.
public struct StderrLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    /// The logger label this handler was made for.
    public let label: String
    /// The line format.
    public let format: LogFormat

    /// Where finished lines go; tests replace it to capture output.
    var output: @Sendable (String) -> Void = StandardError.write

    /// - Parameters:
    ///   - label: The logger label (not printed; kept for the factory contract).
    ///   - format: `.logfmt` or `.json`.
    ///   - level: The initial minimum level.
    ///   - metadataProvider: Task-local metadata to add to every line.
    public init(
        label: String,
        format: LogFormat = .logfmt,
        level: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = EffectiveMetadata.merge(
            handler: metadata, provider: metadataProvider, callSite: event.metadata, error: event.error)
        write(level: event.level, message: event.message.description, mergedMetadata: merged)
    }

    /// Writes an entry whose metadata is already merged; the journal handler's fallback path uses this.
    func write(level: Logger.Level, message: String, mergedMetadata: Logger.Metadata) {
        output(
            LogLine.render(
                format, timestamp: Timestamp.now(), level: level, message: message, metadata: mergedMetadata))
    }
}

/// The process-wide, locked writer to file descriptor 2.
enum StandardError {
    private static let lock = Mutex(())

    @Sendable
    static func write(_ line: String) {
        var bytes = Array(line.utf8)
        lock.withLock { _ in
            bytes.withUnsafeMutableBytes { buffer in
                var offset = 0
                // A pipe accepts whole lines up to PIPE_BUF atomically; the loop only matters for longer lines
                // or interrupted writes, and the lock keeps even those contiguous among our own threads.
                while offset < buffer.count {
                    let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        return
                    }
                }
            }
        }
    }
}
