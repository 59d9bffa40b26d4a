import Dispatch
import Synchronization
import TestSupport
import Testing
@testable import Monitor

/// The one waiting primitive and what is built on it: nothing is missed between a check and a wait,
/// cancellation ends every wait at once and leaves nothing behind.
@Suite struct AsyncWaitersTests {
    @Test func aSignalBetweenRegisterAndWaitIsKept() async {
        let waiters = AsyncWaiters<String>()
        let early = waiters.register("pci_0000_01_00_0")
        waiters.signal { $0 == "pci_0000_01_00_0" }
        await waiters.wait(early)
        #expect(waiters.count == 0)
    }

    @Test func onlyMatchingKeysWakeAndCancellationEndsTheWait() async {
        let waiters = AsyncWaiters<String>()
        let other = waiters.register("other")
        let token = waiters.register("mine")
        let waiter = Task { await waiters.wait(token) }
        waiters.signal { $0 == "other" }
        waiter.cancel()
        await waiter.value
        #expect(waiters.count == 1, "a cancelled waiter stayed registered")
        // The other registration was signalled before its wait: it returns at once.
        await waiters.wait(other)
        #expect(waiters.count == 0)
    }

    @Test func aWaiterCancelledBeforeItWaitsReturnsAtOnce() async {
        let waiters = AsyncWaiters<Unkeyed>()
        let token = waiters.register()
        let waiter = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await waiters.wait(token)
        }
        await waiter.value
        #expect(waiters.count == 0)
    }

    @Test func theLatchWakesEveryWaiterAndLaterOnesAtOnce() async {
        let latch = Latch()
        let first = Task { await latch.wait() }
        let second = Task { await latch.wait() }
        latch.signal()
        await first.value
        await second.value
        await latch.wait()
        #expect(latch.isDone)
    }

    @Test func aCancelledLatchWaitReturns() async {
        let latch = Latch()
        let waiter = Task { await latch.wait() }
        waiter.cancel()
        await waiter.value
        #expect(!latch.isDone)
    }

    /// A consumer cancelled while it waits gets nil; one that waits sees a post made meanwhile.
    @Test func theMailboxConsumerHonoursCancellationAndSeesEveryPost() async {
        let mailbox = Mailbox<[Int]>([])
        let cancelled = Task { await mailbox.take { $0.popLast() } }
        cancelled.cancel()
        #expect(await cancelled.value == nil)
        let taker = Task { await mailbox.take { $0.popLast() } }
        mailbox.post { $0.append(7) }
        #expect(await taker.value == 7)
        mailbox.post { $0.append(8) }
        mailbox.finish()
        #expect(await mailbox.take { $0.popLast() } == 8)
        #expect(await mailbox.take { $0.popLast() } == nil, "finished and drained")
    }

    /// A blocking call abandoned on cancellation returns at once; what it returns later is handed to
    /// `abandon`, not lost.
    @Test func anAbandonedBlockingCallIsDisposedOf() async throws {
        let started = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let abandoned = Mutex<[Int]>([])
        let call = Task {
            try await Blocking.runAbandoningOnCancel({ started.signal(); release.wait(); return 42 }, abandon: { value in
                abandoned.withLock { $0.append(value) }
            })
        }
        // Cancelled while the call runs (one cancelled before it begins is not made at all).
        await Blocking.perform { started.wait() }
        call.cancel()
        await #expect(throws: CancellationError.self) { try await call.value }
        release.signal()
        #expect(await eventually { abandoned.withLock { $0 } == [42] })
    }
}
