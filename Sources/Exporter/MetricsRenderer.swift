public import Monitor

/// How long the previous scrape took to render and how big it was, for `mdev_scrape_*`.
public struct ScrapeStats: Hashable, Sendable {
    public var renderSeconds: Double
    /// Uncompressed body size.
    public var bytes: Int

    public init(renderSeconds: Double, bytes: Int) {
        self.renderSeconds = renderSeconds
        self.bytes = bytes
    }
}

/// Renders the exposition text for one scrape. A pure function of its inputs: it reads only the
/// snapshot (never libvirt, never the index actor), so a device that leaves the snapshot leaves no
/// stale series.
public enum MetricsRenderer {
    /// - Parameters:
    ///   - snapshot: The index as published by `DeviceIndex.snapshot`.
    ///   - build: Facts for `mdev_build_info`.
    ///   - process: `process_*` facts; `nil` omits those families.
    ///   - previousScrape: The previous scrape's cost; `nil` omits `mdev_scrape_*`.
    ///   - contributors: Other modules' families, merged in name order.
    ///   - cache: Reuses device and domain families while the snapshot's data is unchanged; the text
    ///     is the same either way.
    /// - Returns: UTF-8 text in the Prometheus text format 0.0.4, families sorted by name.
    ///
    /// `mdev_index_last_sync_timestamp_seconds` is 0 until the first full sync, so the series always
    /// exists and a `time() - …` staleness alert fires for an exporter that never synced.
    public static func render(
        snapshot: IndexSnapshot, build: BuildInfo, process: ProcessStats?, previousScrape: ScrapeStats?,
        contributors: [any MetricsContributor] = [], cache: MetricsCache? = nil
    ) -> [UInt8] {
        write(snapshot: snapshot, build: build, process: process, previousScrape: previousScrape,
              contributors: contributors, cache: cache).finish()
    }

    /// The same scrape as families, so the HTTP layer can gzip it from cached fragments.
    static func renderScrape(
        snapshot: IndexSnapshot, build: BuildInfo, process: ProcessStats?, previousScrape: ScrapeStats?,
        contributors: [any MetricsContributor], cache: MetricsCache?
    ) -> RenderedScrape {
        RenderedScrape(families: write(
            snapshot: snapshot, build: build, process: process, previousScrape: previousScrape,
            contributors: contributors, cache: cache
        ).takeFamilies(sorted: true))
    }

    private static func write(
        snapshot: IndexSnapshot, build: BuildInfo, process: ProcessStats?, previousScrape: ScrapeStats?,
        contributors: [any MetricsContributor], cache: MetricsCache?
    ) -> MetricsWriter {
        let state = snapshot.state
        let status = snapshot.status
        var w = MetricsWriter(capacity: 8192)

        let devices = cache?.deviceFamilies(state, render: deviceFamilies) ?? deviceFamilies(state)
        for family in devices { w.append(family) }
        let domains = cache?.domainFamilies(state, render: domainFamilies) ?? domainFamilies(state)
        for family in domains { w.append(family) }

        w.family("mdev_build_info", type: .gauge,
                 help: "Version facts of the running mdevmon; always 1.")
        w.beginSample("mdev_build_info")
        w.label("version", build.version)
        w.label("revision", build.revision)
        w.label("swift_version", build.swiftVersion)
        w.endSample(1)

        w.family("mdev_events_total", type: .counter,
                 help: "libvirt events received since mdevmon started, by source and event.")
        for (key, count) in status.events.sorted(by: { $0.key < $1.key }) {
            w.beginSample("mdev_events_total")
            w.label("source", key.source)
            w.label("event", key.event)
            w.endSample(count)
        }

        w.family("mdev_index_last_sync_timestamp_seconds", type: .gauge,
                 help: "Unix time of the last completed full sync with libvirt; 0 before the first.")
        w.sample("mdev_index_last_sync_timestamp_seconds", value: status.lastSyncTime?.timeIntervalSince1970 ?? 0)

        w.family("mdev_libvirt_reconnects_total", type: .counter,
                 help: "Times the libvirt connection was re-established.")
        w.sample("mdev_libvirt_reconnects_total", value: status.reconnects)

        w.family("mdev_libvirt_up", type: .gauge,
                 help: "Whether mdevmon is connected to libvirt and the index is synced: 1 or 0.")
        w.sample("mdev_libvirt_up", value: status.connected && status.synced ? 1 : 0)

        if let previousScrape {
            w.family("mdev_scrape_bytes", type: .gauge,
                     help: "Uncompressed size of the previous scrape's response body.")
            w.sample("mdev_scrape_bytes", value: previousScrape.bytes)
            w.family("mdev_scrape_render_seconds", type: .gauge,
                     help: "Time the previous scrape took to render.")
            w.sample("mdev_scrape_render_seconds", value: previousScrape.renderSeconds)
        }

        if let process { renderProcess(process, into: &w) }

        for contributor in contributors {
            contributor.contribute(to: &w, snapshot: snapshot)
        }
        return w
    }

