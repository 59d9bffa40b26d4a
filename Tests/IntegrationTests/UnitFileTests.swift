import Foundation
import TestSupport
import Testing

/// `deploy/mdevmon.service` as systemd itself reads it: `systemd-analyze verify` accepts it and
/// `systemd-analyze security` rates its sandbox. (The e2e guest runs it under a real PID 1.)
@Suite(.enabled(if: LibvirtHost.required || FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"),
                "needs systemd-analyze (CI=true makes this mandatory)"))
struct UnitFileTests {
    static let unit = AlertingStack.repo + "/deploy/mdevmon.service"

    /// The shipped unit with ExecStart pointed at the binary under test (verify checks that it exists).
    static func installedCopy(in dir: TemporaryDirectory) throws -> String {
        let text = try String(contentsOfFile: unit, encoding: .utf8)
        try #require(text.contains("ExecStart=/usr/local/bin/mdevmon "), "the unit's ExecStart changed shape")
        let path = dir.path + "/mdevmon.service"
        try text.replacingOccurrences(of: "ExecStart=/usr/local/bin/mdevmon ", with: "ExecStart=\(mdevmonBinary) ")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func systemdAnalyzeVerifyAcceptsTheUnit() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = LibvirtHost.run("/usr/bin/systemd-analyze", ["verify", try Self.installedCopy(in: dir)])
        #expect(r.status == 0, "systemd-analyze verify: \(r.out)\(r.err)")
        // verify exits 0 with warnings too; the unit must have none.
        #expect(r.err.isEmpty && r.out.isEmpty, "systemd-analyze verify: \(r.out)\(r.err)")
    }

    @Test func unitIsANotifyServiceWithWatchdogOrderingAndTightSandbox() throws {
        let text = try String(contentsOfFile: Self.unit, encoding: .utf8)
        for line in ["Type=notify", "WatchdogSec=30", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                     "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes"] {
            #expect(text.contains("\n\(line)\n"), "missing \(line)")
        }
        #expect(text.contains("libvirtd.service") && text.contains("virtnodedevd.service"))
        #expect(text.contains("\nRestrictAddressFamilies=") && text.contains("\nSystemCallFilter="))

        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let r = LibvirtHost.run("/usr/bin/systemd-analyze", ["security", "--offline=yes", try Self.installedCopy(in: dir)])
        let overall = (r.out + r.err).split(separator: "\n").first { $0.contains("Overall exposure level") }
        let score = overall.flatMap { line in
            line.split(separator: " ").compactMap { Double($0) }.first
        }
        #expect(score != nil && score! <= 2.0, "systemd-analyze security: \(overall ?? "no score")")
    }
}
