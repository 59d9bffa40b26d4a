@testable import Exporter
import Foundation
import Monitor
import Testing

@Suite struct ListenAddressTests {
    @Test(arguments: [
        (":9850", "", 9850), ("127.0.0.1:80", "127.0.0.1", 80), ("[::1]:9850", "::1", 9850),
        ("localhost:0", "localhost", 0), ("[::]:1", "::", 1),
    ])
    func parses(text: String, host: String, port: Int) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address == ListenAddress(host: host, port: port))
    }

    @Test func defaultIsAllInterfacesOnPort9850() {
        #expect(ListenAddress.default == ListenAddress(host: "", port: 9850))
        #expect(ExporterConfiguration(build: Fixtures.build).listenAddresses == [.default])
        #expect(ExporterConfiguration(build: Fixtures.build).telemetryPath == "/metrics")
    }

    @Test(arguments: [
        ("9850", "expected host:port or :port"), ("host:", "port must be a number from 0 to 65535"),
        (":65536", "port must be a number from 0 to 65535"), ("::1:9850", "write an IPv6 host in brackets"),
        ("[::1:9850", "unterminated [IPv6] host"), (":x", "port must be a number from 0 to 65535"),
    ])
    func rejects(text: String, reason: String) {
        #expect {
            try ListenAddress(parsing: text)
        } throws: { error in
            "\(error)".hasPrefix("invalid listen address \"\(text)\": \(reason)")
        }
    }

    @Test func roundTripsThroughDescription() throws {
        for text in [":9850", "127.0.0.1:1", "[::1]:9850"] {
            #expect(try ListenAddress(parsing: text).description == text)
        }
    }

    @Test func emptyHostBindsAWildcard() {
        #expect(["::", "0.0.0.0"].contains(ExporterService.bindHost("")))
        #expect(ExporterService.bindHost("127.0.0.1") == "127.0.0.1")
    }
}

@Suite struct ConfigurationValidationTests {
    private func error(_ configuration: ExporterConfiguration) -> String? {
        do {
            _ = try ExporterService(configuration: configuration, snapshot: { Fixtures.small() }, logger: quietLogger)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func rejectsBadTelemetryPaths() {
        #expect(error(.init(telemetryPath: "metrics", build: Fixtures.build))
            == "telemetry path \"metrics\" must start with / and hold no query")
        #expect(error(.init(telemetryPath: "/healthz", build: Fixtures.build))
            == "telemetry path \"/healthz\" collides with a built-in endpoint")
        #expect(error(.init(listenAddresses: [], build: Fixtures.build)) == "at least one listen address is required")
        #expect(error(.init(listenAddresses: [.default, .default], build: Fixtures.build)) == "duplicate listen address")
        #expect(error(.init(telemetryPath: "/custom/metrics", build: Fixtures.build)) == nil)
    }
}

@Suite struct HealthTests {
    @Test func healthyWhenConnectedAndSynced() {
        let health = Endpoints.health(Fixtures.small().status)
        #expect(health.healthy && health.reason == "ok")
    }

    /// Anyone may ask /healthz: it says why in a few words, never libvirt's error text (the journal has that).
    @Test func givesAShortReasonNotLibvirtsError() {
        let health = Endpoints.health(Fixtures.small(connected: false, synced: false).status)
        #expect(!health.healthy)
        #expect(health.reason == "libvirt unreachable")
    }

    @Test func saysWhenASyncIsPending() {
        var status = MonitorStatus(uri: "qemu:///system")
        status.connected = true
        #expect(Endpoints.health(status).reason == "first sync not finished")
        status.lastSyncTime = Date()
        status.lastError = "libvirt: internal error: connection reset"
        #expect(Endpoints.health(status).reason == "resync after reconnect not finished")
        status.connected = false
        #expect(Endpoints.health(status).reason == "libvirt unreachable")
    }
}

@Suite struct ProcessStatsTests {
    @Test func readsThisProcess() throws {
        let stats = try #require(ProcessStats.current())
        #expect(stats.cpuSeconds > 0)
        #expect(stats.residentMemoryBytes > 1_000_000)
        #expect(stats.virtualMemoryBytes >= stats.residentMemoryBytes)
        #expect(stats.openFDs >= 3)
        #expect((stats.maxFDs ?? Int.max) >= stats.openFDs)
        let now = Date().timeIntervalSince1970
        #expect(stats.startTimeSeconds <= now + 1 && stats.startTimeSeconds > now - 24 * 3600)
    }
}
