@testable import Exporter
import Synchronization
import TestSupport
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

    /// The tracker in a real server: connections that never send a byte count, and closing them ends the burst.
    @Test func serverReportsABurstOfIdleConnections() async throws {
        let bursts = Bursts()
        try await withServer(afterConnectionBurst: { bursts.record(Burst(peak: $0, opened: $1)) }) { port in
            var idle: [RawConnection] = []
            for _ in 0..<40 { idle.append(try await RawConnection.open(port: port)) }
            let scrape = try await curl(["http://127.0.0.1:\(port)/healthz"])
            #expect(scrape.status == 200)
            #expect(bursts.all.isEmpty, "reported while the connections were open")
            idle.removeAll()
            #expect(await eventually { bursts.all.count == 1 })
            #expect(bursts.all.first.map { $0.peak >= 40 && $0.opened >= 40 } == true, "\(bursts.all)")
        }
    }
}
