public import Logging
public import Monitor

extension MonitorConfiguration {
    /// Read-only, reconnecting quickly (from `backoff`, at most 1 s apart), so a test sees a recovery in seconds.
    public static func quick(uri: String = "qemu:///system", backoff: Duration = .milliseconds(200)) -> Self {
        MonitorConfiguration(uri: uri, readOnly: true, initialBackoff: backoff, maxBackoff: .seconds(1))
    }
}

/// Runs a `MonitorService` for the duration of `body`, then cancels it and waits for it (and whatever ran
/// next to it) to end, so nothing outlives the test.
/// - Parameters:
///   - connector: libvirt itself by default; a fake in unit tests.
///   - logger: where the service logs (default: warnings and worse, to the process's log handler).
///   - journal: also run the journal of changes, a subscriber of its own as in the daemon.
///   - subscriber: drains a subscription taken before the service starts, so it sees the first sync too.
public func withMonitor<T: Sendable>(
    _ configuration: MonitorConfiguration = .quick(), connector: any LibvirtConnector = LibvirtConnectorImpl(),
    logger: Logger? = nil, journal: Bool = false,
    subscriber: (@Sendable (IndexSubscription) async -> Void)? = nil,
    _ body: (MonitorService) async throws -> T
) async throws -> T {
    let logger = logger ?? {
        var logger = Logger(label: "test.monitor")
        logger.logLevel = .warning
        return logger
    }()
    let service = MonitorService(configuration: configuration, connector: connector, logger: logger)
    let subscription = subscriber == nil ? nil : await service.index.subscribe(capacity: 1_000_000)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        if let subscriber, let subscription { group.addTask { await subscriber(subscription) } }
        group.addTask { try await service.run() }
        if journal { group.addTask { try await ChangeJournal(index: service.index, logger: logger).run() } }
        let result: T
        do {
            result = try await body(service)
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
        try await group.waitForAll()
        return result
    }
}
