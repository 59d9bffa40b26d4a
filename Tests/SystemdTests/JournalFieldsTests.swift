import Logging
import TestSupport
import Testing

@testable import Systemd

@Suite struct JournalFieldsTests {
    @Test(arguments: [
        ("mdev.uuid", "MDEV_UUID"),
        ("message.id", "MESSAGE_ID"),
        ("domain.name", "DOMAIN_NAME"),
        ("libvirt.uri", "LIBVIRT_URI"),
        ("mdev-parent", "MDEV_PARENT"),
        ("error", "ERROR"),
        ("Mixed.Case_key", "MIXED_CASE_KEY"),
        ("ünïcode key", "N_CODE_KEY"),
        ("_leading", "LEADING"),
        ("__", "F_"),
        ("", "F_"),
        ("9lives", "F_9LIVES"),
        ("_1st", "F_1ST"),
        ("message", "F_MESSAGE"),
        ("priority", "F_PRIORITY"),
        ("code.file", "F_CODE_FILE"),
    ])
    func fieldNames(key: String, expected: String) {
        #expect(JournalFields.name(forMetadataKey: key) == expected)
    }

    @Test func fieldNamesAreCutAt64Characters() {
        let name = JournalFields.name(forMetadataKey: String(repeating: "a.", count: 40))
        #expect(name.count == 64)
        #expect(name == String(String(repeating: "A_", count: 40).prefix(64)))
    }

    @Test func unicodeScalarsEachBecomeOneUnderscore() {
        #expect(JournalFields.name(forMetadataKey: "a.ü.b") == "A___B")
    }

    @Test(arguments: [
        (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
    ])
    func priorities(level: Logger.Level, expected: Int) {
        #expect(JournalFields.priority(level) == expected)
    }

    @Test func entryFieldsInOrder() {
        let fields = JournalFields.entry(
            level: .warning,
            message: "device vanished\nsecond line",
            metadata: [
                "mdev.uuid": "4b20d080-1b54-4048-85b3-a6a62d165c01",
                "message.id": "9bf4b6fba937428b83297b40068e5d20",
                "attrs": ["a", "b"],
                "count": .stringConvertible(3),
            ],
            file: "Monitor/Index.swift", function: "apply(_:)", line: 42,
            syslogIdentifier: "mdevmon")
        #expect(
            fields == [
                "MESSAGE=device vanished\nsecond line",
                "PRIORITY=4",
                "SYSLOG_IDENTIFIER=mdevmon",
                "CODE_FILE=Monitor/Index.swift",
                "CODE_LINE=42",
                "CODE_FUNC=apply(_:)",
                "ATTRS=[\"a\", \"b\"]",
                "COUNT=3",
                "MDEV_UUID=4b20d080-1b54-4048-85b3-a6a62d165c01",
                "MESSAGE_ID=9bf4b6fba937428b83297b40068e5d20",
            ])
    }

    @Test func callSiteMetadataWinsOverProviderOverHandler() {
        let provider = Logger.MetadataProvider { ["domain.name": "provider", "libvirt.uri": "qemu:///system"] }
        let merged = EffectiveMetadata.merge(
            handler: ["domain.name": "handler", "mdev.parent": "pci_0000_3b_00_0", "mdev.type": "nvidia-1"],
            provider: provider,
            callSite: ["domain.name": "callsite", "mdev.type": "nvidia-2"],
            error: nil)
        #expect(merged["domain.name"] == "callsite")
        #expect(merged["mdev.type"] == "nvidia-2")
        #expect(merged["mdev.parent"] == "pci_0000_3b_00_0")
        #expect(merged["libvirt.uri"] == "qemu:///system")
        let providerOverHandler = EffectiveMetadata.merge(
            handler: ["domain.name": "handler"], provider: provider, callSite: nil, error: nil)
        #expect(providerOverHandler["domain.name"] == "provider")
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String { "connection reset" }
    }

    @Test func attachedErrorFillsErrorKeyUnlessCallSiteDid() {
        let filled = EffectiveMetadata.merge(handler: [:], provider: nil, callSite: nil, error: Failure())
        #expect(filled["error"] == "connection reset")
        let kept = EffectiveMetadata.merge(handler: [:], provider: nil, callSite: ["error": "mine"], error: Failure())
        #expect(kept["error"] == "mine")
    }
}

@Suite struct JournalLogHandlerTests {
    @Test func sendsMergedFieldsThroughTheTransport() {
        let sent = Capture()
        var handler = JournalLogHandler(label: "test", syslogIdentifier: "mdevmon-test", metadataProvider: nil)
        handler.transport = { fields in
            sent.append(fields.joined(separator: "|"))
            return 0
        }
        var logger = Logger(label: "test") { _ in handler }
        logger[metadataKey: "libvirt.uri"] = "qemu:///system"
        logger.notice("device created", metadata: ["mdev.uuid": "u1"], file: "F.swift", function: "f()", line: 7)
        #expect(
            sent.all == [
                "MESSAGE=device created|PRIORITY=5|SYSLOG_IDENTIFIER=mdevmon-test|CODE_FILE=F.swift|CODE_LINE=7"
                    + "|CODE_FUNC=f()|LIBVIRT_URI=qemu:///system|MDEV_UUID=u1"
            ])
    }

    @Test func failedSendFallsBackToStderrAndCounts() {
        let fallbackLines = Capture()
        var handler = JournalLogHandler(label: "test", metadataProvider: nil)
        handler.transport = { _ in -111 }  // ECONNREFUSED
        handler.fallback.output = fallbackLines.append
        let logger = Logger(label: "test") { _ in handler }
        let before = JournalLogHandler.sendFailures

        logger.error("first", metadata: ["mdev.uuid": "u1"])
        logger.error("second")

        #expect(JournalLogHandler.sendFailures >= before + 2)
        let lines = fallbackLines.all
        // Each entry still arrives; the one-time explanation is there only if this was the process's first
        // failure, which depends on test order.
        #expect(lines.filter { $0.contains("msg=first mdev.uuid=u1\n") && $0.contains("level=error") }.count == 1)
        #expect(lines.filter { $0.contains("msg=second\n") }.count == 1)
        #expect(lines.count <= 3)
    }
}
