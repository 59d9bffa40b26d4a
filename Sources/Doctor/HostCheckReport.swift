public import Foundation

/// `mdevmon doctor`'s output: a table for people, JSON for machines.
public enum HostCheckReport {
    /// One block per check: `PASS  id  summary`, then indented details and the fix.
    public static func text(_ checks: [HostCheck]) -> String {
        let width = checks.map(\.id.count).max() ?? 0
        var out = ""
        for check in checks {
            let id = check.id.padding(toLength: width, withPad: " ", startingAt: 0)
            out += "\(check.status.rawValue.uppercased())  \(id)  \(check.summary)\n"
            let indent = String(repeating: " ", count: 6 + width + 2)
            for detail in check.details { out += "\(indent)- \(detail)\n" }
            if let fix = check.fix, check.status != .pass { out += "\(indent)fix: \(fix)\n" }
        }
        let overall = checks.map(\.status).max() ?? .pass
        let counts = HostCheck.Status.allCases.map { s in "\(checks.count { $0.status == s }) \(s.rawValue)" }
        out += "\n\(overall.rawValue.uppercased()): \(counts.joined(separator: ", "))\n"
        return out
    }

    /// `{"status": worst, "exit_code": n, "checks": [{check, status, summary, details, fix}]}`.
    public static func json(_ checks: [HostCheck]) -> Data {
        struct Document: Encodable {
            var status: HostCheck.Status
            var exitCode: Int32
            var checks: [Entry]
            enum CodingKeys: String, CodingKey { case status, exitCode = "exit_code", checks }
        }
        struct Entry: Encodable {
            var check: String
            var status: HostCheck.Status
            var summary: String
            var details: [String]
            var fix: String?
        }
        let overall = checks.map(\.status).max() ?? .pass
        let doc = Document(status: overall, exitCode: overall.exitCode, checks: checks.map {
            Entry(check: $0.id, status: $0.status, summary: $0.summary, details: $0.details, fix: $0.fix)
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings and arrays cannot fail.
        var data = (try? encoder.encode(doc)) ?? Data()
        data.append(0x0A)
        return data
    }
}
