import ArgumentParser
import Doctor
import Exporter
import Foundation
import Logging
import Monitor
import Policy
import PolicyExporter
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
                libvirt (0.5 s doubling to 30 s). SIGHUP reloads --config.file; SIGTERM/SIGINT stop gracefully \
                within 15 s (10 s graceful, then 5 s of cancellation).
                """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var log: LogOptions

        @Option(name: .customLong("config.file"), help: ArgumentHelp(
            "Policy configuration (YAML).",
            discussion: "When the default file does not exist, built-in defaults apply; an explicit path must exist.",
            valueName: "path"))
        var configFile: String = PolicyConfig.defaultPath

        @Option(name: .customLong("state.dir"), help: ArgumentHelp(
            "Directory for the crash-safe state file (the watched host's boot, active mdevs).",
            discussion: "One daemon per directory: it holds mdevmon.lock there, and a second one exits naming its pid.",
            valueName: "dir"))
        var stateDir: String = StateStore.defaultDirectory

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

        @Option(name: .customLong("libvirt.stuck-after"), help: ArgumentHelp(
            "Seconds a libvirt call may go unanswered before mdevmon reports it (1 to 30).",
            discussion: "Then /healthz fails naming the call, the journal warns, and mdev_libvirt_call_in_flight_seconds shows its age; all clear when it returns. The systemd watchdog is not involved: a restart would wait in the same libvirtd.",
            valueName: "seconds"))
        var stuckAfter: Int = Int(LibvirtCallWatch.defaultStuckAfter.components.seconds)

        func validate() throws {
            guard (1...30).contains(stuckAfter) else {
                throw ValidationError("--libvirt.stuck-after must be from 1 to 30 seconds, not \(stuckAfter)")
            }
        }

        static let gracefulShutdownBound: Duration = .seconds(10)
        static let cancellationBound: Duration = .seconds(5)

        func run() async throws {
            log.bootstrap()
            let logger = Logger(label: "mdevmon")
            ProcessSetup.returnLargeBuffersToTheSystem()
            ProcessSetup.ignoreBrokenPipes()
            if let raised = OpenFilesLimit.raiseToHard() {
                logger.debug("raised the open-files soft limit from \(raised.from) to \(raised.to)")
            }
            let policyConfig: PolicyConfig
            do {
                policyConfig = try PolicyConfig.load(path: configFile)
            } catch {
                throw ValidationError("\(error)")
            }
            // Held until the process ends; a second daemon on the same directory exits naming the holder.
            let stateLock: StateDirectoryLock?
            do {
                stateLock = try StateDirectoryLock(directory: stateDir)
            } catch {
                guard case .unavailable = error else { throw error }
                logger.warning("\(error); running without it, so nothing stops a second daemon on this directory")
                stateLock = nil
            }

            let monitor = MonitorService(
                configuration: MonitorConfiguration(uri: connection.connect, readOnly: !policyConfig.needsWriteAccess),
                logger: logger)
            let policy = PolicyService(
                index: monitor.index, waitForFirstSync: { await monitor.waitForFirstSync() },
                actions: MonitorDeviceActions(monitor: monitor), config: policyConfig,
                store: StateStore(directory: stateDir), logger: logger)
            let export = PolicyExport(metrics: policy.metrics)
            let file = configFile
            let hostChecks = HostCheckService(
                uri: connection.connect, readOnly: !policyConfig.needsWriteAccess, inputs: HostDoctor.Inputs(stateDir: stateDir),
                config: { .inEffect(policy, file: file) },
                snapshot: { monitor.index.snapshot },
                // The policy's verdicts: a domain whose mdev a restore is bringing back is not "blocked" at boot.
                referenceProblems: {
                    let verdicts = policy.metrics.snapshot
                    return verdicts.referencesEnabled ? verdicts.problems : nil
                },
                // Its restores: an mdev waiting for its parent's vendor driver at boot is not a broken boot path.
                restoring: { policy.isRestoring(uuid: $0) },
                waitForFirstSync: { await policy.waitForFirstEvaluation() },
                indexChanges: await monitor.index.subscribe(), logger: logger)
            policy.metrics.onReferencesEvaluated { hostChecks.requestFollow() }
            let hostExport = HostCheckExport(results: hostChecks.results, metrics: policy.metrics, configFile: configFile)
            let exporterConfig = ExporterConfiguration(
                listenAddresses: listenAddresses.isEmpty ? [.default] : listenAddresses,
                telemetryPath: telemetryPath, webConfigFile: webConfigFile,
                build: Version.buildInfo, metricsContributors: [export, hostExport, LibvirtCallExport(calls: monitor.calls)], landingContributors: [export, hostExport])
            let exporter: ExporterService
            do {
                exporter = try ExporterService(
                    configuration: exporterConfig, snapshot: { monitor.index.snapshot }, logger: logger,
                    afterConnectionBurst: { peak, count in
                        let returned = ProcessSetup.returnFreedMemoryToTheSystem()
                        logger.debug("a burst of \(count) HTTP connections (\(peak) at once) is over; freed memory returned to the system: \(returned)")
                    })
            } catch {
                throw ValidationError("\(error)")
            }

            let notify = NotifyService(logger: logger) { EventLoopHealth.isHealthy() }
            if let watchdog = notify.watchdog {
                EventLoopHealth.enable(interval: watchdog.heartbeatInterval, maxAge: watchdog.maxHeartbeatAge)
            }
            let reload = ConfigReloadService(
                path: configFile, policy: policy, logger: logger,
                afterSignal: { hostChecks.requestRun() })
            let status = StatusReporter(
                notify: notify, ticks: await monitor.index.subscribe(),
                ready: { await monitor.waitForFirstSync() }, summary: { monitor.index.snapshot.statusLine })

            var groupConfiguration = ServiceGroupConfiguration(
                // Stopped in reverse order, each after the one before has ended: the policy first, so SIGTERM
                // reaches the restores at once; the monitor last, so the final state write reads a live index.
                services: [
                    .init(service: monitor), .init(service: ChangeJournal(index: monitor.index, logger: logger)),
                    .init(service: exporter), .init(service: reload), .init(service: status), .init(service: notify),
                    .init(service: hostChecks), .init(service: policy),
                    .init(service: LibvirtCallWatch(calls: monitor.calls, index: monitor.index, stuckAfter: .seconds(stuckAfter), logger: logger)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger)
            // SIGTERM: services stop on their own within the first bound (restores start nothing new, the state
            // file gets its final write); past it they are cancelled, and past the second the process aborts
            // rather than hang, well inside systemd's 90 s stop timeout.
            groupConfiguration.maximumGracefulShutdownDuration = Self.gracefulShutdownBound
            groupConfiguration.maximumCancellationDuration = Self.cancellationBound
            try await ServiceGroup(configuration: groupConfiguration).run()
            withExtendedLifetime(stateLock) {}
        }
    }
}
