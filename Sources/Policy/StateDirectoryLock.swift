import Foundation

/// An exclusive hold on a state directory for the life of the process. Two daemons sharing one would
/// overwrite each other's state file and both restore the same mdevs after a reboot.
///
/// `flock` on `mdevmon.lock` in the directory: the kernel releases it when the process ends, however it
/// ends (a SIGKILL or a crash leaves no stale lock), and the file says which pid holds it.
public final class StateDirectoryLock: Sendable {
    public static let fileName = "mdevmon.lock"

    public let path: String
    private let fd: Int32

    /// Takes the lock, creating the directory (mode 0700) and the lock file as needed, and writes this
    /// process's pid into the file. Keep the value alive as long as the directory is in use.
    /// - Throws: `.held` when another process holds it; `.unavailable` when the file cannot be created or
    ///   locked at all (a read-only or foreign directory).
    public init(directory: String) throws(StateDirectoryLockError) {
        path = directory + "/" + Self.fileName
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw .unavailable(directory: directory, reason: "cannot create it: \(error.localizedDescription)")
        }
        var fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        // Left by a daemon of another user: reading it is enough to lock and to name the holder.
        if fd < 0 && errno == EACCES { fd = open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else {
            throw .unavailable(directory: directory, reason: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            let holder = Self.pid(in: fd)
            close(fd)
            if code == EWOULDBLOCK { throw .held(directory: directory, lockFile: path, pid: holder) }
            throw .unavailable(directory: directory, reason: "cannot lock \(path): \(String(cString: strerror(code)))")
        }
        self.fd = fd
        // Best effort: the lock is what counts; the pid only helps the operator find the holder.
        let text = "\(getpid())\n"
        if ftruncate(fd, 0) == 0 {
            _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        }
    }

    deinit { close(fd) }

    /// The pid the holder wrote, if it wrote one yet.
    private static func pid(in fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Int32(String(decoding: buffer[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

public enum StateDirectoryLockError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Another process (`pid`, when it wrote it) holds the directory.
    case held(directory: String, lockFile: String, pid: Int32?)
    /// The lock file could not be created or locked.
    case unavailable(directory: String, reason: String)

    public var description: String {
        switch self {
        case .held(let directory, let lockFile, let pid):
            let holder = pid.map { "another mdevmon (pid \($0))" } ?? "another mdevmon"
            return "state directory \(directory) is in use by \(holder), which holds \(lockFile): "
                + "two daemons must not share one state directory (give each its own --state.dir)"
        case .unavailable(let directory, let reason):
            return "cannot lock state directory \(directory): \(reason)"
        }
    }
}
