@testable import Exporter
import Foundation
import Logging
import Monitor
import Synchronization
import TestSupport
import Testing

/// Devices on the fixtures' parent, which a PCI address names.
enum Sample: SampleHost {
    static let parent = "pci_0000_3b_00_0"
    static let type = "nvidia-558"
    static let parentAddress: String? = "0000:3b:00.0"
}

/// Snapshots built by hand: no libvirt involved.
enum Fixtures {
    static let build = BuildInfo(version: "1.2.3", revision: "abc123", swiftVersion: "6.3")

    static let parent = ParentDevice(name: "pci_0000_3b_00_0", kind: "pci", types: [
        MdevTypeInfo(id: "nvidia-558", name: "GRID A100-4C", deviceAPI: "vfio-pci", availableInstances: 8),
        MdevTypeInfo(id: "nvidia-559", name: nil, deviceAPI: "vfio-pci", availableInstances: 0),
    ])

    /// Two devices on one parent with two types, one domain whose name needs escaping everywhere.
    static func small(connected: Bool = true, synced: Bool = true) -> IndexSnapshot {
        let devices = [
            Sample.device("11111111-1111-4111-8111-111111111111", iommuGroup: 12, active: true, persistent: true,
                          autostart: true),
            Sample.device("22222222-2222-4222-8222-222222222222", active: false, persistent: true, autostart: false),
        ]
        let domain = DomainInfo(
            name: "vm \"q\" \\ <b>\nx", uuid: "99999999-9999-4999-8999-999999999999", active: true, persistent: true,
            autostart: false, mdevUUIDs: ["11111111-1111-4111-8111-111111111111"],
            liveMdevUUIDs: ["11111111-1111-4111-8111-111111111111"])
        var status = MonitorStatus(uri: "qemu:///system")
        status.connected = connected
        status.synced = synced
        status.lastSyncTime = synced ? Date(timeIntervalSince1970: 1_700_000_000.5) : nil
        status.reconnects = 2
        status.host = WatchedHost(hostname: "kvm01.example.com", boot: .kernel(id: "b0"))
        status.events[EventCounterKey(source: "nodedev", event: "created")] = 3
        status.events[EventCounterKey(source: "domain", event: "defined")] = 1
        if !connected { status.lastError = "libvirt: Failed to connect socket\nto '/run/libvirt/libvirt-sock'" }
        return IndexSnapshot(
            state: IndexState(devices: devices, parents: [parent], domains: [domain]), status: status)
    }

    /// `count` devices spread over several parents and types, half referenced by a domain each.
    static func large(devices count: Int) -> IndexSnapshot {
        let parents = (0..<4).map { p in
            ParentDevice(name: "pci_0000_\(p)b_00_0", kind: "pci", types: (0..<3).map {
                MdevTypeInfo(id: "nvidia-\(550 + $0)", name: "GRID \($0)", deviceAPI: "vfio-pci",
                             availableInstances: $0 * 2)
            })
        }
        var devices: [MdevDevice] = []
        var domains: [DomainInfo] = []
        for i in 0..<count {
            let uuid = String(format: "%08x-0000-4000-8000-%012x", i, i * 7919)
            devices.append(Sample.device(uuid, parent: parents[i % 4].name, type: "nvidia-\(550 + i % 3)", iommuGroup: i,
                                         active: i % 3 != 0, persistent: i % 5 != 0, autostart: i % 2 == 0))
            if i % 2 == 0 {
                domains.append(DomainInfo(name: "vm-\(i)", uuid: UUID().uuidString, active: true, persistent: true,
                                          autostart: false, mdevUUIDs: [uuid]))
            }
        }
        var status = MonitorStatus(uri: "qemu:///system")
        status.connected = true
        status.synced = true
        status.lastSyncTime = Date()
        status.events[EventCounterKey(source: "nodedev", event: "created")] = count
        return IndexSnapshot(state: IndexState(devices: devices, parents: parents, domains: domains), status: status)
    }
}

/// Text of rendered exposition bytes.
func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

