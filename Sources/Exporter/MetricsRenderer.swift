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
    ///   - cache: Keeps the families rendered from the index between scrapes and re-renders only
    ///     what changed; the text is the same either way.
    /// - Returns: UTF-8 text in the Prometheus text format 0.0.4, families sorted by name.
    ///
    /// `mdev_index_last_sync_timestamp_seconds` is 0 until the first full sync, so the series always
    /// exists and a `time() - …` staleness alert fires for an exporter that never synced.
    public static func render(
        snapshot: IndexSnapshot, build: BuildInfo, process: ProcessStats?, previousScrape: ScrapeStats?,
        contributors: [any MetricsContributor] = [], cache: MetricsCache? = nil
    ) -> [UInt8] {
        renderScrape(snapshot: snapshot, build: build, process: process, previousScrape: previousScrape,
                     contributors: contributors, cache: cache).bytes
    }

    /// The same scrape as chunks, so the HTTP layer can gzip it from cached fragments.
    public static func renderScrape(
        snapshot: IndexSnapshot, build: BuildInfo, process: ProcessStats?, previousScrape: ScrapeStats?,
        contributors: [any MetricsContributor] = [], cache: MetricsCache? = nil
    ) -> Scrape {
        let status = snapshot.status
        // Without a cache, a fresh one renders everything: one path either way.
        let indexFamilies = (cache ?? MetricsCache()).families(snapshot)
        var w = MetricsWriter(capacity: 8192)

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

        w.family("mdev_libvirt_fetch_failed", type: .gauge,
                 help: "A node device or domain libvirt lists but fails to give (a sick device's sysfs read): 1 while it fails; its last known state stays in the other series.")
        for (object, _) in status.fetchFailures.sorted(by: { $0.key < $1.key }) {
            w.beginSample("mdev_libvirt_fetch_failed")
            w.label("kind", object.kind.rawValue)
            w.label("name", object.name)
            w.endSample(1)
        }

        w.family("mdev_libvirt_host_info", type: .gauge,
                 help: "The libvirt host watched: its URI and the host name its libvirtd reports (empty before the first connection); always 1.")
        w.beginSample("mdev_libvirt_host_info")
        w.label("uri", status.uri)
        w.label("hostname", status.host?.hostname ?? "")
        w.endSample(1)

        w.family("mdev_libvirt_feature_available", type: .gauge,
                 help: "Whether a feature that needs libvirtd on mdevmon's own host is available: 1, or 0 over a remote URI (the startup notice says what replaces it).")
        for feature in LocalOnlyFeature.allCases {
            w.beginSample("mdev_libvirt_feature_available")
            w.label("feature", feature.rawValue)
            w.endSample(feature.available(uri: status.uri) ? 1 : 0)
        }

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
        let perScrape = w.takeFamilies().map { (name: $0.name, chunks: [Chunk($0.text, reused: false)]) }
        return Scrape(families: indexFamilies + perScrape)
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
