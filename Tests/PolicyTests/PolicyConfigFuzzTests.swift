import Policy
import Testing

/// Random YAML values into every field of the configuration: the loader's only outcomes are a
/// configuration that keeps its rules or a `ConfigError` naming a line, never a trap (a trap kills the
/// daemon, also on SIGHUP, where an invalid file must keep the old configuration). Seeded, so a failure
/// repeats: the seed and the document are in the message.
@Suite struct PolicyConfigFuzzTests {
    enum Kind { case bool, list, duration, count }
    typealias Field = (section: [String], key: String, kind: Kind)

    /// Every field, by its place in the file.
    static let fields: [Field] = [
        ([], "dry_run", .bool),
        (["ownership"], "parents", .list), (["ownership"], "mdev_types", .list), (["ownership"], "uuids", .list),
        (["ownership"], "exclude_uuids", .list),
        (["policies", "restore"], "enabled", .bool), (["policies", "restore"], "recreate_transient", .bool),
        (["policies", "restore"], "wait_for_type", .bool),
        (["policies", "restore"], "autostart_grace_period", .duration), (["policies", "restore"], "retry_initial", .duration),
        (["policies", "restore"], "retry_max", .duration), (["policies", "restore"], "deadline", .duration),
        (["policies", "restore"], "max_concurrent", .count),
        (["policies", "domain_references"], "enabled", .bool),
    ]

    /// Every field against every value of a fixed list of edge cases, then random documents.
    @Test func everyOutcomeIsAConfigurationOrAConfigError() {
        var loaded = 0, rejected = 0
        func count(_ ok: Bool) { if ok { loaded += 1 } else { rejected += 1 } }
        for field in Self.fields {
            for value in Self.edgeValues { count(check(document(of: [(field, value)]), seed: nil)) }
        }
        for seed: UInt64 in 1...8_000 {
            var random = SplitMix64(seed: seed)
            // A few fields, half of them with a plausible value of their kind, so that many documents
            // load and reach the rules between fields (retry_initial against retry_max).
            var chosen = Self.fields.filter { _ in random.next() % 4 == 0 }
            if chosen.isEmpty { chosen = [Self.fields[Int(random.next() % UInt64(Self.fields.count))]] }
            let entries = chosen.map { ($0, random.next() % 2 == 0 ? plausibleValue($0.kind, &random) : randomValue(&random)) }
            count(check(document(of: entries), seed: seed))
        }
        // Both outcomes in numbers, or the generator tests nothing.
        #expect(loaded > 1_000 && rejected > 4_000, "\(loaded) loaded, \(rejected) rejected")
    }

    /// - Returns: whether the document loaded.
    @discardableResult
    private func check(_ yaml: String, seed: UInt64?) -> Bool {
        let context = Comment(rawValue: "seed \(seed.map(String.init) ?? "edge"):\n\(yaml)")
        do {
            let c = try PolicyConfig.parse(yaml, file: "fuzz.yaml")
            let r = c.restore
            let longest = PolicyConfig.Restore.longestDuration
            #expect(r.retryInitial > .zero && r.retryInitial <= r.retryMax && r.retryMax <= longest, context)
            #expect(r.autostartGracePeriod >= .zero && r.autostartGracePeriod <= longest, context)
            #expect(r.deadline >= .zero && r.deadline <= longest, context)
            #expect((1...PolicyConfig.Restore.maxConcurrentLimit).contains(r.maxConcurrent), context)
            return true
        } catch {
            #expect(error.file == "fuzz.yaml" && !error.field.isEmpty && !error.problem.isEmpty, context)
            // Every problem with a value has its line; only YAML the parser could not place may lack one.
            #expect(error.line != nil || error.field == "(yaml)", "\(error)\n\(context)")
            return false
        }
    }

