import Foundation
import Monitor
import NIOCore
import Synchronization

/// What each endpoint serves, independent of HTTP plumbing. Everything reads one snapshot taken
/// from the provider; nothing here calls libvirt or awaits the index.
final class Endpoints: Sendable {
    let configuration: ExporterConfiguration
    let snapshot: @Sendable () -> IndexSnapshot
    private let lastScrape = Mutex(ScrapeStats(renderSeconds: 0, bytes: 0))
    private let cache = MetricsCache()
    /// Bounds responses of the two pages below: their renders, gzips and sending.
    let pageGate: AdmissionGate
    let landingCache = PageCache<LandingKey>()
    let devicesCache = PageCache<IndexVersion>()

    init(configuration: ExporterConfiguration, snapshot: @escaping @Sendable () -> IndexSnapshot,
         limits: ExporterLimits = ExporterLimits()) {
        self.configuration = configuration
        self.snapshot = snapshot
        pageGate = AdmissionGate(limits.pages)
    }

    /// Renders a scrape and remembers its cost for the next one's `mdev_scrape_*`.
    func metrics() -> Scrape {
        let clock = ContinuousClock()
        let start = clock.now
        let previous = lastScrape.withLock { $0 }
        let scrape = MetricsRenderer.renderScrape(
            snapshot: snapshot(), build: configuration.build, process: ProcessStats.current(),
            previousScrape: previous, contributors: configuration.metricsContributors, cache: cache)
        let elapsed = clock.now - start
        let seconds = elapsed.seconds
        lastScrape.withLock { $0 = ScrapeStats(renderSeconds: seconds, bytes: scrape.byteCount) }
        return scrape
    }

    /// The landing page, rendered once per state it shows, and a page permit its response holds.
    /// - Throws: `AdmissionGate.Refusal` or `CancellationError` when not admitted.
    func landingPage(gzip: Bool, departure: Departure? = nil) async throws -> PageBody {
        let lease = try await pageGate.enter(until: departure)
        let snapshot = snapshot()
        // Contributors' sections are small and quick (their contract); they are part of what the page shows.
        let sections = configuration.landingContributors.flatMap { $0.landingSections(snapshot: snapshot) }
        let configuration = configuration
        let buffers = await landingCache.body(key: LandingKey(snapshot, sections: sections), gzip: gzip) {
            ByteBuffer(string: LandingPage.render(snapshot: snapshot, build: configuration.build,
                                                  telemetryPath: configuration.telemetryPath, sections: sections))
        }
        return PageBody(buffers: buffers, lease: lease)
    }

    /// The device listing as JSON, rendered once per index generation, and a page permit its response holds.
    /// - Throws: `AdmissionGate.Refusal` or `CancellationError` when not admitted.
    func devicesJSON(gzip: Bool, departure: Departure? = nil) async throws -> PageBody {
        let lease = try await pageGate.enter(until: departure)
        let snapshot = snapshot()
        let buffers = await devicesCache.body(key: IndexVersion(snapshot), gzip: gzip) {
            ByteBuffer(bytes: Listing(snapshot).json())
        }
        return PageBody(buffers: buffers, lease: lease)
    }

    /// Gives back the permit of a page whose body went to the connection (or will not).
    func written(_ page: PageBody) {
        pageGate.leave(page.lease)
    }

    func health() -> (healthy: Bool, reason: String) {
        Self.health(snapshot().status)
    }

    /// Healthy when connected and synced with no libvirt call stuck; otherwise a short reason. libvirt's own error text is not
    /// given to whoever asks: the Monitor logs it (at each new outage, and when a connection is lost).
    static func health(_ status: MonitorStatus) -> (healthy: Bool, reason: String) {
        if let stuck = status.stuckCall { return (false, "libvirt call not returning: \(stuck)") }
        if status.connected && status.synced { return (true, "ok") }
        if !status.connected { return (false, "libvirt unreachable") }
        return (false, status.lastSyncTime == nil ? "first sync not finished" : "resync after reconnect not finished")
    }
}

/// A page's body, and the page permit its response holds until the body is handed to the connection:
/// sending megabytes costs as much as rendering them.
struct PageBody: Sendable {
    let buffers: [ByteBuffer]
    let lease: AdmissionGate.Lease

    var count: Int { buffers.reduce(0) { $0 + $1.readableBytes } }
}

/// Which state of which index a snapshot shows; `nil` for a snapshot not published by a `DeviceIndex`.
struct IndexVersion: Equatable, Sendable {
    /// Held, so that no other index's history can take its address and pass for it.
    let history: ChangeHistory
    let generation: Int

    init?(_ snapshot: IndexSnapshot) {
        guard let history = snapshot.history else { return nil }
        self.history = history
        generation = snapshot.generation
    }

    static func == (a: Self, b: Self) -> Bool { a.history === b.history && a.generation == b.generation }
}

/// Everything the landing page shows: the index, the connection (without the event counters, which
/// it does not show) and the contributors' sections.
struct LandingKey: Equatable, Sendable {
    let index: IndexVersion
    let status: MonitorStatus
    let sections: [LandingSection]

    init?(_ snapshot: IndexSnapshot, sections: [LandingSection]) {
        guard let index = IndexVersion(snapshot) else { return nil }
        self.index = index
        var status = snapshot.status
        status.events = [:]
        self.status = status
        self.sections = sections
    }
}
