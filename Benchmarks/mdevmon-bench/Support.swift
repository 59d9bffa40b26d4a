import Dispatch
import Foundation
import Glibc

/// CLOCK_MONOTONIC in nanoseconds: the same clock the C helper stamps with, so times compare
/// across processes.
enum Mono {
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func ms(_ from: UInt64, _ to: UInt64) -> Double { (Double(to) - Double(from)) / 1e6 }

    /// Runs `body` and returns its result with the elapsed milliseconds.
    static func time<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let start = now()
        let result = try body()
        return (result, ms(start, now()))
    }
}

/// CPU time of the calling thread: what one render or compression costs, whatever else runs.
/// On a machine shared with builds, wall time mostly measures the scheduler; CPU time does not.
enum ThreadCPU {
    static func ms(_ body: () -> Void) -> Double { time(body).1 }

    /// Runs `body` and returns its result with the thread CPU milliseconds it took.
    static func time<T>(_ body: () -> T) -> (T, Double) {
        var a = timespec(), b = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a)
        let result = body()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b)
        return (result, Double(b.tv_sec - a.tv_sec) * 1000 + Double(b.tv_nsec - a.tv_nsec) / 1e6)
    }
}

/// Size of `gzip -6` of `data` (the reference for the exporter's ratio).
func gzipSize(_ data: [UInt8]) throws -> Int {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("mdevmon-bench-body-\(getpid())").path
    guard FileManager.default.createFile(atPath: path, contents: Data(data)) else { throw BenchError("cannot write \(path)") }
    defer { unlink(path) }
    let (status, output) = try shell("/bin/sh", ["-c", "gzip -6 -c '\(path)' | wc -c"])
    guard status == 0, let size = Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw BenchError("gzip -6: \(output)")
    }
    return size
}

/// Percentiles of a sample, in the sample's unit (milliseconds throughout the bench).
struct Summary: Codable, Sendable {
    var count: Int
    var min: Double
    var p50: Double
    var p90: Double
    var p99: Double
    var max: Double
    var mean: Double

    /// Nearest-rank percentiles; nil for an empty sample.
    init?(_ samples: [Double]) {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        func rank(_ p: Double) -> Double {
            sorted[Swift.min(sorted.count - 1, Swift.max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
        }
        count = sorted.count
        min = sorted[0]
        p50 = rank(0.50)
        p90 = rank(0.90)
        p99 = rank(0.99)
        max = sorted[sorted.count - 1]
        mean = sorted.reduce(0, +) / Double(sorted.count)
    }
}

/// Runs blocking work (sockets, pipes, `waitpid`, libvirt RPCs) on its own thread, never on Swift's
/// cooperative pool: with two cores that pool has two threads, and the in-process Monitor needs them.
enum OffPool {
    private static let queue = DispatchQueue(label: "mdevmon-bench.blocking", attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// Per-process facts from `/proc/<pid>`.
enum Proc {
    static let ticksPerSecond = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))

    static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// utime + stime in seconds.
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // Fields from the 3rd (state) on; utime and stime are the 14th and 15th.
        guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        return (utime + stime) / ticksPerSecond
    }

    /// CPU nanoseconds of each live thread (`/proc/<pid>/task/<tid>/schedstat`, ns resolution unlike
    /// the 10 ms ticks of `stat`), by thread id.
    static func threadCPUNanoseconds(pid: Int32) -> [String: UInt64] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        var out: [String: UInt64] = [:]
        for task in tasks {
            guard let text = read("/proc/\(pid)/task/\(task)/schedstat"),
                  let ns = UInt64(text.split(separator: " ").first ?? "") else { continue }
            out[task] = ns
        }
        return out
    }

    /// A `Vm*:` line of `/proc/<pid>/status` in KiB (VmRSS, VmHWM, …).
    static func statusKiB(pid: Int32, _ key: String) -> Int? {
        guard let status = read("/proc/\(pid)/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(key + ":") {
            return Int(line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    static var selfPID: Int32 { getpid() }

    /// The running libvirtd, from its pid file or by scanning `/proc/*/comm`.
    static func libvirtdPID() -> Int32? {
        for file in ["/run/libvirtd.pid", "/var/run/libvirtd.pid"] {
            if let text = read(file), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
               kill(pid, 0) == 0 {
                return pid
            }
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), let comm = read("/proc/\(entry)/comm") else { continue }
            if comm.trimmingCharacters(in: .whitespacesAndNewlines) == "libvirtd" { return pid }
        }
        return nil
    }

    /// The 1-minute load average.
    static func loadAverage() -> Double {
        Double(read("/proc/loadavg")?.split(separator: " ").first ?? "") ?? -1
    }

    /// This executable's path.
    static func selfExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// Runs a command to completion, capturing its output.
@discardableResult
func shell(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Looks an executable up on `PATH`.
func which(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Progress lines go to stderr, so stdout holds only the report.
func note(_ text: String) {
    FileHandle.standardError.write(Data("mdevmon-bench: \(text)\n".utf8))
}
