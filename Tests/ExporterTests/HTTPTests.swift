@testable import Exporter
import Foundation
import Monitor
import Synchronization
import Testing

@Suite struct HTTPTests {
    private func url(_ port: Int, _ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    @Test func servesMetrics() async throws {
        try await withServer { port async throws in
            let response = try await curl([url(port, "/metrics")])
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            #expect(response.headers["content-encoding"] == nil)
            #expect(response.bodyText.contains("mdev_device_active{uuid=\"11111111-1111-4111-8111-111111111111\","))
            #expect(response.bodyText.contains("\nprocess_open_fds "))
            #expect(response.bodyText.contains("\nmdev_scrape_bytes "))
        }
    }

    @Test func honoursAcceptEncodingGzip() async throws {
        try await withServer { port async throws in
            let plain = try await curl([url(port, "/metrics")])
            let compressed = try await curl(["--compressed", url(port, "/metrics")])
            #expect(compressed.status == 200)
            #expect(compressed.headers["content-encoding"] == "gzip")
            #expect(compressed.headers["vary"] == "Accept-Encoding")
            // curl decoded it; apart from the scrape's own process and cost facts it is the same text.
            func stable(_ text: String) -> [Substring] {
                text.split(separator: "\n").filter { !$0.hasPrefix("process_") && !$0.hasPrefix("mdev_scrape_") }
            }
            #expect(stable(compressed.bodyText) == stable(plain.bodyText))
            let raw = try await curl(["-H", "Accept-Encoding: gzip", url(port, "/api/v1/devices")])
            #expect(raw.headers["content-encoding"] == "gzip")
            let gunzipped = try await run("/usr/bin/gzip", ["-dc"], stdin: raw.body)
            #expect(gunzipped.out == Listing(Fixtures.small()).json())
            let refused = try await curl(["-H", "Accept-Encoding: gzip;q=0", url(port, "/metrics")])
            #expect(refused.headers["content-encoding"] == nil)
        }
    }

    /// A large scrape is written as its cached chunks (and gzip fragments between a header and a trailer):
    /// the declared length must be the sum of the pieces, plain and gzip, and HEAD must say the same.
    @Test func largeScrapeIsWrittenWhole() async throws {
        let snapshot = Fixtures.large(devices: 3000)
        try await withServer(snapshot: { snapshot }) { port async throws in
            func stable(_ text: String) -> [Substring] {
                text.split(separator: "\n").filter { !$0.hasPrefix("process_") && !$0.hasPrefix("mdev_scrape_") }
            }
            let plain = try await curl([url(port, "/metrics")])
            // curl fails (exit 18) on a body shorter than its declared length.
            #expect(plain.exitCode == 0)
            #expect(plain.body.count > Scrape.wholeBodyLimit)
            #expect(plain.headers["content-length"] == String(plain.body.count))
            #expect(plain.bodyText.hasSuffix("\n"))
            let head = try await curl(["-I", url(port, "/metrics")])
            #expect(head.status == 200)
            // The per-scrape families may differ by a digit or two between two scrapes.
            let headLength = Int(head.headers["content-length"] ?? "") ?? 0
            #expect(abs(headLength - plain.body.count) < 64, "HEAD says \(headLength), GET sent \(plain.body.count)")
            let raw = try await curl(["-H", "Accept-Encoding: gzip", url(port, "/metrics")])
            #expect(raw.exitCode == 0)
            #expect(raw.headers["content-encoding"] == "gzip")
            #expect(raw.headers["content-length"] == String(raw.body.count))
            let gunzipped = try await run("/usr/bin/gzip", ["-dc"], stdin: raw.body)
            #expect(gunzipped.status == 0, "gzip -dc: \(gunzipped.err)")
            #expect(stable(String(decoding: gunzipped.out, as: UTF8.self)) == stable(plain.bodyText))
        }
    }

    @Test func unknownPathIs404() async throws {
        try await withServer { port async throws in
            for path in ["/nope", "/metrics/", "/api/v1/devices/x", "/healthz/"] {
                let response = try await curl([url(port, path)])
                #expect(response.status == 404, "\(path)")
            }
        }
    }

    @Test func wrongMethodIs405WithAllow() async throws {
        try await withServer { port async throws in
            for (method, path) in [("POST", "/metrics"), ("DELETE", "/"), ("PUT", "/healthz"), ("POST", "/api/v1/devices")] {
                let response = try await curl(["-X", method, url(port, path)])
                #expect(response.status == 405, "\(method) \(path)")
                #expect(response.headers["allow"] == "GET, HEAD")
            }
            let post404 = try await curl(["-X", "POST", url(port, "/elsewhere")])
            #expect(post404.status == 404)
        }
    }

    @Test func headReturnsHeadersOnly() async throws {
        try await withServer { port async throws in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("HEAD /api/v1/devices HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let response = try await connection.receive()
            let length = Listing(Fixtures.small()).json().count
            #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(response.lowercased().contains("\r\ncontent-length: \(length)\r\n"))
            #expect(response.hasSuffix("\r\n\r\n"), "a HEAD response has no body")
        }
    }

    @Test func healthzFollowsTheConnection() async throws {
        let source = SnapshotSource(Fixtures.small())
        try await withServer(snapshot: { source.snapshot }) { port async throws in
            let healthy = try await curl([url(port, "/healthz")])
            #expect(healthy.status == 200 && healthy.bodyText == "ok\n")
            source.snapshot = Fixtures.small(connected: false, synced: false)
            let down = try await curl([url(port, "/healthz")])
            #expect(down.status == 503)
            #expect(down.bodyText == "libvirt unreachable\n")
            var syncing = Fixtures.small(connected: true, synced: false)
            syncing.status.lastError = nil
            source.snapshot = syncing
            let pending = try await curl([url(port, "/healthz")])
            #expect(pending.status == 503)
            #expect(pending.bodyText == "first sync not finished\n")
        }
    }

    @Test func devicesEndpointServesTheListing() async throws {
        try await withServer { port async throws in
            let response = try await curl([url(port, "/api/v1/devices")])
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "application/json")
            #expect(response.body == Listing(Fixtures.small()).json())
        }
    }

    @Test func landingPageShowsDevicesEscaped() async throws {
        try await withServer { port async throws in
            let response = try await curl([url(port, "/")])
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "text/html; charset=utf-8")
            let html = response.bodyText
            #expect(html.contains("<a href=\"/metrics\">Metrics</a>"))
            #expect(html.contains("<td>11111111-1111-4111-8111-111111111111</td><td>pci_0000_3b_00_0</td>"
                                  + "<td>nvidia-558</td><td>active</td><td>persistent</td><td>yes</td>"
                                  + "<td>vm &quot;q&quot; \\ &lt;b&gt;\nx</td>"))
            #expect(html.contains("<td>22222222-2222-4222-8222-222222222222</td>"))
            #expect(!html.contains("<b>"))
            #expect(!html.lowercased().contains("<script"))
            #expect(html.contains("qemu:///system"))
            #expect(html.contains("Version 1.2.3 (revision abc123), Swift 6.3"))
        }
    }

    @Test func customTelemetryPath() async throws {
        let configuration = ExporterConfiguration(
            listenAddresses: [ListenAddress(host: "127.0.0.1", port: 0)], telemetryPath: "/custom/metrics",
            build: Fixtures.build)
        try await withServer(configuration) { port async throws in
            #expect(try await curl([url(port, "/custom/metrics")]).status == 200)
            #expect(try await curl([url(port, "/metrics")]).status == 404)
            #expect(try await curl([url(port, "/")]).bodyText.contains("<a href=\"/custom/metrics\">"))
        }
    }

    @Test func listensOnEveryAddress() async throws {
        let ports = PortCollector()
        let configuration = ExporterConfiguration(
            listenAddresses: [ListenAddress(host: "127.0.0.1", port: 0), ListenAddress(host: "127.0.0.2", port: 0)],
            build: Fixtures.build)
        let service = try ExporterService(
            configuration: configuration, snapshot: { Fixtures.small() }, logger: quietLogger,
            onListening: { address, port in ports.add(address.host, port) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            let deadline = ContinuousClock.now + .seconds(30)
            while ports.all.count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            for (host, port) in ports.all {
                #expect(try await curl(["http://\(host):\(port)/healthz"]).status == 200, "\(host)")
            }
            #expect(ports.all.count == 2)
            group.cancelAll()
        }
    }

    @Test func anEmptyHostListensOnEveryInterface() async throws {
        let configuration = ExporterConfiguration(listenAddresses: [ListenAddress(host: "", port: 0)],
                                                  build: Fixtures.build)
        try await withServer(configuration) { port async throws in
            #expect(try await curl([url(port, "/healthz")]).status == 200)
            if ExporterService.bindHost("") == "::" {
                #expect(try await curl(["http://[::1]:\(port)/healthz"]).status == 200)
            }
        }
    }

    @Test func aBusyPortIsAStartupError() async throws {
        try await withServer { port async throws in
            let configuration = ExporterConfiguration(
                listenAddresses: [ListenAddress(host: "127.0.0.1", port: port)], build: Fixtures.build)
            let second = try ExporterService(configuration: configuration, snapshot: { Fixtures.small() },
                                             logger: quietLogger)
            do {
                try await second.run()
                Issue.record("a second server bound the same port")
            } catch let error as ExporterServeError {
                #expect(error.address.port == port)
                #expect("\(error)".hasPrefix("exporter on 127.0.0.1:\(port): "))
            }
        }
    }
}

final class PortCollector: Sendable {
    private let ports = Mutex<[(String, Int)]>([])
    func add(_ host: String, _ port: Int) { ports.withLock { $0.append((host, port)) } }
    var all: [(String, Int)] { ports.withLock { $0 } }
}
