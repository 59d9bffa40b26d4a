public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// The libvirt calls the daemon is waiting for. Every call `MonitorService` makes, its own and those it
/// lends out through `withConnection`, is registered here while it runs, so that one that does not
/// return (libvirtd stuck in an mdevctl callout, a host that stopped answering) is seen rather than
/// freezing the index while everything reports healthy.
public final class LibvirtCalls: Sendable {
    /// One call in flight: what it does, and since when.
    public struct Call: Hashable, Sendable {
        public let operation: String
        public let started: ContinuousClock.Instant
    }

    private struct State {
        var next = 0
        var calls: [Int: Call] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Runs the blocking `body` as the call `operation`, in flight until it returns or throws.
    public func tracking<T>(_ operation: String, _ body: () throws -> T) rethrows -> T {
        let id = state.withLock { state in
            state.next += 1
            state.calls[state.next] = Call(operation: operation, started: .now)
            return state.next
        }
        defer { state.withLock { _ = $0.calls.removeValue(forKey: id) } }
        return try body()
    }

    /// The call that has waited longest; nil when none is in flight.
    public var oldest: Call? {
        state.withLock { $0.calls.values.min { $0.started < $1.started } }
    }

    /// How long the oldest call has waited, in seconds; zero when none is in flight.
    public var oldestSeconds: Double {
        guard let oldest else { return 0 }
        return LibvirtCallWatch.interval(.now - oldest.started)
    }
}

/// A libvirt call that has not returned within the bound: what `/healthz` and the landing page report.
public struct StuckLibvirtCall: Hashable, Sendable {
    public var operation: String
    public var since: Date

    public init(operation: String, since: Date) {
        self.operation = operation
        self.since = since
    }
}

/// Watches `LibvirtCalls`: once the oldest call has waited `stuckAfter`, it writes a journal warning and
/// marks the index's status (so `/healthz` is not ok), and once that call returns, a notice and the mark
/// cleared. It does not feed or starve systemd's watchdog: a restart would wait in the same libvirtd and
/// throw away the last known index that the exporter still serves.
public struct LibvirtCallWatch: Service {
    /// The default bound: a healthy libvirtd answers within a second, and mdevctl's callouts within a few.
    public static let defaultStuckAfter: Duration = .seconds(20)

    private let calls: LibvirtCalls
    private let index: DeviceIndex
    private let stuckAfter: Duration
    private let logger: Logger

    public init(calls: LibvirtCalls, index: DeviceIndex, stuckAfter: Duration = Self.defaultStuckAfter, logger: Logger) {
        self.calls = calls
        self.index = index
        self.stuckAfter = stuckAfter
        self.logger = logger
    }

    /// How often the watch looks: a stuck call is reported at most a quarter of the bound late.
    var period: Duration { min(max(stuckAfter / 4, .milliseconds(100)), .seconds(5)) }

    public func run() async throws {
        var reported: LibvirtCalls.Call?
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let period = self.period
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: period) }
            } catch {
                break
            }
            let stuck = calls.oldest.flatMap { ContinuousClock.now - $0.started >= stuckAfter ? $0 : nil }
            guard stuck != reported else { continue }
            if let reported {
                // The reported call is no longer the oldest in flight: it returned.
                let waited = ContinuousClock.now - reported.started
                logger.notice("libvirt answered '\(reported.operation)' after \(Self.seconds(waited))",
                              metadata: MessageID.libvirtCallReturned.metadata.merging([LogKey.libvirtCall: .string(reported.operation)]) { $1 })
            }
            if let stuck {
                let waited = ContinuousClock.now - stuck.started
                logger.warning(
                    "libvirt has not answered '\(stuck.operation)' for \(Self.seconds(waited)): the index is not following libvirt meanwhile, and /healthz says so",
                    metadata: MessageID.libvirtCallStuck.metadata.merging([LogKey.libvirtCall: .string(stuck.operation)]) { $1 })
            }
            let mark = stuck.map { StuckLibvirtCall(operation: $0.operation, since: Date.now - Self.interval(ContinuousClock.now - $0.started)) }
            await index.recordStuckCall(mark)
            reported = stuck
        }
    }

    static func interval(_ d: Duration) -> TimeInterval {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    static func seconds(_ d: Duration) -> String {
        "\(Int(interval(d).rounded())) s"
    }
}
