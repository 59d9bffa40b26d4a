import Foundation
import Synchronization

/// Everything one size measured. Times in ms, sizes in bytes unless the name says otherwise.
struct SizeResult: Codable, Sendable {
    var devices: Int
    /// Seconds until libvirt listed the whole fixture after its files were written.
    var fixtureSeconds: Double
    var loadAverage: Double

    // 1. Full sync
    var fullSync: Summary?
    var monitorFirstSync: Double?
    var floor: [String: Summary] = [:]

    // 2. Scrape
    var renderCold: Summary?
    var renderWarm: Summary?
    /// A cached render after one device changed (a different one each time).
    var renderAfterChange: Summary?
    var renderBytes: Int?
    var scrapePlain: Summary?
    var scrapeGzip: Summary?
    var scrapeBytesPlain: Int?
    var scrapeBytesGzip: Int?
    /// `mdev_scrape_render_seconds` as the daemon reported it, in ms.
    var daemonRender: Summary?
    var daemonCPUPerScrape: Double?
    var daemonCPUPerGzipScrape: Double?
    /// `gzip -6` of the same plain body, for the ratio.
    var gzip6Bytes: Int?
    var collector: Summary?
    /// Collector CPU per scrape: the bench's own plus libvirtd's (libvirtd is shared, so noisy).
    var collectorCPU: Double?
    var collectorLibvirtdCPU: Double?
    /// The cheapest peer: list + one XML fetch per device (`XMLCollector`).
    var xmlCollector: Summary?
    var xmlCollectorCPU: Double?
    /// collector p50 ÷ mdevmon scrape p50 (plain HTTP, end to end).
    var cheaperByTime: Double?
    /// Collector CPU (bench + libvirtd) ÷ daemon CPU, per scrape.
    var cheaperByCPU: Double?

    // 3. Events
    var events: [EventResult] = []

    // 4. Memory
    var daemonStart: Double?
    var rssAfterSyncMiB: Double?
    var rssAfterScrapesMiB: Double?
    var peakRSSMiB: Double?
    var memoryAfterScrapes: MemoryBreakdown?
    var throughput: [ThroughputResult] = []

    init(devices: Int, fixtureSeconds: Double) {
        self.devices = devices
        self.fixtureSeconds = fixtureSeconds
        loadAverage = Proc.loadAverage()
    }
}

struct MemoryBreakdown: Codable, Sendable {
    var rssMiB: Double
    var anonMiB: Double
    var fileMiB: Double
    var pssMiB: Double
}

struct IdleResult: Codable, Sendable {
    var devices: Int
    var seconds: Double
    var cpuSeconds: Double
    var cpuPercent: Double
    /// libvirt events the in-process Monitor counted meanwhile (other users of libvirtd make some).
    var eventsMeanwhile: Int
    var rssMiB: Double
}

struct Target: Codable, Sendable {
    var name: String
    var goal: String
    var measured: String
    var met: Bool?
}

struct Report: Codable, Sendable {
    var date: String
    var host: String
    var cores: Int
    var libvirtd: String
    var loadAverageAtStart: Double
    var concurrentSwiftTests: Bool
    var sizes: [SizeResult] = []
    var idle: IdleResult?
    var targets: [Target] = []
    var notes: [String] = []
}

