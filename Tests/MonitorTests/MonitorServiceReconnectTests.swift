import Logging
import TestSupport
import Testing
@testable import Monitor

/// `MonitorService` losing libvirt: stale marking, backoff, reconnect and the resync diff.
@Suite struct MonitorServiceReconnectTests {
    private static let apName = MonitorServiceEventTests.apName
    private static let ccwName = MonitorServiceEventTests.ccwName

    @Test func lossMarksTheIndexStaleAndTheResyncReportsExactlyTheDiff() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let removed = try #require(h.snapshot.state.device(named: Self.apName))
            let mark = h.recorder.count
            let reason = "End of file while reading data: Input/output error"

            fake.goDown(reason: reason)
            #expect(await eventually { h.snapshot.status.synced == false })
            #expect(h.snapshot.status.connected == false)
            #expect(h.snapshot.status.lastError != nil)
            // Stale, but kept until the resync says otherwise.
            #expect(h.snapshot.state.device(named: Self.apName) == removed)
            await #expect(throws: MonitorError.self) {
                try await h.service.withConnection("list domains") { try $0.listDomains() }
            }

            // While libvirtd is down one device is undefined and another defined.
            fake.removeDevice(named: Self.apName)
            try fake.putDevice(xml: try Fixture.text("mdev_ccw.xml"))
            fake.comeUp()

            let changes = await h.recorder.changes(after: mark, until: { $0 == .connection(.synced) })
            let added = MdevDevice(
                definition: try MonitorServiceEventTests.definition("mdev_ccw.xml"),
                flags: FakeLibvirt.inactivePersistent)
            #expect(changes == [
                .connection(.disconnected(reason: reason)),
                .deviceRemoved(removed),
                .deviceAdded(added),
                .connection(.synced),
            ])
            #expect(try h.snapshot.state == fake.freshSync().state)
            #expect(h.snapshot.status.synced)
            #expect(h.snapshot.status.connected)
            #expect(h.snapshot.status.lastError == nil)
            #expect(h.snapshot.status.reconnects == 1)

            // Events flow on the new connection.
            fake.updateFlags(of: Self.ccwName) { $0.autostart = true }
            var autostart = added
            autostart.flags.autostart = true
            #expect(await h.changes(from: .nodeDevice(name: Self.ccwName, kind: .updated))
                == [.deviceChanged(old: added, new: autostart)])
        }
    }

    @Test func cleanLossReconnectsAtOnceAndReportsNoDeviceChanges() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let before = h.snapshot.state
            let mark = h.recorder.count

            fake.closeConnection(reason: "keepalive timeout")
            let changes = await h.recorder.changes(after: mark, until: { $0 == .connection(.synced) })
            #expect(changes == [.connection(.disconnected(reason: "keepalive timeout")), .connection(.synced)])
            #expect(h.snapshot.state == before)
            #expect(h.snapshot.status.reconnects == 1)
            #expect(fake.connectAttempts.count == 2)
            #expect(fake.openConnections == 1)
        }
    }

    @Test func connectFailingTwiceBacksOffThenSyncs() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        fake.failConnects(2)
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            let attempts = fake.connectAttempts
            try #require(attempts.count == 3)
            // 10 ms after the first failure, doubled after the second.
            #expect(attempts[1] - attempts[0] >= .milliseconds(10))
            #expect(attempts[2] - attempts[1] >= .milliseconds(20))
            #expect(h.snapshot.status.synced)
            #expect(h.snapshot.status.lastError == nil)
            // The first connection is not a reconnect.
            #expect(h.snapshot.status.reconnects == 0)
            #expect(try h.snapshot.state == fake.freshSync().state)
        }
    }

    @Test func failuresAfterALossCountOneReconnect() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
            fake.failConnects(2)
            fake.closeConnection(reason: "libvirtd restarted")

            #expect(await eventually { fake.connectsSucceeded == 2 && h.snapshot.status.synced })
            let attempts = fake.connectAttempts
            try #require(attempts.count == 4)
            #expect(attempts[2] - attempts[1] >= .milliseconds(10))
            #expect(attempts[3] - attempts[2] >= .milliseconds(20))
            #expect(h.snapshot.status.reconnects == 1)
        }
    }

    @Test func unavailableAtStartupLeavesTheIndexUnsyncedUntilLibvirtComesUp() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        fake.goDown(reason: "Failed to connect socket to '/run/libvirt/libvirt-sock': No such file or directory")
        try await withMonitor(fake) { h in
            #expect(await eventually { fake.connectAttempts.count >= 2 })
            let status = h.snapshot.status
            #expect(status.synced == false)
            #expect(status.connected == false)
            #expect(status.lastError?.contains("libvirt-sock") == true)
            #expect(h.snapshot.state == IndexState())
            // Nothing was synced, so nothing was lost: no `.disconnected` is reported.
            #expect(h.recorder.all == [])

            fake.comeUp()
            await h.waitForFirstSync()
            #expect(h.snapshot.status.synced)
            let expected = try fake.freshSync().state
            #expect(h.snapshot.state == expected)
            #expect(await h.recorder.changes(after: 0, until: { $0 == .connection(.synced) })?.last == .connection(.synced))
        }
    }

    @Test func cancellationEndsTheServiceAndTheChangeStreams() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        // `withMonitor` cancels the service and waits for it and for the recorder's stream to end.
        try await withMonitor(fake) { h in
            await h.waitForFirstSync()
        }
        #expect(fake.openConnections == 0)
    }
}