    /// The entries as YAML, each under its section, sections nested as in the real file.
    private func document(of entries: [(Field, String)]) -> String {
        var lines: [String] = []
        var open: [String] = []
        for (field, value) in entries.sorted(by: { $0.0.section.lexicographicallyPrecedes($1.0.section) }) {
            let shared = zip(open, field.section).prefix { $0 == $1 }.count
            open = Array(open.prefix(shared))
            for name in field.section.dropFirst(shared) {
                lines.append(String(repeating: "  ", count: open.count) + name + ":")
                open.append(name)
            }
            let indent = String(repeating: "  ", count: open.count)
            // A multi-line value (a block list) is indented under its key.
            let body = value.split(separator: "\n", omittingEmptySubsequences: false)
            lines.append(indent + field.key + ":" + (body[0].isEmpty ? "" : " " + body[0]))
            lines += body.dropFirst().map { indent + "  " + $0 }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static let edgeValues: [String] = [
        "0", "-0", "0s", "0ms", "-1s", "1", "1ms", "0.0004s", "168h", "169h", "1e20s", "1e20", "1e308h", "1e400s",
        "-1e400s", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "99999999999999999999ms",
        "1.7976931348623157e308", "4.9e-324s", ".5s", "5.", "+5s", "0x10", "0x1p4s", "inf", ".inf", "-.inf", ".nan",
        "nan", "NaN s", "1_000", "true", "false", "yes", "~", "null", "", "\"\"", "''", "\"30s\"", "'1e20s'",
        "[]", "{}", "[1s]", "{a: b}", "[a, b]", "[\"\"]", "[[a]]", "- a\n- b", "- {a: 1}", "!!int 5", "!!float 1e20",
        "!!binary aGVsbG8=", "&a 5s", "*undefined", "\"\\u0000\"", "\"\\uFFFF\"", "é", "😀s", "5 s", "5sec", "5d",
        "1h30m", "--5s", "5ms5", "0.0.1s", "1e", "e5", "1e+5", "1E-3s", "65", "64", "4.5", "1e3", "\"4\"",
    ]

    private func randomValue(_ random: inout SplitMix64) -> String {
        switch random.next() % 8 {
        case 0: return Self.edgeValues[Int(random.next() % UInt64(Self.edgeValues.count))]
        case 1: return randomNumber(&random) + ["", "ms", "s", "m", "h"][Int(random.next() % 5)]
        case 2: return String(Int64(bitPattern: random.next()) >> (random.next() % 64))
        case 3: return ["true", "false", "yes", "no", "on", "off", "~"][Int(random.next() % 7)]
        case 4:
            let count = Int(random.next() % 4)
            return "[" + (0..<count).map { _ in randomScalar(&random) }.joined(separator: ", ") + "]"
        case 5: return "{" + randomScalar(&random) + ": " + randomScalar(&random) + "}"
        case 6: return "\"" + randomScalar(&random) + "\""
        default: return randomScalar(&random)
        }
    }

    /// A value of the field's kind, mostly within its rules.
    private func plausibleValue(_ kind: Kind, _ random: inout SplitMix64) -> String {
        switch kind {
        case .bool: return random.next() % 2 == 0 ? "true" : "false"
        case .list: return "[" + (0..<random.next() % 3).map { "d\($0)" }.joined(separator: ", ") + "]"
        case .duration: return String(random.next() % 2_000) + ["", "ms", "s", "m", "h"][Int(random.next() % 5)]
        case .count: return String(random.next() % 70)
        }
    }

    /// Decimal numbers of any size and sign, with or without a fraction or exponent.
    private func randomNumber(_ random: inout SplitMix64) -> String {
        let sign = ["", "", "-", "+"][Int(random.next() % 4)]
        let digits = String((0..<(1 + random.next() % 25)).map { _ in Character(String(random.next() % 10)) })
        let fraction = random.next() % 3 == 0 ? "." + String(random.next() % 1000) : ""
        let exponent = random.next() % 3 == 0 ? "e" + (random.next() % 2 == 0 ? "-" : "") + String(random.next() % 400) : ""
        return sign + digits + fraction + exponent
    }

    /// Short strings of characters that mean something to YAML or to a number parser.
    private func randomScalar(_ random: inout SplitMix64) -> String {
        let alphabet = Array("0123456789abcdefxpinmshe.+-_ :#&*!|>%@`'\"[]{},\\é😀")
        let length = Int(random.next() % 12)
        return String((0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
    }
}

/// A small seeded generator (Vigna's SplitMix64): the same seed gives the same documents everywhere.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
