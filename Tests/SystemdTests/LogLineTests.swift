import Logging
import TestSupport
import Testing

@testable import Systemd

@Suite struct LogLineTests {
    let ts = "2026-11-25T12:00:00.123Z"

    @Test func logfmtQuotesOnlyWhenNeeded() {
        let line = LogLine.render(
            .logfmt, timestamp: ts, level: .info, message: "mdev created",
            metadata: [
                "mdev.uuid": "4b20d080-1b54-4048-85b3-a6a62d165c01",
                "domain.name": "vm one",
                "error": "said \"no\"\nthen a=b",
                "empty": "",
                "path": #"C:\dir"#,
            ])
        #expect(
            line == """
                ts=2026-11-25T12:00:00.123Z level=info msg="mdev created" domain.name="vm one" empty="" \
                error="said \\"no\\"\\nthen a=b" mdev.uuid=4b20d080-1b54-4048-85b3-a6a62d165c01 path=C:\\dir

                """)
    }

    @Test func logfmtPlainMessageAndOddKeys() {
        let line = LogLine.render(
            .logfmt, timestamp: ts, level: .warning, message: "started",
            metadata: ["odd key=\"x\"": "1", "msg": "shadow", "tab": "a\tb\u{1}"])
        #expect(
            line == """
                ts=2026-11-25T12:00:00.123Z level=warning msg=started meta.msg=shadow odd_key__x_=1 tab="a\\tb\\u0001"

                """)
    }

    @Test func jsonLine() {
        let line = LogLine.render(
            .json, timestamp: ts, level: .error, message: "restore failed: \"busy\"\n",
            metadata: [
                "mdev.uuid": "u1",
                "attrs": ["a", .stringConvertible(2)],
                "nested": ["k": "v", "a": ["x"]],
                "level": "shadow",
                "ctl": "\u{7}",
            ])
        #expect(
            line == #"""
                {"ts":"2026-11-25T12:00:00.123Z","level":"error","msg":"restore failed: \"busy\"\n","attrs":["a","2"],"ctl":"\u0007","mdev.uuid":"u1","meta.level":"shadow","nested":{"a":["x"],"k":"v"}}

                """#)
    }

    @Test func jsonKeepsNonASCII() {
        let line = LogLine.render(.json, timestamp: ts, level: .notice, message: "größe ✓", metadata: [:])
        #expect(line == "{\"ts\":\"\(ts)\",\"level\":\"notice\",\"msg\":\"größe ✓\"}\n")
    }

    @Test(arguments: [
        (Int64(1_795_608_000), 123_456_789, "2026-11-25T12:00:00.123Z"),
        (0, 0, "1970-01-01T00:00:00.000Z"),
        (951_868_799, 999_999_999, "2000-02-29T23:59:59.999Z"),
        (-1, 5_000_000, "1969-12-31T23:59:59.005Z"),
    ])
    func timestamps(seconds: Int64, nanoseconds: Int, expected: String) {
        #expect(Timestamp.format(seconds: seconds, nanoseconds: nanoseconds) == expected)
    }

    @Test func nowLooksLikeRFC3339() {
        let now = Timestamp.now()
        #expect(now.count == 24)
        #expect(now.hasSuffix("Z"))
        #expect(now.dropFirst(10).first == "T")
    }

    @Test func stderrHandlerRendersOneLinePerEntry() {
        let lines = Capture()
        var handler = StderrLogHandler(label: "test", format: .json, level: .debug, metadataProvider: nil)
        handler.output = lines.append
        var logger = Logger(label: "test") { _ in handler }
        logger[metadataKey: "libvirt.uri"] = "qemu:///system"
        logger.trace("hidden")
        logger.debug("shown", metadata: ["mdev.uuid": "u1"])
        #expect(lines.all.count == 1)
        let line = lines.all.first ?? ""
        #expect(line.hasPrefix("{\"ts\":\""))
        #expect(
            line.hasSuffix(#","level":"debug","msg":"shown","libvirt.uri":"qemu:///system","mdev.uuid":"u1"}"# + "\n"))
    }
}
