import Glibc
public import Logging

/// A ``LogTarget`` after `auto` has been decided.
public enum ResolvedLogTarget: String, Sendable {
    case journal
    case stderr
}

extension LogTarget {
    /// The path of journald's native protocol socket.
    public static let journalSocketPath = "/run/systemd/journal/socket"

    /// Decides `auto`: the journal when its socket exists, standard error otherwise.
    ///
    /// - Parameters:
    ///   - target: The configured target.
    ///   - socketPath: Where to look for journald's socket; tests pass a temporary path.
    public static func resolve(_ target: LogTarget, socketPath: String = journalSocketPath) -> ResolvedLogTarget {
        switch target {
        case .journal: return .journal
        case .stderr: return .stderr
        case .auto:
            var info = stat()
            guard stat(socketPath, &info) == 0 else { return .stderr }
            return info.st_mode & S_IFMT == S_IFSOCK ? .journal : .stderr
        }
    }
}

/// Builds the handler factory that `main` hands to `LoggingSystem.bootstrap`.
public enum LoggingBootstrap {
    /// - Parameters:
    ///   - target: `journal`, `stderr` or `auto` (decided once, here).
    ///   - format: The stderr line format; with the journal it is the format of the fallback lines.
    ///   - level: The minimum level of every logger.
    ///   - syslogIdentifier: The journal's `SYSLOG_IDENTIFIER`.
    ///   - socketPath: journald's socket, consulted only for `auto`.
    /// - Returns: A factory suitable for `LoggingSystem.bootstrap(_:)`.
    public static func makeHandlerFactory(
        target: LogTarget,
        format: LogFormat,
        level: Logger.Level,
        syslogIdentifier: String = "mdevmon",
        socketPath: String = LogTarget.journalSocketPath
    ) -> @Sendable (String) -> any LogHandler {
        switch LogTarget.resolve(target, socketPath: socketPath) {
        case .journal:
            return { label in
                JournalLogHandler(
                    label: label, syslogIdentifier: syslogIdentifier, level: level, fallbackFormat: format)
            }
        case .stderr:
            return { label in StderrLogHandler(label: label, format: format, level: level) }
        }
    }
}
