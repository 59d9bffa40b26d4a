import Foundation
import Glibc
import Synchronization
import Systemd
import TestSupport
import Testing

/// The real daemon's HTTP port under abuse, loopback only: 20,000 malformed requests (random bytes,
/// truncated requests, huge paths and headers, bogus Content-Length, a TLS ClientHello on the plain port)
/// while 500 slowloris connections trickle a request head that never ends. The daemon keeps answering
/// `/metrics` and `/healthz` throughout, cuts the slowloris connections itself, and its memory and open
/// files return to where they were.
@Suite(.enabled(if: LibvirtHost.enabled, "needs a reachable libvirtd (CI=true makes this mandatory)"))
struct HTTPAbuseTests {
    static let floodCount = 20_000
    static let floodWorkers = 4
    static let slowlorisCount = 500

    @Test func malformedFloodAndSlowlorisLeaveTheExporterServingWithMemoryBack() async throws {
        _ = OpenFilesLimit.raiseToHard()
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        try #require(await daemon.waitUntilSynced(timeout: .seconds(180)), "daemon never synced; stderr:\n\(daemon.stderrTail)")
        let port = daemon.port

        // Warm up, so "before" includes what ordinary scrapes allocate once.
        for path in Array(repeating: "/metrics", count: 20) + ["/healthz", "/"] {
            try #require(await RawHTTP.get(port: port, path: path).status == 200, "warm-up \(path)")
        }
        let before = try #require(ProcessMemory(pid: daemon.pid))
        let fdsBefore = ProcessMemory.openFiles(pid: daemon.pid)

        // 500 slowloris connections, each a request head that keeps growing by a header line a second.
        let slow = Slowloris(port: port, count: Self.slowlorisCount)
        defer { slow.stop() }
        #expect(slow.opened == Self.slowlorisCount, "opened \(slow.opened) slowloris connections")
        // (A few of the daemon's own files come and go, so "all" here means all but five.)
        #expect(await eventually(every: .milliseconds(100)) {
            ProcessMemory.openFiles(pid: daemon.pid) >= fdsBefore + Self.slowlorisCount - 5
        }, "the daemon did not accept the slowloris connections: \(ProcessMemory.openFiles(pid: daemon.pid)) open files")
        // Served while all of them are open.
        let duringSlowloris = await RawHTTP.get(port: port, path: "/metrics")
        #expect(duringSlowloris.status == 200 && duringSlowloris.body.contains("mdev_libvirt_up 1"))
        #expect(await RawHTTP.get(port: port, path: "/healthz").status == 200)
        #expect(slow.closedByServer == 0, "slowloris connections closed before the test looked")

        // The flood, with a prober that keeps asking for /metrics and /healthz the whole time.
        let prober = Prober(port: port)
        let started = ContinuousClock.now
        let flood = await Flood.run(port: port, count: Self.floodCount, workers: Self.floodWorkers)
        let floodTime = ContinuousClock.now - started
        let probes = prober.stop()
        let peak = ProcessMemory(pid: daemon.pid)

        #expect(flood.sent == Self.floodCount, "\(flood)")
        #expect(flood.connectFailures == 0, "\(flood)")
        #expect(probes.failures.isEmpty, "good requests failed during the flood: \(probes.failures.prefix(5))")
        #expect(probes.successes >= 10, "only \(probes.successes) good requests got through during the flood")
        #expect(daemon.process.isRunning, "stderr:\n\(daemon.stderrTail)")
        // Whatever the server answered was a client error, never a success or a server error.
        #expect(flood.statuses.keys.allSatisfy { (400..<500).contains($0) }, "\(flood.statuses)")

        // After the flood.
        let after = await RawHTTP.get(port: port, path: "/metrics")
        #expect(after.status == 200 && after.body.contains("mdev_libvirt_up 1"))
        #expect(await RawHTTP.get(port: port, path: "/healthz").status == 200)

        // The server closes a connection whose request head never completes (its idle timeout counts from
        // the last complete request part, so trickled bytes do not keep it open).
        #expect(await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
            slow.closedByServer == Self.slowlorisCount
        }, "only \(slow.closedByServer) of \(Self.slowlorisCount) slowloris connections were closed by the server")
        let slowClosedAfter = slow.allClosedAfter
        slow.stop()

        // Memory and open files come back.
        var settled = before
        let memoryBack = await eventually(timeout: .seconds(60), every: .milliseconds(500)) {
            guard let now = ProcessMemory(pid: daemon.pid) else { return false }
            settled = now
            return Double(now.rssKiB) <= Double(before.rssKiB) * 1.1
        }
        #expect(memoryBack, "VmRSS \(before.rssKiB) KiB before, \(settled.rssKiB) KiB after")
        #expect(await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
            ProcessMemory.openFiles(pid: daemon.pid) <= fdsBefore
        }, "open files: \(fdsBefore) before, \(ProcessMemory.openFiles(pid: daemon.pid)) after")
        #expect(await RawHTTP.get(port: port, path: "/metrics").status == 200)

        print("""
            HTTPAbuseTests: \(flood.sent) malformed requests by \(Self.floodWorkers) clients in \(floodTime) \
            (\(flood.responded) answered \(flood.statuses.sorted { $0.key < $1.key }), \(flood.closedSilently) closed \
            without an answer, \(flood.timedOut) timed out); \(probes.successes) good requests during it, \
            \(probes.failures.count) failed; \(Self.slowlorisCount) slowloris connections all closed by the \
            server within \(slowClosedAfter.map { "\($0)" } ?? "?") of opening; VmRSS \(before.rssKiB) KiB before (RssAnon \(before.anonKiB)), \
            \(peak?.rssKiB ?? -1) KiB right after the flood (RssAnon \(peak?.anonKiB ?? -1)), \(settled.rssKiB) KiB \
            settled (RssAnon \(settled.anonKiB)); open files \(fdsBefore) before, \
            \(ProcessMemory.openFiles(pid: daemon.pid)) after
            """)
    }
}

