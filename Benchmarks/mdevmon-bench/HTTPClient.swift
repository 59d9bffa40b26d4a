import Glibc

/// A minimal blocking HTTP/1.1 client on one keep-alive connection to 127.0.0.1. It reads bodies into
/// a reused buffer, so a multi-megabyte scrape costs the client no allocation (and no page faults)
/// after the first one.
final class HTTPConnection {
    let port: Int
    private var fd: Int32 = -1
    /// Bytes read past the previous response's end (the next response's start).
    private var pending: [UInt8] = []
    private var body: UnsafeMutablePointer<UInt8>
    private var bodyCapacity = 1 << 16
    /// Body size of the last response.
    private(set) var bodyCount = 0
    /// Header plus body bytes of the last response, as received.
    private(set) var wireBytes = 0
    /// Sent as `Authorization` with every request, when set.
    var authorization: String?

    init(port: Int) throws {
        self.port = port
        body = .allocate(capacity: bodyCapacity)
        try open()
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
        body.deallocate()
    }

    private func open() throws {
        if fd >= 0 { Glibc.close(fd) }
        pending = []
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            fd = -1
            throw BenchError("connect 127.0.0.1:\(port): errno \(e)")
        }
    }

    /// GETs `path`; returns the status. The body stays in the connection's buffer until the next call.
    /// Reconnects once if the server closed the idle connection.
    @discardableResult
    func get(_ path: String, gzip: Bool = false) throws -> Int {
        do {
            return try exchange(path, gzip: gzip)
        } catch {
            try open()
            return try exchange(path, gzip: gzip)
        }
    }

    /// Whether the last body contains `needle` (e.g. `uuid="…"`).
    func bodyContains(_ needle: [UInt8]) -> Bool {
        guard let first = needle.first, needle.count <= bodyCount else { return false }
        var offset = 0
        let last = bodyCount - needle.count
        return needle.withUnsafeBufferPointer { n in
            while offset <= last {
                guard let hit = memchr(body + offset, Int32(first), last - offset + 1) else { return false }
                let at = body.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if memcmp(body + at, n.baseAddress!, n.count) == 0 { return true }
                offset = at + 1
            }
            return false
        }
    }

    /// The number after the first `needle` in the last body (e.g. `\nmdev_scrape_render_seconds `).
    func number(after needle: [UInt8]) -> Double? {
        guard let first = needle.first, needle.count <= bodyCount else { return nil }
        var offset = 0
        let last = bodyCount - needle.count
        return needle.withUnsafeBufferPointer { n -> Double? in
            while offset <= last {
                guard let hit = memchr(body + offset, Int32(first), last - offset + 1) else { return nil }
                let at = body.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if memcmp(body + at, n.baseAddress!, n.count) == 0 {
                    var end = at + n.count
                    while end < bodyCount, body[end] != 0x0A { end += 1 }
                    let text = String(decoding: UnsafeBufferPointer(start: body + at + n.count, count: end - at - n.count), as: UTF8.self)
                    return Double(text)
                }
                offset = at + 1
            }
            return nil
        }
    }

    /// The last response's body, as received (compressed when it was gzip).
    var bodyBytes: [UInt8] { Array(UnsafeBufferPointer(start: body, count: bodyCount)) }

    var bodyText: String { String(decoding: UnsafeBufferPointer(start: body, count: bodyCount), as: UTF8.self) }

    private func exchange(_ path: String, gzip: Bool) throws -> Int {
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: mdevmon-bench\r\n"
            + (gzip ? "Accept-Encoding: gzip\r\n" : "") + (authorization.map { "Authorization: \($0)\r\n" } ?? "") + "\r\n"
        var bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeMutableBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw BenchError("send: errno \(errno)") }
            sent += n
        }
        bytes = []

        // Headers.
        var head = pending
        pending = []
        var headerEnd: Int?
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let end = Self.find(Array("\r\n\r\n".utf8), in: head) {
                headerEnd = end
                break
            }
            let n = try receive(into: &chunk)
            head.append(contentsOf: chunk[..<n])
        }
        guard let headerEnd else { throw BenchError("no header") }
        let headerText = String(decoding: head[..<headerEnd], as: UTF8.self)
        let lines = headerText.split(separator: "\r\n")
        guard let statusLine = lines.first, statusLine.count >= 12,
              let status = Int(statusLine.dropFirst(9).prefix(3)) else {
            throw BenchError("bad status line")
        }
        var contentLength: Int?
        var chunked = false
        for line in lines.dropFirst() {
            let lower = line.lowercased()
            if lower.hasPrefix("content-length:") {
                contentLength = Int(lower.dropFirst(15).trimmingCharacters(in: .whitespaces))
            } else if lower.hasPrefix("transfer-encoding:") && lower.contains("chunked") {
                chunked = true
            }
        }
        var rest = Array(head[(headerEnd + 4)...])
        bodyCount = 0
        if let contentLength, !chunked {
            reserve(contentLength)
            let already = min(rest.count, contentLength)
            rest.withUnsafeBufferPointer { body.initialize(from: $0.baseAddress!, count: already) }
            bodyCount = already
            pending = Array(rest[already...])
            while bodyCount < contentLength {
                let n = recv(fd, body + bodyCount, contentLength - bodyCount, 0)
                guard n > 0 else { throw BenchError("connection closed mid-body") }
                bodyCount += n
            }
        } else if chunked {
            // Rare here (the exporter sends Content-Length); simple rather than fast.
            while true {
                while Self.find(Array("\r\n".utf8), in: rest) == nil {
                    let n = try receive(into: &chunk)
                    rest.append(contentsOf: chunk[..<n])
                }
                let lineEnd = Self.find(Array("\r\n".utf8), in: rest)!
                let size = Int(String(decoding: rest[..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
                rest.removeFirst(lineEnd + 2)
                while rest.count < size + 2 {
                    let n = try receive(into: &chunk)
                    rest.append(contentsOf: chunk[..<n])
                }
                if size == 0 { rest.removeFirst(2); break }
                reserve(bodyCount + size)
                rest.withUnsafeBufferPointer { (body + bodyCount).initialize(from: $0.baseAddress!, count: size) }
                bodyCount += size
                rest.removeFirst(size + 2)
            }
            pending = rest
        } else {
            throw BenchError("response without Content-Length")
        }
        wireBytes = headerEnd + 4 + bodyCount
        return status
    }

    private func receive(into chunk: inout [UInt8]) throws -> Int {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        guard n > 0 else { throw BenchError("connection closed") }
        return n
    }

    private func reserve(_ capacity: Int) {
        guard capacity > bodyCapacity else { return }
        let new = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        new.initialize(from: body, count: bodyCount)
        body.deallocate()
        body = new
        bodyCapacity = capacity
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }
}
