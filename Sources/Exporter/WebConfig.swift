import Foundation
import Yams

/// A Prometheus exporter-toolkit web config (`--web.config.file`): TLS and basic auth.
///
/// Parsing is strict like exporter-toolkit's: an unknown key, a wrong type or a bad value is an error
/// that names the field. Keys exporter-toolkit knows but mdevmon does not implement (inline PEM,
/// cipher suites, `http_server_config`, …) are errors too, rather than silently ignored.
public struct WebConfig: Hashable, Sendable {
    public enum ClientAuth: String, Hashable, Sendable, CaseIterable {
        case noClientCert = "NoClientCert"
        case requestClientCert = "RequestClientCert"
        case requireAnyClientCert = "RequireAnyClientCert"
        case verifyClientCertIfGiven = "VerifyClientCertIfGiven"
        case requireAndVerifyClientCert = "RequireAndVerifyClientCert"

        /// Whether presented client certificates are checked against `client_ca_file`.
        var verifies: Bool { self == .verifyClientCertIfGiven || self == .requireAndVerifyClientCert }
    }

    public enum TLSVersion: String, Hashable, Sendable, CaseIterable, Comparable {
        case tls10 = "TLS10", tls11 = "TLS11", tls12 = "TLS12", tls13 = "TLS13"

        public static func < (a: Self, b: Self) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    public struct TLSServerConfig: Hashable, Sendable {
        /// Absolute paths (relative ones in the file are resolved against the file's directory).
        public var certFile: String
        public var keyFile: String
        public var clientCAFile: String?
        public var clientAuth: ClientAuth
        public var minVersion: TLSVersion
        public var maxVersion: TLSVersion
    }

    /// `nil` serves plain HTTP.
    public var tls: TLSServerConfig?
    /// User name → bcrypt hash; empty disables basic auth.
    public var basicAuthUsers: [String: String]

    /// Reads and validates a web config file. Certificates are loaded later, by `tlsConfiguration()`.
    public static func load(path: String) throws(WebConfigError) -> WebConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw WebConfigError(path: path, message: "cannot read: \(Self.describe(error))")
        }
        return try parse(yaml: text, path: path)
    }

    /// Parses web config YAML.
    /// - Parameters:
    ///   - yaml: The file's text.
    ///   - path: The file's path, for error messages and for resolving relative certificate paths.
    public static func parse(yaml: String, path: String) throws(WebConfigError) -> WebConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            let first = String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            throw WebConfigError(path: path, line: Self.line(of: error), message: "invalid YAML: \(first)")
        }
        let parser = Parser(path: path)
        return try parser.config(root)
    }

    /// Hashes a password for `basic_auth_users` (bcrypt, `$2b$`). Slow by design: cost 10 takes
    /// tens of milliseconds, and every increment doubles it.
    /// - Parameters:
    ///   - password: The clear-text password.
    ///   - cost: log2 of bcrypt's rounds, 4 to 31; exporter-toolkit's docs use 10.
    public static func hashPassword(_ password: String, cost: Int = 10) -> String {
        BasicAuth.hash(password, cost: cost)
    }

    /// Where Yams stopped reading, when it says.
    private static func line(of error: any Error) -> Int? {
        switch error as? YamlError {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
        default: nil
        }
    }

    /// "No such file or directory" rather than Foundation's wrapping of it.
    static func describe(_ error: any Error) -> String {
        if let error = error as? CocoaError, let posix = error.underlying as? POSIXError {
            return String(cString: strerror(posix.code.rawValue))
        }
        return "\(error)"
    }
}

/// A web config that cannot be used, naming the file, the line and the field (like the policy
/// configuration's `ConfigError`).
public struct WebConfigError: Error, Hashable, CustomStringConvertible {
    public var path: String
    /// The 1-based line in the file, when the problem has one.
    public var line: Int?
    /// Dotted field path such as `tls_server_config.key_file`; `nil` for the file as a whole.
    public var field: String?
    public var message: String

    public init(path: String, line: Int? = nil, field: String? = nil, message: String) {
        self.path = path
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        let at = line.map { ":\($0)" } ?? ""
        return if let field { "web config \(path)\(at): \(field): \(message)" } else { "web config \(path)\(at): \(message)" }
    }
}

/// Walks the YAML tree, checking keys and types as it goes.
private struct Parser {
    let path: String

    /// An error at `node`'s line.
    private func fail(_ node: Node, _ field: String?, _ message: String) -> WebConfigError {
        WebConfigError(path: path, line: node.mark?.line, field: field, message: message)
    }

    func config(_ root: Node?) throws(WebConfigError) -> WebConfig {
        var config = WebConfig(tls: nil, basicAuthUsers: [:])
        guard let root, !isNull(root) else { return config }  // an empty file is a valid, empty config
        for (keyNode, key, value) in try mapping(root, field: nil) {
            switch key {
            case "tls_server_config": config.tls = try tlsServerConfig(value)
            case "basic_auth_users": config.basicAuthUsers = try basicAuthUsers(value)
            case "http_server_config":
                throw fail(keyNode, key, "not supported by mdevmon (it serves HTTP/1.1 without extra headers)")
            default:
                throw fail(keyNode, key, "unknown key (expected tls_server_config or basic_auth_users)")
            }
        }
        return config
    }

