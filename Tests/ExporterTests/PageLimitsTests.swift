@testable import Exporter
import Foundation
import Monitor
import NIOCore
import TestSupport
import Testing

/// What an unauthenticated client can cost: `/` and `/api/v1/devices` are rendered once per state they
/// show, renders and bcrypt checks are bounded, and the excess gets 503 with `Retry-After`.
@Suite struct PageLimitsTests {
    private let configuration = ExporterConfiguration(
        listenAddresses: [ListenAddress(host: "127.0.0.1", port: 0)], build: Fixtures.build)

    /// An index (not a hand-built snapshot) holding `count` devices.
    private func index(devices count: Int) async -> DeviceIndex {
        let index = DeviceIndex(uri: "qemu:///system")
        await index.replace(with: Fixtures.large(devices: count).state)
        return index
    }

    private func text(_ buffers: [ByteBuffer]) -> String { String(decoding: Scrape.joined(buffers), as: UTF8.self) }

    /// A page's body, its permit given back as a written response's is.
    private func body(_ page: PageBody, _ endpoints: Endpoints) -> [ByteBuffer] {
        endpoints.written(page)
        return page.buffers
    }

    @Test func pagesAreRenderedAndCompressedOncePerIndexState() async throws {
        let index = await index(devices: 50)
        let endpoints = Endpoints(configuration: configuration, snapshot: { index.snapshot })
        func landing(gzip: Bool = false) async throws -> [ByteBuffer] { body(try await endpoints.landingPage(gzip: gzip), endpoints) }
        func devices() async throws -> [ByteBuffer] { body(try await endpoints.devicesJSON(gzip: false), endpoints) }
        let first = try await landing()
        for _ in 0..<3 { #expect(try await landing() == first) }
        let gzipped = try await landing(gzip: true)
        #expect(try await landing(gzip: true) == gzipped)
        for _ in 0..<3 { _ = try await devices() }
        #expect(endpoints.landingCache.renders == 1 && endpoints.landingCache.compressions == 1)
        #expect(endpoints.devicesCache.renders == 1)

        // A change to the index renders both again, once.
        await index.replace(with: Fixtures.large(devices: 51).state)
        let uuid = try #require(index.snapshot.sortedDevices.last?.uuid)
        #expect(try text(await landing()).contains("<td>\(uuid)</td>"))
        #expect(try text(await devices()).contains("\"\(uuid)\""))
        _ = try await landing()
        _ = try await devices()
        #expect(endpoints.landingCache.renders == 2 && endpoints.devicesCache.renders == 2)

        // The connection shows on the page but not in the listing.
        await index.markDisconnected(reason: "test")
        #expect(try text(await landing()).contains("<td class=\"bad\">disconnected</td>"))
        _ = try await devices()
        #expect(endpoints.landingCache.renders == 3 && endpoints.devicesCache.renders == 2)
        #expect(await eventually { endpoints.pageGate.holders == 0 })
    }

    /// Page responses (render, gzip, write) take a permit: the next ones wait in a bounded queue, the
    /// excess is refused at once.
    @Test func pageResponsesWaitForAPermitAndTheExcessIsRefused() async throws {
        let index = await index(devices: 20)
        var limits = ExporterLimits()
        limits.pages = .init(permits: 1, waiting: 1, maxWait: .seconds(60))
        let endpoints = Endpoints(configuration: configuration, snapshot: { index.snapshot }, limits: limits)

        let sending = try await endpoints.devicesJSON(gzip: false)  // a response being written
        let waiting = Task { try await endpoints.landingPage(gzip: false) }
        #expect(await eventually { endpoints.pageGate.waiters == 1 })
        await #expect(throws: AdmissionGate.Refusal.queueFull) { try await endpoints.devicesJSON(gzip: true) }
        #expect(endpoints.landingCache.renders == 0, "nothing rendered before its turn")
        endpoints.written(sending)
        let page = try await waiting.value
        #expect(text(page.buffers).hasPrefix("<!DOCTYPE html>"))
        #expect(endpoints.pageGate.holders == 1)
        endpoints.written(page)
        #expect(endpoints.pageGate.holders == 0 && endpoints.landingCache.renders == 1)
    }

    @Test func busyPagesGet503WithRetryAfterWhileMetricsAndHealthStillAnswer() async throws {
        let index = await index(devices: 20)
        var limits = ExporterLimits()
        limits.pages = .init(permits: 1, waiting: 0, maxWait: .seconds(60))
        try await withService(snapshot: { index.snapshot }, limits: limits) { port, service async throws in
            let gate = service.endpoints.pageGate
            let lease = try await gate.enter()
            for path in ["/", "/api/v1/devices"] {
                let busy = try await curl(["http://127.0.0.1:\(port)\(path)"])
                #expect(busy.status == 503, "\(path)")
                #expect(busy.headers["retry-after"] == "1", "\(path)")
            }
            #expect(try await curl(["http://127.0.0.1:\(port)/metrics"]).status == 200)
            #expect(try await curl(["http://127.0.0.1:\(port)/healthz"]).status == 200)
            gate.leave(lease)
            #expect(try await curl(["http://127.0.0.1:\(port)/"]).status == 200)
            #expect(try await curl(["--compressed", "http://127.0.0.1:\(port)/api/v1/devices"]).status == 200)
            #expect(try await curl(["-I", "http://127.0.0.1:\(port)/"]).status == 200)
            // Every written response (and HEAD's) gave its permit back.
            #expect(await eventually { gate.holders == 0 })
        }
    }

    /// bcrypt checks wait for one permit, in a bounded queue; a check whose client hung up leaves the
    /// queue without costing a bcrypt; credentials verified before need no check at all.
    @Test func bcryptChecksAreBoundedAndDroppedWhenTheClientLeaves() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let web = try dir.file("web.yml", "basic_auth_users:\n  alice: \(WebConfig.hashPassword("pw", cost: 4))\n")
        var limits = ExporterLimits()
        limits.bcrypt = .init(permits: 1, waiting: 1, maxWait: .seconds(60))
        let configuration = ExporterConfiguration(
            listenAddresses: [ListenAddress(host: "127.0.0.1", port: 0)], webConfigFile: web, build: Fixtures.build)
        try await withService(configuration, limits: limits) { port, service async throws in
            let url = "http://127.0.0.1:\(port)/healthz"
            #expect(try await curl(["-u", "alice:pw", url]).status == 200)
            let gate = service.bcryptGate
            let lease = try await gate.enter()  // a check in progress

            // A client that asks and hangs up: its check leaves the queue long before maxWait.
            let wrong = "Authorization: Basic \(Data("alice:wrong".utf8).base64EncodedString())\r\n"
            do {
                let leaving = try await RawConnection.open(port: port)
                try await leaving.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\(wrong)\r\n")
                #expect(await eventually { gate.waiters == 1 })
            }
            #expect(await eventually(timeout: .seconds(10)) { gate.waiters == 0 },
                    "a check for a client that left is still queued")

            // The queue holds one; the next gets 503 at once; verified credentials need no check.
            let waiting = try await RawConnection.open(port: port)
            try await waiting.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\(wrong)\r\n")
            #expect(await eventually { gate.waiters == 1 })
            let refused = try await curl(["-u", "alice:other", url])
            #expect(refused.status == 503 && refused.headers["retry-after"] == "1")
            #expect(try await curl(["-u", "alice:pw", url]).status == 200)

            gate.leave(lease)
            #expect(try await waiting.receive().hasPrefix("HTTP/1.1 401 Unauthorized\r\n"))
            #expect(gate.holders == 0)
        }
    }
}
