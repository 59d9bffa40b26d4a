@testable import Exporter
import Synchronization
import TestSupport
import Testing

@Suite struct AdmissionGateTests {
    private func gate(permits: Int = 1, waiting: Int = 4, maxWait: Duration = .seconds(60)) -> AdmissionGate {
        AdmissionGate(.init(permits: permits, waiting: waiting, maxWait: maxWait))
    }

    @Test func admitsUpToItsPermitsQueuesUpToItsLimitAndRefusesTheRest() async throws {
        let gate = gate(permits: 2, waiting: 1)
        let first = try await gate.enter()
        let second = try await gate.enter()
        #expect(gate.holders == 2)
        let waiter = Task { try await gate.enter() }
        #expect(await eventually { gate.waiters == 1 })
        await #expect(throws: AdmissionGate.Refusal.queueFull) { try await gate.enter() }
        gate.leave(first)
        let third = try await waiter.value
        #expect(gate.holders == 2 && gate.waiters == 0, "the permit went to the waiter")
        gate.leave(second)
        gate.leave(third)
        gate.leave(third)
        #expect(gate.holders == 0, "a lease given back twice counts once")
    }

    @Test func aWaiterGivesUpAfterMaxWait() async throws {
        let gate = gate(maxWait: .milliseconds(100))
        let lease = try await gate.enter()
        let start = ContinuousClock.now
        await #expect(throws: AdmissionGate.Refusal.timedOut) { try await gate.enter() }
        #expect(ContinuousClock.now - start >= .milliseconds(100))
        #expect(gate.waiters == 0)
        gate.leave(lease)
        #expect(gate.holders == 0)
    }

    @Test func aCancelledWaiterLeavesTheQueueAtOnce() async throws {
        let gate = gate()
        let lease = try await gate.enter()
        let waiter = Task { try await gate.enter() }
        #expect(await eventually { gate.waiters == 1 })
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(gate.waiters == 0)
        gate.leave(lease)
        #expect(gate.holders == 0, "a cancelled waiter holds nothing")
    }

    @Test func aWaiterWhoseClientLeftGivesUpItsPlace() async throws {
        let gate = gate()
        let lease = try await gate.enter()
        let departure = Departure()
        let waiter = Task { try await gate.enter(until: departure) }
        #expect(await eventually { gate.waiters == 1 })
        departure.markGone()
        await #expect(throws: AdmissionGate.Refusal.clientGone) { try await waiter.value }
        #expect(gate.waiters == 0)
        // A client that has already left is not queued at all.
        await #expect(throws: AdmissionGate.Refusal.clientGone) { try await gate.enter(until: departure) }
        gate.leave(lease)
        #expect(gate.holders == 0)
    }

    @Test func waitersAreServedInArrivalOrder() async throws {
        let gate = gate(waiting: 3)
        final class Order: Sendable {
            let served = Mutex<[Int]>([])
        }
        let order = Order()
        let lease = try await gate.enter()
        var waiters: [Task<Void, any Error>] = []
        for i in 0..<3 {
            waiters.append(Task {
                try await gate.withPermit { order.served.withLock { $0.append(i) } }
            })
            #expect(await eventually { gate.waiters == i + 1 })
        }
        gate.leave(lease)
        for waiter in waiters { try await waiter.value }
        #expect(order.served.withLock { $0 } == [0, 1, 2])
        #expect(gate.holders == 0)
    }

    /// A holder that keeps its permit past `maxHold` (a client that stops reading) loses it to the next
    /// caller, or to a waiter whose wait ends; giving it back later changes nothing.
    @Test func aPermitHeldTooLongIsTakenBack() async throws {
        let gate = AdmissionGate(.init(permits: 1, waiting: 1, maxWait: .milliseconds(300), maxHold: .milliseconds(100)))
        let stuck = try await gate.enter()
        // A waiter is not refused when its wait ends: the permit held too long is its now.
        let waited = try await gate.enter()
        gate.leave(stuck)
        #expect(gate.holders == 1, "the late return of a taken-back permit frees nothing")

        gate.leave(waited)
        #expect(gate.holders == 0)

        // A caller that finds the permit held too long takes it without waiting.
        let fast = AdmissionGate(.init(permits: 1, waiting: 0, maxWait: .zero, maxHold: .seconds(1)))
        let held = try await fast.enter()
        await #expect(throws: AdmissionGate.Refusal.queueFull) { try await fast.enter() }
        var next: AdmissionGate.Lease?
        #expect(await eventually { next = try? await fast.enter(); return next != nil })
        fast.leave(held)
        #expect(fast.holders == 1)
        fast.leave(try #require(next))
        #expect(fast.holders == 0)
    }

    /// A permit given back early stays taken until `minHold` is over: at most permits / minHold
    /// admissions a second, however fast each is.
    @Test func aPermitIsHeldAtLeastMinHold() async throws {
        let gate = AdmissionGate(.init(permits: 1, waiting: 1, maxWait: .seconds(60), minHold: .milliseconds(300)))
        let start = ContinuousClock.now
        gate.leave(try await gate.enter())
        #expect(gate.holders == 1, "given back at once, yet still taken")
        let next = try await gate.enter()
        #expect(ContinuousClock.now - start >= .milliseconds(300))
        gate.leave(next)
        #expect(await eventually { gate.holders == 0 })
    }
}