/// A process's resident memory, from `/proc/<pid>/status`.
struct ProcessMemory: CustomStringConvertible {
    var rssKiB: Int
    var anonKiB: Int

    init?(pid: Int32) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func field(_ name: String) -> Int? {
            text.split(separator: "\n").first { $0.hasPrefix(name + ":") }?
                .split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
        }
        guard let rss = field("VmRSS"), let anon = field("RssAnon") else { return nil }
        rssKiB = rss
        anonKiB = anon
    }

    var description: String { "VmRSS \(rssKiB) KiB (RssAnon \(anonKiB) KiB)" }

    static func openFiles(pid: Int32) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
    }
}

/// Blocking loopback sockets, used from threads of their own (never from the cooperative pool).
enum RawSocket {
    /// A connected socket with send and receive timeouts, or nil.
    static func connect(port: Int, timeout seconds: Int = 5) -> Int32? {
        try? Loopback.connect(port: port, timeout: seconds)
    }

    /// Sends all of `bytes` unless the peer goes away first; returns whether all went out.
    @discardableResult
    static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    enum Received { case data([UInt8]), closed, timedOut }

    /// Everything until the peer closes, at most `limit` bytes.
    static func receiveAll(_ fd: Int32, limit: Int = 1 << 20) -> Received {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while data.count < limit {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                data += buffer[..<n]
            } else if n == 0 || errno == ECONNRESET {
                break
            } else if errno == EINTR {
                continue
            } else {
                return data.isEmpty ? .timedOut : .data(data)
            }
        }
        return data.isEmpty ? .closed : .data(data)
    }

    /// The status code of an HTTP/1.x response.
    static func status(_ bytes: [UInt8]) -> Int? {
        let head = String(decoding: bytes.prefix(32), as: UTF8.self)
        guard head.hasPrefix("HTTP/1.") else { return nil }
        return Int(head.dropFirst(9).prefix(3))
    }
}

/// A well-formed GET on its own connection.
enum RawHTTP {
    struct Response: Sendable {
        var status: Int?
        var body: String
        var error: String?
    }

