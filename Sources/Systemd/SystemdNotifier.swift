internal import CSystemd
import Glibc

/// A failed call into libsystemd, with the errno it reported.
public struct SystemdError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The libsystemd function that failed.
    public var operation: String
    /// The (positive) errno value.
    public var errno: Int32

    public init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// A thin wrapper over `sd_notify(3)` and `sd_watchdog_enabled(3)`.
///
/// Both read `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment that systemd gives the
/// service; outside systemd they quietly do nothing, so the daemon needs no special case when run by hand.
public struct SystemdNotifier: Sendable {
    private let send: @Sendable (String) throws(SystemdError) -> Bool
    private let watchdog: @Sendable () -> Duration?

    public init() {
        self.init(send: SDDaemon.notify, watchdogTimeout: SDDaemon.watchdogTimeout)
    }

    /// A notifier with other transports; tests record messages instead of touching the process environment.
    init(
        send: @escaping @Sendable (String) throws(SystemdError) -> Bool,
        watchdogTimeout: @escaping @Sendable () -> Duration?
    ) {
        self.send = send
        self.watchdog = watchdogTimeout
    }

    /// Whether a service manager is listening (`NOTIFY_SOCKET` is set).
    public var isEnabled: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// Sends newline-separated `KEY=value` assignments, e.g. `"READY=1\nSTATUS=Watching 3 devices"`.
    ///
    /// - Returns: `true` when the message was sent, `false` when no service manager listens.
    /// - Throws: ``SystemdError`` when the socket is set but the send failed.
    @discardableResult
    public func notify(_ state: String) throws(SystemdError) -> Bool {
        try send(state)
    }

    /// The watchdog timeout systemd expects pings within (`WatchdogSec=`), or `nil` when the watchdog is off
    /// or meant for another process.
    public func watchdogTimeout() -> Duration? {
        watchdog()
    }
}

/// The calls into libsystemd's sd-daemon API.
enum SDDaemon {
    @Sendable
    static func notify(_ state: String) throws(SystemdError) -> Bool {
        let result = sd_notify(0, state)
        if result < 0 { throw SystemdError(operation: "sd_notify", errno: -result) }
        return result > 0
    }

    @Sendable
    static func watchdogTimeout() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }
}
