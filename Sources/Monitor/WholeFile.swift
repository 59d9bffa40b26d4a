import Glibc

/// Reads a whole file until end of file, so procfs files (which report size 0), `/dev/null` and pipes
/// work too; a failure carries the OS's reason.
public enum WholeFile {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var errno: Int32
        public var description: String { String(cString: strerror(errno)) }
    }

    public static func read(_ path: String) -> Result<[UInt8], Failure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(Failure(errno: errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 { return .success(bytes) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(Failure(errno: errno))
            }
            bytes += chunk[0..<n]
        }
    }
}
