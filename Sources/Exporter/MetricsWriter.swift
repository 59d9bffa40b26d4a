/// Builds the Prometheus text exposition format (0.0.4). Every line mdevmon serves is written by
/// one of these: the per-scrape families, each cached block of device lines, and every
/// `MetricsContributor`.
///
/// A family is its `# HELP`/`# TYPE` header followed by its samples; all samples of a family are written
/// right after its header. `finish()` orders families by name, so writers (the built-in families and
/// every `MetricsContributor`) need not coordinate. Label values are escaped here; metric and label
/// names are the caller's constants and are only checked in debug builds.
///
/// ```swift
/// writer.family("mdev_policy_pending", type: .gauge, help: "Actions waiting to run.")
/// writer.sample("mdev_policy_pending", labels: ["policy": "restart"], value: 2)
/// // or, without building a label list:
/// writer.beginSample("mdev_policy_pending")
/// writer.label("policy", "restart")
/// writer.endSample(2)
/// ```
public struct MetricsWriter {
    public enum MetricType: String, Sendable {
        case counter, gauge, untyped
        /// Written with `_sum` and `_count` samples only: no quantiles.
        case summary
    }

    private var bytes: [UInt8] = []
    /// Each family's name and where its text starts in `bytes`, in writing order.
    private var starts: [(name: String, offset: Int)] = []
    private var familyNames: Set<String> = []
    /// Labels written in the open sample, or -1 between samples.
    private var openLabels = -1

    /// - Parameter capacity: Bytes to reserve; a good estimate avoids regrowing a large buffer.
    public init(capacity: Int = 4096) {
        bytes.reserveCapacity(capacity)
    }

    /// A writer for sample lines of family `name` whose header is written elsewhere (a block of
    /// device lines).
    init(samplesOf name: String, capacity: Int) {
        bytes.reserveCapacity(capacity)
        starts = [(name, 0)]
    }

    /// Starts a family: writes its `# HELP` and `# TYPE` lines. Each name may be used once per scrape.
    public mutating func family(_ name: String, type: MetricType, help: String) {
        precondition(openLabels < 0, "family \(name) started inside a sample")
        precondition(familyNames.insert(name).inserted, "metric family \(name) written twice")
        assert(Self.isValidName(name, colons: true), "invalid metric name \(name)")
        starts.append((name, bytes.count))
        bytes.append(contentsOf: "# HELP ".utf8)
        bytes.append(contentsOf: name.utf8)
        bytes.append(UInt8(ascii: " "))
        for byte in help.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): bytes.append(contentsOf: #"\n"#.utf8)
            default: bytes.append(byte)
            }
        }
        bytes.append(contentsOf: "\n# TYPE ".utf8)
        bytes.append(contentsOf: name.utf8)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: type.rawValue.utf8)
        bytes.append(UInt8(ascii: "\n"))
    }

    /// Writes one sample line.
    public mutating func sample(_ name: String, labels: KeyValuePairs<String, String> = [:], value: Double) {
        beginSample(name)
        for (key, labelValue) in labels { label(key, labelValue) }
        endSample(value)
    }

    /// Writes one sample line with an integer value.
    public mutating func sample(_ name: String, labels: KeyValuePairs<String, String> = [:], value: Int) {
        beginSample(name)
        for (key, labelValue) in labels { label(key, labelValue) }
        endSample(value)
    }

    /// Opens a sample line; follow with `label(_:_:)` calls and one `endSample`.
    public mutating func beginSample(_ name: String) {
        precondition(!starts.isEmpty, "sample \(name) written before any family")
        precondition(openLabels < 0, "sample \(name) started inside another sample")
        bytes.append(contentsOf: name.utf8)
        openLabels = 0
    }

    /// Adds a label to the open sample; the value is escaped.
    public mutating func label(_ name: String, _ value: String) {
        precondition(openLabels >= 0, "label \(name) outside a sample")
        assert(Self.isValidName(name, colons: false), "invalid label name \(name)")
        bytes.append(openLabels == 0 ? UInt8(ascii: "{") : UInt8(ascii: ","))
        bytes.append(contentsOf: name.utf8)
        bytes.append(contentsOf: #"=""#.utf8)
        appendEscaped(value)
        bytes.append(UInt8(ascii: "\""))
        openLabels += 1
    }

    /// Closes the open sample with an integer value.
    public mutating func endSample(_ value: Int) {
        closeLabels()
        if (0...9).contains(value) {
            bytes.append(UInt8(ascii: "0") + UInt8(value))
        } else {
            bytes.append(contentsOf: value.description.utf8)
        }
        bytes.append(UInt8(ascii: "\n"))
    }

    /// Closes the open sample with a float value (`+Inf`, `-Inf` and `NaN` as Prometheus spells them).
    public mutating func endSample(_ value: Double) {
        if value.isNaN {
            closeLabels()
            bytes.append(contentsOf: "NaN\n".utf8)
        } else if value.isInfinite {
            closeLabels()
            bytes.append(contentsOf: (value > 0 ? "+Inf\n" : "-Inf\n").utf8)
        } else if value == value.rounded(), abs(value) < 1e15 {
            endSample(Int(value))
        } else {
            closeLabels()
            bytes.append(contentsOf: value.description.utf8)
            bytes.append(UInt8(ascii: "\n"))
        }
    }

    /// The exposition text, families ordered by name.
    public consuming func finish() -> [UInt8] {
        let families = takeFamilies()
        return families.sorted { $0.name < $1.name }.flatMap(\.text)
    }

    /// Each family's text, header included, in writing order.
    consuming func takeFamilies() -> [(name: String, text: ArraySlice<UInt8>)] {
        precondition(openLabels < 0, "takeFamilies() inside a sample")
        let text = bytes
        return starts.indices.map { i in
            let end = i + 1 < starts.count ? starts[i + 1].offset : text.count
            return (starts[i].name, text[starts[i].offset..<end])
        }
    }

    private mutating func closeLabels() {
        precondition(openLabels >= 0, "endSample without beginSample")
        if openLabels > 0 { bytes.append(UInt8(ascii: "}")) }
        bytes.append(UInt8(ascii: " "))
        openLabels = -1
    }

    /// Backslash, double quote and newline escaped, as the text format requires of label values.
    private mutating func appendEscaped(_ value: String) {
        var plain = true
        for byte in value.utf8 where byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\n") {
            plain = false
            break
        }
        guard !plain else {
            bytes.append(contentsOf: value.utf8)
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\n"): bytes.append(contentsOf: #"\n"#.utf8)
            default: bytes.append(byte)
            }
        }
    }

    private static func isValidName(_ name: String, colons: Bool) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return false
        }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"): true
            case UInt8(ascii: ":"): colons
            default: false
            }
        }
    }
}
