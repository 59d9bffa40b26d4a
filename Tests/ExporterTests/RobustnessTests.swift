@testable import Exporter
import Foundation
import Glibc
import TestSupport
import Testing

/// A blocking loopback TCP connection for sending malformed requests.
final class RawConnection: @unchecked Sendable {
    let fd: Int32

    /// Connects off the cooperative pool.
    static func open(port: Int) async throws -> RawConnection {
        try await offPool { try RawConnection(port: port) }
    }

    private init(port: Int) throws {
        fd = try Loopback.connect(port: port, timeout: 5)
    }

    deinit { close(fd) }

    /// Sends what it can; the server may close early, which is fine here.
    func send(_ text: String) async throws {
        try await offPool { self.sendBlocking(text) }
    }

    /// Everything the server sends until it closes the connection or goes quiet for 5 s.
    func receive() async throws -> String {
        try await offPool { self.receiveBlocking() }
    }

    private func sendBlocking(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            bytes = bytes.dropFirst(sent)
        }
    }

    private func receiveBlocking() -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            data += buffer[..<count]
        }
        return String(decoding: data, as: UTF8.self)
    }
}

@Suite struct RobustnessTests {
    @Test func survivesAbuseAndStillScrapesPromptly() async throws {
        try await withServer { port async throws in
            // 1. A 100 KB header: over the decoder's limit (80 KiB), so 400 and the connection is closed. An
            // empty answer is a failure: it is also what a server that hangs or drops the connection looks like.
            let huge = try await RawConnection.open(port: port)
            try await huge.send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 100_000))\r\n\r\n")
            let hugeResponse = try await huge.receive()
            #expect(hugeResponse.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(hugeResponse.prefix(80))")
            #expect(hugeResponse.lowercased().contains("\r\nconnection: close\r\n"), "\(hugeResponse.prefix(200))")

            // 2. An unknown method.
            let bogus = try await RawConnection.open(port: port)
            try await bogus.send("FOO /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let bogusResponse = try await bogus.receive()
            #expect(bogusResponse.hasPrefix("HTTP/1.1 400") || bogusResponse.hasPrefix("HTTP/1.1 405"),
                    "\(bogusResponse.prefix(80))")

            // 3. Half a request line, then hang up.
            do {
                let truncated = try await RawConnection.open(port: port)
                try await truncated.send("GET /metr")
            }

            // 4. Two hundred connections that never send a byte.
            var idle: [RawConnection] = []
            for _ in 0..<200 { idle.append(try await RawConnection.open(port: port)) }

            // A scrape still works, and quickly.
            let clock = ContinuousClock()
            let start = clock.now
            let scrape = try await curl(["--max-time", "1", "http://127.0.0.1:\(port)/metrics"])
            let elapsed = clock.now - start
            #expect(scrape.status == 200)
            #expect(elapsed < .seconds(1), "scrape took \(elapsed)")
            #expect(scrape.bodyText.contains("mdev_libvirt_up 1"))

            withExtendedLifetime(idle) {}
            let health = try await curl(["http://127.0.0.1:\(port)/healthz"])
            #expect(health.status == 200)
        }
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        try await withServer { port async throws in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let responses = try await connection.receive()
            #expect(responses.components(separatedBy: "HTTP/1.1 200 OK").count == 3, "\(responses)")
        }
    }
}
