import Synchronization

/// Builds the Prometheus text exposition format (0.0.4).
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
public struct MetricsWriter: ~Copyable {
    public enum MetricType: String, Sendable {
        case counter, gauge, untyped
    }

    /// One family: a byte range of `sink`, or bytes rendered elsewhere (and possibly cached).
    private struct Span {
        var name: String
        var range: Range<Int>
        var family: RenderedFamily?
        var rendered: [UInt8]? { family?.bytes }
        var size: Int { family?.bytes.count ?? range.count }
    }

    private var sink: ByteSink
    private var spans: [Span] = []
    private var familyNames: Set<String> = []
    /// Labels written in the open sample, or -1 between samples.
    private var openLabels = -1

    /// - Parameter capacity: Bytes to reserve; a good estimate avoids regrowing a multi-megabyte buffer.
    public init(capacity: Int = 4096) {
        sink = ByteSink(capacity: capacity)
    }

    /// Starts a family: writes its `# HELP` and `# TYPE` lines. Each name may be used once per scrape.
    public mutating func family(_ name: String, type: MetricType, help: String) {
        startSpan(name, family: nil)
        Self.writeHeader(name, type: type, help: help, to: &sink)
    }

    /// Adds a whole family rendered elsewhere, header included.
    mutating func append(_ family: RenderedFamily) {
        startSpan(family.name, family: family)
    }

    private mutating func startSpan(_ name: String, family: RenderedFamily?) {
        precondition(openLabels < 0, "family \(name) started inside a sample")
        precondition(familyNames.insert(name).inserted, "metric family \(name) written twice")
        assert(Self.isValidName(name, colons: true), "invalid metric name \(name)")
        closeSpan()
        spans.append(Span(name: name, range: sink.count..<sink.count, family: family))
    }

    /// Ends the last family's byte range where the sink is now.
    private mutating func closeSpan() {
        if let last = spans.indices.last, spans[last].rendered == nil {
            spans[last].range = spans[last].range.lowerBound..<sink.count
        }
    }

    /// `# HELP` and `# TYPE` lines; help text escapes backslash and newline.
    static func writeHeader(_ name: String, type: MetricType, help: String, to sink: inout ByteSink) {
        sink.append("# HELP ")
        sink.append(name)
        sink.append(UInt8(ascii: " "))
        for byte in help.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): sink.append("\\\\")
            case UInt8(ascii: "\n"): sink.append("\\n")
            default: sink.append(byte)
            }
        }
        sink.append("\n# TYPE ")
        sink.append(name)
        sink.append(UInt8(ascii: " "))
        sink.append(type.rawValue)
        sink.append(UInt8(ascii: "\n"))
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
        precondition(!spans.isEmpty, "sample \(name) written before any family")
        precondition(openLabels < 0, "sample \(name) started inside another sample")
        sink.append(name)
        openLabels = 0
    }

    /// Adds a label to the open sample; the value is escaped.
    public mutating func label(_ name: String, _ value: String) {
        precondition(openLabels >= 0, "label \(name) outside a sample")
        assert(Self.isValidName(name, colons: false), "invalid label name \(name)")
        sink.append(openLabels == 0 ? UInt8(ascii: "{") : UInt8(ascii: ","))
        sink.append(name)
        sink.append(UInt8(ascii: "="))
        sink.append(UInt8(ascii: "\""))
        sink.appendEscaped(value)
        sink.append(UInt8(ascii: "\""))
        openLabels += 1
    }

    /// Closes the open sample with an integer value.
    public mutating func endSample(_ value: Int) {
        closeLabels()
        sink.append(decimal: value)
        sink.append(UInt8(ascii: "\n"))
    }

    /// Closes the open sample with a float value (`+Inf`, `-Inf` and `NaN` as Prometheus spells them).
    public mutating func endSample(_ value: Double) {
        closeLabels()
        if value.isNaN {
            sink.append("NaN")
        } else if value.isInfinite {
            sink.append(value > 0 ? "+Inf" : "-Inf")
        } else if value == value.rounded(), abs(value) < 1e15 {
            sink.append(decimal: Int(value))
        } else {
            sink.append(value.description)
        }
        sink.append(UInt8(ascii: "\n"))
    }

    /// The exposition text, families ordered by name.
    public consuming func finish() -> [UInt8] {
        precondition(openLabels < 0, "finish() inside a sample")
        closeSpan()
        var order = Array(spans.indices)
        if !zip(spans, spans.dropFirst()).allSatisfy({ $0.name < $1.name }) {
            order.sort { spans[$0].name < spans[$1].name }
        }
        let total = spans.reduce(0) { $0 + $1.size }
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            var cursor = buffer.baseAddress!
            for i in order {
                if let rendered = spans[i].rendered {
                    rendered.withUnsafeBufferPointer { bytes in
                        guard let source = bytes.baseAddress else { return }
                        cursor.initialize(from: source, count: bytes.count)
                        cursor += bytes.count
                    }
                } else {
                    let range = spans[i].range
                    cursor.initialize(from: sink.pointer(at: range.lowerBound), count: range.count)
                    cursor += range.count
                }
            }
            initialized = total
        }
    }

    /// Each family as its own bytes, in name order when `sorted`, for caching and compressing apart.
    consuming func takeFamilies(sorted: Bool = false) -> [RenderedFamily] {
        precondition(openLabels < 0, "takeFamilies() inside a sample")
        closeSpan()
        if sorted { spans.sort { $0.name < $1.name } }
        return spans.map { span in
            if let family = span.family { return family }
            return RenderedFamily(name: span.name, bytes: Array(UnsafeBufferPointer(
                start: sink.pointer(at: span.range.lowerBound), count: span.range.count)))
        }
    }

    private mutating func closeLabels() {
        precondition(openLabels >= 0, "endSample without beginSample")
        if openLabels > 0 { sink.append(UInt8(ascii: "}")) }
        sink.append(UInt8(ascii: " "))
        openLabels = -1
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

/// One family's complete text, header included, rendered apart from a writer. Its compressed form
/// is made on first use and shared by every copy, so a cached family is compressed once.
struct RenderedFamily: Sendable {
    var name: String
    var bytes: [UInt8]
    private let compressed: LazyFragment

    init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
        compressed = LazyFragment()
    }

    /// This family's DEFLATE fragment, compressing it if no copy has yet.
    func fragment() -> DeflateFragment {
        compressed.get { Gzip.fragment(bytes) }
    }
}

private final class LazyFragment: Sendable {
    private let value = Mutex<DeflateFragment?>(nil)

    func get(_ make: () -> DeflateFragment) -> DeflateFragment {
        if let done = value.withLock({ $0 }) { return done }
        // Compress outside the lock; two racing scrapes may both compress, with the same result.
        let made = make()
        value.withLock { $0 = made }
        return made
    }
}

/// A whole scrape as families in name order: the plain text, or gzip assembled from the families'
/// (mostly cached) compressed fragments.
struct RenderedScrape: Sendable {
    var families: [RenderedFamily]

    var byteCount: Int { families.reduce(0) { $0 + $1.bytes.count } }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(byteCount)
        for family in families { out.append(contentsOf: family.bytes) }
        return out
    }

    func gzipped() -> [UInt8] {
        Gzip.member(families.map { $0.fragment() })
    }
}
