import Foundation
import HummingbirdBcrypt
import Monitor
import Synchronization

/// HTTP basic auth against the web config's bcrypt hashes.
///
/// bcrypt is deliberately slow (tens of milliseconds), so verifications run through `Blocking`, off
/// Swift's cooperative pool, as many at once as the caller's gate admits (one, in the exporter), and a
/// check still waiting for the gate is dropped when its client leaves: a flood of bad passwords costs
/// at most one core and a bounded queue, not the server.
/// Like exporter-toolkit, successful credentials are cached so a 15-second scrape interval does not
/// pay bcrypt every time; the cache holds credentials the process has already received in clear.
final class BasicAuth: Sendable {
    private let users: [String: String]
    /// Unknown users are checked against a real hash too, so timing does not reveal which users exist.
    private let decoyHash: String
    private let verified = Mutex<Set<String>>([])
    private static let cacheLimit = 64

    /// `nil` when `users` is empty: no authentication.
    init?(users: [String: String]) {
        guard let decoy = users.keys.sorted().first.flatMap({ users[$0] }) else { return nil }
        self.users = users.mapValues(Self.normalized)
        decoyHash = Self.normalized(decoy)
    }

    /// Whether an `Authorization` header value carries a configured user's password.
    /// - Parameters:
    ///   - gate: Bounds bcrypt verifications; credentials verified before need none.
    ///   - departure: The request's client; if it leaves while the check waits, the check is dropped.
    /// - Throws: `AdmissionGate.Refusal` or `CancellationError` when the check was not admitted.
    func check(authorization: String?, gate: AdmissionGate, departure: Departure? = nil) async throws -> Bool {
        guard let authorization, let (user, password) = Self.decode(authorization) else { return false }
        let cacheKey = "\(user)\u{0}\(password)"
        if verified.withLock({ $0.contains(cacheKey) }) { return true }
        let hash = users[user]
        let matches = try await gate.withPermit(until: departure) {
            await Blocking.perform { Bcrypt.verify(password, hash: hash ?? self.decoyHash) }
        }
        guard matches, hash != nil else { return false }
        verified.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll() }
            cache.insert(cacheKey)
        }
        return true
    }

    /// Splits `Basic base64(user:password)`; the scheme is case-insensitive (RFC 7617).
    static func decode(_ header: String) -> (user: String, password: String)? {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let text = String(data: data, encoding: .utf8),
              let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// `$2a$`, `$2b$` or `$2y$`, a two-digit cost from 04 to 31, then 53 characters of bcrypt's base64.
    static func isBcryptHash(_ hash: String) -> Bool {
        let bytes = Array(hash.utf8)
        guard bytes.count == 60, hash.hasPrefix("$2a$") || hash.hasPrefix("$2b$") || hash.hasPrefix("$2y$"),
              bytes[6] == UInt8(ascii: "$"),
              let cost = Int(String(decoding: bytes[4..<6], as: UTF8.self)), (4...31).contains(cost)
        else { return false }
        return bytes[7...].allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            default: false
            }
        }
    }

    /// A bcrypt hash for `basic_auth_users`, like `htpasswd -nBC <cost>` prints.
    static func hash(_ password: String, cost: Int) -> String {
        precondition((4...31).contains(cost), "bcrypt cost must be 4...31")
        return Bcrypt.hash(password, cost: UInt8(cost))
    }

    /// `htpasswd -B` writes `$2y$`, which is `$2b$` under another name; the bcrypt library knows only
    /// `$2a$` and `$2b$`.
    private static func normalized(_ hash: String) -> String {
        hash.hasPrefix("$2y$") ? "$2b$" + hash.dropFirst(4) : hash
    }
}
