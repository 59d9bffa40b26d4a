import Foundation

/// A real systemd-journald: the one already running, or one this test process starts standalone.
public enum Journald {
    public static let socketPath = "/run/systemd/journal/socket"
    public static let binary = "/lib/systemd/systemd-journald"

    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Whether a journald process is alive (its comm is truncated to 15 characters).
    public static var isRunning: Bool {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.contains { entry in
            guard entry.allSatisfy(\.isNumber),
                let comm = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8)
            else { return false }
            return comm.trimmingCharacters(in: .whitespacesAndNewlines) == "systemd-journal"
        }
    }

    private static let startResult: Result<Void, any Error> = Result { try start() }

    /// Makes sure journald listens; starts it at most once per test process. The started journald outlives
    /// the tests on purpose: it is the machine's journal from then on, as it would be under systemd.
    public static func ensureRunning() throws {
        try startResult.get()
    }

    private static func start() throws {
        if isRunning && FileManager.default.fileExists(atPath: socketPath) { return }
        try FileManager.default.createDirectory(atPath: "/run/systemd/journal", withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw JournaldUnavailable(reason: "cannot start \(binary): \(error.localizedDescription)")
        }
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: socketPath) && process.isRunning { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw JournaldUnavailable(reason: "\(binary) did not create \(socketPath) within 5 s")
    }

    /// Outside CI a machine without journald skips; in CI it must fail, so the test always runs there.
    public static var shouldRun: Bool { isCI || (try? ensureRunning()) != nil }

    /// Entries matching `matches`, as journalctl's JSON objects.
    public static func entries(matching matches: [String]) throws -> [[String: Any]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/journalctl")
        process.arguments = ["--no-pager", "-o", "json"] + matches
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    /// A field's text: journalctl prints values as strings, or as byte arrays when it deems them unprintable.
    public static func text(_ value: Any?) -> String? {
        if let string = value as? String { return string }
        guard let bytes = value as? [Any] else { return nil }
        return String(decoding: bytes.compactMap { ($0 as? NSNumber).map { UInt8(truncating: $0) } }, as: UTF8.self)
    }
}

public struct JournaldUnavailable: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
