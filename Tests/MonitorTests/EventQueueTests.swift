import Foundation
import Testing
@testable import Monitor

/// The bounded, coalescing queue between libvirt's callbacks and the Monitor.
@Suite struct EventQueueTests {
    @Test func aBurstForOneDeviceIsOneFetchWithEveryKind() async throws {
        let queue = EventQueue()
        for _ in 0..<1000 { queue.push(.nodeDevice(name: "mdev_a", kind: .updated)) }
        queue.push(.nodeDevice(name: "mdev_a", kind: .created))
        queue.push(.domain(name: "vm1", kind: .defined))
        queue.push(.nodeDevice(name: "mdev_a", kind: .deleted))

        let first = try #require(await queue.next())
        #expect(first.work == .nodeDevice(name: "mdev_a", kinds: [.updated, .created, .deleted]))
        // Every event is counted, coalesced or not.
        #expect(first.counts == [
            EventCounterKey(source: "nodedev", event: "updated"): 1000,
            EventCounterKey(source: "nodedev", event: "created"): 1,
            EventCounterKey(source: "nodedev", event: "deleted"): 1,
            EventCounterKey(source: "domain", event: "defined"): 1,
        ])
        let second = try #require(await queue.next())
        #expect(second.work == .domain(name: "vm1", kinds: [.defined]))
        #expect(second.counts.isEmpty)
        #expect(queue.waiting == 0)
        let stats = queue.stats
        #expect((stats.received, stats.handedOut, stats.overflows, stats.waited.count) == (1003, 2, 0, 2))
    }

    @Test func objectsComeOutInTheOrderTheyFirstArrived() async throws {
        let queue = EventQueue()
        for name in ["c", "a", "b", "a", "c"] { queue.push(.nodeDevice(name: name, kind: .updated)) }
        var names: [String] = []
        for _ in 0..<3 {
            if case .nodeDevice(let name, _)? = await queue.next()?.work { names.append(name) }
        }
        #expect(names == ["c", "a", "b"])
    }

    @Test func overflowBecomesOneResyncAndTheQueueEmpties() async throws {
        let queue = EventQueue(capacity: 10)
        for i in 0..<10 { queue.push(.nodeDevice(name: "d\(i)", kind: .updated)) }
        #expect(queue.waiting == 10)
        queue.push(.nodeDevice(name: "d10", kind: .updated))
        #expect(queue.waiting == 0)
        // Later events are covered by the pending resync.
        queue.push(.nodeDevice(name: "d11", kind: .updated))
        let next = try #require(await queue.next())
        #expect(next.work == .resync([.overflow]))
        #expect(next.counts[EventCounterKey(source: "nodedev", event: "updated")] == 12)
        #expect(queue.stats.overflows == 1)
        // After the resync is handed out, the queue admits objects again.
        queue.push(.nodeDevice(name: "d12", kind: .created))
        #expect(await queue.next()?.work == .nodeDevice(name: "d12", kinds: [.created]))
    }

    @Test func aClosedConnectionSkipsWhatIsQueued() async throws {
        let queue = EventQueue()
        queue.push(.nodeDevice(name: "a", kind: .updated))
        queue.push(.connectionClosed(reason: "EOF"))
        queue.push(.connectionClosed(reason: "later"))
        #expect(await queue.next()?.work == .closed(reason: "EOF"))
    }

    @Test func finishEndsTheConsumerAndAWaitingConsumerWakesOnPush() async throws {
        let queue = EventQueue()
        async let got = queue.next()
        queue.push(.domain(name: "vm", kind: .started))
        #expect(await got?.work == .domain(name: "vm", kinds: [.started]))
        queue.finish()
        #expect(await queue.next() == nil)
    }

    @Test func aCancelledConsumerReturnsNil() async throws {
        let queue = EventQueue()
        let task = Task { await queue.next() }
        task.cancel()
        #expect(await task.value == nil)
    }

    /// 100,000 UPDATE events for 1,000 devices, pushed from another thread while the consumer takes:
    /// never more than 1,000 objects wait, and each device's events end in at least one fetch.
    /// libvirt 11.3 sends an UPDATE for each of a parent's mdevs around a CREATED: the CREATED goes first,
    /// and an object an UPDATE queued moves ahead (once) when a lifecycle event for it follows.
    @Test func lifecycleEventsOvertakeUpdatesWithoutASecondFetch() async throws {
        let queue = EventQueue()
        for name in ["u1", "u2", "u3"] { queue.push(.nodeDevice(name: name, kind: .updated)) }
        queue.push(.nodeDevice(name: "new", kind: .created))
        queue.push(.domain(name: "vm", kind: .started))
        queue.push(.nodeDevice(name: "u2", kind: .deleted))
        queue.push(.nodeDevice(name: "u3", kind: .updated))
        var out: [LibvirtWork] = []
        for _ in 0..<5 { if let (work, _) = await queue.next() { out.append(work) } }
        #expect(out == [
            .nodeDevice(name: "new", kinds: [.created]), .domain(name: "vm", kinds: [.started]),
            .nodeDevice(name: "u2", kinds: [.updated, .deleted]),
            .nodeDevice(name: "u1", kinds: [.updated]), .nodeDevice(name: "u3", kinds: [.updated]),
        ])
        #expect(queue.waiting == 0)
        queue.finish()
        #expect(await queue.next() == nil)
    }

    /// libvirt 11.3's dozen UPDATEs around a CREATED: the re-read of the parent sharing the pool, requested
    /// after them, is handed out before them (it follows a capacity change), once, and is not an event.
    @Test func aRequestedRefreshOvertakesUpdatesOnce() async throws {
        let queue = EventQueue()
        for i in 0..<24 { queue.push(.nodeDevice(name: "mdev\(i)", kind: .updated)) }
        queue.push(.nodeDevice(name: "sibling-queued", kind: .updated))
        queue.requestRefresh(nodeDevice: "sibling")
        queue.requestRefresh(nodeDevice: "sibling-queued")
        queue.requestRefresh(nodeDevice: "sibling")
        var out: [LibvirtWork] = []
        while queue.waiting > 0, let (work, _) = await queue.next() { out.append(work) }
        #expect(out.prefix(2) == [.nodeDevice(name: "sibling", kinds: [.updated]), .nodeDevice(name: "sibling-queued", kinds: [.updated])])
        #expect(out.count == 26)
        #expect(queue.stats.received == 25)
        // A refresh handed out leaves nothing behind: a later UPDATE of it waits in the update lane again.
        queue.push(.nodeDevice(name: "mdev0", kind: .updated))
        queue.push(.nodeDevice(name: "sibling", kind: .updated))
        queue.push(.domain(name: "vm", kind: .started))
        #expect(await queue.next()?.work == .domain(name: "vm", kinds: [.started]))
        #expect(await queue.next()?.work == .nodeDevice(name: "mdev0", kinds: [.updated]))
    }

    /// How long each object waited from its first event to its hand-out is summed, one count per object.
    @Test func theWaitFromFirstEventToHandOutIsSummed() async throws {
        let queue = EventQueue()
        queue.push(.nodeDevice(name: "a", kind: .updated))
        queue.push(.nodeDevice(name: "a", kind: .created))
        queue.push(.domain(name: "vm", kind: .started))
        try await Task.sleep(for: .milliseconds(50))
        _ = await queue.next()
        _ = await queue.next()
        #expect(queue.stats.waited.count == 2)
        #expect(queue.stats.waited.seconds >= 0.1, "\(queue.stats.waited)")
    }

    /// A steady stream of lifecycle events cannot starve an UPDATE: every ninth hand-out is the update lane's.
    @Test func updatesGetATurnEveryNinthHandOut() async throws {
        let queue = EventQueue()
        queue.push(.nodeDevice(name: "parent", kind: .updated))
        for i in 0..<20 { queue.push(.domain(name: "vm\(i)", kind: .started)) }
        var names: [String] = []
        for _ in 0..<10 {
            if case (.nodeDevice(let name, _), _)? = await queue.next() { names.append(name) } else { names.append("domain") }
        }
        #expect(names == Array(repeating: "domain", count: 8) + ["parent", "domain"])
    }

    /// An object that flaps (an UPDATE, then a lifecycle event, handed out, again) leaves a key behind in
    /// the update lane each time, behind a hundred update-only objects that keep coming back; those stale
    /// keys are dropped, so the lanes stay bounded by the waiting objects.
    @Test func staleLaneKeysStayBounded() async throws {
        let queue = EventQueue()
        for i in 0..<100 { queue.push(.nodeDevice(name: "u\(i)", kind: .updated)) }
        var maxKeys = 0, maxWaiting = 0
        for i in 0..<5_000 {
            queue.push(.nodeDevice(name: "flapping", kind: .updated))
            queue.push(.nodeDevice(name: "flapping", kind: i % 2 == 0 ? .created : .deleted))
            queue.push(.domain(name: "vm", kind: .started))
            for _ in 0..<2 {
                // An update-only object handed out is updated again at once.
                if case (.nodeDevice(let name, let kinds), _)? = await queue.next(), kinds == [.updated], name != "flapping" {
                    queue.push(.nodeDevice(name: name, kind: .updated))
                }
            }
            maxKeys = max(maxKeys, queue.laneKeys)
            maxWaiting = max(maxWaiting, queue.waiting)
        }
        #expect(maxKeys <= 2 * maxWaiting + 64 + 3, "lane keys grew to \(maxKeys) for at most \(maxWaiting) waiting objects")
    }

    @Test func aStormStaysBoundedByTheNumberOfObjects() async throws {
        let queue = EventQueue()
        // The producer is a plain thread, as libvirt's event loop is: it must not hold a pool thread.
        Thread {
            for i in 0..<100_000 { queue.push(.nodeDevice(name: "mdev_\(i % 1000)", kind: .updated)) }
            // In the same (update) lane, so it comes out after everything pushed before it.
            queue.push(.nodeDevice(name: "end", kind: .updated))
        }.start()
        var fetched: [String: Int] = [:], maxWaiting = 0, counted = 0, taken = 0
        while let (work, counts) = await queue.next() {
            taken += 1
            if taken % 256 == 0 { await Task.yield() }
            maxWaiting = max(maxWaiting, queue.waiting)
            counted += counts.values.reduce(0, +)
            if case .nodeDevice(let name, _) = work {
                if name == "end" { break }
                fetched[name, default: 0] += 1
            }
        }
        #expect(fetched.count == 1000)
        #expect(maxWaiting <= 1001)
        #expect(counted == 100_001)
        let fetches = fetched.values.reduce(0, +)
        #expect(fetches < 100_000)
        print("EventQueue storm: 100000 events → \(fetches) fetches, at most \(maxWaiting) objects waiting")
    }
}
