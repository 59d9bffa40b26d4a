import Foundation
import Logging
import TestSupport
import Testing

@testable import Systemd

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
        _ = try await eventually(timeout: .seconds(5)) {
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
