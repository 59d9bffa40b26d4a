import Exporter
import Monitor
import Policy
import PolicyExporter

/// `--render-only`: the renderer alone on a synthetic index shaped like the fixture, without libvirt.
/// Quick to run anywhere, and the thing to profile (`perf record … mdevmon-bench --render-only`).
enum RenderOnly {
    /// - Parameter sequential: UUIDs that share their first 24 characters (as provisioning tools
    ///   that number devices make them) instead of random-looking ones.
    static func snapshot(devices n: Int, parents: [String], sequential: Bool = false) -> IndexSnapshot {
        var devices: [MdevDevice] = []
        devices.reserveCapacity(n)
        for i in 0..<n {
            let pci = parents[i % parents.count]
            let number = String(i, radix: 16)
            let uuid = sequential
                ? "bec40000-0000-4000-8000-" + String(repeating: "0", count: 12 - number.count) + number
                : Fixture.bulkUUID(i)
            let parent = Fixture.nodeName(pci: pci)
            let name = "mdev_" + uuid.replacingOccurrences(of: "-", with: "_") + "_" + parent.dropFirst(4)
            let definition = MdevDefinition(
                name: name, uuid: uuid, parent: parent, parentAddress: pci, mdevType: Fixture.mdevType,
                iommuGroup: i % 7 == 0 ? nil : i % 64, attrs: [])
            devices.append(MdevDevice(definition: definition, flags: DeviceFlags(active: i % 3 == 0, persistent: true, autostart: i % 5 == 0)))
        }
        var status = MonitorStatus(uri: "qemu:///system")
        status.connected = true
        status.synced = true
        return IndexSnapshot(state: IndexState(devices: devices, parents: [], domains: []), status: status)
    }

