import Foundation
public import Monitor

/// What mdevmon remembers across restarts and reboots: the boot it last saw and which mdevs were
/// active then.
public struct PersistedState: Codable, Hashable, Sendable {
    public struct Device: Codable, Hashable, Sendable {
        public var uuid: String
        public var parent: String
        public var mdevType: String
        public var attrs: [MdevAttr]
        public var persistent: Bool

        public init(uuid: String, parent: String, mdevType: String, attrs: [MdevAttr], persistent: Bool) {
            self.uuid = uuid
            self.parent = parent
            self.mdevType = mdevType
            self.attrs = attrs
            self.persistent = persistent
        }

        public init(_ d: MdevDevice) {
            self.init(uuid: d.uuid, parent: d.parent, mdevType: d.mdevType, attrs: d.definition.attrs, persistent: d.persistent)
        }

        public var key: MdevKey { MdevKey(uuid: uuid, parent: parent) }

        private enum CodingKeys: String, CodingKey {
            case uuid, parent, attrs, persistent
            case mdevType = "mdev_type"
        }
    }

    /// The format this mdevmon reads and writes. A newer mdevmon may add fields; one whose fields this
    /// version still decodes is read (`StateStore.LoadResult.newer`).
    public static let currentVersion = 1

    public var version = PersistedState.currentVersion
    public var bootID: String
    public var active: [Device]
    /// Devices a restore was still working on when this was written: a restart within the same boot
    /// (a crash, the watchdog) resumes them.
    public var pending: [Device]

    // Explicit snake_case keys: JSONDecoder's convertFromSnakeCase turns `boot_id` into `bootId`, which
    // never matches `bootID`, so the key strategies could not read back what they wrote.
    private enum CodingKeys: String, CodingKey {
        case version, active, pending
        case bootID = "boot_id"
    }

    public init(bootID: String, active: [Device], pending: [Device] = []) {
        self.bootID = bootID
        self.active = active.sorted { $0.key < $1.key }
        self.pending = pending.sorted { $0.key < $1.key }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        bootID = try c.decode(String.self, forKey: .bootID)
        active = try c.decode([Device].self, forKey: .active)
        // Files written before `pending` existed have none.
        pending = try c.decodeIfPresent([Device].self, forKey: .pending) ?? []
    }
}

/// A crash-safe JSON file: written to a temp file, fsynced, renamed over the old one, and the
/// directory fsynced, so a kill at any moment leaves either the old or the new file, never half of one.
public struct StateStore: Sendable {
    public let directory: String
    public var path: String { directory + "/state.json" }

    public init(directory: String) { self.directory = directory }

    /// The daemon's state directory unless `--state.dir` says otherwise (the unit's `StateDirectory=mdevmon`).
    public static let defaultDirectory = "/var/lib/mdevmon"

    public enum LoadResult: Sendable, Equatable {
        case missing
        case loaded(PersistedState)
        /// Written by a newer mdevmon (format `version`, e.g. after a downgrade): the fields this version
        /// knows were read. The next write replaces the file in this version's format, so the original
        /// is kept at `keptAt` first (nil: neither a second name nor a move worked, so the directory is
        /// not writable and no write will replace it either).
        case newer(PersistedState, version: Int, keptAt: String?)
        /// A newer format whose known fields this version cannot decode: moved to `movedTo`, named after
        /// its format, for an mdevmon that reads it.
        case unsupported(version: Int, reason: String, movedTo: String?)
        /// The file was unreadable or corrupt and has been moved to `movedTo`.
        case corrupt(reason: String, movedTo: String?)
    }

