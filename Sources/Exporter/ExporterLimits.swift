/// What one client, authenticated or not, can make the exporter do at once. A request over a limit
/// gets 503 with `Retry-After`; `/metrics` and `/healthz` are never refused (a scrape renders from
/// the cache `MetricsCache` keeps up to date, and Prometheus must not lose scrapes to a flood).
struct ExporterLimits: Hashable, Sendable {
    /// Renders and gzips of `/` and `/api/v1/devices` when the index changed since the last one (a
    /// request for an unchanged index is served its cached body without waiting). Two at once: one per page.
    var pages = AdmissionGate.Limits(permits: 2, waiting: 16, maxWait: .seconds(2))
    /// bcrypt checks of credentials not verified before (tens of milliseconds of CPU each).
    var bcrypt = AdmissionGate.Limits(permits: 1, waiting: 16, maxWait: .seconds(2))
    /// `Retry-After` of a refused request.
    var retryAfterSeconds = 1
}
