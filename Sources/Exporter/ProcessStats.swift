import Glibc
import Monitor

/// The standard `process_*` facts, read from `/proc/self` the way Prometheus' client_golang does.
public struct ProcessStats: Hashable, Sendable {
    public var cpuSeconds: Double
    public var residentMemoryBytes: Int
    public var virtualMemoryBytes: Int
    public var openFDs: Int
    /// The soft `RLIMIT_NOFILE`; `nil` when unlimited.
    public var maxFDs: Int?
    /// Unix time the process started.
    public var startTimeSeconds: Double

    public init(
        cpuSeconds: Double, residentMemoryBytes: Int, virtualMemoryBytes: Int, openFDs: Int, maxFDs: Int?,
        startTimeSeconds: Double
    ) {
        self.cpuSeconds = cpuSeconds
        self.residentMemoryBytes = residentMemoryBytes
        self.virtualMemoryBytes = virtualMemoryBytes
        self.openFDs = openFDs
        self.maxFDs = maxFDs
        self.startTimeSeconds = startTimeSeconds
    }

    /// This process's stats, or `nil` where `/proc` is not mounted.
    public static func current() -> ProcessStats? {
        guard let stat = ProcFS.read("/proc/self/stat"), let bootTime = ProcFS.bootTime else { return nil }
        // The command name is in parentheses and may hold spaces or parentheses itself.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        // Fields from the 3rd (state) on; utime is the 14th field of the line.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Int? {
            let index = number - 3
            return index < fields.count ? Int(fields[index]) : nil
        }
        guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23),
              let rss = field(24)
        else { return nil }
        let ticks = Double(ProcFS.clockTicks)
        return ProcessStats(
            cpuSeconds: Double(utime + stime) / ticks,
            residentMemoryBytes: rss * ProcFS.pageSize,
            virtualMemoryBytes: vsize,
            openFDs: ProcFS.countEntries("/proc/self/fd") ?? 0,
            maxFDs: ProcFS.openFilesLimit(),
            startTimeSeconds: Double(bootTime) + Double(start) / ticks)
    }
}

/// The few `/proc` reads and `sysconf` calls process stats need, kept in one place.
enum ProcFS {
    static let clockTicks: Int = max(1, sysconf(Int32(_SC_CLK_TCK)))
    static let pageSize: Int = max(1, sysconf(Int32(_SC_PAGESIZE)))

    /// `btime` from `/proc/stat`: boot time in Unix seconds. It never changes, so it is read once.
    static let bootTime: Int? = read("/proc/stat").flatMap { text in
        text.split(separator: "\n").first { $0.hasPrefix("btime ") }.flatMap { Int($0.dropFirst(6)) }
    }

    /// The soft open-files limit from `/proc/self/limits`; `nil` when unlimited or unreadable.
    static func openFilesLimit() -> Int? {
        guard let text = read("/proc/self/limits"),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") })
        else { return nil }
        let columns = line.dropFirst("Max open files".count).split(separator: " ")
        return columns.first.flatMap { Int($0) }
    }

    /// Reads a whole procfs file (they report size 0, which `WholeFile` handles).
    static func read(_ path: String) -> String? {
        guard case .success(let bytes) = WholeFile.read(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Number of entries in a directory, without `.` and `..`.
    static func countEntries(_ path: String) -> Int? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDot { count += 1 }
        }
        return count
    }
}
