import Glibc
import Logging

/// Renders one stderr log line; pure so tests can compare exact strings.
enum LogLine {
    /// Keys the line format uses itself; metadata with these names is written as `meta.<key>`.
    static let reservedKeys: Set<String> = ["ts", "level", "msg"]

    /// One complete line, terminated by `\n`.
    static func render(
        _ format: LogFormat,
        timestamp: String,
        level: Logger.Level,
        message: String,
        metadata: Logger.Metadata
    ) -> String {
        let sorted = metadata.map { (key: outputKey($0.key), value: $0.value) }.sorted { $0.key < $1.key }
        switch format {
        case .logfmt:
            var line = "ts=\(timestamp) level=\(level.rawValue) msg=\(logfmtValue(message))"
            for (key, value) in sorted {
                line += " \(logfmtKey(key))=\(logfmtValue(JournalFields.render(value)))"
            }
            return line + "\n"
        case .json:
            var line = "{\"ts\":\(jsonString(timestamp)),\"level\":\(jsonString(level.rawValue))"
            line += ",\"msg\":\(jsonString(message))"
            for (key, value) in sorted {
                line += ",\(jsonString(key)):\(jsonValue(value))"
            }
            return line + "}\n"
        }
    }

    private static func outputKey(_ key: String) -> String {
        reservedKeys.contains(key) ? "meta." + key : key
    }

    // MARK: logfmt

    /// Keys cannot be quoted in logfmt, so characters that would end them become `_`.
    static func logfmtKey(_ key: String) -> String {
        if key.isEmpty { return "_" }
        var out = ""
        for scalar in key.unicodeScalars {
            let endsKey = scalar.value <= 0x20 || scalar == "=" || scalar == "\"" || scalar.value == 0x7F
            out.unicodeScalars.append(endsKey ? "_" : scalar)
        }
        return out
    }

    /// Quotes a value when it is empty or holds a space, quote, `=` or control character.
    static func logfmtValue(_ value: String) -> String {
        let needsQuotes =
            value.isEmpty
            || value.unicodeScalars.contains { $0.value <= 0x20 || $0 == "=" || $0 == "\"" || $0.value == 0x7F }
        // A quoted logfmt value escapes exactly as a JSON string does.
        return needsQuotes ? jsonString(value) : value
    }

    // MARK: JSON

    static func jsonString(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += unicodeEscape(scalar)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Strings stay strings; arrays and dictionaries become JSON arrays and objects.
    static func jsonValue(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): jsonString(string)
        case .stringConvertible(let convertible): jsonString(convertible.description)
        case .array(let values): "[" + values.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let dictionary):
            "{" + dictionary.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonValue($0.value))" }
                .joined(separator: ",") + "}"
        }
    }

    private static func unicodeEscape(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}

/// RFC 3339 UTC timestamps with millisecond precision, e.g. `2026-11-25T12:00:00.123Z`.
enum Timestamp {
    static func now() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return format(seconds: Int64(now.tv_sec), nanoseconds: Int(now.tv_nsec))
    }

    /// Formats seconds since the Unix epoch; computed without `gmtime` so it is pure and allocation-light.
    static func format(seconds: Int64, nanoseconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = civil(fromDays: days)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(nanoseconds / 1_000_000, 3))Z"
    }

    /// Howard Hinnant's `civil_from_days`: proleptic Gregorian date of a day count since 1970-01-01.
    private static func civil(fromDays days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
