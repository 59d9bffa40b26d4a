public import Logging
public import ServiceLifecycle
import Synchronization

/// The libvirt calls the daemon is waiting for. Every call `MonitorService` makes, its own and those it
/// lends out through `withConnection`, is registered here while it runs, so that one that does not
/// return (libvirtd stuck in an mdevctl callout, a host that stopped answering) is seen rather than
/// freezing the index while everything reports healthy.
public final class LibvirtCalls: Sendable {
    /// One call in flight: what it does, and since when it last made progress.
    public struct Call: Hashable, Sendable {
        /// Unique per call; orders calls that started at the same instant.
        public let id: Int
        public let operation: String
        public fileprivate(set) var started: ContinuousClock.Instant

        /// Older first; of two with the same start, the one registered first.
        func isOlder(than other: Call) -> Bool { (started, id) < (other.started, other.id) }
    }

    /// What a call is for: the label of its duration totals.
    public enum Kind: String, Sendable, CaseIterable {
        case connect
        case fullSync = "full_sync"
        case fetchNodeDevice = "fetch_node_device"
        case fetchDomain = "fetch_domain"
        /// A policy's call: look up, start or create a node device.
        case action
        case close
    }

    private struct State {
        var next = 0
        var calls: [Int: Call] = [:]
        /// Calls the watch reported as stuck, and how long each had waited when it returned.
        var watched: [Int: Duration?] = [:]
        var durations: [Kind: DurationTotal] = [:]
        var queueWait = DurationTotal()
    }

    private let state = Mutex(State())

    public init() {}

    /// Runs the blocking `body` as the call `operation`, in flight until it returns or throws. A body that
    /// makes many RPCs (a full sync) calls the `progress` it is given after each, so that only one RPC
    /// that does not return counts as stuck, not a long sync of a big host.
    /// Its whole duration, returned or thrown, is added to `kind`'s totals.
    public func tracking<T>(_ operation: String, kind: Kind, _ body: (_ progress: () -> Void) throws -> T) rethrows -> T {
        let begun = ContinuousClock.now
        let id = state.withLock { state in
            state.next += 1
            state.calls[state.next] = Call(id: state.next, operation: operation, started: begun)
            return state.next
        }
        defer {
            state.withLock { state in
                state.durations[kind, default: DurationTotal()].add(.now - begun)
                guard let call = state.calls.removeValue(forKey: id) else { return }
                if state.watched[id] != nil { state.watched[id] = .now - call.started }
            }
        }
        return try body { self.state.withLock { $0.calls[id]?.started = .now } }
    }

    /// `tracking` for a body that makes one RPC.
    public func tracking<T>(_ operation: String, kind: Kind, _ body: () throws -> T) rethrows -> T {
        try tracking(operation, kind: kind) { (_: () -> Void) in try body() }
    }

    /// How long the calls that ended took, by kind (kinds with no call yet are left out).
    public var durations: [Kind: DurationTotal] { state.withLock { $0.durations } }

    /// How long event-queue objects waited before their fetch began (`EventQueue.next`), over every connection.
    public var queueWait: DurationTotal { state.withLock { $0.queueWait } }

    /// Adds what the event queue reported since the previous look.
    func addQueueWait(_ total: DurationTotal) {
        state.withLock { $0.queueWait += total }
    }

    /// The call that has waited longest; nil when none is in flight.
    public var oldest: Call? {
        state.withLock { $0.calls.values.min { $0.isOlder(than: $1) } }
    }

    /// How long the oldest call has waited, in seconds; zero when none is in flight.
    public var oldestSeconds: Double {
        guard let oldest else { return 0 }
        return (.now - oldest.started).seconds
    }

    /// Remembers when the call `id` returns (the watch reported it as stuck).
    func watch(_ id: Int) {
        state.withLock { state in
            if state.calls[id] != nil { state.watched[id] = .some(nil) }
        }
    }

    /// How long the watched call `id` waited in all, once it has returned; nil while it runs.
    func returned(_ id: Int) -> Duration? {
        state.withLock { state in
            guard case .some(.some(let waited)) = state.watched[id] else { return nil }
            state.watched[id] = nil
            return waited
        }
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
        var logger = logger
        logger[metadataKey: LogKey.libvirtURI] = .string(index.snapshot.status.uri)
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
            guard stuck?.id != reported?.id else { continue }
            if let reported {
                // No longer the oldest call in flight: it returned.
                let waited = calls.returned(reported.id).map { " after \($0.seconds.formatted(.number.precision(.fractionLength(1)))) s" } ?? ""
                logger.notice("libvirt answered '\(reported.operation)'\(waited)",
                              metadata: MessageID.libvirtCallReturned.metadata.merging([LogKey.libvirtCall: .string(reported.operation)]) { $1 })
            }
            if let stuck {
                calls.watch(stuck.id)
                logger.warning(
                    "libvirt has not answered '\(stuck.operation)' for \(Int((ContinuousClock.now - stuck.started).seconds)) s: the index is not following libvirt meanwhile, and /healthz says so",
                    metadata: MessageID.libvirtCallStuck.metadata.merging([LogKey.libvirtCall: .string(stuck.operation)]) { $1 })
            }
            await index.recordStuckCall(stuck?.operation)
            reported = stuck
        }
    }
}

/// A running count and sum of durations: a Prometheus summary without quantiles, whose
/// `rate(_sum) / rate(_count)` is the mean over any window.
public struct DurationTotal: Hashable, Sendable {
    public var count = 0
    public var seconds = 0.0

    public init(count: Int = 0, seconds: Double = 0) {
        self.count = count
        self.seconds = seconds
    }

    mutating func add(_ duration: Duration) {
        count += 1
        seconds += duration.seconds
    }

    static func += (total: inout Self, more: Self) {
        total.count += more.count
        total.seconds += more.seconds
    }

    /// What was added since `earlier` (a total taken from the same running sum).
    static func - (later: Self, earlier: Self) -> Self {
        Self(count: later.count - earlier.count, seconds: later.seconds - earlier.seconds)
    }
}

extension Duration {
    /// The duration in seconds, fractions included.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