    static func get(port: Int, path: String) async -> Response {
        await onThread { getBlocking(port: port, path: path) }
    }

    static func getBlocking(port: Int, path: String) -> Response {
        guard let fd = RawSocket.connect(port: port) else { return Response(status: nil, body: "", error: "connect: \(errno)") }
        defer { close(fd) }
        guard RawSocket.send(fd, Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)) else {
            return Response(status: nil, body: "", error: "send: \(errno)")
        }
        switch RawSocket.receiveAll(fd) {
        case .data(let bytes):
            let text = String(decoding: bytes, as: UTF8.self)
            return Response(status: RawSocket.status(bytes), body: text, error: nil)
        case .closed: return Response(status: nil, body: "", error: "closed without an answer")
        case .timedOut: return Response(status: nil, body: "", error: "no answer within 5 s")
        }
    }
}

/// Runs blocking work on a thread of its own.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// Good requests in a loop on a thread of its own until stopped: `/metrics` and `/healthz` in turn.
final class Prober: Sendable {
    struct Result: Sendable {
        var successes = 0
        var failures: [String] = []
    }

    private let state = Mutex((stop: false, result: Result()))
    private let done = DispatchSemaphore(value: 0)

    init(port: Int) {
        Thread { [self] in
            var i = 0
            while !state.withLock({ $0.stop }) {
                let path = i % 2 == 0 ? "/metrics" : "/healthz"
                let response = RawHTTP.getBlocking(port: port, path: path)
                let ok = response.status == 200 && (path != "/metrics" || response.body.contains("mdev_libvirt_up 1"))
                state.withLock {
                    if ok { $0.result.successes += 1 } else {
                        $0.result.failures.append("\(path): \(response.status.map(String.init) ?? response.error ?? "?")")
                    }
                }
                i += 1
                Thread.sleep(forTimeInterval: 0.05)
            }
            done.signal()
        }.start()
    }

    /// Stops the loop and returns what it saw.
    func stop() -> Result {
        state.withLock { $0.stop = true }
        done.wait()
        return state.withLock { $0.result }
    }
}

/// Connections that send a request line and then one header line a second, never the blank line that
/// ends the head. Tracks which ones the server has closed.
final class Slowloris: Sendable {
    private let fds: [Int32]
    private let state: Mutex<(stop: Bool, closed: Set<Int32>, lastClosed: ContinuousClock.Instant?)>
    /// When the last connection was opened.
    let openedAt: ContinuousClock.Instant
    private let done = DispatchSemaphore(value: 0)

    init(port: Int, count: Int) {
        var fds: [Int32] = []
        for _ in 0..<count {
            guard let fd = RawSocket.connect(port: port) else { break }
            RawSocket.send(fd, Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n".utf8))
            fds.append(fd)
        }
        self.fds = fds
        openedAt = .now
        state = Mutex((stop: false, closed: [], lastClosed: nil))
        Thread { [self] in
            var line = 0
            while !state.withLock({ $0.stop }) {
                line += 1
                for fd in self.fds where !state.withLock({ $0.closed.contains(fd) }) {
                    if isClosedByPeer(fd) || !RawSocket.send(fd, Array("X-Slow-\(line): x\r\n".utf8)) {
                        state.withLock {
                            $0.closed.insert(fd)
                            $0.lastClosed = .now
                        }
                    }
                }
                Thread.sleep(forTimeInterval: 1)
            }
            done.signal()
        }.start()
    }

    var opened: Int { fds.count }
    var closedByServer: Int { state.withLock { $0.closed.count } }
    /// How long after opening the last one the server had closed them all (to within the 1 s trickle).
    var allClosedAfter: Duration? {
        state.withLock { $0.closed.count == fds.count ? $0.lastClosed.map { $0 - openedAt } : nil }
    }

    /// Whether the server closed `fd` (EOF or reset); an answer it sent first (such as a 408) counts too.
    private func isClosedByPeer(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
        if n >= 0 { return true }
        return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
    }

    /// Stops the trickle and closes every connection (idempotent).
    func stop() {
        let first = state.withLock { s -> Bool in
            defer { s.stop = true }
            return !s.stop
        }
        guard first else { return }
        done.wait()
        for fd in fds { close(fd) }
    }
}

/// The malformed requests, sent by several blocking clients at once.
enum Flood {
    struct Result: Sendable, CustomStringConvertible {
        var sent = 0
        var connectFailures = 0
        var responded = 0
        var closedSilently = 0
        var timedOut = 0
        var statuses: [Int: Int] = [:]

