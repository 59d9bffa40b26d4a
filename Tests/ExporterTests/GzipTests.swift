@testable import Exporter
import Foundation
import Monitor
import NIOCore
import Testing

@Suite struct GzipTests {
    /// Decompresses with the system's gzip, the independent judge of our encoder.
    private func gunzip(_ data: [UInt8]) async throws -> [UInt8] {
        let result = try await run("/usr/bin/gzip", ["-dc"], stdin: Data(data))
        #expect(result.status == 0, "gzip -dc failed: \(result.err)")
        return [UInt8](result.out)
    }

    @Test(arguments: [0, 1, 2, 3, 4, 257, 258, 259, 1000, 40_000, 70_000])
    func roundTripsRepetitiveText(length: Int) async throws {
        let line = Array("mdev_device_active{uuid=\"11111111-1111\",parent=\"pci_0000_3b_00_0\"} 1\n".utf8)
        let input = (0..<length).map { line[$0 % line.count] }
        #expect(try await gunzip(compress(input)) == input)
    }

    @Test func roundTripsRandomBytes() async throws {
        var generator = SystemRandomNumberGenerator()
        let input = (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        #expect(try await gunzip(compress(input)) == input)
    }

    @Test func roundTripsLongRunsAndFarMatches() async throws {
        // Runs longer than the longest match, and repeats just inside and beyond the 32 KiB window.
        var input = [UInt8](repeating: UInt8(ascii: "a"), count: 5000)
        let block = (0..<32_760).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 7) }
        input += block + block + [1, 2, 3] + block
        #expect(try await gunzip(compress(input)) == input)
    }

    @Test func compressesAScrape() async throws {
        let body = MetricsRenderer.render(
            snapshot: Fixtures.large(devices: 2000), build: Fixtures.build, process: nil, previousScrape: nil)
        let compressed = compress(body)
        #expect(try await gunzip(compressed) == body)
        #expect(compressed.count * 3 < body.count, "\(body.count) → \(compressed.count) bytes")
    }

    @Test func fragmentsConcatenateIntoOneMember() async throws {
        let pieces: [[UInt8]] = [Array("# HELP a x\n".utf8), [], Array(repeating: 0x41, count: 70_000), [0x0A],
                                 (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }]
        let member = Gzip.member(pieces.map { Gzip.fragment(ByteBuffer(bytes: $0)) })
        #expect(try await gunzip(Scrape.joined(member)) == pieces.flatMap { $0 })
        #expect(try await gunzip(Scrape.joined(Gzip.member([]))) == [])
    }

    /// A cached fragment keeps its compressed size, not the room zlib's bound asked for (about the
    /// input's size): at 10,000 mdevs that room was megabytes held by the cache.
    @Test func fragmentsKeepOnlyTheirCompressedBytes() {
        let line = Array("mdev_device_active{uuid=\"11111111-1111\",parent=\"pci_0000_3b_00_0\"} 1\n".utf8)
        let input = (0..<60_000).map { line[$0 % line.count] }
        let fragment = Gzip.fragment(ByteBuffer(bytes: input))
        #expect(fragment.bytes.capacity < input.count / 8, "\(fragment.bytes.readableBytes) bytes in \(fragment.bytes.capacity)")
    }

    /// `input` as one gzip member, as the server compresses a landing page or device list.
    private func compress(_ input: [UInt8]) -> [UInt8] { Scrape.joined(Gzip.compress(ByteBuffer(bytes: input))) }

    @Test func scrapesGzipFromCachedFamilies() async throws {
        let cache = MetricsCache()
        let snapshot = Fixtures.large(devices: 500)
        for _ in 0..<2 {
            let scrape = MetricsRenderer.renderScrape(
                snapshot: snapshot, build: Fixtures.build, process: nil, previousScrape: nil,
                contributors: [Fixtures.policy], cache: cache)
            let plain = MetricsRenderer.render(snapshot: snapshot, build: Fixtures.build, process: nil,
                                               previousScrape: nil, contributors: [Fixtures.policy])
            #expect(scrape.bytes == plain)
            #expect(scrape.byteCount == plain.count)
            #expect(try await gunzip(scrape.gzipped()) == plain)
        }
    }

    @Test func fragmentsCarryTheirInputsCRC() {
        #expect(Gzip.fragment(ByteBuffer(string: "123456789")).crc == 0xCBF4_3926)
        #expect(Gzip.fragment(ByteBuffer()).crc == 0)
    }

    /// Prometheus sends `Accept-Encoding: gzip`; what it gets must match plain text after each change.
    @Test func gzipFollowsChangesBetweenScrapes() async throws {
        let cache = MetricsCache()
        var snapshot = Fixtures.large(devices: 1500)
        var devices = snapshot.state.devices.values.sorted { $0.key < $1.key }
        for step in 0..<4 {
            let scrape = MetricsRenderer.renderScrape(
                snapshot: snapshot, build: Fixtures.build, process: nil, previousScrape: nil,
                contributors: [Fixtures.policy], cache: cache)
            let plain = MetricsRenderer.render(snapshot: snapshot, build: Fixtures.build, process: nil,
                                               previousScrape: nil, contributors: [Fixtures.policy])
            #expect(scrape.bytes == plain, "step \(step)")
            #expect(try await gunzip(scrape.gzipped()) == plain, "step \(step)")
            // One device flips, one goes, one domain goes.
            let flipped = devices[step * 100]
            _ = snapshot.state.upsertDevice(flipped.definition, flags: DeviceFlags(
                active: !flipped.active, persistent: flipped.persistent, autostart: flipped.autostart))
            _ = snapshot.state.removeDevice(named: devices.removeLast().name)
            _ = snapshot.state.removeDomain(named: "vm-\(step * 2)")
        }
    }

    /// The benchmark's target is 90 % of `gzip -6`'s ratio; the cached fragments must not fall far below,
    /// and a small body (compressed whole) neither.
    @Test(arguments: [100, 3000]) func ratioNearGzipDefault(devices: Int) async throws {
        let cache = MetricsCache()
        let snapshot = Fixtures.large(devices: devices)
        let scrape = MetricsRenderer.renderScrape(snapshot: snapshot, build: Fixtures.build, process: nil,
                                                  previousScrape: nil, contributors: [], cache: cache)
        let reference = try await run("/usr/bin/gzip", ["-6", "-c"], stdin: Data(scrape.bytes))
        #expect(reference.status == 0)
        let ours = scrape.gzipped().count
        #expect(Double(reference.out.count) / Double(ours) >= 0.9, "ours \(ours) bytes, gzip -6 \(reference.out.count)")
    }
}

@Suite struct AcceptEncodingTests {
    @Test(arguments: [
        ("gzip", true), ("GZIP", true), ("deflate, gzip;q=0.5", true), ("br, x-gzip", true), ("*", true),
        ("gzip;q=0", false), ("identity", false), ("", false), ("*;q=0", false), ("gzip;q=0, *", false),
        ("br;q=1.0, gzip ; q=0.8", true),
    ])
    func negotiates(header: String, expected: Bool) {
        #expect(AcceptEncoding.allowsGzip(header) == expected)
    }

    @Test func missingHeaderMeansIdentity() {
        #expect(!AcceptEncoding.allowsGzip(nil))
    }
}
