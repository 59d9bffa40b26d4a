public import Logging
public import ServiceLifecycle

/// Tells systemd about the daemon's life: readiness, status text, watchdog pings and shutdown.
///
/// The daemon calls ``ready(status:)`` once its first full sync is done, then ``updateStatus(_:)`` whenever
/// the text worth showing in `systemctl status` changes. While running, and only after readiness, the service
/// pings the watchdog every `WATCHDOG_USEC / 2` — but only while `healthCheck` says the event pipeline is
/// alive, so a wedged libvirt event loop makes systemd restart us. On graceful shutdown it sends
/// `STOPPING=1` and returns; place it last in the `ServiceGroup` so it is the first to hear of shutdown.
///
/// Outside systemd (`NOTIFY_SOCKET` unset) every send is a no-op.
public actor NotifyService: Service {
    private let notifier: SystemdNotifier
    private let healthCheck: @Sendable () -> Bool
    private let logger: Logger
    private let readiness: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    /// The watchdog timeout systemd expects pings within, or nil: read once, here, for the pings and for
    /// whoever must beat faster than them (`WatchdogSettings`).
    public nonisolated let watchdog: WatchdogSettings?

    private var isReady = false
    private var isReloading = false
    private var status: String?
    private var sendFailureLogged = false

    /// - Parameters:
    ///   - notifier: The `sd_notify` wrapper.
    ///   - logger: Receives one warning per unhealthy episode and the first send failure.
    ///   - healthCheck: Whether the daemon is making progress (e.g. the libvirt event-loop heartbeat is
    ///     fresh); a watchdog ping is skipped while it returns `false`.
    public init(
        notifier: SystemdNotifier = SystemdNotifier(),
        logger: Logger,
        healthCheck: @escaping @Sendable () -> Bool = { true }
    ) {
        self.notifier = notifier
        self.logger = logger
        self.healthCheck = healthCheck
        self.readiness = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.watchdog = notifier.watchdogTimeout().map(WatchdogSettings.init(timeout:))
    }

    /// Reports start-up (or a reload) complete: sends `READY=1`, with `STATUS=` when given, and starts the
    /// watchdog pings. Later calls outside a reload only update the status.
    public func ready(status: String? = nil) {
        guard !isReady || isReloading else {
            if let status { updateStatus(status) }
            return
        }
        if let status { self.status = Self.oneLine(status) }
        send("READY=1" + (self.status.map { "\nSTATUS=\($0)" } ?? ""))
        isReloading = false
        if !isReady {
            isReady = true
            readiness.continuation.yield()
            readiness.continuation.finish()
        }
    }

    /// Reports a configuration reload in progress (`RELOADING=1`); call ``ready(status:)`` when it is done.
    public func reloading(status: String? = nil) {
        isReloading = true
        if let status { self.status = Self.oneLine(status) }
        send("RELOADING=1" + (status.map { "\nSTATUS=\(Self.oneLine($0))" } ?? ""))
    }

    /// Sets the one-line status `systemctl status` shows; sent only when it changed. Before readiness it is
    /// kept and sent together with `READY=1`.
    public func updateStatus(_ text: String) {
        let newStatus = Self.oneLine(text)
        guard isReady else {
            status = newStatus
            return
        }
        guard newStatus != status else { return }
        status = newStatus
        send("STATUS=\(newStatus)")
    }

    public func run() async throws {
        // Wait for readiness; graceful shutdown or cancellation ends the wait early.
        logger.debug("waiting for readiness before notifying systemd")
        for await _ in readiness.stream.cancelOnGracefulShutdown() { break }

        if isReady && !Task.isCancelled && !Task.isShuttingDownGracefully {
            if let timeout = watchdog?.timeout {
                logger.debug("systemd watchdog enabled", metadata: ["watchdog.timeout": "\(timeout)"])
                try? await cancelWhenGracefulShutdown { try await self.pingWatchdog(every: timeout / 2) }
            } else {
                logger.debug("systemd asked for no watchdog; no pings")
                try? await gracefulShutdown()
            }
        }
        send("STOPPING=1")
    }

    /// Pings until cancelled, skipping pings while the health check fails.
    private func pingWatchdog(every interval: Duration) async throws {
        var healthy = true
        while true {
            if healthCheck() {
                if !healthy {
                    logger.notice("health check passes again; resuming watchdog pings")
                    healthy = true
                }
                send("WATCHDOG=1")
            } else if healthy {
                logger.warning("health check failed; withholding watchdog pings so systemd restarts the service")
                healthy = false
            }
            try await Task.sleep(for: interval)
        }
    }

    /// A newline would end the `STATUS=` assignment and start a bogus one.
    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }

    private func send(_ state: String) {
        do {
            try notifier.notify(state)
        } catch {
            guard !sendFailureLogged else { return }
            sendFailureLogged = true
            logger.warning("cannot notify systemd", metadata: ["error": "\(error)"])
        }
    }
}