    static func run(sizes: [Int], parents: [String], sequential styles: [Bool]) async -> String {
        let build = BuildInfo(version: "bench")
        var out = "render only (synthetic index, no libvirt), thread CPU p50 / p99 ms\n"
        out += "devices  UUIDs        cold (no cache)      warm (cache hit)     after 1 change (scan) after 1 change (history) body       index+ (anon)  cache+ (anon)\n"
        var gzipRows = ""
        for n in sizes { for sequential in styles {
            let anonBefore = Proc.statusKiB(pid: Proc.selfPID, "RssAnon") ?? 0
            var snapshot = snapshot(devices: n, parents: parents, sequential: sequential)
            let indexKiB = (Proc.statusKiB(pid: Proc.selfPID, "RssAnon") ?? 0) - anonBefore
            var cold: [Double] = []
            var body: [UInt8] = []
            for _ in 0..<(n >= 5000 ? 30 : 200) {
                let ms: Double
                (body, ms) = ThreadCPU.time { MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil) }
                cold.append(ms)
            }
            let cache = MetricsCache()
            _ = MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil, cache: cache)
            let warm = (0..<500).map { _ in
                ThreadCPU.time { MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil, cache: cache) }.1
            }
            let cacheKiB = (Proc.statusKiB(pid: Proc.selfPID, "RssAnon") ?? 0) - anonBefore - indexKiB
            let changed = afterChanges(&snapshot, cache: cache, build: build, count: 200)
            let viaIndex = await afterChangesThroughIndex(snapshot, build: build, count: 200)
            let c = Summary(cold)!, w = Summary(warm)!, a = Summary(changed)!, h = Summary(viaIndex)!
            out += "\(n)".padding(toLength: 9, withPad: " ", startingAt: 0)
                + (sequential ? "sequential   " : "random       ")
                + "\(Report.format(c.p50)) / \(Report.format(c.p99))".padding(toLength: 21, withPad: " ", startingAt: 0)
                + "\(Report.format(w.p50)) / \(Report.format(w.p99))".padding(toLength: 21, withPad: " ", startingAt: 0)
                + "\(Report.format(a.p50)) / \(Report.format(a.p99))".padding(toLength: 22, withPad: " ", startingAt: 0)
                + "\(Report.format(h.p50)) / \(Report.format(h.p99))".padding(toLength: 25, withPad: " ", startingAt: 0)
                + Report.bytes(body.count).padding(toLength: 11, withPad: " ", startingAt: 0)
                + String(format: "%.1f MiB", Double(indexKiB) / 1024).padding(toLength: 15, withPad: " ", startingAt: 0)
                + String(format: "%.1f MiB", Double(cacheKiB) / 1024) + "\n"
            gzipRows += gzipRow(n: n, sequential: sequential, snapshot: &snapshot, cache: cache, build: build)
            withExtendedLifetime(cache) {}
        } }
        out += "\ngzip (render + compress, CPU of this thread, p50 / p99 ms); ratio = plain ÷ gzip body\n"
        out += "devices  UUIDs        first (all fresh)    unchanged            after 1 change       ratio   gzip -6  of gzip -6\n"
        out += gzipRows
        out += "\nindex update, one upsertDevice (p50 / p99 ms)\n"
        out += "devices  snapshot shares storage (as DeviceIndex publishes)   state uniquely referenced\n"
        for n in sizes {
            let published = snapshot(devices: n, parents: parents)
            // One more inactive mdev defined on a parent that already holds a share of the index.
            var extra = snapshot(devices: 1, parents: [parents[0]]).state.devices.values.first!
            extra.definition.uuid = "bec4ffff-0000-4000-8000-000000000000"
            extra.definition.name = "mdev_bec4ffff_0000_4000_8000_000000000000_extra"
            extra.flags.active = false
            var shared: [Double] = [], unique: [Double] = []
            for _ in 0..<20 {
                // As DeviceIndex.mutate does while the previous snapshot is still published.
                var state = published.state
                shared.append(Mono.time { _ = state.upsertDevice(extra.definition, flags: extra.flags) }.1)
                unique.append(Mono.time { _ = state.upsertDevice(extra.definition, flags: extra.flags) }.1)
            }
            let a = Summary(shared)!, b = Summary(unique)!
            out += "\(n)".padding(toLength: 9, withPad: " ", startingAt: 0)
                + "\(Report.format(a.p50)) / \(Report.format(a.p99))".padding(toLength: 55, withPad: " ", startingAt: 0)
                + "\(Report.format(b.p50)) / \(Report.format(b.p99))\n"
        }
        out += "\nwarm render as the daemon does it (CPU p50 / p99 ms): its per-scrape families on top of the cache;\n"
        out += "a third of the devices are active and no domain references them, so the policy writes them all as orphaned\n"
        out += "devices  index only           + process stats      + policy families    all\n"
        for n in sizes {
            // Published by a DeviceIndex, as the daemon's are (the policy's orphan list is kept per generation).
            let index = DeviceIndex(uri: "bench:///")
            await index.replace(with: snapshot(devices: n, parents: parents).state)
            let snapshot = index.snapshot
            let cache = MetricsCache()
            let policy: [any MetricsContributor] = [PolicyExport(metrics: PolicyMetrics())]
            func warm(process: Bool, contributors: [any MetricsContributor]) -> Summary {
                _ = MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil, cache: cache)
                return Summary((0..<200).map { _ in
                    ThreadCPU.time {
                        MetricsRenderer.render(snapshot: snapshot, build: build, process: process ? ProcessStats.current() : nil,
                                               previousScrape: nil, contributors: contributors, cache: cache)
                    }.1
                })!
            }
            let rows = [warm(process: false, contributors: []), warm(process: true, contributors: []),
                        warm(process: false, contributors: policy), warm(process: true, contributors: policy)]
            out += "\(n)".padding(toLength: 9, withPad: " ", startingAt: 0)
                + rows.map { "\(Report.format($0.p50)) / \(Report.format($0.p99))".padding(toLength: 21, withPad: " ", startingAt: 0) }.joined()
                + "\n"
        }
        return out
    }

    /// Flips one device's active flag, at a different device each time, and times the cached render.
    static func afterChanges(_ snapshot: inout IndexSnapshot, cache: MetricsCache, build: BuildInfo, count: Int) -> [Double] {
        let keys = Array(snapshot.state.devices.keys)
        return (0..<count).map { i in
            flipOne(&snapshot, key: keys[(i * 7919) % keys.count])
            return ThreadCPU.time {
                MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil, cache: cache)
            }.1
        }
    }

    /// The same changes applied through a `DeviceIndex`, as the daemon makes them: its snapshots carry
    /// the change history, so the cache looks at the changed device only instead of scanning both maps.
    static func afterChangesThroughIndex(_ start: IndexSnapshot, build: BuildInfo, count: Int) async -> [Double] {
        let index = DeviceIndex(uri: "bench:///")
        await index.replace(with: start.state)
        let cache = MetricsCache()
        _ = MetricsRenderer.render(snapshot: index.snapshot, build: build, process: nil, previousScrape: nil, cache: cache)
        let keys = Array(start.state.devices.keys)
        var out: [Double] = []
        for i in 0..<count {
            await index.mutate { state in
                let device = state.devices[keys[(i * 7919) % keys.count]]!
                var flags = device.flags
                flags.active.toggle()
                return state.upsertDevice(device.definition, flags: flags)
            }
            let snapshot = index.snapshot
            out.append(ThreadCPU.time {
                MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil, cache: cache)
            }.1)
        }
        return out
    }

    static func flipOne(_ snapshot: inout IndexSnapshot, key: MdevKey) {
        let device = snapshot.state.devices[key]!
        var flags = device.flags
        flags.active.toggle()
        _ = snapshot.state.upsertDevice(device.definition, flags: flags)
    }

    /// gzip scrapes: a fresh cache (every fragment compressed), unchanged, and after one change; the
    /// ratio against `gzip -6` on the same body.
    static func gzipRow(n: Int, sequential: Bool, snapshot: inout IndexSnapshot, cache: MetricsCache, build: BuildInfo) -> String {
        func scrape(_ cache: MetricsCache) -> (plain: Int, gzip: [UInt8]) {
            let scrape = MetricsRenderer.renderScrape(snapshot: snapshot, build: build, process: nil, previousScrape: nil,
                                                      contributors: [], cache: cache)
            return (scrape.byteCount, scrape.gzipped())
        }
        var first: [Double] = []
        for _ in 0..<(n >= 5000 ? 5 : 20) { first.append(ThreadCPU.ms { _ = scrape(MetricsCache()) }) }
        _ = scrape(cache)
        let unchanged = (0..<200).map { _ in ThreadCPU.ms { _ = scrape(cache) } }
        let keys = Array(snapshot.state.devices.keys)
        let changed = (0..<100).map { i in
            flipOne(&snapshot, key: keys[(i * 104_729) % keys.count])
            return ThreadCPU.ms { _ = scrape(cache) }
        }
        let (plain, gzip) = scrape(cache)
        let body = MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil)
        let reference = (try? gzipSize(body)) ?? 0
        let ratio = Double(plain) / Double(gzip.count)
        let referenceRatio = Double(body.count) / Double(max(reference, 1))
        let f = Summary(first)!, u = Summary(unchanged)!, c = Summary(changed)!
        return "\(n)".padding(toLength: 9, withPad: " ", startingAt: 0)
            + (sequential ? "sequential   " : "random       ")
            + "\(Report.format(f.p50)) / \(Report.format(f.p99))".padding(toLength: 21, withPad: " ", startingAt: 0)
            + "\(Report.format(u.p50)) / \(Report.format(u.p99))".padding(toLength: 21, withPad: " ", startingAt: 0)
            + "\(Report.format(c.p50)) / \(Report.format(c.p99))".padding(toLength: 21, withPad: " ", startingAt: 0)
            + String(format: "%.2f×", ratio).padding(toLength: 8, withPad: " ", startingAt: 0)
            + String(format: "%.2f×", referenceRatio).padding(toLength: 9, withPad: " ", startingAt: 0)
            + String(format: "%.0f %%", ratio / referenceRatio * 100) + "\n"
    }
}
