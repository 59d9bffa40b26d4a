import Logging

/// Pure mapping from swift-log events to journal fields; kept apart from the C call so it can be tested exactly.
enum JournalFields {
    /// The longest field name journald accepts.
    static let maximumNameLength = 64

    /// Fields the handler writes itself; metadata mapping onto one of them is renamed so it cannot
    /// masquerade as (or duplicate) the message, its priority or its origin.
    static let reserved: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
    ]

    /// Maps a dotted metadata key to a journal field name: `mdev.uuid` → `MDEV_UUID`.
    ///
    /// Letters are upper-cased, every other character outside `[A-Z0-9_]` becomes `_`, leading underscores
    /// are dropped (journald reserves them for trusted fields), a name that would start with a digit or be
    /// empty gets an `F_` prefix, and the result is cut to 64 characters.
    static func name(forMetadataKey key: String) -> String {
        var name = ""
        name.unicodeScalars.reserveCapacity(key.unicodeScalars.count)
        for scalar in key.unicodeScalars {
            switch scalar {
            case "A"..."Z", "0"..."9", "_":
                name.unicodeScalars.append(scalar)
            case "a"..."z":
                name.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
            default:
                name.unicodeScalars.append("_")
            }
        }
        name = String(name.drop(while: { $0 == "_" }))
        if name.isEmpty || ("0"..."9").contains(name.unicodeScalars.first!) || reserved.contains(name) {
            name = "F_" + name
        }
        return String(name.prefix(maximumNameLength))
    }

    /// The syslog priority journald stores in `PRIORITY`.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Renders a metadata value: strings as they are, everything else as its description.
    static func render(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array, .dictionary: value.description
        }
    }

    /// All `FIELD=value` strings of one entry, metadata sorted by key so entries are reproducible.
    static func entry(
        level: Logger.Level,
        message: String,
        metadata: Logger.Metadata,
        file: String,
        function: String,
        line: UInt,
        syslogIdentifier: String
    ) -> [String] {
        var fields = [
            "MESSAGE=\(message)",
            "PRIORITY=\(priority(level))",
            "SYSLOG_IDENTIFIER=\(syslogIdentifier)",
            "CODE_FILE=\(file)",
            "CODE_LINE=\(line)",
            "CODE_FUNC=\(function)",
        ]
        fields.reserveCapacity(fields.count + metadata.count)
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            fields.append("\(name(forMetadataKey: key))=\(render(value))")
        }
        return fields
    }
}

/// Merges the metadata sources of one log call, later sources winning: the handler's own metadata (what
/// `logger[metadataKey:]` set), then the metadata provider (task-local context), then the call site.
/// An attached `Error` fills the `error` key unless the call site already did.
enum EffectiveMetadata {
    static func merge(
        handler: Logger.Metadata,
        provider: Logger.MetadataProvider?,
        callSite: Logger.Metadata?,
        error: (any Error)?
    ) -> Logger.Metadata {
        var merged = handler
        if let provided = provider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, new in new }
        }
        if let callSite, !callSite.isEmpty {
            merged.merge(callSite) { _, new in new }
        }
        if let error, merged["error"] == nil {
            merged["error"] = .string(String(describing: error))
        }
        return merged
    }
}
