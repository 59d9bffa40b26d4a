import Foundation
import Logging
import TestSupport
import Testing

@testable import Systemd

@Suite struct LogOptionsTests {
    @Test func parsesKnownValuesCaseInsensitively() throws {
        #expect(try LogFormat(parsing: "json") == .json)
        #expect(try LogFormat(parsing: "LOGFMT") == .logfmt)
        #expect(try LogTarget(parsing: "Journal") == .journal)
        #expect(try Logger.Level(parsing: "notice") == .notice)
        #expect(try Logger.Level(parsing: "TRACE") == .trace)
    }

    @Test func errorsNameTheBadValueAndTheAllowedOnes() {
        let levels = Logger.Level.allCases.map(\.rawValue)
        #expect(throws: LogOptionError(option: "log level", value: "verbose", allowed: levels)) {
            try Logger.Level(parsing: "verbose")
        }
        do {
            _ = try LogFormat(parsing: "xml")
            Issue.record("xml parsed")
        } catch {
            #expect(error.description == "invalid log format 'xml'; allowed values: logfmt, json")
        }
        do {
            _ = try LogTarget(parsing: "syslog")
            Issue.record("syslog parsed")
        } catch {
            #expect(error.description == "invalid log target 'syslog'; allowed values: journal, stderr, auto")
        }
        do {
            _ = try Logger.Level(parsing: "warn")
            Issue.record("warn parsed")
        } catch {
            #expect(
                error.description
                    == "invalid log level 'warn'; allowed values: trace, debug, info, notice, warning, error, critical")
        }
    }

    @Test func explicitTargetsNeedNoSocket() {
        #expect(LogTarget.resolve(.journal, socketPath: "/nonexistent/socket") == .journal)
        #expect(LogTarget.resolve(.stderr, socketPath: "/nonexistent/socket") == .stderr)
    }

    @Test func autoFollowsTheSocket() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let socketPath = dir.path + "/socket"
        #expect(LogTarget.resolve(.auto, socketPath: socketPath) == .stderr)

        let listener = try DatagramListener(path: socketPath)
        #expect(LogTarget.resolve(.auto, socketPath: socketPath) == .journal)
        withExtendedLifetime(listener) {}

        let filePath = dir.path + "/plain-file"
        #expect(FileManager.default.createFile(atPath: filePath, contents: Data()))
        #expect(LogTarget.resolve(.auto, socketPath: filePath) == .stderr)
    }

    @Test func factoryBuildsTheResolvedHandler() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let missing = dir.path + "/socket"

        let stderrFactory = LoggingBootstrap.makeHandlerFactory(
            target: .auto, format: .json, level: .debug, socketPath: missing)
        let stderrHandler = try #require(stderrFactory("a") as? StderrLogHandler)
        #expect(stderrHandler.format == .json)
        #expect(stderrHandler.logLevel == .debug)
        #expect(stderrHandler.label == "a")

        let journalFactory = LoggingBootstrap.makeHandlerFactory(
            target: .journal, format: .logfmt, level: .warning, syslogIdentifier: "x")
        let journalHandler = try #require(journalFactory("b") as? JournalLogHandler)
        #expect(journalHandler.logLevel == .warning)
        #expect(journalHandler.syslogIdentifier == "x")
        #expect(journalHandler.label == "b")
    }
}