/// What an outage costs in log lines: one per outage, not one per retry or per queued event.
@Suite struct OutageLoggingTests {
    @Test func oneLinePerOutageThenRemindersAndChangedReasons() {
        var log = OutageLog()
        let t0 = ContinuousClock.now
        #expect(log.record("refused", now: t0) == .first)
        #expect(log.record("refused", now: t0 + .seconds(1)) == .repeated)
        #expect(log.record("refused", now: t0 + .seconds(599)) == .repeated)
        #expect(log.record("refused", now: t0 + .seconds(600)) == .reminder(attempts: 4, since: .seconds(600)))
        #expect(log.record("refused", now: t0 + .seconds(900)) == .repeated)
        #expect(log.record("permission denied", now: t0 + .seconds(901)) == .changed)
        #expect(log.record("permission denied", now: t0 + .seconds(902)) == .repeated)
    }

    @Test func aLibvirtdDeathLogsNoErrorsForQueuedEventsOrRetries() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        let capture = LogCapture()
        try await withMonitor(fake, logger: capture.logger) { h in
            await h.waitForFirstSync()
            let name = MonitorServiceEventTests.apName
            let reason = "End of file while reading data: Input/output error"
            // Events libvirt queued just before it died arrive on a dead connection.
            fake.dieUnnoticed(reason: reason)
            for _ in 0..<3 { fake.emit(.nodeDevice(name: name, kind: .updated)) }
            fake.emit(.domain(name: "vm", kind: .defined))
            #expect(await eventually { h.snapshot.status.events[EventCounterKey(source: "domain", event: "defined")] == 1 })
            fake.closeConnection(reason: reason)
            // Several failed reconnects (10 ms doubling to 80 ms).
            #expect(await eventually { fake.connectAttempts.count >= 5 })
            fake.comeUp()
            #expect(await eventually { h.snapshot.status.synced })
            // The journal is a subscriber of its own: once it told the restore, it has told the loss too.
            #expect(await eventually { capture.records(.connectionRestored).count == 1 })

            #expect(capture.records(atLeast: .error).isEmpty, "\(capture.records(atLeast: .error).map(\.message))")
            #expect(capture.records(.connectionLost).count == 1)
            #expect(capture.records(.connectionLost).first?.level == .warning)
            let unavailable = capture.records(.libvirtOperationFailed).filter { $0.level >= .warning }
            #expect(unavailable.count == 1, "one line for the outage: \(unavailable.map(\.message))")
            #expect(unavailable.first?.level == .warning)
            #expect(capture.records(.connectionRestored).count == 1)
        }
    }

    @Test func unreachableAtStartupIsOneErrorNotOnePerRetry() async throws {
        let fake = try MonitorServiceEventTests.populatedFake()
        fake.goDown(reason: "Failed to connect socket to '/run/libvirt/libvirt-sock': Connection refused")
        let capture = LogCapture()
        try await withMonitor(fake, logger: capture.logger) { h in
            #expect(await eventually { fake.connectAttempts.count >= 5 })
            fake.comeUp()
            await h.waitForFirstSync()
            let loud = capture.records(atLeast: .warning)
            #expect(loud.count == 1 && loud.first?.level == .error, "\(loud.map(\.message))")
            #expect(loud.first?.message.contains("Connection refused") == true)
            #expect(capture.records(.libvirtOperationFailed).count >= 5, "later retries still logged at debug")
        }
    }
}
