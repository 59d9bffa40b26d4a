import Exporter
import Foundation
import Glibc
import Monitor
import Synchronization

/// The command's options the measurements need.
struct RunOptions: Sendable {
    var uri: String
    var sizeList: [Int]
    var events: Int
    var skipIdle: Bool
    var idleSeconds: Int
    var scrapes: Int
    var throughputSize: Int
    var clients: Int
    var throughputSeconds: Int
    var daemonEnvironment: [String]
    var eventSeconds: Double
}

/// Runs every measurement, size by size, on one growing fixture.
final class Runner: Sendable {
    let options: RunOptions
    let floor: FloorProgram
    let fixture: Fixture
    let inProcess: InProcess
    let daemonBinary: String
    let tempDir: String
    private let helper = Mutex<DefineHelper?>(nil)
    private let daemon = Mutex<Daemon?>(nil)
    private let nextEvent = Atomic<Int>(0)
    let build = BuildInfo(version: "bench")

    init(options: RunOptions, floor: FloorProgram, fixture: Fixture, inProcess: InProcess, daemonBinary: String, tempDir: String) {
        self.options = options
        self.floor = floor
        self.fixture = fixture
        self.inProcess = inProcess
        self.daemonBinary = daemonBinary
        self.tempDir = tempDir
    }

    func run(into report: inout Report) async throws {
        let uri = options.uri
        let inProcessPort = try await inProcess.startExporter()
        // A clean start: libvirt must have dropped every bench device before the first size.
        try await OffPool.run {
            let connection = try LibvirtConnectorImpl().connect(uri: uri, readOnly: true)
            defer { connection.close() }
            try Fixture.waitForLibvirt(connection, expected: 0, timeout: 300)
        }
        if options.events > 0 { helper.withLock { $0 = try? DefineHelper(floor) } }
        let sizes = options.sizeList
        for (position, n) in sizes.enumerated() {
            let result = try await measure(n, inProcessPort: inProcessPort, isLast: position == sizes.count - 1, report: &report)
            report.sizes.append(result)
            Progress.completed(report)
        }
    }