    private func tlsServerConfig(_ node: Node) throws(WebConfigError) -> WebConfig.TLSServerConfig? {
        let prefix = "tls_server_config"
        if isNull(node) { return nil }
        var certFile: String?, keyFile: String?, clientCAFile: String?
        var clientAuth: WebConfig.ClientAuth?, minVersion: WebConfig.TLSVersion?, maxVersion: WebConfig.TLSVersion?
        for (keyNode, key, value) in try mapping(node, field: prefix) {
            let field = "\(prefix).\(key)"
            switch key {
            case "cert_file": certFile = try filePath(value, field: field)
            case "key_file": keyFile = try filePath(value, field: field)
            case "client_ca_file": clientCAFile = try filePath(value, field: field)
            case "client_auth_type":
                guard let text = try string(value, field: field) else { break }
                // exporter-toolkit still accepts the old spelling.
                let name = text == "RequireClientCert" ? "RequireAnyClientCert" : text
                guard let auth = WebConfig.ClientAuth(rawValue: name) else {
                    throw fail(value, field, "unknown client auth type \"\(text)\" (expected one of "
                               + WebConfig.ClientAuth.allCases.map(\.rawValue).joined(separator: ", ") + ")")
                }
                clientAuth = auth
            case "min_version": minVersion = try tlsVersion(value, field: field)
            case "max_version": maxVersion = try tlsVersion(value, field: field)
            case "cert", "key", "client_ca", "cipher_suites", "curve_preferences", "prefer_server_cipher_suites",
                 "client_allowed_sans":
                throw fail(keyNode, field, "not supported by mdevmon")
            default:
                throw fail(keyNode, field, "unknown key")
            }
        }
        switch (certFile, keyFile) {
        case (nil, nil):
            // Like exporter-toolkit: no certificate means plain HTTP, but client settings then make no sense.
            if clientCAFile != nil || clientAuth != nil {
                throw fail(node, "\(prefix).cert_file", "required when client certificates are configured")
            }
            return nil
        case (_?, nil): throw fail(node, "\(prefix).key_file", "required when cert_file is set")
        case (nil, _?): throw fail(node, "\(prefix).cert_file", "required when key_file is set")
        case let (cert?, key?):
            let auth = clientAuth ?? .noClientCert
            if auth.verifies, clientCAFile == nil {
                throw fail(node, "\(prefix).client_ca_file", "required when client_auth_type is \(auth.rawValue)")
            }
            if clientCAFile != nil, auth == .noClientCert {
                throw fail(node, "\(prefix).client_auth_type",
                           "client_ca_file is set but client_auth_type is NoClientCert (set a client auth policy)")
            }
            let min = minVersion ?? .tls12, max = maxVersion ?? .tls13
            if min > max {
                throw fail(node, "\(prefix).min_version", "\(min.rawValue) is above max_version \(max.rawValue)")
            }
            return .init(certFile: cert, keyFile: key, clientCAFile: clientCAFile, clientAuth: auth,
                         minVersion: min, maxVersion: max)
        }
    }

    private func basicAuthUsers(_ node: Node) throws(WebConfigError) -> [String: String] {
        if isNull(node) { return [:] }
        var users: [String: String] = [:]
        for (userNode, user, value) in try mapping(node, field: "basic_auth_users") {
            let field = "basic_auth_users.\(user)"
            guard let hash = try string(value, field: field) else { throw fail(userNode, field, "missing bcrypt hash") }
            guard BasicAuth.isBcryptHash(hash) else {
                throw fail(value, field, "not a bcrypt hash (expected $2a$, $2b$ or $2y$, cost 04 to 31, 60 characters)")
            }
            users[user] = hash
        }
        return users
    }

    private func tlsVersion(_ node: Node, field: String) throws(WebConfigError) -> WebConfig.TLSVersion? {
        guard let text = try string(node, field: field) else { return nil }
        guard let version = WebConfig.TLSVersion(rawValue: text) else {
            throw fail(node, field, "unknown TLS version \"\(text)\" (expected TLS10, TLS11, TLS12 or TLS13)")
        }
        return version
    }

    /// A file path, resolved against the config file's directory like exporter-toolkit does.
    private func filePath(_ node: Node, field: String) throws(WebConfigError) -> String? {
        guard let text = try string(node, field: field), !text.isEmpty else { return nil }
        if text.hasPrefix("/") { return text }
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? text : (directory as NSString).appendingPathComponent(text)
    }

    /// A mapping's entries (key node, key, value) with string keys, rejecting duplicates (which YAML
    /// parsers tend to merge, silently keeping one of the two values).
    private func mapping(_ node: Node, field: String?) throws(WebConfigError) -> [(Node, String, Node)] {
        guard case .mapping(let mapping) = node else {
            throw fail(node, field, "expected a mapping, found \(kind(node))")
        }
        var seen: [String: Int?] = [:]
        var entries: [(Node, String, Node)] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let key) = keyNode else {
                throw fail(keyNode, field, "keys must be strings, found \(kind(keyNode))")
            }
            let name = field.map { "\($0).\(key.string)" } ?? key.string
            if let first = seen[key.string] {
                throw fail(keyNode, name, "duplicate key" + (first.map { " (first on line \($0))" } ?? ""))
            }
            seen[key.string] = keyNode.mark?.line
            entries.append((keyNode, key.string, value))
        }
        return entries
    }

    /// A scalar's text; `nil` for YAML null (an empty value).
    private func string(_ node: Node, field: String) throws(WebConfigError) -> String? {
        guard case .scalar(let scalar) = node else { throw fail(node, field, "expected a string, found \(kind(node))") }
        return isNull(node) ? nil : scalar.string
    }

    private func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    private func kind(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): "\"\(scalar.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }
}
