import Foundation
import Monitor
import TestSupport
import Testing

@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct BadInputTests {
    @Test(arguments: [
        ("qemu+tcp://127.0.0.1:1/system", "127.0.0.1"),
        ("qemu:///nonsense", "qemu:///nonsense"),
        ("no-such-driver:///x", "no-such-driver"),
    ])
    func listFailsWithOneLineError(uri: String, mention: String) throws {
        let r = LibvirtHost.run(mdevmonBinary, ["list", "--connect", uri])
        #expect(r.status == 1)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1, "expected one line, got: \(r.err)")
        #expect(r.err.hasPrefix("mdevmon: error: connect to \(uri): "))
        #expect(r.err.contains(mention))
        #expect(r.out.isEmpty)
    }

    @Test func connectErrorCarriesLibvirtContext() throws {
        let uri = "qemu+tcp://127.0.0.1:1/system"
        let error = try #require(throws: LibvirtError.self) {
            try LibvirtConnectorImpl().connect(uri: uri, readOnly: true)
        }
        #expect(error.operation == "connect to")
        #expect(error.object == uri)
        #expect(error.code != 0)
        #expect(!error.message.isEmpty)
    }

    @Test func monitorKeepsRetryingUnreachableLibvirt() async throws {
        let log = LogCapture()
        try await withMonitor(.quick(uri: "qemu+tcp://127.0.0.1:1/system", backoff: .milliseconds(50)), logger: log.logger) { monitor in
            // Each failed attempt is logged under one MESSAGE_ID (the first as an error, repeats at debug
            // level, so the journal is not flooded); four of them are four attempts.
            #expect(await eventually { log.records(.libvirtOperationFailed).count >= 4 }, "stopped retrying")
            let attempts = log.records(.libvirtOperationFailed).prefix(4)
            let delays = attempts.map { $0.message.firstMatch(of: /retrying in ([0-9.]+ seconds)/).map { String($0.1) } }
            #expect(delays == ["0.05 seconds", "0.1 seconds", "0.2 seconds", "0.4 seconds"], "backoff doubles")
            #expect(attempts.first?.level == .error && attempts.dropFirst().allSatisfy { $0.level == .debug })
            #expect(attempts.allSatisfy { $0.message.contains("127.0.0.1") })
            let status = monitor.index.snapshot.status
            #expect(!status.connected && !status.synced)
            #expect(status.lastError?.contains("127.0.0.1") == true)
        }
    }

    @Test func runDaemonStaysUpAndStopsOnSIGTERM() async throws {
        // At debug level every failed attempt is logged: three of them (0.5 s and 1 s of backoff apart)
        // show the daemon kept retrying instead of exiting.
        let daemon = try TestDaemon(uri: "qemu+tcp://127.0.0.1:1/system", extra: ["--log.level", "debug"])
        defer { daemon.stop() }
        #expect(await eventually(every: .milliseconds(100)) {
            daemon.stderr.components(separatedBy: "libvirt unavailable, retrying in").count - 1 >= 3
        }, "fewer than three attempts: \(daemon.stderrTail)")
        #expect(daemon.process.isRunning, "mdevmon run exited while libvirt was unreachable: \(daemon.stderrTail)")
        // Up but not connected: /healthz says why.
        let health = LibvirtHost.run("/usr/bin/curl", ["-s", "-w", "\n%{http_code}", daemon.base + "/healthz"])
        #expect(health.out.hasSuffix("\n503"), "healthz: \(health.out)")
        daemon.signal(SIGTERM)
        #expect(await eventually(timeout: .seconds(10)) { !daemon.process.isRunning })
        #expect(daemon.process.terminationReason == .exit && daemon.process.terminationStatus == 0)
    }
}

@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct VanishedObjectTests {
    /// An event for an object that is gone by the time it is fetched must read as "vanished", not fail.
    @Test func lookupOfMissingObjectsIsNil() throws {
        let connection = try LibvirtConnectorImpl().connect(uri: LibvirtHost.uri, readOnly: true)
        defer { connection.close() }
        #expect(try connection.nodeDevice(named: LibvirtHost.mdevName(uuid: LibvirtHost.newUUID())) == nil)
        #expect(try connection.domain(named: "mdevmon-no-such-domain-\(LibvirtHost.newUUID())") == nil)
    }

    @Test func startOnReadOnlyConnectionIsDenied() throws {
        let connection = try LibvirtConnectorImpl().connect(uri: LibvirtHost.uri, readOnly: true)
        defer { connection.close() }
        let uuid = LibvirtHost.newUUID()
        defer { LibvirtHost.cleanup(uuid: uuid) }
        let name = try LibvirtHost.define(uuid: uuid)
        let error = try #require(throws: LibvirtError.self) { try connection.startNodeDevice(named: name) }
        #expect(error.code == LibvirtError.Code.operationDenied)
        #expect(error.object == name)
        #expect(error.operation == "start node device")
    }
}
