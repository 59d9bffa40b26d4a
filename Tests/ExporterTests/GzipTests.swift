@testable import Exporter
import Foundation
import Testing

@Suite struct GzipTests {
    /// Decompresses with the system's gzip, the independent judge of our encoder.
    private func gunzip(_ data: [UInt8]) throws -> [UInt8] {
        let result = try run("/usr/bin/gzip", ["-dc"], stdin: Data(data))
        #expect(result.status == 0, "gzip -dc failed: \(result.err)")
        return [UInt8](result.out)
    }

    @Test(arguments: [0, 1, 2, 3, 4, 257, 258, 259, 1000, 40_000, 70_000])
    func roundTripsRepetitiveText(length: Int) throws {
        let line = Array("mdev_device_active{uuid=\"11111111-1111\",parent=\"pci_0000_3b_00_0\"} 1\n".utf8)
        let input = (0..<length).map { line[$0 % line.count] }
        #expect(try gunzip(Gzip.compress(input)) == input)
    }

    @Test func roundTripsRandomBytes() throws {
        var generator = SystemRandomNumberGenerator()
        let input = (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        #expect(try gunzip(Gzip.compress(input)) == input)
    }

    @Test func roundTripsLongRunsAndFarMatches() throws {
        // Runs longer than the longest match, and repeats just inside and beyond the 32 KiB window.
        var input = [UInt8](repeating: UInt8(ascii: "a"), count: 5000)
        let block = (0..<32_760).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 7) }
        input += block + block + [1, 2, 3] + block
        #expect(try gunzip(Gzip.compress(input)) == input)
    }

    @Test func compressesAScrape() throws {
        let body = MetricsRenderer.render(
            snapshot: Fixtures.large(devices: 2000), build: Fixtures.build, process: nil, previousScrape: nil)
        let compressed = Gzip.compress(body)
        #expect(try gunzip(compressed) == body)
        #expect(compressed.count * 3 < body.count, "\(body.count) → \(compressed.count) bytes")
    }

    @Test func checksumMatchesKnownValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
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
