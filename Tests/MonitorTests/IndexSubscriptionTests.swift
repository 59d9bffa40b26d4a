import Testing
@testable import Monitor

/// A subscriber's queue is bounded: past its capacity it gets one resync whose changes are exactly
/// the difference it missed.
@Suite struct IndexSubscriptionTests {
    @Test func aSubscriberWithinCapacityGetsEveryChangeInOrder() async throws {
        let index = DeviceIndex(uri: "test:///")
        let subscription = await index.subscribe(capacity: 100)
        await index.mutate { $0.upsertDevice(Sample.definition(Sample.uuidA), flags: Sample.flags()) }
        await index.mutate { $0.upsertDevice(Sample.definition(Sample.uuidA), flags: Sample.flags(active: true)) }
        let update = try #require(await subscription.next())
        guard case .changes(let changes) = update else { Issue.record("expected changes, got \(update)"); return }
        #expect(changes == [
            .deviceAdded(Sample.device(Sample.uuidA)),
            .deviceChanged(old: Sample.device(Sample.uuidA), new: Sample.device(Sample.uuidA, active: true)),
        ])
        #expect(subscription.overflows == 0)
    }

    @Test func aSubscriberThatFallsBehindGetsTheDifferenceNotLessNotMore() async throws {
        let index = DeviceIndex(uri: "test:///")
        await index.replace(with: IndexState(devices: [Sample.device(Sample.uuidC)], parents: [], domains: []))
        let subscription = await index.subscribe(capacity: 3)
        let before = index.snapshot.state
        // Seven changes into a queue of three: A added and changed, B added then removed, C removed.
        await index.mutate { $0.upsertDevice(Sample.definition(Sample.uuidA), flags: Sample.flags()) }
        await index.mutate { $0.upsertDevice(Sample.definition(Sample.uuidB), flags: Sample.flags()) }
        await index.mutate { $0.upsertDevice(Sample.definition(Sample.uuidA), flags: Sample.flags(active: true)) }
        await index.mutate { $0.removeDevice(named: Sample.name(Sample.uuidB, parent: Sample.gpu0)) }
        await index.mutate { $0.removeDevice(named: Sample.name(Sample.uuidC, parent: Sample.gpu0)) }
        await index.markDisconnected(reason: "test")
        let update = try #require(await subscription.next())
        guard case .resync(let from, let to, let connection) = update else { Issue.record("expected a resync, got \(update)"); return }
        #expect(from == before)
        #expect(to == index.snapshot.state)
        #expect(connection == [.connection(.disconnected(reason: "test"))])
        #expect(update.changes == [
            .deviceRemoved(Sample.device(Sample.uuidC)),
            .deviceAdded(Sample.device(Sample.uuidA, active: true)),
            .connection(.disconnected(reason: "test")),
        ])
        #expect(subscription.overflows == 1)

        // Caught up: the next change arrives as itself again.
        await index.mutate { $0.upsertDevice(Sample.definition(Sample.uuidB), flags: Sample.flags()) }
        let next = try #require(await subscription.next())
        guard case .changes(let changes) = next else { Issue.record("expected changes, got \(next)"); return }
        #expect(changes == [.deviceAdded(Sample.device(Sample.uuidB))])
    }

    @Test func droppingASubscriptionUnsubscribes() async throws {
        let index = DeviceIndex(uri: "test:///")
        weak var weakSubscription: IndexSubscription?
        do {
            let subscription = await index.subscribe(capacity: 10)
            weakSubscription = subscription
            await index.mutate { $0.upsertDevice(Sample.definition(Sample.uuidA), flags: Sample.flags()) }
        }
        #expect(weakSubscription == nil)
        // Publishing past a dropped subscription neither crashes nor keeps it.
        await index.mutate { $0.upsertDevice(Sample.definition(Sample.uuidB), flags: Sample.flags()) }
    }

    @Test func finishEndsEverySubscription() async throws {
        let index = DeviceIndex(uri: "test:///")
        let subscription = await index.subscribe()
        await index.finish()
        #expect(await subscription.next() == nil)
    }
}
