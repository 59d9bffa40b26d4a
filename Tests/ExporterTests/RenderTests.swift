import HashTreeCollections
@testable import Exporter
import Foundation
import Monitor
import Testing

@Suite struct RenderTests {
    private func render(
        _ snapshot: IndexSnapshot, process: ProcessStats? = nil, previous: ScrapeStats? = nil,
        contributors: [any MetricsContributor] = [], cache: MetricsCache? = nil
    ) -> String {
        text(MetricsRenderer.render(snapshot: snapshot, build: Fixtures.build, process: process, previousScrape: previous,
                                    contributors: contributors, cache: cache))
    }

    @Test func exactTextForASmallSnapshot() {
        let expected = #"""
            # HELP mdev_build_info Version facts of the running mdevmon; always 1.
            # TYPE mdev_build_info gauge
            mdev_build_info{version="1.2.3",revision="abc123",swift_version="6.3"} 1
            # HELP mdev_device_active Whether the mdev is active (created) now: 1 or 0.
            # TYPE mdev_device_active gauge
            mdev_device_active{uuid="11111111-1111-4111-8111-111111111111",parent="pci_0000_3b_00_0"} 1
            mdev_device_active{uuid="22222222-2222-4222-8222-222222222222",parent="pci_0000_3b_00_0"} 0
            # HELP mdev_device_autostart Whether libvirt starts the mdev at boot: 1 or 0.
            # TYPE mdev_device_autostart gauge
            mdev_device_autostart{uuid="11111111-1111-4111-8111-111111111111",parent="pci_0000_3b_00_0"} 1
            mdev_device_autostart{uuid="22222222-2222-4222-8222-222222222222",parent="pci_0000_3b_00_0"} 0
            # HELP mdev_device_definition_drift For each active persistent mdev, one-hot: in_sync (it runs with its definition), drifted (its next start applies another mdev type) or unknown (libvirt cannot tell: before 10.1, or attrs only a vendor callout reports).
            # TYPE mdev_device_definition_drift gauge
            mdev_device_definition_drift{uuid="11111111-1111-4111-8111-111111111111",parent="pci_0000_3b_00_0",state="in_sync"} 0
            mdev_device_definition_drift{uuid="11111111-1111-4111-8111-111111111111",parent="pci_0000_3b_00_0",state="drifted"} 0
            mdev_device_definition_drift{uuid="11111111-1111-4111-8111-111111111111",parent="pci_0000_3b_00_0",state="unknown"} 1
            # HELP mdev_device_domain_references Number of domains whose persistent XML references the mdev's UUID.
            # TYPE mdev_device_domain_references gauge
            mdev_device_domain_references{uuid="11111111-1111-4111-8111-111111111111",parent="pci_0000_3b_00_0"} 1
            mdev_device_domain_references{uuid="22222222-2222-4222-8222-222222222222",parent="pci_0000_3b_00_0"} 0
            # HELP mdev_device_in_use One series per running domain whose live XML holds the mdev (configured or hot-plugged); always 1.
            # TYPE mdev_device_in_use gauge
            mdev_device_in_use{uuid="11111111-1111-4111-8111-111111111111",parent="pci_0000_3b_00_0",domain="vm \"q\" \\ <b>\nx"} 1
            # HELP mdev_device_info Metadata of each mdev libvirt knows (active or defined); always 1.
            # TYPE mdev_device_info gauge
            mdev_device_info{uuid="11111111-1111-4111-8111-111111111111",parent="pci_0000_3b_00_0",mdev_type="nvidia-558",name="mdev_11111111_1111_4111_8111_111111111111_0000_3b_00_0",iommu_group="12"} 1
            mdev_device_info{uuid="22222222-2222-4222-8222-222222222222",parent="pci_0000_3b_00_0",mdev_type="nvidia-558",name="mdev_22222222_2222_4222_8222_222222222222_0000_3b_00_0",iommu_group=""} 1
            # HELP mdev_device_persistent Whether the mdev is defined (persistent) in libvirt: 1 or 0.
            # TYPE mdev_device_persistent gauge
            mdev_device_persistent{uuid="11111111-1111-4111-8111-111111111111",parent="pci_0000_3b_00_0"} 1
            mdev_device_persistent{uuid="22222222-2222-4222-8222-222222222222",parent="pci_0000_3b_00_0"} 1
            # HELP mdev_devices Number of mdevs by parent, type and state (active or inactive).
            # TYPE mdev_devices gauge
            mdev_devices{parent="pci_0000_3b_00_0",mdev_type="nvidia-558",state="active"} 1
            mdev_devices{parent="pci_0000_3b_00_0",mdev_type="nvidia-558",state="inactive"} 1
            mdev_devices{parent="pci_0000_3b_00_0",mdev_type="nvidia-559",state="active"} 0
            mdev_devices{parent="pci_0000_3b_00_0",mdev_type="nvidia-559",state="inactive"} 0
            # HELP mdev_domain_device_info One series per mdev UUID a domain's persistent XML references; always 1.
            # TYPE mdev_domain_device_info gauge
            mdev_domain_device_info{domain="vm \"q\" \\ <b>\nx",uuid="11111111-1111-4111-8111-111111111111"} 1
            # HELP mdev_events_total libvirt events received since mdevmon started, by source and event.
            # TYPE mdev_events_total counter
            mdev_events_total{source="domain",event="defined"} 1
            mdev_events_total{source="nodedev",event="created"} 3
            # HELP mdev_index_last_sync_timestamp_seconds Unix time of the last completed full sync with libvirt; 0 before the first.
            # TYPE mdev_index_last_sync_timestamp_seconds gauge
            mdev_index_last_sync_timestamp_seconds 1700000000.5
            # HELP mdev_libvirt_feature_available Whether a feature that needs libvirtd on mdevmon's own host is available: 1, or 0 over a remote URI (the startup notice says what replaces it).
            # TYPE mdev_libvirt_feature_available gauge
            mdev_libvirt_feature_available{feature="mdevctl_files"} 1
            mdev_libvirt_feature_available{feature="domain_config_watch"} 1
            mdev_libvirt_feature_available{feature="host_file_checks"} 1
            # HELP mdev_libvirt_fetch_failed A node device or domain libvirt lists but fails to give (a sick device's sysfs read): 1 while it fails; its last known state stays in the other series.
            # TYPE mdev_libvirt_fetch_failed gauge
            # HELP mdev_libvirt_host_info The libvirt host watched: its URI and the host name its libvirtd reports (empty before the first connection); always 1.
            # TYPE mdev_libvirt_host_info gauge
            mdev_libvirt_host_info{uri="qemu:///system",hostname="kvm01.example.com"} 1
            # HELP mdev_libvirt_reconnects_total Times the libvirt connection was re-established.
            # TYPE mdev_libvirt_reconnects_total counter
            mdev_libvirt_reconnects_total 2
            # HELP mdev_libvirt_up Whether mdevmon is connected to libvirt and the index is synced: 1 or 0.
            # TYPE mdev_libvirt_up gauge
            mdev_libvirt_up 1
            # HELP mdev_parent_available_instances How many more mdevs of the type the parent can create now.
            # TYPE mdev_parent_available_instances gauge
            mdev_parent_available_instances{parent="pci_0000_3b_00_0",mdev_type="nvidia-558"} 8
            mdev_parent_available_instances{parent="pci_0000_3b_00_0",mdev_type="nvidia-559"} 0
            # HELP mdev_parent_type_info Each mdev type a parent device offers; always 1.
            # TYPE mdev_parent_type_info gauge
            mdev_parent_type_info{parent="pci_0000_3b_00_0",mdev_type="nvidia-558",name="GRID A100-4C",device_api="vfio-pci"} 1
            mdev_parent_type_info{parent="pci_0000_3b_00_0",mdev_type="nvidia-559",name="",device_api="vfio-pci"} 1

            """#
        let actual = render(Fixtures.small())
        #expect(actual == expected)
        if actual != expected {
            for (a, e) in zip(actual.split(separator: "\n"), expected.split(separator: "\n")) where a != e {
                Issue.record("first difference:\n  actual:   \(a)\n  expected: \(e)")
                break
            }
        }
    }

    @Test func aRemoteURINamesItsHostAndWhatItCannotDo() {
        var snapshot = Fixtures.small()
        snapshot.status.uri = "qemu+tls://kvmz01.example.com/system"
        let out = render(snapshot)
        #expect(out.contains("\nmdev_libvirt_host_info{uri=\"qemu+tls://kvmz01.example.com/system\",hostname=\"kvm01.example.com\"} 1\n"))
        for feature in ["mdevctl_files", "domain_config_watch", "host_file_checks"] {
            #expect(out.contains("\nmdev_libvirt_feature_available{feature=\"\(feature)\"} 0\n"), "\(feature)")
        }
    }

    @Test func beforeTheFirstSync() {
        let out = render(Fixtures.small(connected: false, synced: false))
        #expect(out.contains("\nmdev_index_last_sync_timestamp_seconds 0\n"))
        #expect(out.contains("\nmdev_libvirt_up 0\n"))
    }

    @Test func emptyIndexStillHasEveryFamily() {
        let out = render(IndexSnapshot(state: IndexState(), status: MonitorStatus(uri: "qemu:///system")))
        for family in ["mdev_device_active", "mdev_device_info", "mdev_devices", "mdev_domain_device_info",
                       "mdev_events_total", "mdev_parent_type_info", "mdev_libvirt_up"] {
            #expect(out.contains("# TYPE \(family) "), "\(family)")
        }
        #expect(!out.contains("{uuid="))
    }

    @Test func processAndScrapeFamilies() {
        let process = ProcessStats(cpuSeconds: 1.25, residentMemoryBytes: 4096, virtualMemoryBytes: 8192, openFDs: 7,
                                   maxFDs: 1024, startTimeSeconds: 1_700_000_000)
        let out = render(Fixtures.small(), process: process, previous: ScrapeStats(renderSeconds: 0.0025, bytes: 4096))
        let tail = out[out.range(of: "# HELP mdev_scrape_bytes")!.lowerBound...]
        #expect(tail == """
            # HELP mdev_scrape_bytes Uncompressed size of the previous scrape's response body.
            # TYPE mdev_scrape_bytes gauge
            mdev_scrape_bytes 4096
            # HELP mdev_scrape_render_seconds Time the previous scrape took to render.
            # TYPE mdev_scrape_render_seconds gauge
            mdev_scrape_render_seconds 0.0025
            # HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
            # TYPE process_cpu_seconds_total counter
            process_cpu_seconds_total 1.25
            # HELP process_max_fds Maximum number of open file descriptors.
            # TYPE process_max_fds gauge
            process_max_fds 1024
            # HELP process_open_fds Number of open file descriptors.
            # TYPE process_open_fds gauge
            process_open_fds 7
            # HELP process_resident_memory_bytes Resident memory size in bytes.
            # TYPE process_resident_memory_bytes gauge
            process_resident_memory_bytes 4096
            # HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
            # TYPE process_start_time_seconds gauge
            process_start_time_seconds 1700000000
            # HELP process_virtual_memory_bytes Virtual memory size in bytes.
            # TYPE process_virtual_memory_bytes gauge
            process_virtual_memory_bytes 8192

            """)
    }

    @Test func aRemovedDeviceLeavesNoSeries() {
        let cache = MetricsCache()
        var snapshot = Fixtures.small()
        let gone = "22222222-2222-4222-8222-222222222222"
        #expect(render(snapshot, cache: cache).contains(gone))
        let device = snapshot.state.devices.values.first { $0.uuid == gone }!
        _ = snapshot.state.removeDevice(named: device.name)
        for out in [render(snapshot), render(snapshot, cache: cache)] {
            #expect(!out.contains(gone))
            #expect(out.contains("mdev_devices{parent=\"pci_0000_3b_00_0\",mdev_type=\"nvidia-558\",state=\"inactive\"} 0"))
        }
    }

    @Test func cachedRenderingIsIdentical() {
        let cache = MetricsCache()
        var snapshot = Fixtures.large(devices: 300)
        #expect(render(snapshot, cache: cache) == render(snapshot))
        #expect(render(snapshot, cache: cache) == render(snapshot))  // a hit
        // A change in flags, in domains and in parents each shows up.
        let first = snapshot.state.devices.values.min { $0.key < $1.key }!
        _ = snapshot.state.upsertDevice(first.definition, flags: DeviceFlags(active: !first.active, persistent: true,
                                                                             autostart: true))
        _ = snapshot.state.removeDomain(named: "vm-0")
        _ = snapshot.state.upsertParent(ParentDevice(name: "pci_0000_9b_00_0", kind: "pci", types: []))
        #expect(render(snapshot, cache: cache) == render(snapshot))
        #expect(!render(snapshot, cache: cache).contains("domain=\"vm-0\""))
    }

    /// Snapshots of a real `DeviceIndex` carry its change history: the cache follows it instead of
    /// comparing whole maps, and still renders exactly what an uncached render does, also when the
    /// cache fell further behind than the history reaches.
    @Test func cachedRenderingFollowsTheIndexHistory() async {
        let index = DeviceIndex(uri: "test:///")
        let large = Fixtures.large(devices: 300).state
        await index.replace(with: large)
        let cache = MetricsCache()
        #expect(render(index.snapshot, cache: cache) == render(index.snapshot))
        let devices = large.devices.values.sorted { $0.key < $1.key }
        for (round, device) in devices.prefix(40).enumerated() {
            await index.mutate { state in
                var changes = state.upsertDevice(device.definition, flags: DeviceFlags(active: !device.active, persistent: true, autostart: true))
                if round % 3 == 0 { changes += state.removeDomain(named: "vm-\(round * 2)") }
                if round % 7 == 0 { changes += state.removeDevice(named: devices[299 - round].name) }
                if round % 5 == 0 {
                    changes += state.upsertDomain(DomainInfo(name: "live-\(round)", uuid: "", active: true, persistent: false,
                                                             autostart: false, mdevUUIDs: [], liveMdevUUIDs: [device.uuid]))
                }
                return changes
            }
            // Every round, every other round, or after more mutations than the history holds.
            if round % 2 == 0 || round == 39 {
                #expect(render(index.snapshot, cache: cache) == render(index.snapshot), "round \(round)")
            }
        }
        #expect(render(index.snapshot, cache: cache).contains("mdev_device_in_use{"))
        #expect(cache.fullComparisons == 1, "only the first render compared whole maps")
        let behind = MetricsCache()
        _ = render(index.snapshot, cache: behind)
        for device in devices.suffix(20) {
            await index.mutate { $0.upsertDevice(device.definition, flags: DeviceFlags(active: true, persistent: false, autostart: false)) }
        }
        for n in 0..<1030 {
            await index.mutate { $0.upsertParent(ParentDevice(name: "p-\(n)", kind: "pci", types: [])) }
        }
        #expect(index.snapshot.history?.touched(after: 0, through: index.snapshot.generation) == nil)
        #expect(render(index.snapshot, cache: behind) == render(index.snapshot))
        #expect(behind.fullComparisons == 2, "the history no longer reached back: compared whole maps")
    }

    @Test func orderDoesNotDependOnInsertionOrder() {
        let snapshot = Fixtures.large(devices: 200)
        let state = snapshot.state
        let reversed = IndexState(devices: state.devices.values.sorted { $0.key > $1.key },
                                  parents: Array(state.parents.values.reversed()),
                                  domains: Array(state.domains.values.reversed()))
        #expect(render(IndexSnapshot(state: reversed, status: snapshot.status)) == render(snapshot))
    }

    @Test func devicesAreSortedByUUIDThenParent() {
        var state = IndexState()
        for (uuid, parent) in [("b", "pci_p2"), ("a", "pci_p9"), ("b", "pci_p1"), ("ab", "pci_p0")] {
            _ = state.upsertDevice(Sample.definition(uuid, parent: parent, type: "t"),
                                   flags: DeviceFlags(active: true, persistent: true, autostart: true))
        }
        let lines = render(IndexSnapshot(state: state, status: MonitorStatus(uri: "x"))).split(separator: "\n")
            .filter { $0.hasPrefix("mdev_device_active{") }
        #expect(lines == [
            #"mdev_device_active{uuid="a",parent="pci_p9"} 1"#, #"mdev_device_active{uuid="ab",parent="pci_p0"} 1"#,
            #"mdev_device_active{uuid="b",parent="pci_p1"} 1"#, #"mdev_device_active{uuid="b",parent="pci_p2"} 1"#,
        ])
    }

    @Test func contributorsAreMergedInNameOrder() {
        let out = render(Fixtures.smallWithOrphan(), contributors: [Fixtures.policy])
        let families = out.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(families == families.sorted())
        #expect(families.contains("mdev_device_orphaned") && families.contains("mdev_policy_actions_total"))
        // The contributed family sits whole between two built-in ones.
        #expect(out.contains(#"""
            # HELP mdev_device_orphaned 1 for an active mdev that no defined domain references and no running domain uses.
            # TYPE mdev_device_orphaned gauge
            mdev_device_orphaned{uuid="33333333-3333-4333-8333-333333333333",parent="pci_0000_3b_00_0"} 1
            # HELP mdev_device_persistent
            """#))
        #expect(out.contains(#"mdev_domain_reference_problem{domain="vm \"q\" \\ <b>\nx",uuid="22222222-2222-4222-8222-222222222222",reason="inactive"} 1"#))
    }

    @Test func largeSnapshotHasOneLinePerDeviceAndFamily() {
        let out = render(Fixtures.large(devices: 10_000))
        for family in ["mdev_device_active", "mdev_device_autostart", "mdev_device_domain_references",
                       "mdev_device_info", "mdev_device_persistent"] {
            #expect(out.components(separatedBy: "\n\(family){").count - 1 == 10_000, "\(family)")
        }
    }

    @Test func passesPromtool() async throws {
        let promtool = "/usr/bin/promtool"
        guard FileManager.default.isExecutableFile(atPath: promtool) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("promtool is missing; install the Debian prometheus package")
            }
            return
        }
        var snapshot = Fixtures.large(devices: 1000)
        snapshot.status.events[EventCounterKey(source: "domain", event: "defined")] = 4
        let process = ProcessStats.current()
        #expect(process != nil)
        let body = MetricsRenderer.render(snapshot: snapshot, build: Fixtures.build, process: process,
                                          previousScrape: ScrapeStats(renderSeconds: 0.001, bytes: 10),
                                          contributors: [Fixtures.policy])
        for input in [body, MetricsRenderer.render(snapshot: Fixtures.small(), build: Fixtures.build, process: nil,
                                                   previousScrape: nil)] {
            let result = try await run(promtool, ["check", "metrics"], stdin: Data(input))
            #expect(result.status == 0, "promtool: \(String(decoding: result.out, as: UTF8.self)) \(result.err)")
        }
    }
}

@Suite struct MetricsWriterTests {
    @Test func escapesLabelValuesAndHelp() {
        var w = MetricsWriter()
        w.family("x_total", type: .counter, help: "Back\\slash and\nnewline, \"quotes\" kept.")
        w.sample("x_total", labels: ["a": "q\"b\\n\nz", "b": "plain", "c": "ünï"], value: 3)
        #expect(text(w.finish()) == #"""
            # HELP x_total Back\\slash and\nnewline, "quotes" kept.
            # TYPE x_total counter
            x_total{a="q\"b\\n\nz",b="plain",c="ünï"} 3

            """#)
    }

    @Test func formatsValues() {
        var w = MetricsWriter()
        w.family("v", type: .gauge, help: "h")
        for value in [0.5, 1e-05, 2.0, -3.0, .infinity, -.infinity, .nan, 1e20, 0] {
            w.sample("v", value: value)
        }
        w.sample("v", value: -42)
        w.sample("v", value: Int.max)
        let lines = text(w.finish()).split(separator: "\n").dropFirst(2)
        #expect(Array(lines) == ["v 0.5", "v 1e-05", "v 2", "v -3", "v +Inf", "v -Inf", "v NaN", "v 1e+20", "v 0",
                                 "v -42", "v 9223372036854775807"])
    }

    @Test func sortsFamiliesByName() {
        var w = MetricsWriter()
        for name in ["c", "a", "b"] {
            w.family(name, type: .untyped, help: name)
            w.sample(name, value: 1)
        }
        #expect(text(w.finish()) == "# HELP a a\n# TYPE a untyped\na 1\n# HELP b b\n# TYPE b untyped\nb 1\n"
            + "# HELP c c\n# TYPE c untyped\nc 1\n")
    }

    @Test func growsPastItsInitialCapacity() {
        var w = MetricsWriter(capacity: 1)
        w.family("g", type: .gauge, help: String(repeating: "h", count: 10_000))
        for i in 0..<1000 { w.sample("g", labels: ["i": String(i)], value: i) }
        let out = text(w.finish())
        #expect(out.hasSuffix("g{i=\"999\"} 999\n"))
        #expect(out.split(separator: "\n").count == 1002)
    }

    @Test func aFamilyNameTwiceIsAProgrammerError() async {
        await #expect(processExitsWith: .failure) {
            var w = MetricsWriter()
            w.family("dup", type: .gauge, help: "h")
            w.family("dup", type: .gauge, help: "h")
        }
    }
}

@Suite struct RowBlocksTests {
    private static let families: [RowBlocks<Int, String>.Family] = [
        .init("a_rows", type: .gauge, help: "a") { row, w in w.sample("a_rows", labels: ["v": row], value: 1) },
        .init("b_rows", type: .gauge, help: "b") { row, w in
            if row.hasSuffix("0") { w.sample("b_rows", labels: ["v": row], value: 2) }
        },
    ]

    /// The text `rows` must render to, written directly.
    private func expected(_ rows: [Int: String]) -> [UInt8] {
        var w = MetricsWriter()
        w.family("a_rows", type: .gauge, help: "a")
        for key in rows.keys.sorted() { w.sample("a_rows", labels: ["v": rows[key]!], value: 1) }
        w.family("b_rows", type: .gauge, help: "b")
        for key in rows.keys.sorted() where rows[key]!.hasSuffix("0") {
            w.sample("b_rows", labels: ["v": rows[key]!], value: 2)
        }
        return w.finish()
    }

    private func rendered(_ blocks: inout RowBlocks<Int, String>) -> [UInt8] {
        blocks.renderedFamilies().flatMap { $0.chunks.flatMap { Array($0.buffer.readableBytesView) } }
    }

    /// Inserts, changes and removals in random order, through block splits and emptied blocks.
    @Test func matchesADirectRenderingThroughEveryKindOfChange() {
        var generator = SystemRandomNumberGenerator()
        var blocks = RowBlocks(families: Self.families)
        var reference: [Int: String] = [:]
        #expect(rendered(&blocks) == expected(reference))
        for round in 0..<6 {
            for _ in 0..<700 {
                let key = Int.random(in: 0..<3000, using: &generator)
                let row: String? = Int.random(in: 0..<4, using: &generator) == 0 && round > 2
                    ? nil : "r\(key)-\(Int.random(in: 0..<3, using: &generator))0"
                blocks.set(key, row)
                reference[key] = row
            }
            #expect(rendered(&blocks) == expected(reference), "round \(round)")
            #expect(blocks.count == reference.count)
        }
        for key in reference.keys { blocks.set(key, nil) }
        #expect(rendered(&blocks) == expected([:]))
        #expect(blocks.count == 0)
    }

    /// A change re-renders its own block; other blocks keep their chunks (and gzip fragments).
    @Test func aChangeReplacesOneBlocksChunks() {
        var blocks = RowBlocks(families: Self.families)
        for key in 0..<2000 { blocks.set(key, "r\(key)") }
        let before = blocks.renderedFamilies()
        blocks.set(1234, "changed")
        let after = blocks.renderedFamilies()
        for (old, new) in zip(before, after) {
            let replaced = zip(old.chunks, new.chunks).filter { $0 !== $1 }.count
            #expect(old.chunks.count == new.chunks.count)
            // Family a shows the change; family b had no line for the row before or after.
            #expect(replaced == (old.name == "a_rows" ? 1 : 0), "\(old.name)")
        }
    }
}

@Suite struct MetricsCacheChangesTests {
    /// Updates in place, inserts (with regrowth) and removals: every difference found, nothing else.
    @Test func findsExactlyTheDifferences() {
        var generator = SystemRandomNumberGenerator()
        var current = TreeDictionary(uniqueKeysWithValues: (0..<1000).map { ($0, $0) })
        for round in 0..<20 {
            var next = current
            for _ in 0..<(round % 4 == 0 ? 600 : 5) {
                let key = Int.random(in: 0..<1500, using: &generator)
                next[key] = Int.random(in: 0..<3, using: &generator) == 0 ? nil : Int.random(in: 0..<5, using: &generator)
            }
            let found = MetricsCache.changes(from: current, to: next)
            var expected: [Int: String] = [:]
            for key in Set(current.keys).union(next.keys) where current[key] != next[key] {
                expected[key] = "\(String(describing: current[key])) \(String(describing: next[key]))"
            }
            let got = Dictionary(uniqueKeysWithValues: found.map { ($0.0, "\(String(describing: $0.1)) \(String(describing: $0.2))") })
            #expect(found.count == got.count, "a key reported twice")
            #expect(got == expected, "round \(round)")
            current = next
        }
        #expect(MetricsCache.changes(from: current, to: current).isEmpty)
    }
}
