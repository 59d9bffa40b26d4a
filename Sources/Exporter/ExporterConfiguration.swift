/// Everything the HTTP exporter needs besides the snapshot provider and a logger.
public struct ExporterConfiguration: Sendable {
    /// Where to listen; one HTTP server runs per address.
    public var listenAddresses: [ListenAddress]
    /// The path serving Prometheus metrics.
    public var telemetryPath: String
    /// A Prometheus exporter-toolkit web config (TLS, basic auth); `nil` serves plain HTTP without auth.
    public var webConfigFile: String?
    public var build: BuildInfo
    /// Extra metric families from other modules (Policy), rendered into every scrape.
    public var metricsContributors: [any MetricsContributor]
    /// Extra landing-page sections from other modules (Policy's reference problems).
    public var landingContributors: [any LandingContributor]

    /// - Parameters:
    ///   - listenAddresses: Addresses to listen on; defaults to `:9850`.
    ///   - telemetryPath: The metrics path; defaults to `/metrics`.
    ///   - webConfigFile: Path of an exporter-toolkit web config, read at startup (an error there stops
    ///     the start) and again when it or a file it names changes (an error then keeps the previous one).
    ///   - build: Version facts for `mdev_build_info` and the landing page.
    ///   - metricsContributors: Other modules' metric families.
    ///   - landingContributors: Other modules' landing-page sections.
    public init(
        listenAddresses: [ListenAddress] = [.default],
        telemetryPath: String = "/metrics",
        webConfigFile: String? = nil,
        build: BuildInfo,
        metricsContributors: [any MetricsContributor] = [],
        landingContributors: [any LandingContributor] = []
    ) {
        self.listenAddresses = listenAddresses
        self.telemetryPath = telemetryPath
        self.webConfigFile = webConfigFile
        self.build = build
        self.metricsContributors = metricsContributors
        self.landingContributors = landingContributors
    }

    /// The fixed paths besides the telemetry path.
    static let reservedPaths = ["/", "/healthz", "/api/v1/devices"]

    /// Checks what the types cannot: at least one address, a usable telemetry path.
    func validate() throws(ExporterConfigurationError) {
        if listenAddresses.isEmpty {
            throw ExporterConfigurationError("at least one listen address is required")
        }
        if !telemetryPath.hasPrefix("/") || telemetryPath.contains("?") || telemetryPath.contains("#") {
            throw ExporterConfigurationError("telemetry path \"\(telemetryPath)\" must start with / and hold no query")
        }
        if Self.reservedPaths.contains(telemetryPath) {
            throw ExporterConfigurationError("telemetry path \"\(telemetryPath)\" collides with a built-in endpoint")
        }
        let fixed = listenAddresses.filter { $0.port != 0 }
        if Set(fixed).count != fixed.count {
            throw ExporterConfigurationError("duplicate listen address")
        }
    }
}

/// A configuration the exporter cannot run with.
public struct ExporterConfigurationError: Error, Hashable, CustomStringConvertible {
    public var description: String

    init(_ description: String) { self.description = description }
}
