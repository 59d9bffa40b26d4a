/// One `host:port` the exporter listens on. An empty host means every interface.
public struct ListenAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    /// The default, `:9850`: every interface, port 9850.
    public static let `default` = ListenAddress(host: "", port: 9850)

    public init(host: String, port: Int) {
        precondition((0...65535).contains(port), "port out of range: \(port)")
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[v6]:port` or `:port`, as `--web.listen-address` takes it.
    /// - Throws: `ListenAddressError` naming the text and what is wrong with it.
    public init(parsing text: String) throws(ListenAddressError) {
        guard let colon = text.lastIndex(of: ":") else {
            throw ListenAddressError(text: text, reason: "expected host:port or :port")
        }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else {
                throw ListenAddressError(text: text, reason: "unterminated [IPv6] host")
            }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw ListenAddressError(text: text, reason: "write an IPv6 host in brackets, e.g. [::1]:9850")
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ListenAddressError(text: text, reason: "port must be a number from 0 to 65535")
        }
        self.init(host: host, port: port)
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// A listen address that does not parse.
public struct ListenAddressError: Error, Hashable, CustomStringConvertible {
    public var text: String
    public var reason: String

    public var description: String { "invalid listen address \"\(text)\": \(reason)" }
}
