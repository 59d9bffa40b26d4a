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
        try await gate.enter()
        try await gate.enter()
        #expect(gate.holders == 2)
        let waiter = Task { try await gate.enter() }
        #expect(await eventually { gate.waiters == 1 })
        await #expect(throws: AdmissionGate.Refusal.queueFull) { try await gate.enter() }
        gate.leave()
        try await waiter.value
        #expect(gate.holders == 2 && gate.waiters == 0, "the permit went to the waiter")
        gate.leave()
        gate.leave()
        #expect(gate.holders == 0)
    }

    @Test func aWaiterGivesUpAfterMaxWait() async throws {
        let gate = gate(maxWait: .milliseconds(100))
        try await gate.enter()
        let start = ContinuousClock.now
        await #expect(throws: AdmissionGate.Refusal.timedOut) { try await gate.enter() }
        #expect(ContinuousClock.now - start >= .milliseconds(100))
        #expect(gate.waiters == 0)
        gate.leave()
        #expect(gate.holders == 0)
    }

    @Test func aCancelledWaiterLeavesTheQueueAtOnce() async throws {
        let gate = gate()
        try await gate.enter()
        let waiter = Task { try await gate.enter() }
        #expect(await eventually { gate.waiters == 1 })
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(gate.waiters == 0)
        gate.leave()
        #expect(gate.holders == 0, "a cancelled waiter holds nothing")
    }

    @Test func aWaiterWhoseClientLeftGivesUpItsPlace() async throws {
        let gate = gate()
        try await gate.enter()
        let departure = Departure()
        let waiter = Task { try await gate.enter(until: departure) }
        #expect(await eventually { gate.waiters == 1 })
        departure.markGone()
        await #expect(throws: AdmissionGate.Refusal.clientGone) { try await waiter.value }
        #expect(gate.waiters == 0)
        // A client that has already left is not queued at all.
        await #expect(throws: AdmissionGate.Refusal.clientGone) { try await gate.enter(until: departure) }
        gate.leave()
        #expect(gate.holders == 0)
    }

    @Test func waitersAreServedInArrivalOrder() async throws {
        let gate = gate(waiting: 3)
        final class Order: Sendable {
            let served = Mutex<[Int]>([])
        }
        let order = Order()
        try await gate.enter()
        var waiters: [Task<Void, any Error>] = []
        for i in 0..<3 {
            waiters.append(Task {
                try await gate.withPermit { order.served.withLock { $0.append(i) } }
            })
            #expect(await eventually { gate.waiters == i + 1 })
        }
        gate.leave()
        for waiter in waiters { try await waiter.value }
        #expect(order.served.withLock { $0 } == [0, 1, 2])
        #expect(gate.holders == 0)
    }
}
