import ArgumentParser
import Dispatch
import Exporter
import Foundation
import Glibc
import Logging
import Monitor

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mdevmon-bench",
        abstract: "Benchmarks mdevmon against the real libvirtd (see README, \"Benchmarks\").",
        discussion: """
            Needs root and a running libvirtd. Makes its own fixture of defined mdevs (UUIDs bec4…) by writing \
            mdevctl config files under /etc/mdevctl.d, spread over the PCI devices in /sys/bus/pci/devices, and \
            removes it afterwards, also on error or Ctrl-C (a killed run's leftovers go at the next start). \
            Build the daemon first: swift build -c release.
            """)

    @Option(help: "Fixture sizes (defined mdevs), comma-separated.")
    var sizes = "100,1000,10000"

    @Option(help: ArgumentHelp("Also write the results as JSON to this file.", valueName: "path"))
    var json: String?

    @Option(help: "Define events per size, measured against each of the in-process exporter and the daemon.")
    var events = 200

    @Option(help: "Time budget per size and target for the define events; fewer events are measured when libvirt is slow (at 10,000 mdevs each define takes seconds).")
    var eventSeconds = 90.0

    @Flag(help: "Only time the renderer on a synthetic index (no libvirt, no root, no fixture).")
    var renderOnly = false

    @Option(name: .customLong("render-uuids"), help: "With --render-only: which UUIDs, random, sequential or both.")
    var renderUUIDs = "both"

    @Flag(help: ArgumentHelp(
        "Only measure what unauthenticated clients can cost (issue 24), instead of the rest.",
        discussion: """
            With --flood-size mdevs staged, --flood-clients keep-alive clients ask for / back to back for \
            --flood-seconds, first without auth, then with basic auth configured and a wrong password, while \
            /metrics is scraped every 10 ms and an mdev is defined every 2 s. Reports the flood's statuses, \
            /metrics latency against the idle daemon's (target: p99 within 3×) and define → /metrics (target: \
            within 1 s).
            """))
    var flood = false

    @Option(help: "With --flood: defined mdevs staged.")
    var floodSize = 2000

    @Option(help: "With --flood: concurrent clients asking for /.")
    var floodClients = 64

    @Option(help: "With --flood: seconds of flood per phase.")
    var floodSeconds = 30

    @Option(help: "With --flood: seconds of idle measurement before each flood.")
    var floodIdleSeconds = 16

    @Flag(help: "Skip the idle CPU measurement.")
    var skipIdle = false

    @Option(help: "Length of the idle CPU measurement (at the largest size).")
    var idleSeconds = 60

    @Option(help: "Sequential plain scrapes per size (half as many gzip ones).")
    var scrapes = 200

    @Option(help: "Fixture size at which to measure throughput.")
    var throughputSize = 1000

    @Option(help: "Concurrent clients for the throughput measurement.")
    var clients = 8

    @Option(help: "Seconds per throughput measurement.")
    var throughputSeconds = 5

    @Option(help: "libvirt URI.")
    var uri = "qemu:///system"

    @Option(help: ArgumentHelp("The mdevmon binary; default: next to this one.", valueName: "path"))
    var daemon: String?

    @Option(help: ArgumentHelp("Benchmarks/floor.c; default: found from the source tree.", valueName: "path"))
    var floorSource: String?

    @Option(help: ArgumentHelp(
        "Extra environment for the daemon (repeatable), e.g. MALLOC_ARENA_MAX=2.", valueName: "name=value"))
    var daemonEnv: [String] = []

    func validate() throws {
        guard !sizeList.isEmpty, sizeList.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--sizes wants positive integers, e.g. 100,1000,10000")
        }
        guard events >= 0, eventSeconds > 0, scrapes > 0, clients > 0, throughputSeconds > 0, idleSeconds > 0,
              floodSize > 0, floodClients > 0, floodSeconds > 4, floodIdleSeconds > 4 else {
            throw ValidationError("counts and durations must be positive")
        }
    }

    var sizeList: [Int] { sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.sorted() }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        if renderOnly {
            let parents = (try? Fixture().parents) ?? ["0000:00:00.0"]
            let styles = renderUUIDs == "both" ? [false, true] : [renderUUIDs == "sequential"]
            print(await RenderOnly.run(sizes: sizeList, parents: parents, sequential: styles), terminator: "")
            return
        }
        guard getuid() == 0 else { throw BenchError("run as root: the fixture writes /etc/mdevctl.d") }
        let daemonBinary = daemon ?? (URL(fileURLWithPath: Proc.selfExecutable()).deletingLastPathComponent().path + "/mdevmon")
        guard FileManager.default.isExecutableFile(atPath: daemonBinary) else {
            throw BenchError("no mdevmon binary at \(daemonBinary): run `swift build -c release` first, or pass --daemon")
        }
        let source = floorSource ?? Self.defaultFloorSource()
        var template = Array("/tmp/mdevmon-bench.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw BenchError("mkdtemp failed") }
        let tempDir = String(cString: made)

        Interrupt.install(tempDir: tempDir)
        for pid in Daemon.leftovers() {
            note("killing mdevmon \(pid) left by an aborted bench run")
            kill(pid, SIGKILL)
        }
        let leftovers = Fixture.removeAll()
        if leftovers > 0 { note("removed \(leftovers) fixture files left by an aborted run") }

        let floor = try FloorProgram.build(source: source, into: tempDir, uri: uri)
        let binaryAge = (try? FileManager.default.attributesOfItem(atPath: daemonBinary)[.modificationDate] as? Date)
            .map { Int(Date().timeIntervalSince($0)) }
        var report = Report(
            date: ISO8601DateFormatter().string(from: Date()), host: ProcessInfo.processInfo.hostName,
            cores: ProcessInfo.processInfo.activeProcessorCount,
            libvirtd: (try? shell("/usr/sbin/libvirtd", ["--version"]).output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?",
            loadAverageAtStart: Proc.loadAverage(), concurrentSwiftTests: Proc.othersTesting())
        if let binaryAge { report.notes.append("daemon binary \(daemonBinary), built \(binaryAge) s before the run") }
        if !daemonEnv.isEmpty { report.notes.append("daemon environment: \(daemonEnv.joined(separator: " "))") }
        if report.loadAverageAtStart >= 1.0 || report.concurrentSwiftTests {
            let message = String(format: "machine busy at start: load %.2f%@", report.loadAverageAtStart,
                                 report.concurrentSwiftTests ? ", swift test running" : "")
            note(message)
            report.notes.append(message)
        }

        if flood {
            try await runFlood(floor: floor, daemonBinary: daemonBinary, tempDir: tempDir, report: report)
            return
        }
        Progress.start(report, json: json)
        let logger = Logger(label: "mdevmon-bench")
        let inProcess = InProcess(uri: uri, logger: logger)
        let fixture = try Fixture()
        let options = RunOptions(
            uri: uri, sizeList: sizeList, events: events, skipIdle: skipIdle, idleSeconds: idleSeconds,
            scrapes: scrapes, throughputSize: throughputSize, clients: clients, throughputSeconds: throughputSeconds,
            daemonEnvironment: daemonEnv, eventSeconds: eventSeconds)
        let runner = Runner(options: options, floor: floor, fixture: fixture, inProcess: inProcess,
                            daemonBinary: daemonBinary, tempDir: tempDir)
        var failure: (any Error)?
        do {
            try await runner.run(into: &report)
        } catch {
            failure = error
            report.notes.append("run failed: \(error); sizes above are the ones that completed")
        }
        await runner.cleanUp()
        report.targets = Self.targets(report)
        print(report.table(), terminator: "")
        if let json {
            try report.json().write(to: URL(fileURLWithPath: json))
            note("wrote \(json)")
        }
        try? FileManager.default.removeItem(atPath: tempDir)
        if let failure {
            note("failed: \(failure)")
            throw ExitCode.failure
        }
    }

    /// `--flood`: both phases on one fixture, then the fixture is removed.
    private func runFlood(floor: FloorProgram, daemonBinary: String, tempDir: String, report: Report) async throws {
        let fixture = try Fixture()
        let helper = try DefineHelper(floor)
        let options = FloodOptions(uri: uri, devices: floodSize, clients: floodClients, seconds: Double(floodSeconds),
                                   idleSeconds: Double(floodIdleSeconds), daemonEnvironment: daemonEnv)
        var results: [FloodResult] = []
        var failure: (any Error)?
        do {
            results = try await Flood.run(options: options, fixture: fixture, helper: helper, daemonBinary: daemonBinary,
                                          tempDir: tempDir)
        } catch {
            failure = error
        }
        helper.stop()
        let removed = Fixture.removeAll()
        note("removed \(removed) fixture files; waiting for libvirt to drop them")
        let uri = uri
        try? await OffPool.run {
            let connection = try LibvirtConnectorImpl().connect(uri: uri, readOnly: true)
            defer { connection.close() }
            try Fixture.waitForLibvirt(connection, expected: 0, timeout: 300)
        }
        print("mdevmon-bench --flood, \(report.date) on \(report.host) (\(report.cores) cores, libvirtd \(report.libvirtd))")
        for note in report.notes { print("  note: \(note)") }
        for result in results { print(result.lines().joined(separator: "\n")) }
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(results).write(to: URL(fileURLWithPath: json))
        }
        try? FileManager.default.removeItem(atPath: tempDir)
        if let failure {
            note("failed: \(failure)")
            throw ExitCode.failure
        }
    }

    /// `Benchmarks/floor.c` relative to this source file, or to the working directory.
    static func defaultFloorSource() -> String {
        let fromSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("floor.c").path
        if FileManager.default.fileExists(atPath: fromSource) { return fromSource }
        return FileManager.default.currentDirectoryPath + "/Benchmarks/floor.c"
    }

    /// Where the largest size stands against issue 9's targets.
    static func targets(_ report: Report) -> [Target] {
        guard let big = report.sizes.last else { return [] }
        let at = "at \(big.devices)"
        var targets: [Target] = []
        if let warm = big.renderWarm, let cold = big.renderCold, let changed = big.renderAfterChange {
            targets.append(Target(
                name: "render after a change to one device \(at)", goal: "≤ 2 ms",
                measured: String(format: "p50 %.2f ms (p99 %.2f); warm p50 %.2f ms, cold p50 %.2f ms",
                                 changed.p50, changed.p99, warm.p50, cold.p50),
                met: changed.p50 <= 2))
        }
        if let collector = big.xmlCollector?.p50, let plain = big.scrapePlain?.p50, let gzip = big.scrapeGzip?.p50 {
            targets.append(Target(
                name: "cheaper than the list+XML collector \(at)", goal: "≥ 500×",
                measured: String(format: "%.0f× plain, %.0f× gzip by time", collector / plain, collector / gzip),
                met: min(collector / plain, collector / gzip) >= 500))
        }
        if let plain = big.scrapeBytesPlain, let gzip = big.scrapeBytesGzip, let reference = big.gzip6Bytes {
            targets.append(Target(
                name: "gzip ratio \(at)", goal: "≥ 90 % of gzip -6",
                measured: String(format: "%.2f× against gzip -6's %.2f× (%.0f %%), daemon CPU %.2f ms per gzip scrape",
                                 Double(plain) / Double(gzip), Double(plain) / Double(reference),
                                 Double(reference) / Double(gzip) * 100, big.daemonCPUPerGzipScrape ?? .nan),
                met: Double(reference) / Double(gzip) >= 0.9))
        }
        if let e = big.events.first(where: { $0.target == "in-process" }), let s = e.callbackToMetrics {
            var index = e.callbackToIndex.map { String(format: "; callback → IndexChange p99 %.2f ms", $0.p99) } ?? ""
            if let own = e.ownTime, let fetch = e.deviceFetch {
                index += String(format: ", of which mdevmon's own p99 %.2f ms, the mdev's libvirt fetch p99 %.2f ms", own.p99, fetch.p99)
            }
            targets.append(Target(
                name: "event → /metrics once libvirt delivers \(at)", goal: "≤ 5 ms p99",
                measured: String(format: "p99 %.2f ms (poll resolution p50 %.2f ms)%@", s.p99,
                                 e.pollInterval?.p50 ?? .nan, index),
                met: s.p99 <= 5))
        }
        if let rss = big.rssAfterScrapesMiB {
            targets.append(Target(
                name: "daemon RSS \(at)", goal: "≤ 40 MiB, anonymous ≤ 20 MiB",
                measured: String(format: "VmRSS %.1f MiB after scrapes (peak %.1f MiB): anonymous %.1f MiB, file-backed %.1f MiB; PSS %.1f MiB",
                                 rss, big.peakRSSMiB ?? .nan, big.memoryAfterScrapes?.anonMiB ?? .nan,
                                 big.memoryAfterScrapes?.fileMiB ?? .nan, big.memoryAfterScrapes?.pssMiB ?? .nan),
                met: rss <= 40 && (big.memoryAfterScrapes?.anonMiB ?? .infinity) <= 20))
        }
        if let idle = report.idle {
            targets.append(Target(
                name: "idle CPU at \(idle.devices)", goal: "< 0.1 %",
                measured: String(format: "%.4f %% over %.0f s (%d libvirt events meanwhile)", idle.cpuPercent, idle.seconds, idle.eventsMeanwhile),
                met: idle.cpuPercent < 0.1))
        }
        return targets
    }
}

/// Ctrl-C, SIGTERM, SIGHUP: kill the daemon, delete the fixture's files, exit 130.
enum Interrupt {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    static func install(tempDir: String) {
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            Glibc.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler {
                for pid in Daemon.running.withLock({ $0 }) { kill(pid, SIGKILL) }
                let removed = Fixture.removeAll()
                note("interrupted: stopped the daemon, removed \(removed) fixture files (libvirt drops them within seconds)")
                Progress.flush(reason: "interrupted")
                try? FileManager.default.removeItem(atPath: tempDir)
                exit(130)
            }
            source.resume()
            sources.append(source)
        }
    }
}

extension Proc {
    /// Whether another `swift test` (or an XCTest bundle) is running on the machine.
    static func othersTesting() -> Bool {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard Int32(entry) != nil, let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let command = String(decoding: data.prefix(300), as: UTF8.self)
            if command.contains("swift-test") || command.contains(".xctest") { return true }
        }
        return false
    }
}