    /// Reads the state file and changes nothing (for `mdevmon list`, beside the daemon that owns it): nil
    /// when there is none; throws when it cannot be read or decoded.
    public func peek() throws -> PersistedState? {
        // Read, not stat first: a directory this user may not enter (mode 0700) is an error to say, not "none".
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw StateStoreError(Self.errnoText())
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw StateStoreError("\(path) is not a regular file")
        }
        do {
            return try JSONDecoder().decode(PersistedState.self, from: handle.readToEnd() ?? Data())
        } catch {
            throw StateStoreError(Self.describe(error))
        }
    }

    /// Reads the state file. Nothing is ever deleted: a file this version cannot use is moved aside
    /// under a name that says why, and a newer one it can read is also kept as it was.
    public func load() -> LoadResult {
        guard FileManager.default.fileExists(atPath: path) else { return .missing }
        let decoder = JSONDecoder()
        let data: Data
        let version: Int
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
            version = try decoder.decode(Header.self, from: data).version
        } catch {
            return .corrupt(reason: Self.describe(error), movedTo: moveAside(suffix: "corrupt"))
        }
        do {
            let state = try decoder.decode(PersistedState.self, from: data)
            if version == PersistedState.currentVersion { return .loaded(state) }
            if version > PersistedState.currentVersion {
                // Kept under a second name, or else moved there: the state read is in hand either way.
                let kept = keep(version: version) ?? moveAside(suffix: "version-\(version)")
                return .newer(state, version: version, keptAt: kept)
            }
            throw StateStoreError("unknown version \(version)")
        } catch {
            // A newer format whose known fields changed is not ours to read; anything else is corrupt.
            if version > PersistedState.currentVersion {
                return .unsupported(version: version, reason: Self.describe(error), movedTo: moveAside(suffix: "version-\(version)"))
            }
            return .corrupt(reason: Self.describe(error), movedTo: moveAside(suffix: "corrupt"))
        }
    }

    /// Just enough of the file to tell its format.
    private struct Header: Decodable { var version: Int }

    /// Renames the file to `state.json.<suffix>-<unix time>`, never over an earlier one.
    private func moveAside(suffix: String) -> String? {
        let base = path + ".\(suffix)-\(Int(Date().timeIntervalSince1970))"
        let names: [String] = [base] + (1..<100).map { "\(base).\($0)" }
        guard let aside = names.first(where: { !FileManager.default.fileExists(atPath: $0) }) else { return nil }
        return rename(path, aside) == 0 ? aside : nil
    }

    /// A second name for the file as it is (`state.json.version-N`), which the next save's rename over
    /// `state.json` leaves in place. A restart before that save finds the same file already kept.
    private func keep(version: Int) -> String? {
        var kept = path + ".version-\(version)"
        var current = stat(), existing = stat()
        guard stat(path, &current) == 0 else { return nil }
        if stat(kept, &existing) == 0 {
            if existing.st_ino == current.st_ino && existing.st_dev == current.st_dev { return kept }
            kept += "-\(Int(Date().timeIntervalSince1970))"
        }
        if link(path, kept) == 0 { return kept }
        // A filesystem without hard links: a copy will do.
        return (try? FileManager.default.copyItem(atPath: path, toPath: kept)) != nil ? kept : nil
    }

    /// Writes atomically: a temp file of its own (`mkstemp`, so two writers could never share one even
    /// by mistake), fsync, rename over the old file, fsync the directory. mdevmon calls this from one
    /// writer only (`StateWriter`); the unique temp name is the second line of defence.
    public func save(_ state: PersistedState) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(state)
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        let temp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard fd >= 0 else { throw StateStoreError("cannot create \(temp): \(Self.errnoText())") }
        // mkostemp(O_CLOEXEC) is not visible without _GNU_SOURCE; the daemon forks no children, so the
        // moment between these two calls cannot leak the fd.
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var failure: String?
        data.withUnsafeBytes { buf in
            var offset = 0
            while offset < buf.count {
                let n = write(fd, buf.baseAddress! + offset, buf.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "cannot write \(temp): \(Self.errnoText())"
                    return
                }
                offset += n
            }
        }
        // errno is read right after the failing call, before close() can change it.
        if failure == nil, fsync(fd) != 0 { failure = "cannot sync \(temp): \(Self.errnoText())" }
        if close(fd) != 0, failure == nil { failure = "cannot close \(temp): \(Self.errnoText())" }
        if failure == nil, rename(temp, path) != 0 { failure = "cannot rename \(temp) to \(path): \(Self.errnoText())" }
        if let failure {
            unlink(temp)
            throw StateStoreError(failure)
        }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Temp files a killed writer left behind (`state.json.tmp-*`); removed at start-up.
    public func removeLeftoverTempFiles() {
        let prefix = URL(fileURLWithPath: path).lastPathComponent + ".tmp"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(prefix) {
            unlink(directory + "/" + name)
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    private static func describe(_ error: any Error) -> String {
        if let e = error as? StateStoreError { return e.description }
        if let e = error as? DecodingError {
            switch e {
            case .dataCorrupted(let c), .keyNotFound(_, let c), .typeMismatch(_, let c), .valueNotFound(_, let c):
                let path = c.codingPath.map(\.stringValue).joined(separator: ".")
                return path.isEmpty ? c.debugDescription : "\(path): \(c.debugDescription)"
            @unknown default: return "\(e)"
            }
        }
        return "\(error)"
    }
}

public struct StateStoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}
