import NIOCore
import Synchronization

/// Counts the exporter's connections and reports when a burst of them is over.
///
/// Many connections (a flood of bad requests, a slowloris attack, many clients) leave their buffers
/// freed but kept by glibc's malloc arenas, which raises anonymous memory for good (figures in
/// docs/benchmarks.md). The daemon hands that memory back to the system
/// when told a burst is over, so the exporter does not need to know about malloc.
final class ConnectionTracker: Sendable {
    /// A burst: at least this many connections open at the same time,
    static let burstSize = 32
    /// or at least this many opened since the last report (hours of ordinary scrapes, seconds of a flood).
    static let burstCount = 1000
    /// A burst is over when no more than this many remain open (Prometheus may keep one alive).
    static let quietSize = 4

    /// What a finished burst was: the most connections open at once, and how many were opened.
    struct Burst: Hashable, Sendable {
        var peak: Int
        var opened: Int
    }

    private let state = Mutex((open: 0, burst: Burst(peak: 0, opened: 0)))
    private let afterBurst: @Sendable (Burst) -> Void

    /// - Parameter afterBurst: Called once per burst, on an event loop; keep it short.
    init(afterBurst: @escaping @Sendable (Burst) -> Void) {
        self.afterBurst = afterBurst
    }

    var openConnections: Int { state.withLock { $0.open } }

    func opened() {
        state.withLock {
            $0.open += 1
            $0.burst.opened += 1
            $0.burst.peak = max($0.burst.peak, $0.open)
        }
    }

    func closed() {
        let finished: Burst? = state.withLock { s in
            s.open -= 1
            guard s.burst.peak >= Self.burstSize || s.burst.opened >= Self.burstCount, s.open <= Self.quietSize
            else { return nil }
            let burst = s.burst
            s.burst = Burst(peak: s.open, opened: 0)
            return burst
        }
        if let finished { afterBurst(finished) }
    }

    /// A handler for each connection's pipeline: counts it while it is open.
    func handler() -> any RemovableChannelHandler { Handler(tracker: self) }

    private final class Handler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = Any
        let tracker: ConnectionTracker

        init(tracker: ConnectionTracker) { self.tracker = tracker }

        // Added when the connection's pipeline is built and removed when it closes, whether or not a
        // request ever completed.
        func handlerAdded(context: ChannelHandlerContext) { tracker.opened() }
        func handlerRemoved(context: ChannelHandlerContext) { tracker.closed() }
    }
}
