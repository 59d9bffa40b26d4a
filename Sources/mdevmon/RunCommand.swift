import ArgumentParser
import Exporter
import Foundation
import Logging
import Monitor
import Policy
import ServiceLifecycle
import Systemd

extension Mdevmon {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the daemon: watch libvirt, serve metrics, apply policies.",
            discussion: """
                Connects to libvirt (read-only unless an acting policy is enabled), keeps the mdev index from \
                events, serves / /metrics /healthz /api/v1/devices, logs every change, restores mdevs after a \
                reboot and reports domains whose mdevs are missing or inactive. Keeps retrying an unreachable \
                libvirt (0.5 s doubling to 30 s). SIGHUP reloads --config.file; SIGTERM/SIGINT stop gracefully.
                """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var log: LogOptions

        @Option(name: .customLong("config.file"), help: ArgumentHelp(
            "Policy configuration (YAML).",
            discussion: "When the default file does not exist, built-in defaults apply; an explicit path must exist.",
            valueName: "path"))
        var configFile: String = PolicyConfig.defaultPath

        @Option(name: .customLong("state.dir"), help: ArgumentHelp(
            "Directory for the crash-safe state file (boot id, active mdevs).", valueName: "dir"))
        var stateDir: String = "/var/lib/mdevmon"

        @Option(name: .customLong("web.listen-address"), help: ArgumentHelp(
            "Address to serve HTTP on, host:port (repeatable). Default :9850 (all interfaces).",
            valueName: "address"),
            transform: { try ListenAddress(parsing: $0) })
        var listenAddresses: [ListenAddress] = []

        @Option(name: .customLong("web.telemetry-path"), help: "Path under which to expose metrics.")
        var telemetryPath: String = "/metrics"

        @Option(name: .customLong("web.config.file"), help: ArgumentHelp(
            "Prometheus exporter-toolkit web config (TLS, basic auth).", valueName: "path"))
        var webConfigFile: String?

        func run() async throws {
            log.bootstrap()
            let logger = Logger(label: "mdevmon")
            ProcessSetup.returnLargeBuffersToTheSystem()
            if let raised = OpenFilesLimit.raiseToHard() {
                logger.debug("raised the open-files soft limit from \(raised.from) to \(raised.to)")
            }
            let policyConfig: PolicyConfig
            do {
                policyConfig = try PolicyConfig.load(path: configFile, isDefaultPath: configFile == PolicyConfig.defaultPath)
            } catch {
                throw ValidationError("\(error)")
            }
            guard let bootID = BootID.current() else {
                throw ValidationError("cannot read /proc/sys/kernel/random/boot_id")
            }

            let monitor = MonitorService(
                configuration: MonitorConfiguration(uri: connection.connect, readOnly: !policyConfig.needsWriteAccess),
                logger: logger)
            let policy = PolicyService(
                index: monitor.index, waitForFirstSync: { await monitor.waitForFirstSync() },
                actions: MonitorDeviceActions(monitor: monitor), config: policyConfig,
                store: StateStore(directory: stateDir), bootID: bootID, logger: logger)
            let export = PolicyExport(metrics: policy.metrics)
            let hostChecks = HostCheckService(
                uri: connection.connect, readOnly: !policyConfig.needsWriteAccess,
                inputs: HostDoctor.Inputs(configFile: configFile, isDefaultConfigPath: configFile == PolicyConfig.defaultPath, stateDir: stateDir),
                snapshot: { monitor.index.snapshot }, waitForFirstSync: { await monitor.waitForFirstSync() }, logger: logger)
            let hostExport = HostCheckExport(results: hostChecks.results, metrics: policy.metrics, configFile: configFile)
            let exporterConfig = ExporterConfiguration(
                listenAddresses: listenAddresses.isEmpty ? [.default] : listenAddresses,
                telemetryPath: telemetryPath, webConfigFile: webConfigFile,
                build: Version.buildInfo, metricsContributors: [export, hostExport], landingContributors: [export, hostExport])
            let exporter: ExporterService
            do {
                exporter = try ExporterService(configuration: exporterConfig, snapshot: { monitor.index.snapshot }, logger: logger)
            } catch {
                throw ValidationError("\(error)")
            }

            let watchdog = WatchdogSettings.fromEnvironment()
            if let interval = watchdog?.heartbeatInterval { EventLoopHealth.enable(interval: interval) }
            let notify = NotifyService(logger: logger) {
                EventLoopHealth.isHealthy(maxAge: watchdog?.maxHeartbeatAge ?? .max)
            }
            let reload = ConfigReloadService(
                path: configFile, isDefaultPath: configFile == PolicyConfig.defaultPath, policy: policy, logger: logger,
                afterSignal: { hostChecks.requestRun() })
            let status = StatusReporter(monitor: monitor, notify: notify)

            let group = ServiceGroup(configuration: .init(
                services: [
                    .init(service: monitor), .init(service: policy), .init(service: exporter),
                    .init(service: reload), .init(service: status), .init(service: notify), .init(service: hostChecks),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
            try await group.run()
        }
    }
}

/// Feeds systemd: READY=1 after the first sync, then STATUS= on every index change.
struct StatusReporter: Service {
    let monitor: MonitorService
    let notify: NotifyService

    func run() async throws {
        let changes = await monitor.index.changes()
        await cancelWhenGracefulShutdown { await monitor.waitForFirstSync() }
        if Task.isCancelled || Task.isShuttingDownGracefully { return }
        var last = Self.summary(monitor.index.snapshot)
        await notify.ready(status: last)
        // O(1) per change, and systemd hears only when the line changes (a 10,000-device resync queues
        // 10,000 changes that mostly leave it as it is).
        for await _ in changes.cancelOnGracefulShutdown() {
            let summary = Self.summary(monitor.index.snapshot)
            guard summary != last else { continue }
            last = summary
            await notify.updateStatus(summary)
        }
    }

    static func summary(_ s: IndexSnapshot) -> String {
        let link = s.status.synced ? "connected" : "disconnected"
        return "\(s.state.devices.count) mdevs, \(s.state.activeCount) active; libvirt \(link)"
    }
}

/// The systemd watchdog, if one is configured: the event-loop heartbeat must beat faster than it.
struct WatchdogSettings {
    var usec: UInt64

    static func fromEnvironment() -> WatchdogSettings? {
        guard let text = ProcessInfo.processInfo.environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0 else {
            return nil
        }
        return WatchdogSettings(usec: usec)
    }

    /// A beat every quarter of the watchdog period (at least 1 s).
    var heartbeatInterval: Int { max(1, Int(usec / 4_000_000)) }
    /// Stale after two missed beats plus a second of slack.
    var maxHeartbeatAge: Int64 { Int64(heartbeatInterval * 2 + 1) }
}
