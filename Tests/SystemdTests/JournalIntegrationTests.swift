import Foundation
import Logging
import Testing

@testable import Systemd

/// A real systemd-journald: the one already running, or one this test process starts standalone.
enum Journald {
    static let socketPath = "/run/systemd/journal/socket"
    static let binary = "/lib/systemd/systemd-journald"

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Whether a journald process is alive (its comm is truncated to 15 characters).
    static var isRunning: Bool {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.contains { entry in
            guard entry.allSatisfy(\.isNumber),
                let comm = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8)
            else { return false }
            return comm.trimmingCharacters(in: .whitespacesAndNewlines) == "systemd-journal"
        }
    }

    private static let startResult: Result<Void, any Error> = Result { try start() }

    /// Makes sure journald listens; starts it at most once per test process. The started journald outlives
    /// the tests on purpose: it is the machine's journal from then on, as it would be under systemd.
    static func ensureRunning() throws {
        try startResult.get()
    }

    private static func start() throws {
        if isRunning && FileManager.default.fileExists(atPath: socketPath) { return }
        try FileManager.default.createDirectory(atPath: "/run/systemd/journal", withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw JournaldUnavailable(reason: "cannot start \(binary): \(error.localizedDescription)")
        }
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: socketPath) && process.isRunning { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw JournaldUnavailable(reason: "\(binary) did not create \(socketPath) within 5 s")
    }

    /// Outside CI a machine without journald skips; in CI it must fail, so the test always runs there.
    static var shouldRun: Bool { isCI || (try? ensureRunning()) != nil }

    /// Entries matching `matches`, as journalctl's JSON objects.
    static func entries(matching matches: [String]) throws -> [[String: Any]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/journalctl")
        process.arguments = ["--no-pager", "-o", "json"] + matches
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    /// A field's text: journalctl prints values as strings, or as byte arrays when it deems them unprintable.
    static func text(_ value: Any?) -> String? {
        if let string = value as? String { return string }
        guard let bytes = value as? [Any] else { return nil }
        return String(decoding: bytes.compactMap { ($0 as? NSNumber).map { UInt8(truncating: $0) } }, as: UTF8.self)
    }
}

struct JournaldUnavailable: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

@Suite(.enabled(if: Journald.shouldRun, "needs a running or startable systemd-journald (always runs when CI=true)"))
struct JournalIntegrationTests {
    @Test func entryArrivesWithStructuredFields() async throws {
        try Journald.ensureRunning()

        let messageID = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let mdevUUID = UUID().uuidString.lowercased()
        let marker = "mdevmon journal test \(UUID().uuidString)"

        // Watch the real send's result directly: the global failure count is shared with parallel tests.
        let results = Capture()
        var handler = JournalLogHandler(
            label: "journal-test", syslogIdentifier: "mdevmon-test", metadataProvider: nil)
        handler.transport = { fields in
            let result = JournalSocket.send(fields)
            results.append("\(result)")
            return result
        }
        var logger = Logger(label: "journal-test") { _ in handler }
        logger[metadataKey: "domain.name"] = "from-logger"
        logger[metadataKey: "libvirt.uri"] = "qemu:///system"
        let line: UInt = #line + 1
        logger.warning(
            "\(marker)",
            metadata: [
                "message.id": "\(messageID)",
                "mdev.uuid": "\(mdevUUID)",
                "domain.name": "from-call-site",
                "error": "first line\nsecond line",
            ])
        #expect(results.all == ["0"], "sd_journal_sendv returned \(results.all)")

        let matches = ["MESSAGE_ID=\(messageID)", "MDEV_UUID=\(mdevUUID)"]
        var found: [[String: Any]] = []
        _ = try await eventually(within: .seconds(5)) {
            found = try Journald.entries(matching: matches)
            return !found.isEmpty
        }
        let entry = try #require(found.first, "no journal entry for \(matches)")
        #expect(found.count == 1)
        #expect(entry["MESSAGE"] as? String == marker)
        #expect(entry["PRIORITY"] as? String == "4")
        #expect(entry["SYSLOG_IDENTIFIER"] as? String == "mdevmon-test")
        #expect(entry["MESSAGE_ID"] as? String == messageID)
        #expect(entry["MDEV_UUID"] as? String == mdevUUID)
        #expect(entry["DOMAIN_NAME"] as? String == "from-call-site")
        #expect(entry["LIBVIRT_URI"] as? String == "qemu:///system")
        #expect(entry["CODE_FILE"] as? String == #fileID)
        #expect(entry["CODE_LINE"] as? String == "\(line)")
        #expect(entry["CODE_FUNC"] as? String == #function)
        #expect(entry["_PID"] as? String == "\(ProcessInfo.processInfo.processIdentifier)")
        #expect(Journald.text(entry["ERROR"]) == "first line\nsecond line", "multi-line value crossed intact")
    }
}
