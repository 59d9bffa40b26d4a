/// What one client, authenticated or not, can make the exporter do at once. A request over a limit
/// gets 503 with `Retry-After`; `/metrics` and `/healthz` are never refused (a scrape renders from
/// the cache `MetricsCache` keeps up to date, and Prometheus must not lose scrapes to a flood).
struct ExporterLimits: Hashable, Sendable {
    /// Responses of `/` and `/api/v1/devices`, from render (when the index changed since the last one)
    /// or cached body to the body handed to the connection: sending megabytes to many clients costs as
    /// much as rendering them. Two at once and 20 a second (a permit is held 100 ms at least), plenty
    /// for people and scripts; a response that never got to its body gives its permit back after 10 s.
    /// Waiting (64 at most, 2 s each) rather than an immediate 503 keeps a flood's clients parked
    /// instead of spinning.
    var pages = AdmissionGate.Limits(permits: 2, waiting: 64, maxWait: .seconds(2), maxHold: .seconds(10),
                                     minHold: .milliseconds(100))
    /// bcrypt checks of credentials not verified before (tens of milliseconds of CPU each, per
    /// credentials: verified ones are remembered): one at a time, 5 a second at most, so a flood of
    /// wrong passwords cannot take a whole core from libvirtd and the Monitor.
    var bcrypt = AdmissionGate.Limits(permits: 1, waiting: 64, maxWait: .seconds(2), minHold: .milliseconds(200))
    /// `Retry-After` of a refused request.
    var retryAfterSeconds = 1
}