let quietLogger = Logger(label: "exporter-test") { _ in SwiftLogNoOpLogHandler() }

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A snapshot that tests can swap while a server runs.
final class SnapshotSource: Sendable {
    private let value: Mutex<IndexSnapshot>
    init(_ snapshot: IndexSnapshot) { value = Mutex(snapshot) }
    var snapshot: IndexSnapshot {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

/// Runs an `ExporterService` on 127.0.0.1 with an ephemeral port for the duration of `body`.
func withServer<R: Sendable>(
    _ configuration: ExporterConfiguration = ExporterConfiguration(
        listenAddresses: [ListenAddress(host: "127.0.0.1", port: 0)], build: Fixtures.build),
    snapshot: @escaping @Sendable () -> IndexSnapshot = { Fixtures.small() },
    afterConnectionBurst: (@Sendable (_ peakConnections: Int, _ connections: Int) -> Void)? = nil,
    limits: ExporterLimits = ExporterLimits(),
    logger: Logger = quietLogger,
    webConfigCheckInterval: Duration = .seconds(1),
    _ body: @Sendable (_ port: Int) async throws -> R
) async throws -> R {
    try await withService(configuration, snapshot: snapshot, afterConnectionBurst: afterConnectionBurst, limits: limits,
                          logger: logger, webConfigCheckInterval: webConfigCheckInterval) { port, _ in try await body(port) }
}

/// `withServer`, with the running service at hand (its gates, its caches).
func withService<R: Sendable>(
    _ configuration: ExporterConfiguration = ExporterConfiguration(
        listenAddresses: [ListenAddress(host: "127.0.0.1", port: 0)], build: Fixtures.build),
    snapshot: @escaping @Sendable () -> IndexSnapshot = { Fixtures.small() },
    afterConnectionBurst: (@Sendable (_ peakConnections: Int, _ connections: Int) -> Void)? = nil,
    limits: ExporterLimits = ExporterLimits(),
    logger: Logger = quietLogger,
    webConfigCheckInterval: Duration = .seconds(1),
    _ body: @Sendable (_ port: Int, _ service: ExporterService) async throws -> R
) async throws -> R {
    let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
    let service = try ExporterService(
        configuration: configuration, snapshot: snapshot, logger: logger,
        onListening: { _, port in portSink.yield(port) }, afterConnectionBurst: afterConnectionBurst, limits: limits,
        webConfigCheckInterval: webConfigCheckInterval)
    return try await withThrowingTaskGroup(of: R?.self) { group in
        group.addTask {
            defer { portSink.finish() }
            try await service.run()
            return nil
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            // The server stopped before listening; surface its error.
            while let _ = try await group.next() {}
            throw TestFailure("server stopped before listening")
        }
        do {
            let result = try await body(port, service)
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

/// What `curl` saw: exit code, status, headers (names lower-cased) and body (decoded by curl when
/// `--compressed` was given).
struct CurlResult {
    var exitCode: Int32
    var status: Int
    var headers: [String: String]
    var body: Data
    var stderr: String

    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// Runs `/usr/bin/curl` with `arguments` plus flags that write headers and body to temp files.
func curl(_ arguments: [String]) async throws -> CurlResult {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("curl-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let headerFile = dir.appendingPathComponent("headers").path
    let bodyFile = dir.appendingPathComponent("body").path
    let errFile = dir.appendingPathComponent("stderr").path
    _ = FileManager.default.createFile(atPath: errFile, contents: nil)

    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["-sS", "--max-time", "10", "-D", headerFile, "-o", bodyFile] + arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle(forWritingAtPath: errFile)
    let exitCode: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do { try process.run() } catch { continuation.resume(throwing: error) }
    }

    let rawHeaders = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
    var status = 0
    var headers: [String: String] = [:]
    for line in rawHeaders.components(separatedBy: "\r\n") {
        if line.hasPrefix("HTTP/") {
            status = Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
            headers = [:]  // keep the last response's headers only
        } else if let colon = line.firstIndex(of: ":") {
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...]
                .trimmingCharacters(in: .whitespaces)
        }
    }
    return CurlResult(
        exitCode: exitCode, status: status, headers: headers,
        body: FileManager.default.contents(atPath: bodyFile) ?? Data(),
        stderr: (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? "")
}

/// Runs a command and returns its exit status, stdout and stderr. It waits without blocking a thread
/// of the cooperative pool, which the in-process servers need.
func run(_ executable: String, _ arguments: [String], stdin: Data? = nil) async throws
    -> (status: Int32, out: Data, err: String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let outFile = dir.appendingPathComponent("out").path, errFile = dir.appendingPathComponent("err").path
    _ = FileManager.default.createFile(atPath: outFile, contents: nil)
    _ = FileManager.default.createFile(atPath: errFile, contents: nil)
    process.standardOutput = FileHandle(forWritingAtPath: outFile)
    process.standardError = FileHandle(forWritingAtPath: errFile)
    if let stdin {
        let inFile = dir.appendingPathComponent("in").path
        _ = FileManager.default.createFile(atPath: inFile, contents: stdin)
        process.standardInput = FileHandle(forReadingAtPath: inFile)
    }
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do { try process.run() } catch { continuation.resume(throwing: error) }
    }
    return (status, FileManager.default.contents(atPath: outFile) ?? Data(),
            (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? "")
}

/// Runs blocking work (socket reads) on a Dispatch thread so it cannot starve the cooperative pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
