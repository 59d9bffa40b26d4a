import Foundation
import Glibc
import Synchronization

/// The release `mdevmon run` binary as a child process: the honest numbers for memory, idle CPU,
/// startup and scrapes come from it, not from the bench's own process.
final class Daemon: @unchecked Sendable {
    // @unchecked: immutable after start; `Process` is only waited on by one caller.
    let process: Process
    let port: Int
    let spawnedAt: UInt64
    let logPath: String
    var pid: Int32 { process.processIdentifier }

    /// Child processes to kill if the bench is interrupted.
    static let running = Mutex<Set<Int32>>([])

    /// Spawns `binary run` against `uri` with restore disabled (read-only connection), its state in
    /// `directory`, listening on 127.0.0.1 at a free port, logging warnings to `directory/daemon.log`.
    /// - Parameter arguments: More flags for `run` (the web config).
    init(binary: String, uri: String, directory: String, environment: [String] = [], arguments: [String] = []) throws {
        let config = "\(directory)/mdevmon.yaml"
        try "policies: {restore: {enabled: false}}\n".write(toFile: config, atomically: true, encoding: .utf8)
        let state = "\(directory)/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        port = try Self.freePort()
        logPath = "\(directory)/daemon.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "run", "--connect", uri, "--config.file", config, "--state.dir", state,
            "--web.listen-address", "127.0.0.1:\(port)", "--log.target", "stderr", "--log.level", "warning",
        ] + arguments
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        if !environment.isEmpty {
            var env = ProcessInfo.processInfo.environment
            for pair in environment {
                let parts = pair.split(separator: "=", maxSplits: 1)
                env[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            process.environment = env
        }
        spawnedAt = Mono.now()
        try process.run()
        let pid = process.processIdentifier
        Self.running.withLock { _ = $0.insert(pid) }
    }

    /// Polls `/healthz` until it answers 200 (connected and first sync done).
    /// - Parameter authorization: An `Authorization` header value, when basic auth is configured.
    /// - Returns: Milliseconds from spawn.
    func waitHealthy(timeout: Double, authorization: String? = nil) throws -> Double {
        let deadline = spawnedAt + UInt64(timeout * 1e9)
        while Mono.now() < deadline {
            guard process.isRunning else {
                throw BenchError("mdevmon exited with status \(process.terminationStatus); log: \(logTail())")
            }
            if let http = try? HTTPConnection(port: port) {
                http.authorization = authorization
                guard (try? http.get("/healthz")) == 200 else {
                    usleep(2000)
                    continue
                }
                return Mono.ms(spawnedAt, Mono.now())
            }
            usleep(2000)
        }
        throw BenchError("mdevmon not healthy after \(Int(timeout)) s; log: \(logTail())")
    }

    /// Every thread's last-seen CPU time: a thread that exits (NIO and Dispatch retire idle workers)
    /// keeps counting, so the total never goes down between two readings.
    private let threadCPU = Mutex<[String: UInt64]>([:])

    /// CPU seconds of the daemon, monotone (see `threadCPU`); ns resolution from schedstat.
    var cpuSeconds: Double {
        let live = Proc.threadCPUNanoseconds(pid: pid)
        guard !live.isEmpty else { return Proc.cpuSeconds(pid: pid) ?? .nan }
        let total = threadCPU.withLock { seen in
            for (tid, ns) in live { seen[tid] = max(seen[tid] ?? 0, ns) }
            return seen.values.reduce(0, +)
        }
        return Double(total) / 1e9
    }
    var rssMiB: Double { Double(Proc.statusKiB(pid: pid, "VmRSS") ?? 0) / 1024 }
    var peakRSSMiB: Double { Double(Proc.statusKiB(pid: pid, "VmHWM") ?? 0) / 1024 }

    /// VmRSS split: anonymous (heap, stacks) vs file-backed (mapped binaries and libraries, mostly
    /// shared with other processes), plus PSS, which charges shared pages proportionally.
    var memory: MemoryBreakdown {
        func kib(_ key: String) -> Double { Double(Proc.statusKiB(pid: pid, key) ?? 0) / 1024 }
        var pss = 0.0
        for line in (Proc.read("/proc/\(pid)/smaps_rollup") ?? "").split(separator: "\n") where line.hasPrefix("Pss:") {
            pss = Double(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "").map { $0 / 1024 } ?? 0
        }
        return MemoryBreakdown(rssMiB: kib("VmRSS"), anonMiB: kib("RssAnon"), fileMiB: kib("RssFile"), pssMiB: pss)
    }

    /// SIGTERM (graceful shutdown), then SIGKILL after 10 s.
    func stop() {
        let pid = pid
        if process.isRunning {
            kill(pid, SIGTERM)
            let deadline = Mono.now() + 10_000_000_000
            while process.isRunning && Mono.now() < deadline { usleep(10_000) }
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
        Self.running.withLock { _ = $0.remove(pid) }
    }

    func logTail() -> String {
        let text = Proc.read(logPath) ?? ""
        return String(text.suffix(2000))
    }

    /// A port the kernel just handed out for 127.0.0.1, released for the daemon to bind.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { throw BenchError("cannot find a free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `mdevmon run` processes left by an aborted bench run (their state dir is a bench temp dir).
    static func leftovers() -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry), pid != getpid(),
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard args.count > 1, args[0].hasSuffix("/mdevmon"), args[1] == "run",
                  args.contains(where: { $0.contains("/mdevmon-bench.") }) else { return nil }
            return pid
        }
    }
}