    private func measure(_ n: Int, inProcessPort: Int, isLast: Bool, report: inout Report) async throws -> SizeResult {
        let uri = options.uri
        let fixture = fixture
        note("\(n) mdevs: writing the fixture")
        let written = Mono.now()
        try fixture.grow(to: n)
        let connection = try await OffPool.run { try LibvirtConnectorImpl().connect(uri: uri, readOnly: true) }
        defer { connection.close() }
        _ = try await OffPool.run { try Fixture.waitForLibvirt(connection, expected: n, timeout: max(300, Double(n) / 10)) }
        var r = SizeResult(devices: n, fixtureSeconds: Mono.ms(written, Mono.now()) / 1000)
        let reps = n >= 5000 ? 3 : 5

        // 1. Full sync: mdevmon's against libvirt's floor, nothing else of the bench running.
        note("\(n) mdevs: full sync ×\(reps), floor.c ×\(reps) per mode")
        r.fullSync = Summary(try await OffPool.run {
            var times: [Double] = []
            for _ in 0..<reps {
                let (result, ms) = try Mono.time { try FullSync.read(from: connection) }
                precondition(result.state.devices.count >= n, "FullSync saw \(result.state.devices.count) mdevs")
                times.append(ms)
            }
            return times
        })
        for mode in FloorProgram.Mode.allCases {
            let floor = floor
            r.floor[mode.rawValue] = Summary(try await OffPool.run { try floor.list(mode: mode, reps: reps).ms })
        }

        Progress.current(r)
        // 2b. The polling collector, with its CPU cost (the bench's and libvirtd's).
        note("\(n) mdevs: polling collector ×\(reps)")
        let build = build
        let libvirtd = Proc.libvirtdPID()
        let (collectorTimes, benchCPU, libvirtdCPU) = try await OffPool.run {
            let selfBefore = Proc.cpuSeconds(pid: Proc.selfPID) ?? 0
            let libvirtdBefore = libvirtd.flatMap { Proc.cpuSeconds(pid: $0) } ?? 0
            var times: [Double] = []
            for _ in 0..<reps {
                let (scrape, ms) = try Mono.time { try PollingCollector.scrape(connection, build: build) }
                precondition(scrape.devices >= n, "collector saw \(scrape.devices) mdevs")
                times.append(ms)
            }
            let selfCPU = (Proc.cpuSeconds(pid: Proc.selfPID) ?? 0) - selfBefore
            let libvirtdCPU = (libvirtd.flatMap { Proc.cpuSeconds(pid: $0) } ?? 0) - libvirtdBefore
            return (times, selfCPU * 1000 / Double(reps), libvirtdCPU * 1000 / Double(reps))
        }
        r.collector = Summary(collectorTimes)
        r.collectorCPU = benchCPU + libvirtdCPU
        r.collectorLibvirtdCPU = libvirtdCPU

        Progress.current(r)
        // 2c. The cheapest collector a peer could write: list, then one XML fetch per device.
        note("\(n) mdevs: list + XML collector ×\(reps)")
        let (xmlTimes, xmlBenchCPU, xmlLibvirtdCPU) = try await OffPool.run {
            let collector = try XMLCollector(uri: uri)
            let selfBefore = Proc.cpuSeconds(pid: Proc.selfPID) ?? 0
            let libvirtdBefore = libvirtd.flatMap { Proc.cpuSeconds(pid: $0) } ?? 0
            var times: [Double] = []
            for _ in 0..<reps {
                let (scrape, ms) = try Mono.time { try collector.scrape(build: build) }
                precondition(scrape.devices >= n, "XML collector saw \(scrape.devices) mdevs")
                times.append(ms)
            }
            let selfCPU = (Proc.cpuSeconds(pid: Proc.selfPID) ?? 0) - selfBefore
            let libvirtdCPU = (libvirtd.flatMap { Proc.cpuSeconds(pid: $0) } ?? 0) - libvirtdBefore
            return (times, selfCPU * 1000 / Double(reps), libvirtdCPU * 1000 / Double(reps))
        }
        r.xmlCollector = Summary(xmlTimes)
        r.xmlCollectorCPU = xmlBenchCPU + xmlLibvirtdCPU

        Progress.current(r)
        // The in-process Monitor: time to first sync, then pure render times from its snapshot.
        note("\(n) mdevs: in-process monitor, render")
        r.monitorFirstSync = await inProcess.startMonitor()
        let snapshot = inProcess.snapshot
        let coldReps = n >= 5000 ? 30 : 100
        let (cold, warm, changed, bytes) = await OffPool.runNonThrowing {
            var cold: [Double] = [], warm: [Double] = []
            var bytes = 0
            for _ in 0..<coldReps {
                let (body, ms) = ThreadCPU.time {
                    MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil)
                }
                bytes = body.count
                cold.append(ms)
            }
            let cache = MetricsCache()
            _ = MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil, cache: cache)
            for _ in 0..<300 {
                let (_, ms) = ThreadCPU.time {
                    MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil, cache: cache)
                }
                warm.append(ms)
            }
            var changing = snapshot
            let changed = RenderOnly.afterChanges(&changing, cache: cache, build: build, count: 100)
            return (cold, warm, changed, bytes)
        }
        r.renderCold = Summary(cold)
        r.renderWarm = Summary(warm)
        r.renderAfterChange = Summary(changed)
        r.renderBytes = bytes

        Progress.current(r)
        // 4. The daemon: startup, memory, scrapes.
        note("\(n) mdevs: starting mdevmon run")
        let directory = "\(tempDir)/daemon-\(n)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let d = try Daemon(binary: daemonBinary, uri: uri, directory: directory, environment: options.daemonEnvironment)
        daemon.withLock { $0 = d }
        defer {
            d.stop()
            daemon.withLock { $0 = nil }
        }
        r.daemonStart = try await OffPool.run { try d.waitHealthy(timeout: 600) }
        // Let the first sync's garbage settle before reading memory.
        try await Task.sleep(for: .milliseconds(500))
        r.rssAfterSyncMiB = d.rssMiB

        Progress.current(r)
        note("\(n) mdevs: \(options.scrapes) plain and \(options.scrapes / 2) gzip scrapes")
        let scrapes = options.scrapes
        let s = try await OffPool.run {
            let http = try HTTPConnection(port: d.port)
            for _ in 0..<5 { try http.get("/metrics") }
            var plain: [Double] = [], gzip: [Double] = [], render: [Double] = []
            let cpuBefore = d.cpuSeconds
            for _ in 0..<scrapes {
                let t0 = Mono.now()
                guard try http.get("/metrics") == 200 else { throw BenchError("daemon /metrics failed") }
                plain.append(Mono.ms(t0, Mono.now()))
                if let seconds = http.number(after: Array("\nmdev_scrape_render_seconds ".utf8)) { render.append(seconds * 1000) }
            }
            let cpu = (d.cpuSeconds - cpuBefore) * 1000 / Double(scrapes)
            let plainBody = http.bodyBytes
            let gzipScrapes = max(1, scrapes / 2)
            let gzipCPUBefore = d.cpuSeconds
            for _ in 0..<gzipScrapes {
                let t0 = Mono.now()
                guard try http.get("/metrics", gzip: true) == 200 else { throw BenchError("daemon /metrics (gzip) failed") }
                gzip.append(Mono.ms(t0, Mono.now()))
            }
            let gzipCPU = (d.cpuSeconds - gzipCPUBefore) * 1000 / Double(gzipScrapes)
            return (plain: plain, gzip: gzip, render: render, cpu: cpu, gzipCPU: gzipCPU, plainBytes: plainBody.count,
                    gzipBytes: http.bodyCount, reference: try gzipSize(plainBody))
        }
        r.scrapePlain = Summary(s.plain)
        r.scrapeGzip = Summary(s.gzip)
        r.daemonRender = Summary(s.render)
        r.daemonCPUPerScrape = s.cpu
        r.daemonCPUPerGzipScrape = s.gzipCPU
        r.gzip6Bytes = s.reference
        r.scrapeBytesPlain = s.plainBytes
        r.scrapeBytesGzip = s.gzipBytes
        r.rssAfterScrapesMiB = d.rssMiB
        r.peakRSSMiB = d.peakRSSMiB
        r.memoryAfterScrapes = d.memory
        if let collector = r.collector?.p50, let scrape = r.scrapePlain?.p50, scrape > 0 {
            r.cheaperByTime = collector / scrape
        }
        if let collectorCPU = r.collectorCPU, s.cpu > 0 { r.cheaperByCPU = collectorCPU / s.cpu }

        Progress.current(r)
        // 5. Throughput.
        if n == options.throughputSize {
            let clients = options.clients, seconds = options.throughputSeconds
            for gzip in [false, true] {
                note("\(n) mdevs: throughput, \(clients) clients × \(seconds) s\(gzip ? ", gzip" : "")")
                r.throughput.append(await OffPool.runNonThrowing {
                    Throughput.run(port: d.port, clients: clients, seconds: Double(seconds), gzip: gzip, daemon: d)
                })
                if let wrk = which("wrk") {
                    if let result = await OffPool.runNonThrowing({
                        Throughput.wrk(wrk, port: d.port, clients: clients, seconds: seconds, gzip: gzip, daemon: d)
                    }) {
                        r.throughput.append(result)
                    }
                }
            }
            if which("wrk") == nil {
                let message = "wrk not installed (apt-get install -y wrk): throughput from the built-in client only"
                note(message)
                if !report.notes.contains(message) { report.notes.append(message) }
            }
            r.rssAfterScrapesMiB = d.rssMiB
            r.peakRSSMiB = d.peakRSSMiB
            r.memoryAfterScrapes = d.memory
        }

        Progress.current(r)
        // 3. Events, against the in-process exporter (callback times known) and then the daemon.
        if options.events > 0, let helper = helper.withLock({ $0 }) {
            let count = options.events
            let timeline = inProcess.timeline
            let budget = options.eventSeconds
            for (target, port) in [("in-process", inProcessPort), ("daemon", d.port)] {
                note("\(n) mdevs: \(count) define events, polling \(target) /metrics")
                let first = nextEvent.add(count, ordering: .relaxed).oldValue
                r.events.append(try await OffPool.run {
                    try EventLatency.run(count: count, first: first, target: target, port: port, helper: helper,
                                         fixture: fixture, timeline: timeline, budget: budget)
                })
                Progress.current(r)
            }
        }

        Progress.current(r)
        // 4b. Idle CPU, at the largest size only.
        if isLast && !options.skipIdle {
            let seconds = options.idleSeconds
            note("\(n) mdevs: idle CPU over \(seconds) s")
            let cpuBefore = d.cpuSeconds
            let eventsBefore = inProcess.eventsSeen
            let start = Mono.now()
            try await Task.sleep(for: .seconds(seconds))
            let elapsed = Mono.ms(start, Mono.now()) / 1000
            let cpu = d.cpuSeconds - cpuBefore
            report.idle = IdleResult(
                devices: n, seconds: elapsed, cpuSeconds: cpu, cpuPercent: cpu / elapsed * 100,
                eventsMeanwhile: inProcess.eventsSeen - eventsBefore, rssMiB: d.rssMiB)
        }

        await inProcess.stopMonitor()
        return r
    }

    /// Stops everything the bench started and removes the fixture, waiting until libvirt has dropped it.
    func cleanUp() async {
        daemon.withLock { $0 }?.stop()
        helper.withLock { $0 }?.stop()
        await inProcess.stopMonitor()
        let removed = Fixture.removeAll()
        note("removed \(removed) fixture files; waiting for libvirt to drop them")
        let uri = options.uri
        do {
            try await OffPool.run {
                let connection = try LibvirtConnectorImpl().connect(uri: uri, readOnly: true)
                defer { connection.close() }
                try Fixture.waitForLibvirt(connection, expected: 0, timeout: 300)
            }
        } catch {
            note("cleanup: \(error)")
        }
    }
}

extension OffPool {
    static func runNonThrowing<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        // The body cannot throw, so neither can this.
        try! await run(body)
    }
}
