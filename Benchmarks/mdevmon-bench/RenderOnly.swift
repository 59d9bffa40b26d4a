import Exporter
import Monitor

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

    static func run(sizes: [Int], parents: [String], sequential styles: [Bool]) -> String {
        let build = BuildInfo(version: "bench")
        var out = "render only (synthetic index, no libvirt), p50 / p99 ms\n"
        out += "devices  UUIDs        cold (no cache)        warm (cache hit)      body       index+ (anon)  cache+ (anon)\n"
        for n in sizes { for sequential in styles {
            let anonBefore = Proc.statusKiB(pid: Proc.selfPID, "RssAnon") ?? 0
            let snapshot = snapshot(devices: n, parents: parents, sequential: sequential)
            let indexKiB = (Proc.statusKiB(pid: Proc.selfPID, "RssAnon") ?? 0) - anonBefore
            var cold: [Double] = [], warm: [Double] = []
            var bytes = 0
            for _ in 0..<(n >= 5000 ? 50 : 200) {
                let (body, ms) = Mono.time { MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil) }
                bytes = body.count
                cold.append(ms)
            }
            let cache = MetricsCache()
            _ = MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil, cache: cache)
            for _ in 0..<500 {
                warm.append(Mono.time {
                    MetricsRenderer.render(snapshot: snapshot, build: build, process: nil, previousScrape: nil, cache: cache)
                }.1)
            }
            let cacheKiB = (Proc.statusKiB(pid: Proc.selfPID, "RssAnon") ?? 0) - anonBefore - indexKiB
            withExtendedLifetime(cache) {}
            let c = Summary(cold)!, w = Summary(warm)!
            out += "\(n)".padding(toLength: 9, withPad: " ", startingAt: 0)
                + (sequential ? "sequential   " : "random       ")
                + "\(Report.format(c.p50)) / \(Report.format(c.p99))".padding(toLength: 23, withPad: " ", startingAt: 0)
                + "\(Report.format(w.p50)) / \(Report.format(w.p99))".padding(toLength: 22, withPad: " ", startingAt: 0)
                + Report.bytes(bytes).padding(toLength: 11, withPad: " ", startingAt: 0)
                + String(format: "%.1f MiB", Double(indexKiB) / 1024).padding(toLength: 15, withPad: " ", startingAt: 0)
                + String(format: "%.1f MiB", Double(cacheKiB) / 1024) + "\n"
        } }
        out += "\nindex update, one upsertDevice (p50 / p99 ms)\n"
        out += "devices  snapshot shares storage (as DeviceIndex publishes)   state uniquely referenced\n"
        for n in sizes {
            let published = snapshot(devices: n, parents: parents)
            let extra = snapshot(devices: 1, parents: ["0000:ff:00.0"]).state.devices.values.first!
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
        return out
    }
}
