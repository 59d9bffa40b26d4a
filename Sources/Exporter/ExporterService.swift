import Foundation
import Hummingbird
import HummingbirdCore
public import Logging
public import Monitor
public import ServiceLifecycle

/// The HTTP exporter as a service: one Hummingbird server per listen address, all serving the same
/// endpoints. Run it in the daemon's `ServiceGroup`; it stops on graceful shutdown.
public struct ExporterService: Service, CustomStringConvertible {
    private let configuration: ExporterConfiguration
    let endpoints: Endpoints
    /// Bounds bcrypt checks of every server's requests.
    let bcryptGate: AdmissionGate
    private let webConfig: LiveWebConfig?
    /// The TLS the servers started with; connections use `webConfig`'s current one.
    private let startTLS: ServerTLS?
    private let limits: ExporterLimits
    private let logger: Logger
    private let onListening: (@Sendable (ListenAddress, Int) async -> Void)?
    private let connections: ConnectionTracker?

    /// Validates the configuration and reads the web config (certificates included), so a bad
    /// setting fails here, before anything listens. Later changes to those files apply to new
    /// connections (see `LiveWebConfig`).
    /// - Parameters:
    ///   - configuration: Addresses, paths, web config, build info and contributors.
    ///   - snapshot: Returns the current index snapshot without waiting, e.g. `{ index.snapshot }`.
    ///   - logger: Used for the servers' own logs and web config reloads.
    ///   - onListening: Called once per address when its server accepts connections, with the bound
    ///     port (useful with port 0).
    ///   - afterConnectionBurst: Called when a burst of connections (32 or more open at once, or 1,000
    ///     opened) is over, with the most that were open at once and how many were opened; the daemon
    ///     returns the memory they held to the system. Runs on an event loop: keep it short.
    /// - Throws: `ExporterConfigurationError` or `WebConfigError`.
    public init(
        configuration: ExporterConfiguration,
        snapshot: @escaping @Sendable () -> IndexSnapshot,
        logger: Logger,
        onListening: (@Sendable (_ address: ListenAddress, _ port: Int) async -> Void)? = nil,
        afterConnectionBurst: (@Sendable (_ peakConnections: Int, _ connections: Int) -> Void)? = nil
    ) throws {
        try self.init(configuration: configuration, snapshot: snapshot, logger: logger, onListening: onListening,
                      afterConnectionBurst: afterConnectionBurst, limits: ExporterLimits())
    }

    /// The same with other limits (tests).
    init(
        configuration: ExporterConfiguration,
        snapshot: @escaping @Sendable () -> IndexSnapshot,
        logger: Logger,
        onListening: (@Sendable (_ address: ListenAddress, _ port: Int) async -> Void)?,
        afterConnectionBurst: (@Sendable (_ peakConnections: Int, _ connections: Int) -> Void)?,
        limits: ExporterLimits,
        webConfigCheckInterval: Duration = .seconds(1)
    ) throws {
        try configuration.validate()
        let webConfig = try configuration.webConfigFile.map {
            try LiveWebConfig(path: $0, logger: logger, checkInterval: webConfigCheckInterval)
        }
        self.configuration = configuration
        self.endpoints = Endpoints(configuration: configuration, snapshot: snapshot, limits: limits)
        self.bcryptGate = AdmissionGate(limits.bcrypt)
        self.webConfig = webConfig
        self.startTLS = webConfig?.current.tls
        self.limits = limits
        self.logger = logger
        self.onListening = onListening
        self.connections = afterConnectionBurst.map { report in
            ConnectionTracker { report($0.peak, $0.opened) }
        }
    }

    /// Serves snapshots published by `index`.
    public init(configuration: ExporterConfiguration, index: DeviceIndex, logger: Logger) throws {
        try self.init(configuration: configuration, snapshot: { index.snapshot }, logger: logger)
    }

    public var description: String { "ExporterService" }

    public func run() async throws {
        let webConfig = webConfig
        let departures = Departures()
        let responder = ExporterResponder(
            endpoints: endpoints, auth: { webConfig?.current.auth }, bcryptGate: bcryptGate,
            departures: departures, retryAfterSeconds: limits.retryAfterSeconds)
        let logger = logger
        let onListening = onListening
        let scheme = startTLS == nil ? "http" : "https"
        let authKind = webConfig?.current.auth == nil ? "none" : "basic"
        let connections = connections
        // Idle connections, including ones that never finish a request head however slowly they trickle it
        // (Hummingbird counts idle time from the last complete request part), are closed after 30 s. The
        // handlers are made anew for each connection (an autoclosure).
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [departures.handler()] + (connections.map { [$0.handler()] } ?? []),
            idleTimeout: .seconds(30))
        let server: HTTPServerBuilder = if let startTLS {
            HTTPServerBuilder { responder in
                ReloadingTLSChannel(base: HTTP1Channel(responder: responder, configuration: http1),
                                    tls: { webConfig?.current.tls ?? startTLS })
            }
        } else {
            .http1(configuration: http1)
        }

        try await withThrowingTaskGroup(of: Void.self) { group in
            for address in configuration.listenAddresses {
                let appConfiguration = ApplicationConfiguration(
                    address: .hostname(Self.bindHost(address.host), port: address.port),
                    serverName: "mdevmon/\(configuration.build.version)")
                let announce: @Sendable (Int?) async -> Void = { boundPort in
                    let port = boundPort ?? address.port
                    logger.info("exporter listening", metadata: [
                        "http.address": "\(address)", "http.port": "\(port)", "http.scheme": "\(scheme)",
                        "http.auth": "\(authKind)",
                    ])
                    await onListening?(address, port)
                }
                let app = Application(
                    responder: responder, server: server, configuration: appConfiguration,
                    onServerRunning: { await announce($0.localAddress?.port) }, logger: logger)
                group.addTask {
                    do {
                        try await app.run()
                    } catch {
                        throw ExporterServeError(address: address, underlying: error)
                    }
                }
            }
            // The first server to fail stops the others.
            for try await _ in group {}
        }
    }

    /// An empty host means every interface: the IPv6 wildcard (which also accepts IPv4 unless
    /// `bindv6only` is set), or the IPv4 one on hosts without IPv6.
    static func bindHost(_ host: String) -> String {
        guard host.isEmpty else { return host }
        let v6 = FileManager.default.fileExists(atPath: "/proc/net/if_inet6")
        let v6only = (try? String(contentsOfFile: "/proc/sys/net/ipv6/bindv6only", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) == "1"
        return v6 && !v6only ? "::" : "0.0.0.0"
    }
}

/// A server that could not start or stopped with an error, naming its address.
public struct ExporterServeError: Error, CustomStringConvertible {
    public var address: ListenAddress
    public var underlying: any Error

    public var description: String { "exporter on \(address): \(underlying)" }
}