    /// Per-device families, `mdev_devices` and the parent families: everything derived from the
    /// snapshot's devices and parents.
    private static func deviceFamilies(_ state: IndexState) -> [RenderedFamily] {
        let table = DeviceTable(state)
        let parents = state.parents.values.sorted { $0.name < $1.name }
        var typeCount = 0
        for parent in parents { typeCount += parent.types.count }
        var w = MetricsWriter(capacity: 4096 + typeCount * 400 + table.countsByParentType.count * 300)

        var counts = table.countsByParentType
        for parent in parents {
            for type in parent.types {
                let key = ParentType(parent: parent.name, type: type.id)
                if counts[key] == nil { counts[key] = (0, 0) }
            }
        }
        // Both states for every (parent, type) offered or in use, so dashboards see zeros, not gaps.
        w.family("mdev_devices", type: .gauge,
                 help: "Number of mdevs by parent, type and state (active or inactive).")
        for (key, count) in counts.sorted(by: { $0.key < $1.key }) {
            for (state, value) in [("active", count.active), ("inactive", count.inactive)] {
                w.beginSample("mdev_devices")
                w.label("parent", key.parent)
                w.label("mdev_type", key.type)
                w.label("state", state)
                w.endSample(value)
            }
        }

        w.family("mdev_parent_available_instances", type: .gauge,
                 help: "How many more mdevs of the type the parent can create now.")
        for parent in parents {
            for type in parent.types {
                w.beginSample("mdev_parent_available_instances")
                w.label("parent", parent.name)
                w.label("mdev_type", type.id)
                w.endSample(type.availableInstances)
            }
        }

        w.family("mdev_parent_type_info", type: .gauge,
                 help: "Each mdev type a parent device offers; always 1.")
        for parent in parents {
            for type in parent.types {
                w.beginSample("mdev_parent_type_info")
                w.label("parent", parent.name)
                w.label("mdev_type", type.id)
                w.label("name", type.name ?? "")
                w.label("device_api", type.deviceAPI)
                w.endSample(1)
            }
        }
        return DeviceFamilies.render(table) + w.takeFamilies()
    }

    /// `mdev_domain_device_info`: one series per (domain, referenced mdev UUID).
    private static func domainFamilies(_ state: IndexState) -> [RenderedFamily] {
        var references = 0
        for domain in state.domains.values { references += domain.mdevUUIDs.count }
        var w = MetricsWriter(capacity: 512 + references * 100)
        w.family("mdev_domain_device_info", type: .gauge,
                 help: "One series per mdev UUID a domain's persistent XML references; always 1.")
        // Domain names are the dictionary's keys: sort those rather than copies of whole domains.
        for name in state.domains.keys.sorted() {
            let uuids = state.domains[name]!.mdevUUIDs
            for uuid in uuids.count > 1 ? uuids.sorted() : uuids {
                w.beginSample("mdev_domain_device_info")
                w.label("domain", name)
                w.label("uuid", uuid)
                w.endSample(1)
            }
        }
        return w.takeFamilies()
    }

    private static func renderProcess(_ process: ProcessStats, into w: inout MetricsWriter) {
        w.family("process_cpu_seconds_total", type: .counter, help: "Total user and system CPU time spent in seconds.")
        w.sample("process_cpu_seconds_total", value: process.cpuSeconds)
        if let maxFDs = process.maxFDs {
            w.family("process_max_fds", type: .gauge, help: "Maximum number of open file descriptors.")
            w.sample("process_max_fds", value: maxFDs)
        }
        w.family("process_open_fds", type: .gauge, help: "Number of open file descriptors.")
        w.sample("process_open_fds", value: process.openFDs)
        w.family("process_resident_memory_bytes", type: .gauge, help: "Resident memory size in bytes.")
        w.sample("process_resident_memory_bytes", value: process.residentMemoryBytes)
        w.family("process_start_time_seconds", type: .gauge,
                 help: "Start time of the process since unix epoch in seconds.")
        w.sample("process_start_time_seconds", value: process.startTimeSeconds)
        w.family("process_virtual_memory_bytes", type: .gauge, help: "Virtual memory size in bytes.")
        w.sample("process_virtual_memory_bytes", value: process.virtualMemoryBytes)
    }
}
