import Foundation
public import ServiceLifecycle

/// Feeds systemd: READY=1 once `ready` returns, then STATUS= whenever the summary line changes.
///
/// `ticks` is any sequence that yields when the state may have changed (the index's subscription);
/// the reporter reads `summary()` then, so its work per change is O(1) and systemd hears only when the
/// line actually differs (a 10,000-device resync mostly leaves it as it is).
public struct StatusReporter<Ticks: AsyncSequence & Sendable>: Service where Ticks.Element: Sendable {
    private let notify: NotifyService
    private let ticks: Ticks
    private let ready: @Sendable () async -> Void
    private let summary: @Sendable () -> String

    public init(notify: NotifyService, ticks: Ticks, ready: @escaping @Sendable () async -> Void,
                summary: @escaping @Sendable () -> String) {
        self.notify = notify
        self.ticks = ticks
        self.ready = ready
        self.summary = summary
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await ready() }
        if Task.isCancelled || Task.isShuttingDownGracefully { return }
        var last = summary()
        await notify.ready(status: last)
        for try await _ in ticks.cancelOnGracefulShutdown() {
            let line = summary()
            guard line != last else { continue }
            last = line
            await notify.updateStatus(line)
        }
    }
}

/// The systemd watchdog, if one is configured: the event-loop heartbeat must beat faster than it.
public struct WatchdogSettings: Sendable {
    /// How long systemd waits for a ping (`WatchdogSec=`).
    public var timeout: Duration

    public init(timeout: Duration) { self.timeout = timeout }

    /// A beat every quarter of the watchdog period (at least 1 s).
    public var heartbeatInterval: Int { max(1, Int(timeout.components.seconds / 4)) }
    /// Stale after two missed beats plus a second of slack.
    public var maxHeartbeatAge: Int64 { Int64(heartbeatInterval * 2 + 1) }
}
