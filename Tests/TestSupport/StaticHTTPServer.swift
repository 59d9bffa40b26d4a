import Foundation
import Glibc

/// A minimal HTTP server on 127.0.0.1 that answers every request with one text: a scrape target serving
/// what this host cannot produce. Each connection gets one response and is closed.
public final class StaticHTTPServer: Sendable {
    public let port: Int
    private let fd: Int32

    public init(body: String, contentType: String = "text/plain; version=0.0.4") throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw SocketError(call: "socket", code: errno) }
        do {
            try Loopback.bind(listener, port: 0)
            guard listen(listener, 16) == 0 else { throw SocketError(call: "listen", code: errno) }
            port = try Loopback.port(of: listener)
        } catch {
            close(listener)
            throw error
        }
        fd = listener
        let payload = Data(body.utf8)
        let response = Data("HTTP/1.1 200 OK\r\nContent-Type: \(contentType)\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n".utf8) + payload
        // A thread of its own: accept and read block, which the cooperative pool must never do.
        Thread.detachNewThread {
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    return  // the listener was shut down
                }
                // Read the request head before answering, so the client never sees a reset.
                var head = [UInt8]()
                var buffer = [UInt8](repeating: 0, count: 4096)
                while !head.suffix(4).elementsEqual([13, 10, 13, 10]) && head.count < 65536 {
                    let n = read(client, &buffer, buffer.count)
                    if n <= 0 { break }
                    head += buffer[0..<n]
                }
                _ = response.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                close(client)
            }
        }
    }

    public func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
