@testable import Exporter
import Synchronization
import Testing

@Suite struct ConnectionTrackerTests {
    typealias Burst = ConnectionTracker.Burst

    final class Bursts: Sendable {
        private let bursts = Mutex<[Burst]>([])
        @Sendable func record(_ burst: Burst) { bursts.withLock { $0.append(burst) } }
        var all: [Burst] { bursts.withLock { $0 } }
    }

    @Test func reportsEachConcurrentBurstOnceWhenItIsOver() {
        let bursts = Bursts()
        let tracker = ConnectionTracker(afterBurst: bursts.record)
        for _ in 0..<40 { tracker.opened() }
        for _ in 0..<35 { tracker.closed() }
        #expect(bursts.all == [], "5 still open: not over yet")
        tracker.closed()
        #expect(bursts.all == [Burst(peak: 40, opened: 40)])
        for _ in 0..<4 { tracker.closed() }
        #expect(bursts.all.count == 1, "one report per burst")
        #expect(tracker.openConnections == 0)

        for _ in 0..<32 { tracker.opened() }
        for _ in 0..<32 { tracker.closed() }
        #expect(bursts.all == [Burst(peak: 40, opened: 40), Burst(peak: 32, opened: 32)])
    }

    @Test func manyConnectionsOneAfterAnotherAreABurstToo() {
        let bursts = Bursts()
        let tracker = ConnectionTracker(afterBurst: bursts.record)
        tracker.opened()  // Prometheus' keep-alive connection
        for _ in 0..<999 {
            for _ in 0..<3 { tracker.opened() }
            for _ in 0..<3 { tracker.closed() }
        }
        // 1 + 2,997 opened, never more than 4 at once: a report per 1,000 or so (at the next close).
        #expect(bursts.all == [Burst(peak: 4, opened: 1000), Burst(peak: 4, opened: 1002)])
        #expect(tracker.openConnections == 1)
    }

    @Test func ordinaryScrapesAreNoBurst() {
        let bursts = Bursts()
        let tracker = ConnectionTracker(afterBurst: bursts.record)
        for _ in 0..<999 {
            tracker.opened()
            tracker.closed()
        }
        #expect(bursts.all == [])
    }
}