        mutating func add(_ other: Result) {
            sent += other.sent
            connectFailures += other.connectFailures
            responded += other.responded
            closedSilently += other.closedSilently
            timedOut += other.timedOut
            statuses.merge(other.statuses, uniquingKeysWith: +)
        }

        var description: String {
            "sent \(sent), connect failures \(connectFailures), answered \(responded) \(statuses), "
                + "closed without an answer \(closedSilently), timed out \(timedOut)"
        }
    }

    static func run(port: Int, count: Int, workers: Int) async -> Result {
        await withTaskGroup(of: Result.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    await onThread {
                        var result = Result()
                        var generator = SystemRandomNumberGenerator()
                        for i in stride(from: worker, to: count, by: workers) {
                            send(payload(i, using: &generator), port: port, into: &result)
                        }
                        return result
                    }
                }
            }
            var total = Result()
            for await part in group { total.add(part) }
            return total
        }
    }

    /// One malformed request on its own connection: send it, half-close, read what comes back.
    private static func send(_ bytes: [UInt8], port: Int, into result: inout Result) {
        guard let fd = RawSocket.connect(port: port, timeout: 3) else {
            result.connectFailures += 1
            return
        }
        defer { close(fd) }
        result.sent += 1
        RawSocket.send(fd, bytes)
        shutdown(fd, Int32(SHUT_WR))
        switch RawSocket.receiveAll(fd, limit: 4096) {
        case .data(let answer):
            result.responded += 1
            result.statuses[RawSocket.status(answer) ?? 0, default: 0] += 1
        case .closed: result.closedSilently += 1
        case .timedOut: result.timedOut += 1
        }
    }

    static let goodRequest = Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\nUser-Agent: abuse\r\n\r\n".utf8)

    /// A minimal TLS 1.2 ClientHello record, as a TLS client sends first on a port it believes is TLS.
    static func clientHello(using generator: inout SystemRandomNumberGenerator) -> [UInt8] {
        var body: [UInt8] = [0x03, 0x03] + (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        body += [0x00]  // no session id
        body += [0x00, 0x04, 0x13, 0x01, 0xC0, 0x2F]  // two cipher suites
        body += [0x01, 0x00]  // null compression
        body += [0x00, 0x00]  // no extensions
        let handshake: [UInt8] = [0x01, 0x00, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        return [0x16, 0x03, 0x01, UInt8(handshake.count >> 8), UInt8(handshake.count & 0xFF)] + handshake
    }

    /// The `i`th malformed request; the mix repeats every 20.
    static func payload(_ i: Int, using generator: inout SystemRandomNumberGenerator) -> [UInt8] {
        func random(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        let text: String
        switch i % 20 {
        case 0...4: return random(Int.random(in: 1...4096, using: &generator))
        case 5...8: return Array(goodRequest.prefix(Int.random(in: 1..<goodRequest.count - 1, using: &generator)))
        case 9: text = "GET /" + String(repeating: "a", count: 100_000) + " HTTP/1.1\r\nHost: x\r\n\r\n"
        case 10: text = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "b", count: 100_000) + "\r\n\r\n"
        case 11: text = "GET /metrics HTTP/1.1\r\n" + (0..<2000).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        case 12: text = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nabc"
        case 13: text = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\nabc"
        case 14: text = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcde"
        case 15: text = "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nonly this"
        case 16, 17: return clientHello(using: &generator)
        case 18: text = "POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n"
        default: text = "GET\u{0}/metrics HTTP/9.9\r\nHost: \u{7f}\r\n\r\n"
        }
        return Array(text.utf8)
    }
}
