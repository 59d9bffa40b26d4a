public import Logging

/// Line format of the stderr handler (and of the journal handler's fallback).
public enum LogFormat: String, CaseIterable, Sendable {
    /// `ts=… level=info msg="…" key=value`, one line per entry.
    case logfmt
    /// One JSON object per line.
    case json
}

/// Where log entries go.
public enum LogTarget: String, CaseIterable, Sendable {
    /// The native journal protocol, with structured fields.
    case journal
    /// Plain lines on standard error.
    case stderr
    /// The journal when its socket exists, else standard error.
    case auto
}

/// An invalid value for one of the logging options, naming the value and what would have been accepted.
public struct LogOptionError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was being parsed, e.g. `log level`.
    public var option: String
    /// The rejected text.
    public var value: String
    /// The accepted values, in their canonical spelling.
    public var allowed: [String]

    public var description: String {
        "invalid \(option) '\(value)'; allowed values: \(allowed.joined(separator: ", "))"
    }
}

/// Case-insensitive lookup of a `String`-backed enum by raw value.
private func parse<T: RawRepresentable & CaseIterable>(_ text: String, option: String) throws(LogOptionError) -> T
where T.RawValue == String {
    let wanted = text.lowercased()
    if let match = T.allCases.first(where: { $0.rawValue == wanted }) { return match }
    throw LogOptionError(option: option, value: text, allowed: T.allCases.map(\.rawValue))
}

extension LogFormat {
    /// Parses `logfmt` or `json` (case-insensitive).
    /// - Throws: ``LogOptionError`` naming the bad value and the allowed ones.
    public init(parsing text: String) throws(LogOptionError) {
        self = try parse(text, option: "log format")
    }
}

extension LogTarget {
    /// Parses `journal`, `stderr` or `auto` (case-insensitive).
    /// - Throws: ``LogOptionError`` naming the bad value and the allowed ones.
    public init(parsing text: String) throws(LogOptionError) {
        self = try parse(text, option: "log target")
    }
}

extension Logger.Level {
    /// Parses `trace`, `debug`, `info`, `notice`, `warning`, `error` or `critical` (case-insensitive).
    /// - Throws: ``LogOptionError`` naming the bad value and the allowed ones.
    public init(parsing text: String) throws(LogOptionError) {
        self = try parse(text, option: "log level")
    }
}
