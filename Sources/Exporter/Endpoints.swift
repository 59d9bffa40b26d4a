import Foundation
import Monitor
import Synchronization

/// What each endpoint serves, independent of HTTP plumbing. Everything reads one snapshot taken
/// from the provider; nothing here calls libvirt or awaits the index.
final class Endpoints: Sendable {
    let configuration: ExporterConfiguration
    let snapshot: @Sendable () -> IndexSnapshot
    private let lastScrape = Mutex(ScrapeStats(renderSeconds: 0, bytes: 0))
    private let cache = MetricsCache()

    init(configuration: ExporterConfiguration, snapshot: @escaping @Sendable () -> IndexSnapshot) {
        self.configuration = configuration
        self.snapshot = snapshot
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
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        lastScrape.withLock { $0 = ScrapeStats(renderSeconds: seconds, bytes: scrape.byteCount) }
        return scrape
    }

    func landingPage() -> String {
        let snapshot = snapshot()
        let sections = configuration.landingContributors.flatMap { $0.landingSections(snapshot: snapshot) }
        return LandingPage.render(snapshot: snapshot, build: configuration.build,
                                  telemetryPath: configuration.telemetryPath, sections: sections)
    }

    func devicesJSON() -> Data {
        Listing(snapshot()).json()
    }

    func health() -> (healthy: Bool, reason: String) {
        Self.health(snapshot().status)
    }

    /// Healthy when connected and synced; otherwise a short reason. libvirt's own error text is not
    /// given to whoever asks: the Monitor logs it (at each new outage, and when a connection is lost).
    static func health(_ status: MonitorStatus) -> (healthy: Bool, reason: String) {
        if status.connected && status.synced { return (true, "ok") }
        if !status.connected { return (false, "libvirt unreachable") }
        return (false, status.lastSyncTime == nil ? "first sync not finished" : "resync after reconnect not finished")
    }
}