extension Report {
    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }

    /// The human-readable table: one column per size.
    func table() -> String {
        var rows: [(String, [String])] = []
        func row(_ label: String, _ value: (SizeResult) -> String?) {
            rows.append((label, sizes.map { value($0) ?? "–" }))
        }
        func section(_ title: String) { rows.append(("", [])); rows.append((title, [])) }
        func ms(_ v: Double?) -> String? { v.map { Self.format($0) + " ms" } }
        func p(_ s: Summary?) -> String? { s.map { "\(Self.format($0.p50)) / \(Self.format($0.p99))" } }
        func mib(_ v: Double?) -> String? { v.map { String(format: "%.1f MiB", $0) } }
        func times(_ v: Double?) -> String? { v.map { String(format: "%.0f×", $0) } }
        func event(_ target: String, _ key: KeyPath<EventResult, Summary?>) -> (SizeResult) -> String? {
            { s in s.events.first { $0.target == target }.flatMap { p($0[keyPath: key]) } }
        }

        row("mdevs (bench fixture)") { "\($0.devices)" }
        row("libvirt picked up fixture") { String(format: "%.1f s", $0.fixtureSeconds) }
        row("load average (1 min)") { String(format: "%.2f", $0.loadAverage) }
        section("1. full sync (p50 / p99 ms)")
        row("  FullSync.read (Swift, 1 RPC/dev)") { p($0.fullSync) }
        row("  MonitorService start → first sync") { ms($0.monitorFirstSync) }
        row("  mdevmon run spawn → /healthz 200") { ms($0.daemonStart) }
        row("  floor.c: list + XML (1 RPC/dev)") { p($0.floor["xml"]) }
        row("  floor.c: + IsActive, IsPersistent") { p($0.floor["state"]) }
        row("  floor.c: 4 RPC/dev (the old FullSync)") { p($0.floor["fullsync"]) }
        row("  FullSync ÷ floor (p50)") { s in
            guard let a = s.fullSync?.p50, let b = s.floor["xml"]?.p50, b > 0 else { return nil }
            return String(format: "%.1f×", a / b)
        }
        section("2. scrape (p50 / p99 ms)")
        row("  render, cold (no cache, CPU)") { p($0.renderCold) }
        row("  render, warm (cache hit, CPU)") { p($0.renderWarm) }
        row("  render after 1 device changed (CPU)") { p($0.renderAfterChange) }
        row("  render as daemon reports it") { p($0.daemonRender) }
        row("  GET /metrics plain (daemon)") { p($0.scrapePlain) }
        row("  GET /metrics gzip (daemon)") { p($0.scrapeGzip) }
        row("  body plain / gzip") { s in
            guard let a = s.scrapeBytesPlain else { return nil }
            return Self.bytes(a) + " / " + (s.scrapeBytesGzip.map { Self.bytes($0) } ?? "–")
        }
        row("  gzip ratio / gzip -6 (% of it)") { s in
            guard let a = s.scrapeBytesPlain, let g = s.scrapeBytesGzip, let r = s.gzip6Bytes, g > 0, r > 0 else { return nil }
            return String(format: "%.2f× / %.2f× (%.0f %%)", Double(a) / Double(g), Double(a) / Double(r), Double(r) / Double(g) * 100)
        }
        row("  daemon CPU per scrape plain / gzip") { s in
            guard let a = s.daemonCPUPerScrape else { return nil }
            return Self.format(a) + " / " + (s.daemonCPUPerGzipScrape.map { Self.format($0) } ?? "–") + " ms"
        }
        row("  collector 4 RPC/dev per scrape") { p($0.collector) }
        row("    its CPU (bench+libvirtd)") { ms($0.collectorCPU) }
        row("  collector list+XML (1 RPC/dev)") { p($0.xmlCollector) }
        row("    its CPU (bench+libvirtd)") { ms($0.xmlCollectorCPU) }
        func cheaper(_ collector: Summary?, _ collectorCPU: Double?, _ s: SizeResult) -> String? {
            guard let c = collector?.p50, let plain = s.scrapePlain?.p50, plain > 0 else { return nil }
            var out = String(format: "%.0f×", c / plain)
            if let gzip = s.scrapeGzip?.p50, gzip > 0 { out += String(format: " / %.0f×", c / gzip) }
            if let cpu = collectorCPU, let d = s.daemonCPUPerScrape, d > 0 {
                out += String(format: ", CPU %.0f×", cpu / d)
                if let g = s.daemonCPUPerGzipScrape, g > 0 { out += String(format: " / %.0f×", cpu / g) }
            }
            return out
        }
        row("  cheaper than 4 RPC (time plain/gzip, CPU plain/gzip)") { cheaper($0.collector, $0.collectorCPU, $0) }
        row("  cheaper than list+XML (same)") { cheaper($0.xmlCollector, $0.xmlCollectorCPU, $0) }
        section("3. events (p50 / p99 ms)")
        row("  callback → IndexChange") { event("in-process", \.callbackToIndex)($0) }
        row("    callback → fetch starts") { event("in-process", \.callbackToFetch)($0) }
        row("    fetch mdev (libvirt RPCs)") { event("in-process", \.deviceFetch)($0) }
        row("    fetch parent (libvirt RPCs)") { event("in-process", \.parentFetch)($0) }
        row("    fetched → IndexChange") { event("in-process", \.fetchedToIndex)($0) }
        row("    mdevmon's own (excl. RPCs)") { event("in-process", \.ownTime)($0) }
        row("  callback → /metrics (in-process)") { event("in-process", \.callbackToMetrics)($0) }
        row("  define return → callback") { event("in-process", \.returnToCallback)($0) }
        row("  define return → /metrics (in-proc)") { event("in-process", \.returnToMetrics)($0) }
        row("  define return → /metrics (daemon)") { event("daemon", \.returnToMetrics)($0) }
        row("  /metrics poll interval (daemon)") { event("daemon", \.pollInterval)($0) }
        row("  virNodeDeviceDefineXML call") { event("in-process", \.defineCall)($0) }
        row("  events measured / missed") { s in
            s.events.isEmpty ? nil : s.events.map { "\($0.events)/\($0.missed)" }.joined(separator: ", ")
        }
        section("4. memory (daemon)")
        row("  VmRSS after first sync") { mib($0.rssAfterSyncMiB) }
        row("  VmRSS after scrapes") { mib($0.rssAfterScrapesMiB) }
        row("  VmHWM (peak)") { mib($0.peakRSSMiB) }
        row("    of which anonymous (RssAnon)") { mib($0.memoryAfterScrapes?.anonMiB) }
        row("    of which file-backed (RssFile)") { mib($0.memoryAfterScrapes?.fileMiB) }
        row("  PSS (shared pages split)") { mib($0.memoryAfterScrapes?.pssMiB) }
        section("5. throughput")
        for (index, label) in ["plain", "gzip"].enumerated() {
            row("  scrapes/s, \(label)") { s in
                let results = s.throughput.filter { $0.gzip == (index == 1) }
                guard !results.isEmpty else { return nil }
                return results.map { String(format: "%.0f (%@, %d cl)", $0.scrapesPerSecond, $0.tool, $0.clients) }
                    .joined(separator: ", ")
            }
        }
        row("  daemon CPU per scrape under load") { s in
            s.throughput.first { !$0.gzip && $0.tool == "built-in" }.flatMap { ms($0.daemonCPUPerScrapeMS) }
        }

        let labelWidth = rows.map(\.0.count).max() ?? 0
        var widths = sizes.map { _ in 0 }
        for (_, values) in rows { for (i, v) in values.enumerated() { widths[i] = max(widths[i], v.count) } }
        var out = ""
        for (label, values) in rows {
            var line = label.padding(toLength: labelWidth, withPad: " ", startingAt: 0)
            for (i, v) in values.enumerated() {
                line += "  " + String(repeating: " ", count: widths[i] - v.count) + v
            }
            out += line.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
        }
        if let idle {
            out += String(format: "\nidle: %.4f %% CPU over %.0f s at %d mdevs (%.3f s CPU, %d libvirt events meanwhile), VmRSS %.1f MiB\n",
                          idle.cpuPercent, idle.seconds, idle.devices, idle.cpuSeconds, idle.eventsMeanwhile, idle.rssMiB)
        }
        if !targets.isEmpty {
            out += "\ntargets:\n"
            for t in targets {
                let mark = switch t.met { case true?: "met   "; case false?: "MISSED"; case nil: "n/a   " }
                out += "  [\(mark)] \(t.name): goal \(t.goal), measured \(t.measured)\n"
            }
        }
        for n in notes { out += "note: \(n)\n" }
        return out
    }

    static func format(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if abs(v) >= 100 { return String(format: "%.0f", v) }
        if abs(v) >= 10 { return String(format: "%.1f", v) }
        if abs(v) >= 1 { return String(format: "%.2f", v) }
        return String(format: "%.3f", v)
    }

    static func bytes(_ v: Int) -> String {
        if v >= 1_048_576 { return String(format: "%.1f MiB", Double(v) / 1_048_576) }
        if v >= 1024 { return String(format: "%.0f KiB", Double(v) / 1024) }
        return "\(v) B"
    }
}

/// What has been measured so far, so an interrupted run still prints (and saves) it.
enum Progress {
    private static let state = Mutex<(report: Report?, current: SizeResult?, json: String?)>((nil, nil, nil))

    static func start(_ report: Report, json: String?) { state.withLock { $0 = (report, nil, json) } }
    static func completed(_ report: Report) { state.withLock { $0.report = report; $0.current = nil } }
    static func current(_ size: SizeResult) { state.withLock { $0.current = size } }

    /// Prints the table of everything measured and writes the JSON, marking the last size partial.
    static func flush(reason: String) {
        let (report, current, json) = state.withLock { $0 }
        guard var report else { return }
        if let current {
            report.sizes.append(current)
            report.notes.append("\(reason) while measuring \(current.devices) mdevs: that column is partial")
        } else {
            report.notes.append(reason)
        }
        report.targets = Bench.targets(report)
        print(report.table(), terminator: "")
        if let json, let data = try? report.json() { try? data.write(to: URL(fileURLWithPath: json)) }
    }
}
