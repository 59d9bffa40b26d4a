import Glibc
import Logging
import Synchronization

/// The web config in force. Like exporter-toolkit, which reads it for every new connection, it follows
/// its files: when a connection or request needs it, and at most once per `checkInterval`, the web
/// config file and the certificate, key and client CA files it names are looked at (`stat`), and if
/// any changed they are read again. A renewed certificate serves the next connection, no restart.
///
/// A new version that does not load (bad YAML, unreadable file, key not matching the certificate)
/// leaves the previous one in force and is logged once as a warning naming the file and the problem.
/// Turning TLS on or off needs a restart: the listener is HTTP or HTTPS from the start.
final class LiveWebConfig: Sendable {
    /// One loaded version: what connections and requests use.
    struct Loaded: Sendable {
        var tls: ServerTLS?
        var auth: BasicAuth?
        /// The files it was read from, as they were before reading.
        fileprivate var stamps: [FileStamp]
    }

    private struct State {
        var loaded: Loaded
        var lastCheck: ContinuousClock.Instant
        var checking = false
        /// The files' stamps when they last failed to load, so a bad version is reported once.
        var rejected: [FileStamp]?
    }

    let path: String
    private let checkInterval: Duration
    private let logger: Logger
    private let state: Mutex<State>

    /// Reads the web config and everything it names.
    /// - Throws: `WebConfigError` naming the file, field and problem.
    init(path: String, logger: Logger, checkInterval: Duration = .seconds(1)) throws(WebConfigError) {
        self.path = path
        self.logger = logger
        self.checkInterval = checkInterval
        state = Mutex(State(loaded: try Self.load(path: path), lastCheck: .now))
    }

    /// The version in force, after looking for changed files if the last look is `checkInterval` old.
    var current: Loaded {
        let due = state.withLock { s -> [FileStamp]? in
            let now = ContinuousClock.now
            guard !s.checking, now - s.lastCheck >= checkInterval else { return nil }
            s.checking = true
            s.lastCheck = now
            return s.loaded.stamps
        }
        if let stamps = due { refresh(from: stamps) }
        return state.withLock { $0.loaded }
    }

    /// Reloads if any file changed since `stamps` were taken.
    private func refresh(from stamps: [FileStamp]) {
        let now = stamps.map { FileStamp(path: $0.path) }
        guard now != stamps, now != state.withLock({ $0.rejected }) else {
            state.withLock { $0.checking = false }
            return
        }
        let previous = state.withLock { $0.loaded }
        do {
            let loaded = try Self.load(path: path)
            if (loaded.tls == nil) != (previous.tls == nil) {
                throw WebConfigError(path: path, field: "tls_server_config",
                                     message: "TLS cannot be turned \(loaded.tls == nil ? "off" : "on") while running; restart mdevmon to apply it")
            }
            state.withLock {
                $0.loaded = loaded
                $0.rejected = nil
                $0.checking = false
            }
            logger.notice("reloaded web config \(path)", metadata: ["http.web_config": "\(path)"])
        } catch {
            state.withLock {
                $0.rejected = now
                $0.checking = false
            }
            logger.warning("\(error); keeping the previous web config", metadata: ["http.web_config": "\(path)"])
        }
    }

    private static func load(path: String) throws(WebConfigError) -> Loaded {
        // Stamps are taken before reading: a change during the read shows at the next look.
        var stamps = [FileStamp(path: path)]
        let web = try WebConfig.load(path: path)
        var tls: ServerTLS?
        if let config = web.tls {
            stamps += ([config.certFile, config.keyFile] + (config.clientCAFile.map { [$0] } ?? [])).map(FileStamp.init(path:))
            tls = try config.serverTLS(path: path)
        }
        return Loaded(tls: tls, auth: BasicAuth(users: web.basicAuthUsers), stamps: stamps)
    }
}

/// What tells a changed file: device and inode (a file replaced by a rename or a symlink swap), size,
/// and modification and status-change times to the nanosecond; no facts when it cannot be read.
struct FileStamp: Hashable, Sendable {
    var path: String
    var facts: [Int] = []

    init(path: String) {
        self.path = path
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        facts = [Int(truncatingIfNeeded: info.st_dev), Int(truncatingIfNeeded: info.st_ino), Int(info.st_size), info.st_mtim.tv_sec, info.st_mtim.tv_nsec,
                 info.st_ctim.tv_sec, info.st_ctim.tv_nsec]
    }
}
