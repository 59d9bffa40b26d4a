@testable import Exporter
import Foundation
import Logging
import ServiceLifecycle
import TestSupport
import Testing
@testable import Monitor

/// A libvirt call that does not return is reported (status, journal, gauge) and cleared when it returns,
/// and the index catches up with no restart.
@Suite struct LibvirtCallWatchTests {
    @Test func aCallThatDoesNotReturnIsReportedAndClearedWhenItReturns() async throws {
        let fake = FakeLibvirt()
        let log = LogCapture()
        try await withMonitor(fake, logger: log.logger) { h in
            await h.waitForFirstSync()
            let watch = LibvirtCallWatch(calls: h.service.calls, index: h.service.index, stuckAfter: .milliseconds(300), logger: log.logger)
            let watching = Task { try await watch.run() }
            defer { watching.cancel() }
            #expect(Endpoints.health(h.snapshot.status) == (true, "ok"))

            // libvirtd stops answering device fetches: the event's fetch waits.
            fake.pauseFetches()
            let device = MonitorServiceStormTests.mdevXML(1)
            fake.putDevice(named: device.name, xml: device.xml, flags: FakeLibvirt.inactivePersistent, listing: .mdevs)
            fake.emit(.nodeDevice(name: device.name, kind: .defined))
            #expect(await eventually { h.snapshot.status.stuckCall != nil }, "the stuck fetch was not reported")
            let operation = "fetch node device \(device.name)"
            #expect(h.snapshot.status.stuckCall == operation)
            #expect(Endpoints.health(h.snapshot.status) == (false, "libvirt call not returning: \(operation)"))
            #expect(h.service.calls.oldestSeconds >= 0.3)
            let warnings = log.records(.libvirtCallStuck)
            #expect(warnings.count == 1)
            #expect(warnings.first?.level == .warning)
            #expect(warnings.first?.value(LogKey.libvirtCall) == operation)
            var w = MetricsWriter(capacity: 256)
            LibvirtCallExport(calls: h.service.calls).contribute(to: &w, snapshot: h.snapshot)
            let text = String(decoding: w.takeFamilies().flatMap { $0.text }, as: UTF8.self)
            let age = try #require(text.split(separator: "\n").first { $0.hasPrefix("mdev_libvirt_call_in_flight_seconds ") })
            #expect(Double(age.split(separator: " ")[1]).map { $0 >= 0.3 } == true, "\(age)")
            #expect(h.snapshot.state.device(named: device.name) == nil)

            // It answers: the mark goes, a notice says so, and the index has the device without a restart.
            fake.resumeFetches()
            #expect(await eventually { h.snapshot.status.stuckCall == nil }, "the mark stayed after the call returned")
            #expect(await eventually { h.snapshot.state.device(named: device.name) != nil })
            #expect(Endpoints.health(h.snapshot.status) == (true, "ok"))
            #expect(log.records(.libvirtCallReturned).map(\.level) == [.notice])
            #expect(log.records(.libvirtCallStuck).count == 1)
            #expect(h.service.calls.oldest == nil)

            // The held fetch is in its kind's totals, and so is its wait in the queue (none: nothing ahead).
            let fetches = try #require(h.service.calls.durations[.fetchNodeDevice])
            #expect(fetches.count >= 1 && fetches.seconds >= 0.3, "\(fetches)")
            #expect(h.service.calls.durations[.fullSync]?.count == 1)
            #expect(h.service.calls.queueWait.count >= 1)
            var after = MetricsWriter(capacity: 1024)
            LibvirtCallExport(calls: h.service.calls).contribute(to: &after, snapshot: h.snapshot)
            let lines = String(decoding: after.takeFamilies().flatMap { $0.text }, as: UTF8.self).split(separator: "\n")
            #expect(lines.contains("# TYPE mdev_libvirt_call_duration_seconds summary"))
            #expect(lines.contains("mdev_libvirt_call_duration_seconds_count{call=\"fetch_node_device\"} \(fetches.count)"), "\(lines)")
            #expect(lines.contains("mdev_libvirt_call_duration_seconds_count{call=\"action\"} 0"))
            #expect(lines.contains { $0.hasPrefix("mdev_event_queue_wait_seconds_count ") })
            // At debug level, each object's wait and handling are journaled (the held one took 0.3 s at least).
            let work = try #require(log.records.first { $0.message.hasPrefix("event work node device \(device.name) (defined): waited ") })
            #expect(work.level == .debug)
            let words = work.message.split(separator: " ")
            let handled = words.firstIndex(of: "applied").map { Int(words[$0 + 2]) ?? 0 }
            #expect((handled ?? 0) >= 300, "\(work.message)")
        }
    }

    @Test func aConnectThatDoesNotAnswerIsAStuckCall() async throws {
        let fake = FakeLibvirt()
        let log = LogCapture()
        fake.connectsPaused.store(true, ordering: .sequentiallyConsistent)
        try await withMonitor(fake, logger: log.logger) { h in
            let watch = LibvirtCallWatch(calls: h.service.calls, index: h.service.index, stuckAfter: .milliseconds(200), logger: log.logger)
            let watching = Task { try await watch.run() }
            defer { watching.cancel() }
            #expect(await eventually { h.snapshot.status.stuckCall == "connect to test:///fake" })
            fake.connectsPaused.store(false, ordering: .sequentiallyConsistent)
            await h.waitForFirstSync()
            #expect(await eventually { h.snapshot.status.stuckCall == nil })
            #expect(Endpoints.health(h.snapshot.status) == (true, "ok"))
        }
    }

    /// A full sync reports progress after each RPC, so only one RPC that does not return is stuck, not a
    /// long sync of a big host.
    @Test func progressRestartsACallsClock() throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        let connection = try fake.connect(uri: "test:///fake", readOnly: true)
        defer { connection.close() }
        let calls = LibvirtCalls()
        var restamps = 0
        _ = try calls.tracking("full sync", kind: .fullSync) { progress in
            try FullSync.read(from: connection) {
                let before = calls.oldest?.started
                while ContinuousClock.now == before {}
                progress()
                if let before, let after = calls.oldest?.started, after > before { restamps += 1 }
            }
        }
        // Two mdev listings, the parents' listing, the domain listing and one domain fetch at least.
        #expect(restamps >= 5, "\(restamps)")
        #expect(calls.oldest == nil)
    }

    @Test func theWatchLooksOftenEnoughForItsBound() {
        let index = DeviceIndex(uri: "test:///fake")
        let logger = Logger(label: "test")
        func period(_ d: Duration) -> Duration { LibvirtCallWatch(calls: LibvirtCalls(), index: index, stuckAfter: d, logger: logger).period }
        #expect(period(.seconds(20)) == .seconds(5))
        #expect(period(.seconds(30)) == .seconds(5))
        #expect(period(.seconds(2)) == .milliseconds(500))
        #expect(period(.milliseconds(100)) == .milliseconds(100))
    }
}
