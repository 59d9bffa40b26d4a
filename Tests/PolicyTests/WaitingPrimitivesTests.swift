import Synchronization
import TestSupport
import Testing
@testable import Policy

/// The restores' semaphore honours cancellation and its bound (`AsyncWaitersTests` cover the other waits).
@Suite struct WaitingPrimitivesTests {
    /// A waiter cancelled in the queue leaves it at once, throwing, and never runs its body; the slot
    /// stays with its holder and then goes to the next live waiter.
    @Test func aCancelledSemaphoreWaiterLeavesTheQueueAndNeverRuns() async throws {
        let semaphore = AsyncSemaphore(1)
        let ran = Capture()
        let (release, releaseContinuation) = AsyncStream.makeStream(of: Void.self)
        let holder = Task {
            try await semaphore.holding {
                ran.append("holder")
                for await _ in release { break }
            }
        }
        #expect(await eventually { ran.all == ["holder"] })
        let cancelled = Task { try await semaphore.holding { ran.append("cancelled waiter") } }
        let next = Task { try await semaphore.holding { ran.append("next waiter") } }
        #expect(await eventually { semaphore.waiting == 2 })
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(semaphore.waiting == 1, "the cancelled waiter is still queued")
        releaseContinuation.yield()
        try await holder.value
        try await next.value
        #expect(ran.all == ["holder", "next waiter"])
    }

    /// At most `limit` bodies run at once, however many wait.
    @Test func theSemaphoreBoundHolds() async throws {
        let semaphore = AsyncSemaphore(3)
        let holders = Holders()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    try await semaphore.holding {
                        holders.enter()
                        await Task.yield()
                        holders.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(holders.most <= 3 && holders.most > 0)
        #expect(semaphore.waiting == 0)
    }
}

/// How many bodies run at once, and the most that ever did.
private final class Holders: Sendable {
    private let state = Mutex((now: 0, most: 0))
    func enter() { state.withLock { $0.now += 1; $0.most = max($0.most, $0.now) } }
    func leave() { state.withLock { $0.now -= 1 } }
    var most: Int { state.withLock { $0.most } }
}
